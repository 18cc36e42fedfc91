/**
 * The zod schemas of the HTTP API: the requests (built per app, because their bounds are
 * the node's limits) and the responses. `RequestValidator` validates requests with the
 * request schemas and `openApiDocument` renders both into `GET /openapi.json`, so the
 * document and the validation cannot drift apart.
 */
import { z } from 'zod';
import type { LimitOptions } from '../node/options.js';
import type { JsonValue } from '../record/record.js';
import type { ErrorCode } from './errors.js';

/** The largest `limit` a list or conflicts page may ask for. */
export const MAX_PAGE_SIZE = 1000;

/** Every `error.code` the API answers with, in the order the document lists them. */
export const ERROR_CODES = [
  'bad_request',
  'invalid_json',
  'invalid_body',
  'invalid_query',
  'invalid_key',
  'unauthorized',
  'not_found',
  'method_not_allowed',
  'payload_too_large',
  'key_too_long',
  'unsupported_media_type',
  'headers_too_large',
  'redis_unavailable',
  'node_closed',
  'transaction_conflict',
  'replicas_unconfirmed',
  'corrupt_record',
  'internal',
] as const satisfies readonly ErrorCode[];

/** A query parameter given twice arrives as an array; say so rather than "expected string". */
const single = (what: string) =>
  z.string({ error: (issue) => (Array.isArray(issue.input) ? 'must be given at most once' : `must be ${what}`) });

const pageLimit = (defaultValue: number) =>
  single('a whole number')
    .regex(/^[0-9]{1,10}$/, `must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be from 1 to ${MAX_PAGE_SIZE}`).max(MAX_PAGE_SIZE, `must be from 1 to ${MAX_PAGE_SIZE}`))
    .default(defaultValue)
    .meta({ description: `Page size, 1 to ${MAX_PAGE_SIZE}.` });

/** Any JSON value, null included; only a missing one is wrong. Nesting and size are the node's checks. */
const jsonValue = () =>
  z
    .custom<JsonValue>((v) => v !== undefined, { error: 'is required: the JSON value to store (null is allowed)' })
    .meta({ description: 'Any JSON value (null included).', override: { description: 'Any JSON value (null included).' } });

const ttlMs = (limits: LimitOptions) =>
  z
    .number({ error: 'must be a number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .positive('must be a positive number of milliseconds')
    .max(limits.maxTtlMs, `must be at most ${limits.maxTtlMs} ms (limits.maxTtlMs)`)
    .meta({ description: 'Time to live in ms; the record expires at its origin time + ttlMs on every node.' });

/** A key in a JSON body: any non-empty string without control characters, within `maxKeyBytes` (the node checks). */
const bodyKey = (limits: LimitOptions) =>
  z.string({ error: 'must be a string' }).meta({ description: `Any key: non-empty, no control characters, at most ${limits.maxKeyBytes} UTF-8 bytes. "." and ".." included.` });

/** The request schemas of one node, bounded by its limits. */
export function requestSchemas(limits: LimitOptions) {
  const putBody = z.strictObject(
    { value: jsonValue(), ttlMs: ttlMs(limits).optional() },
    { error: (issue) => (issue.code === 'invalid_type' ? 'the body must be a JSON object like {"value": …, "ttlMs"?: …}' : undefined) },
  );
  const listQuery = z.strictObject({
    prefix: single('a string')
      .refine((p) => Buffer.byteLength(p, 'utf8') <= limits.maxKeyBytes, `must be at most ${limits.maxKeyBytes} bytes (limits.maxKeyBytes)`)
      .optional()
      .meta({ description: 'Only keys starting with this.' }),
    limit: pageLimit(100),
    // The cursor's format belongs to the node, which rejects what it did not make.
    cursor: single('the cursor returned by the previous page').optional().meta({ description: 'The `cursor` of the previous page; omit for the first.' }),
  });
  const conflictsQuery = z.strictObject({ limit: pageLimit(50) });
  const keyParam = z.object({
    key: z.string().meta({ description: 'The key, percent-encoded as one path segment (encodeURIComponent). "." and ".." cannot travel in a path: use POST /batch.' }),
  });
  const batchOp = z.discriminatedUnion(
    'op',
    [
      z.strictObject({ op: z.literal('put'), key: bodyKey(limits), value: jsonValue(), ttlMs: ttlMs(limits).optional() }).meta({ id: 'BatchPut' }),
      z.strictObject({ op: z.literal('get'), key: bodyKey(limits) }).meta({ id: 'BatchGet' }),
      z.strictObject({ op: z.literal('delete'), key: bodyKey(limits) }).meta({ id: 'BatchDelete' }),
    ],
    { error: (issue) => (issue.code === 'invalid_union' ? 'must be {"op": "put" | "get" | "delete", "key": …}' : 'must be an object like {"op": "get", "key": "k"}') },
  );
  const batchBody = z.strictObject(
    {
      ops: z
        .array(batchOp, { error: 'must be an array of ops' })
        .max(limits.maxBatchOps, `must have at most ${limits.maxBatchOps} ops (limits.maxBatchOps); split the batch`)
        .meta({ description: `The ops, run in order; at most ${limits.maxBatchOps} (limits.maxBatchOps).` }),
    },
    { error: (issue) => (issue.code === 'invalid_type' ? 'the body must be a JSON object like {"ops": [{"op": "get", "key": "k"}]}' : undefined) },
  );
  const uiWriteBody = z.strictObject({
    node: z.string({ error: 'must be a node id' }).meta({ description: 'The node to write on; a write for another node is forwarded to its POST /batch.' }),
    key: bodyKey(limits),
    value: jsonValue(),
  });
  const prefixQuery = z.strictObject({ prefix: listQuery.shape.prefix });
  return { putBody, listQuery, conflictsQuery, keyParam, batchBody, uiWriteBody, prefixQuery };
}

export type RequestSchemas = ReturnType<typeof requestSchemas>;

// ---- Responses ----------------------------------------------------------------------

const hlc = z.string().meta({ description: 'Hybrid logical clock timestamp of the write; LWW orders writes by it.' });
const nodeId = z.string().meta({ description: 'A node id.' });
const version = z.record(z.string(), z.number().int()).meta({ description: 'Version vector: writes seen per node.' });

export const recordView = z
  .object({
    key: z.string(),
    value: z.unknown().meta({ description: 'The stored JSON value.' }),
    hlc,
    origin: nodeId.meta({ description: 'The node the write was made on.' }),
    version,
    expiresAt: z.number().int().optional().meta({ description: 'Expiry, ms since the epoch on the origin clock.' }),
  })
  .meta({ id: 'Record' });

export const deleteResult = z.object({ key: z.string(), deleted: z.literal(true), hlc, origin: nodeId, version }).meta({ id: 'DeleteResult' });

export const listPage = z
  .object({ items: z.array(recordView), cursor: z.string().nullable().meta({ description: 'Pass back for the next page; null on the last.' }) })
  .meta({ id: 'ListPage' });

export const errorBody = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string().meta({ description: 'What went wrong and what to do.' }),
      field: z.string().optional().meta({ description: 'The offending field or parameter (`ttlMs`, `ops.3.key`, …).' }),
    }),
  })
  .meta({ id: 'Error' });

export const healthBody = z
  .object({
    status: z.enum(['ok', 'closing', 'unavailable']),
    node: nodeId,
    error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }).optional(),
  })
  .meta({ id: 'Health' });

const backlog = z.object({ waiting: z.number().int(), delayed: z.number().int(), active: z.number().int(), failed: z.number().int() });

// Loose: a node may report more per peer (e.g. anti-entropy) than this version knows.
export const clusterStatus = z
  .looseObject({
    node: nodeId,
    redis: z.enum(['ok', 'unreachable']),
    outbox: z.number().int().nullable(),
    peers: z.array(
      z.looseObject({
        id: nodeId,
        backlog: backlog.nullable(),
        oldestPendingMs: z.number(),
        retries: z.number().int(),
        lastError: z.string().optional(),
        lastErrorAt: z.number().optional(),
      }),
    ),
  })
  .meta({ id: 'ClusterStatus' });

const side = z.object({ hlc, origin: nodeId });
export const conflictsBody = z
  .object({
    node: nodeId,
    items: z.array(z.object({ key: z.string(), winner: side, loser: side, node: nodeId, at: z.number() }).meta({ id: 'Conflict' })),
  })
  .meta({ id: 'Conflicts' });

const viewCell = z
  .object({ value: z.unknown(), hlc, origin: nodeId, deleted: z.boolean(), expiresAt: z.number().optional(), stale: z.boolean() })
  .nullable()
  .meta({ id: 'ViewCell', description: "A node's copy of a key; null when it has none yet." });

/** `GET /ui/state`: what the cluster view page shows (`event: state` of `/ui/events` carries the same). */
export const uiState = z
  .looseObject({
    node: nodeId,
    at: z.number(),
    converged: z.boolean(),
    nodes: z.array(
      z.looseObject({
        id: nodeId,
        self: z.boolean(),
        health: z.enum(['ok', 'down', 'unreachable']),
        vitals: z
          .looseObject({
            node: nodeId,
            at: z.number(),
            status: clusterStatus.nullable(),
            lag: z.object({ p50Ms: z.number().nullable(), p99Ms: z.number().nullable(), samples: z.number() }),
            conflicts: z.number(),
            recentKeys: z.array(z.string()),
          })
          .nullable(),
      }),
    ),
    rows: z.array(
      z.looseObject({
        key: z.string(),
        newest: hlc,
        cells: z.record(z.string(), viewCell),
        conflict: z.object({ key: z.string(), winner: side, loser: side, node: nodeId, at: z.number() }).optional(),
      }),
    ),
    links: z.record(z.string(), z.object({ url: z.string().optional(), dashboard: z.string().optional() })),
  })
  .meta({ id: 'ClusterViewState' });

export const batchResults = z
  .object({
    results: z.array(
      z
        .object({
          status: z.number().int().meta({ description: 'The status the single-key endpoint would have answered.' }),
          body: z.union([recordView, deleteResult, errorBody]).meta({ description: "Exactly the single-key endpoint's body." }),
        })
        .meta({ id: 'BatchResult' }),
    ),
  })
  .meta({ id: 'BatchResults' });
