// check-bundle.mjs proves that the committed bundle (dist/, embedded in the sanke binary) is
// what building the sources in this checkout produces: it runs the same Vite build into a
// temporary directory and compares the two trees byte for byte. It exits 1, listing the
// differences, when a file is missing, extra or different.
//
//   node scripts/check-bundle.mjs      (npm test's first step after the linters; npm run check-bundle)
//
// The build is deterministic: content-hashed file names, no timestamps, no absolute paths;
// the same sources and node_modules (package-lock.json, npm ci) give the same bytes.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'dist');

/** files maps each file under dir (relative path, "/" separators) to its bytes; none when dir is missing. */
async function files(dir) {
  const out = new Map();
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p).split(sep).join('/'), await readFile(p));
    }
  };
  await walk(dir).catch((e) => {
    if (e.code !== 'ENOENT') throw e;
  });
  return out;
}

const tmp = await mkdtemp(join(os.tmpdir(), 'sanke-web-client-build-'));
try {
  await build({ root, logLevel: 'warn', build: { outDir: tmp, emptyOutDir: true } });
  const [want, got] = await Promise.all([files(tmp), files(committed)]);
  const problems = [];
  for (const [name, data] of want) {
    if (!got.has(name)) problems.push(`missing from dist/: ${name}`);
    else if (!data.equals(got.get(name))) problems.push(`differs from a fresh build: dist/${name}`);
  }
  for (const name of got.keys()) if (!want.has(name)) problems.push(`not produced by the build: dist/${name}`);
  if (problems.length > 0) {
    console.error(`web-client/dist is not what the sources build:\n  ${problems.join('\n  ')}\n` +
      'Run: cd web-client && npm ci && npm run build, and commit web-client/dist.');
    process.exitCode = 1;
  } else {
    console.log(`web-client/dist is what the sources build (${want.size} files, byte for byte)`);
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
