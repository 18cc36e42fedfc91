/**
 * Options of anti-entropy (digest exchange between peers) and tombstone collection.
 */
import { InvalidOptionsError } from '../errors/index.js';

export interface AntiEntropyOptions {
  /**
   * Whether this node runs rounds against its peers. Tombstone collection runs either
   * way. Unit: boolean.
   * @defaultValue true
   */
  enabled: boolean;
  /**
   * Time between the end of one round (with every peer) and the start of the next. An
   * equal pair costs one root comparison (under 100 bytes), so 30 s keeps idle cost
   * negligible while a write the queues missed is repaired within about half a minute
   * (plus `confirmDelayMs`); a round also runs at start and when a Redis comes back.
   * Unit: milliseconds.
   * @defaultValue 30000
   */
  intervalMs: number;
  /**
   * Pause between finding a difference and re-reading it to confirm it (Riak's tictac AAE
   * confirms twice before repairing): differences that a replication job still in flight
   * resolves meanwhile are not repaired. Should exceed the replication delay plus
   * `foldIntervalMs` (a peer's digest lags its data by up to one fold). Unit: milliseconds.
   * @defaultValue 5000
   */
  confirmDelayMs: number;
  /**
   * Most digest leaves read per step, and most keys pulled and merged per transaction.
   * @defaultValue 256
   */
  keysPerStep: number;
  /**
   * Pause between steps of a round, so foreground writes keep their latency. Unit: milliseconds.
   * @defaultValue 2
   */
  stepPauseMs: number;
  /**
   * How often the digest is rebuilt from the records and compared with the maintained one
   * (finds changes that bypassed the node, such as a record edited in Redis by hand). `0`
   * never. Riak rebuilds its trees weekly; this check is cheaper. Unit: milliseconds.
   * @defaultValue 21600000 (6 h)
   */
  verifyIntervalMs: number;
  /**
   * How often the digest change log is folded into the digest that peers read (see
   * `src/store/digest-log.ts`); it is also folded before each round. Keep it below
   * `confirmDelayMs`, so a difference that exists only because a fold is pending is gone
   * when it is confirmed. Unit: milliseconds.
   * @defaultValue 2000
   */
  foldIntervalMs: number;
  /**
   * Time between tombstone-collection passes. Unit: milliseconds.
   * @defaultValue 30000
   */
  collectIntervalMs: number;
}

export const DEFAULT_ANTI_ENTROPY_OPTIONS: AntiEntropyOptions = Object.freeze({
  enabled: true,
  intervalMs: 30_000,
  confirmDelayMs: 5_000,
  keysPerStep: 256,
  stepPauseMs: 2,
  verifyIntervalMs: 6 * 60 * 60 * 1000,
  collectIntervalMs: 30_000,
  foldIntervalMs: 2_000,
});

/** Fills in defaults and validates; throws {@link InvalidOptionsError} naming the field. */
export function resolveAntiEntropyOptions(options: Partial<AntiEntropyOptions> = {}): AntiEntropyOptions {
  const o = { ...DEFAULT_ANTI_ENTROPY_OPTIONS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as AntiEntropyOptions;
  if (typeof o.enabled !== 'boolean') throw new InvalidOptionsError('antiEntropy.enabled', 'must be true or false');
  for (const field of ['intervalMs', 'keysPerStep', 'collectIntervalMs', 'foldIntervalMs'] as const) {
    if (!Number.isSafeInteger(o[field]) || o[field] <= 0) throw new InvalidOptionsError(`antiEntropy.${field}`, 'must be a positive integer');
  }
  for (const field of ['confirmDelayMs', 'stepPauseMs', 'verifyIntervalMs'] as const) {
    if (!Number.isSafeInteger(o[field]) || o[field] < 0) throw new InvalidOptionsError(`antiEntropy.${field}`, 'must be a non-negative integer');
  }
  return o;
}
