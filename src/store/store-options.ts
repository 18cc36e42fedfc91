/**
 * Options of a node's record store (`RecordStore`), with their defaults and validation.
 */
import { digestShape } from '../digest/digest.js';
import { InvalidOptionsError } from '../errors/index.js';

export interface StoreOptions {
  /**
   * Least time tombstones, and records past their expiry, are kept. They are removed only
   * after this *and* once every peer acknowledged them, so a peer that is away longer does
   * not resurrect them; collected ones are remembered (for peers) this long again.
   * Unit: milliseconds.
   * @defaultValue 86400000 (24 h)
   */
  tombstoneRetentionMs: number;
  /**
   * Leaves of the anti-entropy digest kept in the same MULTI as every write: a power of 16
   * (16 … 16^5); all nodes of a cluster must agree. `0` switches digest upkeep off (and
   * with it anti-entropy rounds from and to this node).
   * @defaultValue 65536
   */
  digestLeaves: number;
  /**
   * Fold the digest log in a worker thread of the node (`fold-thread.ts`), so digest
   * upkeep never holds up the node's event loop. `false` folds on the event loop (and a
   * `RedisTarget` that cannot be handed to a thread, ioredis options holding functions,
   * always does).
   * @defaultValue true
   */
  digestFoldThread: boolean;
  /**
   * Retries of an optimistic transaction whose EXEC was aborted before giving up.
   * @defaultValue 64
   */
  maxTransactionRetries: number;
  /**
   * Dedicated connections for transactions (a WATCH belongs to its connection). Few is
   * faster: writes that wait for a connection are group-committed into the next
   * transaction (measured: 2 beats 4 and 8 on replicated throughput). On a cluster store
   * this many per master, and one group commit at a time per partition.
   * @defaultValue 2
   */
  transactionPoolSize: number;
  /**
   * Largest number of local writes committed in one transaction (group commit).
   * @defaultValue 256
   */
  maxWriteBatch: number;
  /**
   * Local writes a group commit needs to start while another one commits (`write-queue.ts`).
   * With nothing committing, a write starts at once. Under load the writes that arrive
   * meanwhile then share fewer, fuller transactions, which leaves the CPU to the writes
   * (measured with 21 writers per node: 0.09 instead of 0.14 transactions per replicated
   * write, 0.83–0.99× the time per write). `1` starts a batch whenever a connection is
   * free: more transactions at once, which a node with few writers waiting on a distant
   * Redis gains from (measured with 2 ms added per round trip: 4–8 writers made 15–20%
   * more writes/s with `1`, while 32 writers made 1.6× more with 16). Capped at
   * `maxWriteBatch`.
   * @defaultValue 16
   */
  minConcurrentBatch: number;
  /**
   * Entries kept in the conflict log.
   * @defaultValue 1000
   */
  conflictLogSize: number;
  /**
   * How long to wait for Redis when connecting. Unit: milliseconds.
   * @defaultValue 5000
   */
  connectTimeoutMs: number;
  /**
   * Redis replicas that must confirm a local write (Redis `WAIT`) before it is
   * acknowledged. A Redis master replicates asynchronously, so without this an
   * acknowledged write dies with a master that fails before its replica (or a peer) got
   * it. `0` acknowledges after EXEC (the default: fastest; anti-entropy repairs what the
   * peers still hold). With `1` a write that no replica confirmed in `waitTimeoutMs` is
   * answered with `ReplicaWaitError` (HTTP 503 `replicas_unconfirmed`): it was applied, but
   * is not yet safe.
   * @defaultValue 0
   */
  waitReplicas: number;
  /**
   * How long a write waits for `waitReplicas` confirmations. Unit: milliseconds.
   * @defaultValue 1000
   */
  waitTimeoutMs: number;
}

export const DEFAULT_STORE_OPTIONS: StoreOptions = Object.freeze({
  tombstoneRetentionMs: 24 * 60 * 60 * 1000,
  maxTransactionRetries: 64,
  transactionPoolSize: 2,
  maxWriteBatch: 256,
  minConcurrentBatch: 16,
  conflictLogSize: 1000,
  connectTimeoutMs: 5_000,
  digestLeaves: 65_536,
  digestFoldThread: true,
  waitReplicas: 0,
  waitTimeoutMs: 1_000,
});

/** Fills in defaults and validates; throws {@link InvalidOptionsError} naming the field. */
export function resolveStoreOptions(options: Partial<StoreOptions> = {}): StoreOptions {
  const o: StoreOptions = { ...DEFAULT_STORE_OPTIONS, ...options };
  for (const field of ['tombstoneRetentionMs', 'maxWriteBatch', 'minConcurrentBatch', 'conflictLogSize', 'transactionPoolSize', 'connectTimeoutMs'] as const) {
    const v = o[field];
    if (!Number.isSafeInteger(v) || v <= 0) throw new InvalidOptionsError(field, `must be a positive integer, got ${String(v)}`);
  }
  if (!Number.isSafeInteger(o.maxTransactionRetries) || o.maxTransactionRetries < 0) {
    throw new InvalidOptionsError('maxTransactionRetries', 'must be a non-negative integer');
  }
  if (typeof o.digestFoldThread !== 'boolean') throw new InvalidOptionsError('digestFoldThread', `must be true or false, got ${String(o.digestFoldThread)}`);
  if (!Number.isSafeInteger(o.waitReplicas) || o.waitReplicas < 0) throw new InvalidOptionsError('waitReplicas', `must be a non-negative integer, got ${String(o.waitReplicas)}`);
  if (!Number.isSafeInteger(o.waitTimeoutMs) || o.waitTimeoutMs <= 0) throw new InvalidOptionsError('waitTimeoutMs', `must be a positive integer, got ${String(o.waitTimeoutMs)}`);
  if (o.digestLeaves !== 0) {
    try {
      digestShape(o.digestLeaves);
    } catch (error) {
      throw new InvalidOptionsError('digestLeaves', `${(error as Error).message} (or 0 to switch digests off)`);
    }
  }
  return o;
}
