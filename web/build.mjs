// Bundles the browser code into evidence/http/pages/static/build/, which the app serves at
// /app/static/build/. Run after `npm ci`: `node build.mjs`. Output is minified IIFE for
// ES2020 browsers with source maps; the folder is emptied first so nothing stale is served.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
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
    entryPoints: [src('upload.js'), src('hash-worker.js'), src('audit.js'), src('docs.js')],
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
  }),
  esbuild.build({
    ...common,
    entryPoints: [src('upload.css')],
  }),
]);

// /docs (the API reference) served from here, never from a CDN: a force's network may have no
// internet, and a page that loads scripts from elsewhere would run whatever that host sends.
const swaggerDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const swaggerOut = join(outdir, 'swagger-ui');
mkdirSync(swaggerOut, { recursive: true });
for (const name of ['swagger-ui-bundle.js', 'swagger-ui.css', 'LICENSE', 'NOTICE']) {
  copyFileSync(join(swaggerDir, name), join(swaggerOut, name));
}
