/**
 * Load generators. Both sides of a comparison always go through the same generator with
 * the same concurrency, so generator overhead cancels out of the ratio.
 */
import { BenchTimeoutError } from './deadline.js';

export interface ClosedLoopResult {
  /** Operations started after the warm-up (the ones measured). */
  ops: number;
  /** Every operation run, warm-up included (for dividing CPU or command counts). */
  totalOps: number;
  /** From the end of the warm-up to the completion of the last measured operation. */
  elapsedMs: number;
  /** Latency of every measured operation, in ms. */
  latenciesMs: number[];
}

/**
 * `concurrency` workers each run `op` back to back for `warmupMs + durationMs`. Operations
 * that start during the warm-up are executed but not measured. The first error stops the
 * run and is rethrown: a benchmark that silently drops failures measures nothing.
 */
export async function closedLoop(options: {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  op: (seq: number) => Promise<unknown>;
}): Promise<ClosedLoopResult> {
  const { concurrency, warmupMs, durationMs, op } = options;
  const start = performance.now();
  const warmEnd = start + warmupMs;
  const end = warmEnd + durationMs;
  const latencies: number[] = [];
  let seq = 0;
  let lastDone = warmEnd;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined) {
      const t0 = performance.now();
      if (t0 >= end) return;
      try {
        await op(seq++);
      } catch (error) {
        failure ??= error;
        return;
      }
      const t1 = performance.now();
      if (t0 >= warmEnd) {
        latencies.push(t1 - t0);
        if (t1 > lastDone) lastDone = t1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) throw failure;
  return { ops: latencies.length, totalOps: seq, elapsedMs: lastDone - warmEnd, latenciesMs: latencies };
}

/** Runs `op(0..total-1)` with at most `concurrency` in flight; rethrows the first error. */
export async function runCount(options: { concurrency: number; total: number; op: (seq: number) => Promise<unknown> }): Promise<{ elapsedMs: number }> {
  const { concurrency, total, op } = options;
  const start = performance.now();
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < total) {
      const seq = next++;
      try {
        await op(seq);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  if (failure !== undefined) throw failure;
  return { elapsedMs: performance.now() - start };
}

export interface OpenLoopResult {
  issued: number;
  /** How late the generator issued operations against its schedule (ms); large values mean it could not keep the rate. */
  issueLateMs: number[];
  elapsedMs: number;
}

/**
 * Offers `ratePerSec` operations per second for `durationMs`, whether or not earlier ones
 * have completed (an open loop: slow responses do not slow the offered load down, which
 * is what "steady offered load" means). Waits for every operation, with a deadline.
 */
export async function openLoop(options: {
  ratePerSec: number;
  durationMs: number;
  op: (seq: number) => Promise<unknown>;
  settleTimeoutMs: number;
}): Promise<OpenLoopResult> {
  const { ratePerSec, durationMs, op } = options;
  const pending = new Set<Promise<unknown>>();
  const issueLateMs: number[] = [];
  let issued = 0;
  let failure: unknown;
  const total = Math.round((ratePerSec * durationMs) / 1000);
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * ratePerSec) / 1000) + 1);
      while (issued < due && failure === undefined) {
        const seq = issued++;
        issueLateMs.push(now - (start + (seq * 1000) / ratePerSec));
        const p: Promise<void> = op(seq).then(
          () => {
            pending.delete(p);
          },
          (error: unknown) => {
            failure ??= error;
            pending.delete(p);
          },
        );
        pending.add(p);
      }
      if (issued >= total || failure !== undefined) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 1);
    tick();
  });
  const settle = Promise.all([...pending]);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    settle,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new BenchTimeoutError(`${pending.size} operations still pending ${options.settleTimeoutMs} ms after the load ended`)), options.settleTimeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  if (failure !== undefined) throw failure;
  return { issued, issueLateMs, elapsedMs: performance.now() - start };
}
