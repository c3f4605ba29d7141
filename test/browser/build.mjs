// Bundles the test page (page/app.js + the unmodified npm livekit-client) into dist/.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');

await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, 'page', 'app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  sourcemap: 'inline',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
await copyFile(join(here, 'page', 'index.html'), join(out, 'index.html'));
