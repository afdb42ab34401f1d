/**
 * The machine-readable contract and its reference page: GET /openapi.json (generated from the
 * operation registry, see ./contract/openapi.ts) and GET /docs, Swagger UI served from the
 * swagger-ui-dist package (no external assets) under the dashboard's content security policy:
 * the page has no inline script or style, its start script is a file of its own.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Hono } from 'hono';
import { Codes, XcronError } from '../errors.js';
import { serveAsset, type Asset } from '../ui/index.js';
import { openApiText } from './contract/openapi.js';
import { defineOperation } from './contract/registry.js';
import type { ApiDeps } from './deps.js';
import { fail } from './envelope.js';

export const openApiOp = defineOperation({
  method: 'get',
  path: '/openapi.json',
  operationId: 'openApi',
  tag: 'reference',
  summary: 'This OpenAPI document',
  description: 'OpenAPI 3.1, generated from the schemas the service validates requests and shapes answers with.',
  access: 'public',
  raw: { type: 'application/json', description: 'The OpenAPI 3.1 document.' },
  rateLimited: false,
});

export const docsOp = defineOperation({
  method: 'get',
  path: '/docs',
  operationId: 'apiReference',
  tag: 'reference',
  summary: 'The API reference page',
  description: 'Swagger UI over /openapi.json, served by the service itself (its scripts and styles too).',
  access: 'public',
  raw: { type: 'text/html', description: 'The reference page.' },
  rateLimited: false,
});

/** The reference page's files: path → [file in swagger-ui-dist or null for ours, content type]. */
export const DOCS_ASSETS: Record<string, readonly [string | null, string]> = {
  '/docs/swagger-ui.css': ['swagger-ui.css', 'text/css; charset=utf-8'],
  '/docs/swagger-ui-bundle.js': ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  '/docs/init.js': [null, 'text/javascript; charset=utf-8'],
  '/docs/docs.css': [null, 'text/css; charset=utf-8'],
};

/** Every path this module serves (GET and HEAD only; another method is answered 405). */
export const DOCS_PATHS: ReadonlySet<string> = new Set(['/openapi.json', '/docs', ...Object.keys(DOCS_ASSETS)]);

const PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xcron API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="stylesheet" href="/docs/docs.css">
</head>
<body>
<main id="swagger-ui"><p class="docs-loading">Loading the API reference… (it needs JavaScript; the contract itself is at <a href="/openapi.json">/openapi.json</a>)</p></main>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// No validator badge (it would call an outside service), the document from this server.
const INIT_JS = `"use strict";
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: new URL('/openapi.json', window.location.href).href,
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

const DOCS_CSS = `body { margin: 0; }
.docs-loading { font-family: sans-serif; padding: 2rem; }
`;

const etagOf = (s: string): string => `"${createHash('sha256').update(s).digest('hex').slice(0, 16)}"`;

let distDir: string | null = null;
function distFile(name: string): string {
  distDir ??= dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  return readFileSync(join(distDir, name), 'utf8');
}

/** Mounts /openapi.json, /docs and the page's files; call before the API's catch-all route. */
export function docsRoutes(app: Hono, deps: Pick<ApiDeps, 'version'>): void {
  const cache = new Map<string, Asset>();
  const asset = (key: string, make: () => string, type: string): Asset => {
    let a = cache.get(key);
    if (!a) {
      const body = make();
      cache.set(key, (a = { body, type, etag: etagOf(body) }));
    }
    return a;
  };

  app.get(openApiOp.path, (c) => {
    const a = asset(openApiOp.path, () => openApiText(deps.version), 'application/json');
    c.header('Access-Control-Allow-Origin', '*'); // a public description, readable by other tools
    return serveAsset(c, a);
  });
  app.get(docsOp.path, (c) => serveAsset(c, asset(docsOp.path, () => PAGE, 'text/html; charset=utf-8')));
  app.get('/docs/', (c) => c.redirect('/docs', 301));
  for (const [path, [file, type]] of Object.entries(DOCS_ASSETS)) {
    const make = (): string => (file !== null ? distFile(file) : path.endsWith('.js') ? INIT_JS : DOCS_CSS);
    app.get(path, (c) => serveAsset(c, asset(path, make, type)));
  }
  for (const path of DOCS_PATHS) {
    app.all(path, (c) => fail(c, new XcronError(Codes.METHOD_NOT_ALLOWED, 405, `method ${c.req.method} is not allowed on ${path}; use GET, HEAD`), { Allow: 'GET, HEAD' }));
  }
}
