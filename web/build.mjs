// Bundles the front end into web/dist/ (app.js, app.css, index.html), which the node embeds and serves at /.
// Run from anywhere: `node web/build.mjs` (or `npm run build` in web/).
import { build } from 'esbuild';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const started = Date.now();
await build({
  absWorkingDir: here,
  entryPoints: { app: join(src, 'app.js') },
  outdir: dist,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'eof',
  logLevel: 'warning',
  charset: 'utf8',
});
await copyFile(join(src, 'index.html'), join(dist, 'index.html'));

let total = 0;
let totalGz = 0;
for (const name of ['index.html', 'app.js', 'app.css']) {
  const file = join(dist, name);
  const { size } = await stat(file);
  const gz = gzipSync(readFileSync(file), { level: 9 }).length;
  total += size;
  totalGz += gz;
  console.log(`${relative(process.cwd(), file) || file}`.padEnd(32), `${(size / 1024).toFixed(1)} KiB`.padStart(10), `(${(gz / 1024).toFixed(1)} KiB gzipped)`);
}
console.log('total'.padEnd(32), `${(total / 1024).toFixed(1)} KiB`.padStart(10), `(${(totalGz / 1024).toFixed(1)} KiB gzipped)`, `in ${Date.now() - started} ms`);
