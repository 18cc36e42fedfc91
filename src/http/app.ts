/**
 * The HTTP API of one replica node (Express 5).
 *
 *   request ─► well-formed check ─► log ─► /health, /metrics (always open)
 *                                    └─► token check (when configured)
 *                                          ├─► /keys, /keys/:key ─► ReplicaNode
 *                                          ├─► /cluster, /conflicts
 *                                          └─► /admin/queues (bull-board)
 *                                    └─► 404 / error shape
 *
 * | Method | Path                          | Success                                            |
 * |--------|-------------------------------|----------------------------------------------------|
 * | PUT    | /keys/:key                    | 200 `{key, value, hlc, origin, version, expiresAt?}` |
 * | GET    | /keys/:key                    | 200 same shape; 404 when absent/deleted/expired    |
 * | DELETE | /keys/:key                    | 200 `{key, deleted: true, hlc, origin, version}`   |
 * | POST   | /batch                        | 200 `{results: [{status, body}]}`, one per op (any key) |
 * | GET    | /keys?prefix=&limit=&cursor=  | 200 `{items, cursor}` (cursor null on the last page) |
 * | GET    | /health                       | 200 `{status: "ok", node}`; 503 when Redis is down or the node is closing |
 * | GET    | /cluster                      | 200 `{node, outbox, peers: [{id, backlog, …}]}`    |
 * | GET    | /conflicts?limit=             | 200 `{node, items}` newest first                   |
 * | GET    | /metrics                      | 200 Prometheus text                                |
 * | *      | /admin/queues                 | the Bull dashboard                                 |
 * | GET    | / , /ui/                      | the cluster view page (see ui/ui-routes.ts)        |
 * | GET    | /openapi.json, /docs/         | the OpenAPI 3.1 document, and Swagger UI over it   |
 *
 * Every error is `{"error": {"code", "message", "field"?}}`; see {@link ErrorCode}.
 */
import express from 'express';
import type { ReplicaNode } from '../node/replica-node.js';
import { requireToken, TokenVerifier } from './auth.js';
import { batchRouter } from './batch-routes.js';
import { DASHBOARD_PATH, dashboardRouter } from './dashboard.js';
import { docsRouter, DOCS_PATH, OPENAPI_PATH } from './docs-routes.js';
import { requireKnownHost } from './host-check.js';
import { errorHandler } from './errors.js';
import { keysRouter } from './keys-routes.js';
import { openRouter, statusRouter } from './node-routes.js';
import { resolveHttpOptions, type HttpOptions } from './options.js';
import { wellFormedRequest, noStore, unknownRoute } from './routing.js';
import { UI_PATH, uiRouter } from './ui/ui-routes.js';
import { RequestValidator } from './validation.js';

export type { HttpOptions } from './options.js';
export { DEFAULT_HTTP_OPTIONS } from './options.js';
export type { ErrorBody, ErrorCode } from './errors.js';

/**
 * Builds the Express app serving `node`. It does not listen and does not own the node:
 * closing the node is the caller's business (see `startNodeServer`, which does both).
 * Options are validated synchronously (`InvalidOptionsError` names the field).
 */
export function createApp(node: ReplicaNode, options: HttpOptions = {}): express.Express {
  const o = resolveHttpOptions(options, node.options.limits);
  const validator = new RequestValidator(node.options.limits);
  const app = express();
  app.set('x-powered-by', false);
  app.set('etag', false);
  app.set('case sensitive routing', true);

  app.use(wellFormedRequest, noStore);
  // With a token, a rebinding page cannot authenticate; without one, the Host name is the check.
  if (o.authToken === undefined) app.use(requireKnownHost(o.allowedHosts));
  if (o.logger) {
    const logger = o.logger;
    app.use((req, res, next) => {
      const started = process.hrtime.bigint();
      // Read now: a mounted router (the dashboard) rewrites req.url while it handles the request.
      const { method, path } = req;
      res.once('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        // Method, path and status only: headers (Authorization) and bodies are never logged.
        logger.debug({ method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
      });
      next();
    });
  }

  app.use(openRouter(node));
  if (o.authToken !== undefined) {
    const verifier = new TokenVerifier(o.authToken);
    const api = requireToken(verifier, 'bearer');
    const dashboard = requireToken(verifier, 'bearer-or-basic');
    app.use((req, res, next) => (isBrowserPath(req.path) ? dashboard : api)(req, res, next));
  }
  if (o.dashboard) app.use(DASHBOARD_PATH, dashboardRouter(node, o.authToken === undefined));
  if (o.ui) app.use(uiRouter(node, validator, { nodeUrls: o.nodeUrls, dashboard: o.dashboard, authToken: o.authToken, maxBodyBytes: o.maxBodyBytes }));
  app.use(docsRouter(node, validator, o));
  app.use(keysRouter(node, validator, o.maxBodyBytes), batchRouter(node, validator, o.maxBodyBytes), statusRouter(node, validator));
  app.use(unknownRoute);
  app.use(errorHandler(o.logger));
  return app;
}

/** Paths a browser opens (dashboard, cluster view, API docs): they also take basic auth, so a login dialog works. */
function isBrowserPath(path: string): boolean {
  return path === '/' || [DASHBOARD_PATH, UI_PATH, DOCS_PATH].some((p) => path === p || path.startsWith(`${p}/`)) || path === OPENAPI_PATH;
}
