// Bundles the browser code into evidence/http/pages/static/build/, which the app serves at
// /app/static/build/. Run after `npm ci`: `node build.mjs`. Output is minified IIFE for
// ES2020 browsers with source maps; the folder is emptied first so nothing stale is served.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, '..', 'evidence', 'http', 'pages', 'static', 'build');
const src = (name) => join(here, 'src', name);

rmSync(outdir, { recursive: true, force: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  outdir,
  logLevel: 'info',
  // Keep the dependencies' licence notices beside the bundles.
  legalComments: 'linked',
};

await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: [src('upload.js'), src('hash-worker.js'), src('audit.js')],
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
  }),
  esbuild.build({
    ...common,
    entryPoints: [src('upload.css')],
  }),
]);
