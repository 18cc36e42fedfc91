/**
 * `/keys`: the replicated key-value API of one node.
 *
 * A key travels as a single, percent-encoded path segment (`/keys/a%2Fb` is the key
 * `a/b`) and is decoded exactly once, by the router: `%252F` is the key `%2F`. Keys never
 * name Redis keys directly; the node prefixes them with its own namespace.
 */
import { isUtf8 } from 'node:buffer';
import express, { Router, type Request, type RequestHandler } from 'express';
import type { ReplicaNode } from '../node/replica-node.js';
import { HttpError } from './errors.js';
import { onlyMethods } from './routing.js';
import type { RequestValidator } from './validation.js';

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/** `GET /keys`, and `GET`/`PUT`/`DELETE /keys/:key`, on `node`. */
export function keysRouter(node: ReplicaNode, validator: RequestValidator, maxBodyBytes: number): Router {
  const router = Router({ caseSensitive: true, strict: false });
  const keyOf = (req: Request<{ key: string }>) => validator.key(req.params.key);

  // The key is checked before the body is read: a bad key costs no upload.
  const checkKey: RequestHandler<{ key: string }> = (req, _res, next) => {
    keyOf(req);
    next();
  };

  const requireJson: RequestHandler = (req, _res, next) => {
    // `req.is` is null when there is no body at all; the schema then says what is missing.
    if (req.is(['application/json', '+json']) === false) {
      const type = req.headers['content-type'];
      throw new HttpError(
        415,
        'unsupported_media_type',
        `${type === undefined ? 'No Content-Type' : `Content-Type ${JSON.stringify(type)}`} is not JSON; send "Content-Type: application/json".`,
      );
    }
    // JSON exchanged between systems is UTF-8 (RFC 8259 §8.1); other charsets are refused
    // rather than transcoded.
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new HttpError(415, 'unsupported_media_type', `charset ${JSON.stringify(charset)} is not supported; JSON bodies must be UTF-8.`);
    }
    next();
  };

  // An announced length over the limit is refused before a byte of the body is read, and
  // the connection is closed: the body parser would otherwise read (and discard) all of it.
  const announcedLength: RequestHandler = (req, res, next) => {
    const length = Number(req.headers['content-length']);
    const encoded = (req.headers['content-encoding'] ?? 'identity').toLowerCase() !== 'identity';
    if (!encoded && length > maxBodyBytes) {
      res.set('Connection', 'close');
      throw new HttpError(413, 'payload_too_large', `The body is ${length} bytes; the limit is ${maxBodyBytes} bytes (maxBodyBytes).`);
    }
    next();
  };

  const parseJson = express.json({
    limit: maxBodyBytes,
    strict: false,
    type: () => true,
    // Invalid UTF-8 would otherwise be decoded into U+FFFD and stored as if it had been sent.
    verify: (_req, _res, buf) => {
      if (!isUtf8(buf)) throw new HttpError(400, 'invalid_json', 'The body is not valid UTF-8; JSON bodies must be UTF-8.');
    },
  });

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
        throw new HttpError(
          404,
          'not_found',
          `Key ${JSON.stringify(key)} is not on this node: absent, deleted or expired (a write on another node may not have arrived yet).`,
        );
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
