/**
 * `GET /openapi.json` (see ./openapi.ts) and `GET /docs/`, Swagger UI over it, served from
 * the `swagger-ui-dist` package: no network beyond this node.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import express, { Router } from 'express';
import type { ReplicaNode } from '../node/replica-node.js';
import { openApiDocument } from './openapi.js';
import type { ResolvedHttpOptions } from './options.js';
import { onlyMethods } from './routing.js';
import type { RequestValidator } from './validation.js';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

const SWAGGER_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eventual-cache API</title>
<link rel="stylesheet" href="swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script><script src="init.js"></script></body></html>`;
const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '${OPENAPI_PATH}', dom_id: '#swagger-ui' });`;

export function docsRouter(node: ReplicaNode, validator: RequestValidator, o: ResolvedHttpOptions): Router {
  const router = Router({ caseSensitive: true, strict: true });
  let document: unknown;
  router
    .route(OPENAPI_PATH)
    .get((_req, res) => {
      document ??= openApiDocument(validator.schemas, { nodeId: node.id, secured: o.authToken !== undefined, dashboard: o.dashboard, ui: o.ui });
      res.json(document);
    })
    .all(onlyMethods('GET', 'HEAD'));
  router.route(DOCS_PATH).get((_req, res) => res.redirect(301, `${DOCS_PATH}/`)).all(onlyMethods('GET', 'HEAD'));
  router.get(`${DOCS_PATH}/`, (_req, res) => res.type('html').send(DOCS_PAGE));
  router.get(`${DOCS_PATH}/init.js`, (_req, res) => res.type('text/javascript').send(DOCS_INIT));
  router.use(DOCS_PATH, express.static(SWAGGER_DIR, { index: false, fallthrough: true }));
  return router;
}
