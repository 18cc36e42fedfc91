/**
 * `POST /batch`: several independent key operations in one request, with the keys in the
 * JSON body, so that every key is reachable, including `.`, `..` and `a/../b`, which a
 * URL path cannot carry (WHATWG URL parsing removes dot segments, `%2e%2e` included).
 *
 *   {"ops": [{"op": "put", "key": "..", "value": 1, "ttlMs"?: n}, {"op": "get", "key": "."}, {"op": "delete", "key": "k"}]}
 *   200 {"results": [{"status": 200, "body": …}, {"status": 404, "body": {"error": …}}, …]}
 *
 * The whole request is validated first (JSON, op names, keys, values, TTLs, op count): an
 * invalid batch gets one 400 and applies nothing. After that the ops are independent, not
 * a transaction; each result carries the status and body the single-key endpoint would
 * have answered. The puts share the node's group commit (see `ReplicaNode.batch`).
 */
import { Router } from 'express';
import { BatchInputError, type BatchOutcome } from '../node/batch.js';
import type { ReplicaNode } from '../node/replica-node.js';
import { HttpError, toHttpError, type ErrorBody } from './errors.js';
import { jsonBody } from './json-body.js';
import { onlyMethods } from './routing.js';
import type { RequestValidator } from './validation.js';

/** One entry of `results`. */
export interface BatchResultBody {
  status: number;
  body: unknown;
}

/** `POST /batch` on `node`. */
export function batchRouter(node: ReplicaNode, validator: RequestValidator, maxBodyBytes: number): Router {
  const router = Router({ caseSensitive: true });
  router
    .route('/batch')
    .post(...jsonBody(maxBodyBytes), async (req, res) => {
      const { ops } = validator.batch(req.body);
      let outcomes: BatchOutcome[];
      try {
        outcomes = await node.batch(ops);
      } catch (error) {
        throw error instanceof BatchInputError ? invalidOp(error) : error;
      }
      res.json({ results: outcomes.map(toResult) });
    })
    .all(onlyMethods('POST'));
  return router;
}

/** A bad op fails the whole batch with 400, whatever the single-key endpoint would say (413, 414). */
export function invalidOp(error: BatchInputError): HttpError {
  const code = error.opField === 'key' ? 'invalid_key' : 'invalid_body';
  return new HttpError(400, code, `${error.message}; nothing in the batch was applied.`, { field: error.field, cause: error });
}

function toResult(outcome: BatchOutcome): BatchResultBody {
  if ('error' in outcome) {
    const e = toHttpError(outcome.error);
    return { status: e.status, body: e.toBody() };
  }
  switch (outcome.op) {
    case 'put':
      return { status: 200, body: outcome.record };
    case 'delete':
      return { status: 200, body: outcome.result };
    case 'get':
      return outcome.record ? { status: 200, body: outcome.record } : { status: 404, body: notFound(outcome.key) };
  }
}

/** The body `GET /keys/:key` answers for an absent key. */
export function notFound(key: string): ErrorBody {
  return new HttpError(
    404,
    'not_found',
    `Key ${JSON.stringify(key)} is not on this node: absent, deleted or expired (a write on another node may not have arrived yet).`,
  ).toBody();
}
