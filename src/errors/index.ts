/**
 * The typed errors of eventual-cache. Callers branch with `instanceof`, never on
 * messages; every message says what to do next.
 */

/** Base class: every error this library throws on purpose is an `EventualCacheError`. */
export class EventualCacheError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Options or configuration that cannot work; thrown synchronously by constructors. */
export class InvalidOptionsError extends EventualCacheError {
  /** Dotted path of the offending field, e.g. `replication.delayMs.min`. */
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(`Invalid option "${field}": ${message}`, options);
    this.field = field;
  }
}

/** Input to `put`/`get`/`delete` that is not acceptable (key too long, value not JSON, bad TTL). */
export class InvalidInputError extends EventualCacheError {
  /** Which argument was wrong: `key`, `value` or `ttlMs`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

/** A key or value over its configured size limit (`limits.maxKeyBytes` / `limits.maxValueBytes`). */
export class InputTooLargeError extends InvalidInputError {
  /** The limit in bytes. */
  readonly limit: number;
  /** The size that was sent, in bytes. */
  readonly actual: number;
  constructor(field: string, message: string, limit: number, actual: number) {
    super(field, message);
    this.limit = limit;
    this.actual = actual;
  }
}

/**
 * The node's Redis (or a peer's) did not answer. The operation did not happen; retrying
 * later is safe. `url` is the Redis URL with any password removed.
 */
export class RedisUnavailableError extends EventualCacheError {
  readonly url: string;
  constructor(url: string, detail: string, options?: { cause?: unknown }) {
    super(
      `Redis at ${url} is unreachable (${detail}); the operation was not applied. ` +
        'Check that redis-server is running there (e.g. `redis-server --port 6379`) or set REDIS_URL.',
      options,
    );
    this.url = url;
  }
}

/**
 * A write committed on its Redis master, but fewer replicas than `waitReplicas` confirmed
 * it within `waitTimeoutMs`. The write was applied and will replicate to the peers, but it
 * may still be lost if that master fails before its replicas catch up. Retrying the same
 * write is safe (it stores the same value again).
 */
export class ReplicaWaitError extends EventualCacheError {
  readonly acknowledged: number;
  readonly wanted: number;
  constructor(acknowledged: number, wanted: number, timeoutMs: number) {
    super(
      `The write was applied, but only ${acknowledged} of ${wanted} Redis replicas confirmed it within ${timeoutMs} ms (WAIT); ` +
        'it may be lost if this master fails now. Retry it, or check the Redis replicas.',
    );
    this.acknowledged = acknowledged;
    this.wanted = wanted;
  }
}

/**
 * An optimistic transaction kept losing its WATCH race. Nothing was written; the caller
 * may retry. Raising `maxTransactionRetries` helps only under extreme contention.
 */
export class TransactionConflictError extends EventualCacheError {
  readonly attempts: number;
  constructor(attempts: number) {
    super(
      `Optimistic transaction aborted ${attempts} times in a row (WATCHed keys kept changing); nothing was written. ` +
        'Retry the operation, or raise maxTransactionRetries for very hot keys.',
    );
    this.attempts = attempts;
  }
}

/** A record read from Redis could not be decoded: the key holds something this library did not write. */
export class CorruptRecordError extends EventualCacheError {
  readonly redisKey: string;
  constructor(redisKey: string, options?: { cause?: unknown }) {
    super(
      `Redis key ${JSON.stringify(redisKey)} does not hold an eventual-cache record; ` +
        'another program wrote into this node\'s key namespace. Delete the key or choose another prefix.',
      options,
    );
    this.redisKey = redisKey;
  }
}

/** Why a stored record cannot be used: its bytes do not decode, or its HLC is past the record horizon (`MAX_RECORD_WALL_MS`, year 9998). */
export type BadRecordReason = 'undecodable' | 'hlc-out-of-range';

/**
 * A record that cannot be used was found and set aside, so only its own key is affected.
 * `where` is `local` when it sat in this node's store (it was moved to the quarantine list
 * and the key is writable again) or `peer` when a peer's replication job carried it (the
 * job's other keys were applied; this one is in the poison list).
 */
export class BadRecordError extends EventualCacheError {
  readonly key: string;
  readonly redisKey: string;
  readonly reason: BadRecordReason;
  readonly where: 'local' | 'peer';
  constructor(key: string, redisKey: string, reason: BadRecordReason, where: 'local' | 'peer', detail: string, listKey: string) {
    super(
      `Unusable record for key ${JSON.stringify(key)} (Redis key ${JSON.stringify(redisKey)}, ${reason}: ${detail}); ` +
        (where === 'local'
          ? `it was moved aside to ${listKey} for inspection and the key is writable again.`
          : `it was skipped, the job's other keys were applied, and it is listed in ${listKey}; fix or rewrite the key on its origin.`),
    );
    this.key = key;
    this.redisKey = redisKey;
    this.reason = reason;
    this.where = where;
  }
}

/** The node was closed; it accepts no more operations. */
export class NodeClosedError extends EventualCacheError {
  constructor(nodeId: string) {
    super(`Replica node ${nodeId} is closed; start a new node to keep writing.`);
  }
}

/** Anti-entropy was asked to run on a node that keeps no digest (`digestLeaves: 0`). */
export class AntiEntropyUnavailableError extends EventualCacheError {
  constructor(nodeId: string) {
    super(`Node ${nodeId} keeps no digest (antiEntropy.leaves / digestLeaves is 0), so it cannot run anti-entropy; set a power of 16 such as 65536 and restart it.`);
  }
}

/**
 * Another process runs a node with this id on this node's Redis (it holds the node-id
 * lease). Two writers with one id would share one clock and one outbox, and every peer
 * would take their writes for one node's.
 */
export class NodeIdInUseError extends EventualCacheError {
  readonly nodeId: string;
  /** The holder as it registered itself. */
  readonly holder: { host: string; pid: number; since: number };
  constructor(nodeId: string, holder: { host: string; pid: number; since: number }) {
    super(
      `Node id ${JSON.stringify(nodeId)} is already in use on this Redis by process ${holder.pid} on host ${JSON.stringify(holder.host)}, ` +
        `running since ${new Date(holder.since).toISOString()}. Stop that process first, or give this node another id; ` +
        'if that process belongs to another cluster sharing this Redis, give one of the clusters another prefix.',
    );
    this.nodeId = nodeId;
    this.holder = holder;
  }
}
