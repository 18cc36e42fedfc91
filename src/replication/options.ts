/**
 * Replication settings shared by the outbox relay (producer side) and the peer receivers
 * (consumer side).
 */
import { InvalidOptionsError } from '../errors/index.js';

/** A fixed delay, or a delay drawn uniformly from `[min, max]` for every job (like the seed's 100–500 ms). */
export type DelaySpec = number | { readonly min: number; readonly max: number };

export interface ReplicationOptions {
  /**
   * How long after a write its peers apply it: the BullMQ job's delay, counted from the
   * moment the write committed. Writes that commit within the first half of this delay
   * (at most 50 ms) share one job, due `delayMs` after the oldest of them, so later writes
   * of the batch arrive up to that much sooner: `delayMs` is when a write is applied at
   * the latest (plus queueing, and on a saturated node up to `maxBatchWindowMs` of
   * batching), not a minimum. Unit: milliseconds.
   * @defaultValue 50
   */
  delayMs: DelaySpec;
  /**
   * Longest the relay gathers writes into one job per peer when the node is busy. The
   * window is half the delay (at most 50 ms) while the relay's passes are quick; when they
   * slow down (a saturated CPU, a slow Redis, a backlog) it widens to 4× the recent pass
   * time, up to this bound, so a busy node sends fewer, fuller jobs instead of more,
   * smaller ones (each job costs about 80 Redis commands whatever it carries).
   * Writes then arrive up to this much later than `delayMs`. A value at or below the base
   * window keeps the window fixed. Unit: milliseconds.
   * @defaultValue 200
   */
  maxBatchWindowMs: number;
  /**
   * Most keys carried by one replication job. Writes that commit close together share a
   * job, so a busy node costs far less than one BullMQ job per write and peer.
   * @defaultValue 500
   */
  maxKeysPerJob: number;
  /**
   * Jobs a node processes at once from each peer's queue.
   * @defaultValue 8
   */
  concurrency: number;
  /**
   * First retry delay after a failed job (e.g. this node's Redis is down); doubles on each
   * failure up to `retryMaxMs`. Retries never stop: a peer that is down for a day gets
   * its writes when it returns. Unit: milliseconds.
   * @defaultValue 250
   */
  retryInitialMs: number;
  /**
   * Ceiling of the retry delay. Unit: milliseconds.
   * @defaultValue 30000
   */
  retryMaxMs: number;
  /**
   * How often the outbox is swept for entries no notification covered (e.g. left by a
   * crash before they were enqueued). Unit: milliseconds.
   * @defaultValue 1000
   */
  sweepIntervalMs: number;
  /**
   * Completed jobs kept per queue so the dashboard shows recent traffic (each holds its
   * key list, so this costs memory).
   * @defaultValue 50
   */
  keepCompletedJobs: number;
  /**
   * Promote each job from the producer at its due time instead of waiting for BullMQ's
   * delayed-job wake-up, which on an idle Redis fires up to ~100 ms late (the worker's
   * blocking BZPOPMIN times out only at Redis' `hz` tick). Skipped while the node is
   * writing (a busy Redis wakes the worker on time). The delayed set stays the durable
   * fallback if the producer dies.
   * @defaultValue true
   */
  promptPromotion: boolean;
}

export const DEFAULT_REPLICATION_OPTIONS: ReplicationOptions = Object.freeze({
  delayMs: 50,
  maxBatchWindowMs: 200,
  maxKeysPerJob: 500,
  concurrency: 8,
  retryInitialMs: 250,
  retryMaxMs: 30_000,
  sweepIntervalMs: 1_000,
  keepCompletedJobs: 50,
  promptPromotion: true,
});

/** Validates and fills in defaults; throws {@link InvalidOptionsError} naming the field. */
export function resolveReplicationOptions(options: Partial<ReplicationOptions> = {}): ReplicationOptions {
  const o: ReplicationOptions = { ...DEFAULT_REPLICATION_OPTIONS, ...stripUndefined(options) };
  const d = o.delayMs;
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new InvalidOptionsError('replication.delayMs', 'must be a non-negative number of milliseconds');
  } else if (typeof d === 'object' && d !== null) {
    if (!Number.isFinite(d.min) || d.min < 0) throw new InvalidOptionsError('replication.delayMs.min', 'must be a non-negative number of milliseconds');
    if (!Number.isFinite(d.max) || d.max < d.min) throw new InvalidOptionsError('replication.delayMs.max', 'must be a number >= delayMs.min');
  } else {
    throw new InvalidOptionsError('replication.delayMs', 'must be a number of milliseconds or {"min": ms, "max": ms}');
  }
  for (const field of ['maxKeysPerJob', 'concurrency', 'retryInitialMs', 'retryMaxMs', 'sweepIntervalMs'] as const) {
    if (!Number.isSafeInteger(o[field]) || o[field] <= 0) throw new InvalidOptionsError(`replication.${field}`, 'must be a positive integer');
  }
  if (!Number.isSafeInteger(o.maxBatchWindowMs) || o.maxBatchWindowMs < 0) {
    throw new InvalidOptionsError('replication.maxBatchWindowMs', 'must be a non-negative integer number of milliseconds');
  }
  if (!Number.isSafeInteger(o.keepCompletedJobs) || o.keepCompletedJobs < 0) {
    throw new InvalidOptionsError('replication.keepCompletedJobs', 'must be a non-negative integer');
  }
  if (o.retryMaxMs < o.retryInitialMs) throw new InvalidOptionsError('replication.retryMaxMs', 'must be >= retryInitialMs');
  return o;
}

/** Draws one job's delay. */
export function drawDelayMs(spec: DelaySpec, random: () => number = Math.random): number {
  return typeof spec === 'number' ? spec : spec.min + Math.floor(random() * (spec.max - spec.min + 1));
}

/** Capped exponential backoff with jitter: attempt 1 waits ~initial, then doubles up to max. */
export function retryDelayMs(attemptsMade: number, o: Pick<ReplicationOptions, 'retryInitialMs' | 'retryMaxMs'>): number {
  const base = Math.min(o.retryMaxMs, o.retryInitialMs * 2 ** Math.max(0, Math.min(attemptsMade - 1, 30)));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
