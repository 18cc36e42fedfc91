/**
 * How long the relay gathers writes before its next pass: the group commit's rule applied
 * to replication jobs. Batch more when busy, so that per-job costs shrink exactly when the
 * node can least afford them.
 *
 * - The base window is half the smallest delay, at most 50 ms: a job is due `delayMs` after
 *   its oldest write, so half the delay is left to add it and wake its worker.
 * - When the relay's passes slow down (every round trip waits for a CPU or for Redis: a
 *   saturated host), the window widens to {@link WINDOW_PER_PASS}× the recent pass time, up
 *   to `maxBatchWindowMs`. A fixed window would send ever smaller jobs, each with the same
 *   fixed cost (about 80 Redis commands: `bench/profile.ts job-cost`), which loads the
 *   node further.
 * - The recent pass time is an average of the passes that moved entries. It is forgotten
 *   once the relay waited a whole window for work: a node whose writes stopped is not busy,
 *   and its next write should not wait out a wide window. One slow pass widens it again.
 */
import type { ReplicationOptions } from './options.js';

/** Longest base window. */
const BASE_WINDOW_MAX_MS = 50;
/** A busy relay waits this many times its recent pass time: it spends at most a fifth of its time in passes. */
export const WINDOW_PER_PASS = 4;
/** Weight of the newest pass in the average. */
const PASS_WEIGHT = 0.3;

/** The window for a recent pass time of `passMs`. */
export function batchWindowMs(o: Pick<ReplicationOptions, 'delayMs' | 'maxBatchWindowMs'>, passMs: number): number {
  const d = o.delayMs;
  const base = Math.min(BASE_WINDOW_MAX_MS, Math.floor((typeof d === 'number' ? d : d.min) / 2));
  return Math.max(base, Math.min(o.maxBatchWindowMs, Math.round(WINDOW_PER_PASS * passMs)));
}

/** The relay's recent pass time, and the window it gives. Times in ms (`performance.now()`). */
export class BatchWindow {
  private passMs = 0;
  private lastPassEndedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: Pick<ReplicationOptions, 'delayMs' | 'maxBatchWindowMs'>) {}

  /** A pass that moved entries ran from `startedAt` to `endedAt`. */
  passed(startedAt: number, endedAt: number): void {
    const ms = endedAt - startedAt;
    this.passMs = this.passMs === 0 ? ms : PASS_WEIGHT * ms + (1 - PASS_WEIGHT) * this.passMs;
    this.lastPassEndedAt = endedAt;
  }

  /** The window of the wait that starts at `now`. */
  windowAt(now: number): number {
    // Idle for a whole window since the last pass: not busy any more.
    if (now - this.lastPassEndedAt > batchWindowMs(this.options, this.passMs)) this.passMs = 0;
    return batchWindowMs(this.options, this.passMs);
  }
}
