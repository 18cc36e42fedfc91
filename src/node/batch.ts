/**
 * A batch of independent operations on one node (`ReplicaNode.batch`, `POST /batch`).
 *
 * The whole batch is validated before anything runs: one bad op and nothing is applied
 * ({@link BatchInputError} names it). After that the ops are independent, not a
 * transaction: each gets its own outcome, and one failing does not undo the others.
 *
 * Ops run in order, so an op sees the effects of the ops before it. Consecutive writes
 * (puts and deletes) are handed to the store together, so they share its group commit:
 * 100 puts are one WATCH/MULTI/EXEC (up to `maxWriteBatch` writes per transaction) and
 * one outbox entry, instead of 100.
 */
import { InvalidInputError } from '../errors/index.js';
import { toView, type CacheRecord, type JsonValue, type RecordView } from '../record/record.js';
import type { WriteOp } from '../record/write.js';
import { checkKey, checkTtl, checkValue } from './input.js';
import type { LimitOptions } from './options.js';
import type { DeleteResult } from './types.js';

/** One operation of a batch. Keys are any key the node accepts, `.` and `..` included. */
export type BatchOp =
  | { op: 'put'; key: string; value: JsonValue; ttlMs?: number }
  | { op: 'get'; key: string }
  | { op: 'delete'; key: string };

/** What one op did: its result, or the error it failed with (the other ops still ran). */
export type BatchOutcome =
  | { op: 'put'; record: RecordView }
  | { op: 'get'; key: string; record: RecordView | undefined }
  | { op: 'delete'; result: DeleteResult }
  | { op: BatchOp['op']; error: unknown };

/**
 * An op of a batch is invalid; nothing of the batch was applied. `field` is the op's own
 * field (`key`, `value`, `ttlMs`, `op`), `index` its position, and the message says both.
 */
export class BatchInputError extends InvalidInputError {
  readonly index: number;
  /** The offending field of the op, as `InvalidInputError.field` would name it for a single call. */
  readonly opField: string;
  constructor(index: number, opField: string, message: string, options?: { cause?: unknown }) {
    super(index < 0 ? opField : `ops.${index}.${opField}`, index < 0 ? message : `ops[${index}]: ${message}`);
    this.index = index;
    this.opField = opField;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** What `delete` answers: the tombstone's identity (the one already there, when the key was deleted before). */
export function toDeleteResult(record: CacheRecord): DeleteResult {
  return { key: record.key, deleted: true, hlc: record.hlc, origin: record.origin, version: record.version };
}

/** An op after validation: a write for the store, or a read. */
type PreparedOp = { kind: 'write'; write: WriteOp } | { kind: 'get'; key: string };

/** What {@link runBatch} needs from the node. */
export interface BatchTarget {
  readonly limits: LimitOptions;
  /** Like `ReplicaNode.get`. */
  get(key: string): Promise<RecordView | undefined>;
  /** Hands all of `ops` to the store at once (one group commit); one promise per op. */
  writeMany(ops: readonly WriteOp[]): Array<Promise<CacheRecord>>;
}

/**
 * Validates every op (throwing {@link BatchInputError} for the first bad one, before
 * anything runs), then runs them in order, consecutive writes together.
 */
export async function runBatch(ops: readonly BatchOp[], target: BatchTarget): Promise<BatchOutcome[]> {
  const prepared = prepare(ops, target.limits);
  const outcomes: BatchOutcome[] = new Array(prepared.length);
  let i = 0;
  while (i < prepared.length) {
    const start = i;
    const first = prepared[i] as PreparedOp;
    while (i < prepared.length && (prepared[i] as PreparedOp).kind === first.kind) i++;
    const run = prepared.slice(start, i);
    if (first.kind === 'write') {
      const writes = run.map((p) => (p as Extract<PreparedOp, { kind: 'write' }>).write);
      let pending: Array<Promise<CacheRecord>>;
      try {
        pending = target.writeMany(writes);
      } catch (error) {
        // E.g. the node closed between two runs of the batch: these ops did not happen.
        pending = writes.map(() => Promise.reject(error));
      }
      const settled = await Promise.allSettled(pending);
      settled.forEach((s, j) => {
        const kind = (writes[j] as WriteOp).kind;
        outcomes[start + j] =
          s.status === 'rejected'
            ? { op: kind, error: s.reason }
            : kind === 'put'
              ? { op: 'put', record: toView(s.value) }
              : { op: 'delete', result: toDeleteResult(s.value) };
      });
    } else {
      const settled = await Promise.allSettled(run.map((p) => target.get((p as Extract<PreparedOp, { kind: 'get' }>).key)));
      settled.forEach((s, j) => {
        const key = (run[j] as Extract<PreparedOp, { kind: 'get' }>).key;
        outcomes[start + j] = s.status === 'rejected' ? { op: 'get', error: s.reason } : { op: 'get', key, record: s.value };
      });
    }
  }
  return outcomes;
}

function prepare(ops: readonly BatchOp[], limits: LimitOptions): PreparedOp[] {
  if (!Array.isArray(ops)) throw new BatchInputError(-1, 'ops', 'ops must be an array of operations');
  if (ops.length > limits.maxBatchOps) {
    throw new BatchInputError(-1, 'ops', `a batch has at most ${limits.maxBatchOps} ops (limits.maxBatchOps); this one has ${ops.length}. Split it.`);
  }
  return ops.map((op, index): PreparedOp => {
    const at = <T>(check: () => T): T => {
      try {
        return check();
      } catch (error) {
        if (error instanceof InvalidInputError) throw new BatchInputError(index, error.field, error.message, { cause: error });
        throw error;
      }
    };
    if (typeof op !== 'object' || op === null) throw new BatchInputError(index, 'op', 'each op must be an object like {"op": "get", "key": "k"}');
    at(() => checkKey(op.key, limits));
    switch (op.op) {
      case 'get':
        return { kind: 'get', key: op.key };
      case 'delete':
        return { kind: 'write', write: { kind: 'delete', key: op.key } };
      case 'put': {
        const valueJson = at(() => checkValue(op.value, limits));
        const ttlMs = at(() => checkTtl(op.ttlMs, limits));
        return { kind: 'write', write: ttlMs === undefined ? { kind: 'put', key: op.key, valueJson } : { kind: 'put', key: op.key, valueJson, ttlMs } };
      }
      default:
        throw new BatchInputError(index, 'op', `op must be "put", "get" or "delete", got ${JSON.stringify((op as { op?: unknown }).op)}`);
    }
  });
}
