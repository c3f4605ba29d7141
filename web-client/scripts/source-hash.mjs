// source-hash.mjs computes the hash of everything the committed bundle (dist/) is built from,
// so that a stale bundle is caught without npm: `npm run build` writes it to
// dist/source-hash.txt, and the Go test TestBundleUpToDate (embed_test.go) recomputes it the
// same way. Keep the two in step:
//
//   files  = SOURCE_FILES, then every file under SOURCE_DIRS (recursively), relative paths with
//            "/" separators, sorted by byte order, without duplicates
//   digest = sha256 over, for each file: path "\n" byte-length "\n" content "\n"
//   dist/source-hash.txt = "sha256:" hex digest "\n"
//
//   node scripts/source-hash.mjs            print the hash
//   node scripts/source-hash.mjs --write    write dist/source-hash.txt
//   node scripts/source-hash.mjs --check    exit 1 when dist/source-hash.txt differs
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOURCE_FILES = ['index.html', 'package.json', 'package-lock.json', 'tsconfig.json', 'vite.config.ts'];
export const SOURCE_DIRS = ['src'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(relative(root, p).split(sep).join('/'));
  }
}

export function sourceHash() {
  const files = [...SOURCE_FILES];
  for (const d of SOURCE_DIRS) walk(join(root, d), files);
  const sorted = [...new Set(files)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const h = createHash('sha256');
  for (const f of sorted) {
    const data = readFileSync(join(root, f));
    h.update(`${f}\n${data.length}\n`);
    h.update(data);
    h.update('\n');
  }
  return `sha256:${h.digest('hex')}`;
}

const arg = process.argv[2];
if (arg === '--write') {
  writeFileSync(join(root, 'dist', 'source-hash.txt'), `${sourceHash()}\n`);
} else if (arg === '--check') {
  let committed = '';
  try {
    committed = readFileSync(join(root, 'dist', 'source-hash.txt'), 'utf8').trim();
  } catch {
    // missing: reported below
  }
  const now = sourceHash();
  if (committed !== now) {
    console.error(`web-client/dist is stale: dist/source-hash.txt is ${committed || '(missing)'}, the sources hash to ${now}.\n` +
      'Run: cd web-client && npm ci && npm run build, and commit web-client/dist.');
    process.exit(1);
  }
  console.log(`web-client/dist is up to date (${now})`);
} else if (arg === undefined) {
  console.log(sourceHash());
}
