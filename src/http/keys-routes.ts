/**
 * `/keys`: the replicated key-value API of one node.
 *
 * A key travels as a single, percent-encoded path segment (`/keys/a%2Fb` is the key
 * `a/b`) and is decoded exactly once, by the router: `%252F` is the key `%2F`. Keys never
 * name Redis keys directly; the node prefixes them with its own namespace.
 */
import { Router, type Request, type RequestHandler } from 'express';
import type { ReplicaNode } from '../node/replica-node.js';
import { HttpError } from './errors.js';
import { notFound } from './batch-routes.js';
import { jsonBody } from './json-body.js';
import { onlyMethods } from './routing.js';
import type { RequestValidator } from './validation.js';

/** `GET /keys`, and `GET`/`PUT`/`DELETE /keys/:key`, on `node`. */
export function keysRouter(node: ReplicaNode, validator: RequestValidator, maxBodyBytes: number): Router {
  const router = Router({ caseSensitive: true, strict: false });
  const keyOf = (req: Request<{ key: string }>) => validator.key(req.params.key);

  // The key is checked before the body is read: a bad key costs no upload.
  const checkKey: RequestHandler<{ key: string }> = (req, _res, next) => {
    keyOf(req);
    next();
  };

  const [requireJson, announcedLength, parseJson] = jsonBody(maxBodyBytes);

  router
    .route('/keys')
    .get(async (req, res) => {
      const query = validator.listQueryOf(req.query);
      res.json(await node.list(query));
    })
    .all((req, _res, next) => {
      // `/keys/` with an empty key lands here (trailing slashes are ignored).
      if ((req.method === 'PUT' || req.method === 'DELETE') && req.path.endsWith('/')) {
        throw new HttpError(400, 'invalid_key', 'The key is empty; put it after /keys/, percent-encoded.', { field: 'key' });
      }
      next();
    }, onlyMethods('GET', 'HEAD'));

  router
    .route('/keys/:key')
    .get(async (req, res) => {
      const key = keyOf(req);
      const record = await node.get(key);
      if (!record) {
        res.status(404).json(notFound(key));
        return;
      }
      res.json(record);
    })
    .put(checkKey, requireJson, announcedLength, parseJson, async (req, res) => {
      const key = keyOf(req);
      const body = validator.body(req.body);
      res.json(await node.put(key, body.value, body.ttlMs === undefined ? {} : { ttlMs: body.ttlMs }));
    })
    .delete(async (req, res) => {
      res.json(await node.delete(keyOf(req)));
    })
    .all(onlyMethods('GET', 'HEAD', 'PUT', 'DELETE'));

  return router;
}
