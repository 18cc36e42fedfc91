/**
 * Optimistic transactions: WATCH -> read -> decide (pure) -> MULTI/EXEC, retried when EXEC
 * returns null because a watched key changed. No Lua: the decision is ordinary TypeScript,
 * which is what lets the merge be a pure, property-tested function.
 */
import type { ChainableCommander } from 'ioredis';
import type { KeyLocks } from './key-locks.js';
import { TransactionConflictError } from '../errors/index.js';
import { isClusterTarget, isConnectionError, unavailable, waitUntilReady, type RedisTarget, type TransactionConnection, type TransactionConnections } from './connections.js';
import { isRedirectError } from './cluster-connections.js';

export interface TransactionPlan<T> {
  /** Queues the writes inside MULTI. Omit it when there is nothing to write. */
  readonly write?: (multi: ChainableCommander) => void;
  /** What the transaction returns once EXEC succeeded (or nothing needed writing). */
  readonly result: T;
}

export interface TransactionHooks {
  /** Called after each aborted attempt: `conflict` (EXEC returned null) or `connection` (socket replaced). */
  onRetry?: (attempt: number, reason: 'conflict' | 'connection') => void;
  /** Fault injection for tests: runs between the read and MULTI/EXEC. */
  beforeExec?: (connection: TransactionConnection) => Promise<void>;
}

export interface TransactionOptions extends TransactionHooks {
  /**
   * Runs on the transaction's own connection right after a successful EXEC (Redis `WAIT`
   * counts the replicas that have this connection's writes). Its error is the transaction's.
   */
  readonly afterExec?: (connection: TransactionConnection) => Promise<void>;
  /** Attempts after the first before giving up with {@link TransactionConflictError}. */
  readonly maxRetries: number;
  /** In-process locks to queue behind other transactions on the same keys (optional). */
  readonly locks?: KeyLocks;
}

/**
 * Runs `plan` against the current values of `watchKeys` (as MGET returns them) until its
 * writes commit without any watched key having changed in between.
 *
 * The connection is borrowed exclusively from `pool` for the whole attempt, and its socket
 * generation is checked right before MULTI/EXEC is written: if the socket was replaced
 * since WATCH (a reconnect drops the WATCH), the attempt is abandoned instead of
 * committing blind. Transaction connections never queue or resend commands, so nothing can
 * slip onto a new socket after that synchronous check.
 */
export async function optimisticTransaction<T>(
  pool: TransactionConnections,
  target: RedisTarget,
  watchKeys: readonly string[],
  plan: (values: ReadonlyArray<string | null>) => TransactionPlan<T>,
  options: TransactionOptions,
): Promise<T> {
  // Locks before connections: a transaction waiting for a key never holds a connection.
  const unlock = options.locks ? await options.locks.acquire(watchKeys) : undefined;
  // On a cluster, a redirect or a lost master is retried on the slot's owner for this long.
  const failoverDeadline = isClusterTarget(target) ? Date.now() + CLUSTER_FAILOVER_BUDGET_MS : 0;
  try {
    for (let attempt = 0; ; attempt++) {
      if (attempt > options.maxRetries) throw new TransactionConflictError(attempt);
      if (attempt > 0) await backoff(attempt);
      let outcome: Attempt<T>;
      try {
        const connection = await pool.acquire(watchKeys);
        try {
          outcome = await attemptOnce(connection, target, watchKeys, plan, options);
        } finally {
          pool.release(connection);
        }
      } catch (error) {
        // A cluster redirect (MOVED, ASK), CLUSTERDOWN or a dead master: the WATCH never
        // reached EXEC, or EXEC failed as a whole. Re-learn the slot map and try again.
        const moved = isRedirectError(error) || isConnectionError(error);
        if (!moved || Date.now() > failoverDeadline) throw error;
        await pool.refresh?.();
        await new Promise((r) => setTimeout(r, CLUSTER_RETRY_PAUSE_MS));
        outcome = { committed: false, reason: 'connection' };
        attempt -= 1; // redirects do not use up the conflict budget; the deadline bounds them
      }
      if (outcome.committed) return outcome.result;
      options.onRetry?.(attempt + 1, outcome.reason);
    }
  } finally {
    unlock?.();
  }
}

type Attempt<T> = { committed: true; result: T } | { committed: false; reason: 'conflict' | 'connection' };

async function attemptOnce<T>(
  connection: TransactionConnection,
  target: RedisTarget,
  watchKeys: readonly string[],
  plan: (values: ReadonlyArray<string | null>) => TransactionPlan<T>,
  options: TransactionOptions,
): Promise<Attempt<T>> {
  const { redis } = connection;
  try {
    await waitUntilReady(connection.redis, target, 1_000);
    const generation = connection.generation;
    const replies = await redis.pipeline().watch(...watchKeys).mget(...watchKeys).exec();
    const [watchReply, mgetReply] = replies ?? [];
    if (watchReply?.[0]) throw watchReply[0];
    if (mgetReply?.[0]) throw mgetReply[0];
    const decided = plan(mgetReply?.[1] as Array<string | null>);
    if (!decided.write) {
      await redis.unwatch();
      return { committed: true, result: decided.result };
    }
    await options.beforeExec?.(connection);
    // Synchronous from this check until exec() has written MULTI..EXEC to the socket.
    if (!connection.isIntact(generation)) return { committed: false, reason: 'connection' };
    const multi = redis.multi();
    decided.write(multi);
    const results = await multi.exec();
    if (results === null) return { committed: false, reason: 'conflict' };
    for (const [error] of results) if (error) throw error;
    await options.afterExec?.(connection);
    return { committed: true, result: decided.result };
  } catch (error) {
    if (isConnectionError(error)) {
      throw unavailable(target, error);
    }
    throw error;
  }
}

/** How long a cluster transaction keeps retrying redirects and a lost master (a failover takes `cluster-node-timeout` plus an election). */
const CLUSTER_FAILOVER_BUDGET_MS = 5_000;
const CLUSTER_RETRY_PAUSE_MS = 100;

/** Jittered pause so transactions that collided do not collide again in lockstep. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(2 ** attempt, 50);
  return new Promise((r) => setTimeout(r, ms));
}
