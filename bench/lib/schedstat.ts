/**
 * How long a process's main thread ran and how long it waited for a CPU while runnable
 * (`/proc/<pid>/schedstat`, Linux only). On a machine with more runnable processes than
 * cores, the wait is what a benchmark's wall time hides: scenario 7 reports it next to the
 * CPU, so a run slowed by the scheduler (its own seven processes, or other work on the
 * machine) can be told from a run slowed by its own cost.
 */
import { readFileSync } from 'node:fs';

export interface SchedStat {
  /** Time on a CPU (µs). */
  runUs: number;
  /** Time runnable but waiting for a CPU (µs). */
  waitUs: number;
}

/** The main thread's schedstat of `pid` (this process when omitted); `undefined` where /proc has none. */
export function schedStat(pid: number | 'self' = 'self'): SchedStat | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (run === undefined || wait === undefined || !Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
    return { runUs: run / 1000, waitUs: wait / 1000 };
  } catch {
    return undefined;
  }
}
