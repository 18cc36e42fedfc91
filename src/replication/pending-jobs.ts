/**
 * The relay's memory of which replication jobs for one peer may still carry a key: the
 * basis of coalescing. A later write to a key that sits in a job that has not started
 * (delayed, waiting, prioritized, or delayed again for a retry after a failed attempt) is
 * not enqueued again: that job reads the key's current record when it runs.
 *
 * A job is remembered until Redis reports that it finished (completed, failed for good or
 * removed), not until its due time, so keys keep coalescing while a peer is down for any
 * length of time: a key costs at most one job that has not started plus the jobs that
 * were running when it was written again (normally none or one). Memory is therefore
 * bounded by the distinct keys pending for the peer, not by the writes or by time.
 */
import type { Queue } from 'bullmq';

/** States in which a job has not read any record yet (a retry reads them again). */
const NOT_STARTED = new Set(['delayed', 'waiting', 'prioritized', 'waiting-children']);
/** States after which the job will never read the records again. */
const FINISHED = new Set(['completed', 'failed', 'unknown']);

export interface TrackedJob {
  readonly id: string;
  readonly keys: readonly string[];
}

export class PendingJobs {
  private readonly jobs = new Map<string, TrackedJob>();
  /** Jobs remembered for each key, oldest first (rarely more than one). */
  private readonly byKey = new Map<string, TrackedJob[]>();

  /** Number of jobs remembered. */
  get size(): number {
    return this.jobs.size;
  }

  /** Number of distinct keys remembered. */
  get keyCount(): number {
    return this.byKey.size;
  }

  /** Remembers a job just added to the queue. */
  add(job: TrackedJob): void {
    this.jobs.set(job.id, job);
    for (const k of job.keys) {
      const list = this.byKey.get(k);
      if (list) list.push(job);
      else this.byKey.set(k, [job]);
    }
  }

  /**
   * The subset of `keys` that no unstarted job of `queue` carries. Redis is asked for the
   * state of every remembered job holding one of the keys; the write being enqueued
   * committed before that question, so a job confirmed unstarted is sure to read it, even
   * if it starts right after the answer. Finished jobs are forgotten on the way.
   */
  async withoutPending(queue: Queue, keys: readonly string[]): Promise<string[]> {
    const candidates = new Set<TrackedJob>();
    for (const k of keys) for (const job of this.byKey.get(k) ?? []) candidates.add(job);
    if (candidates.size === 0) return [...keys];
    const states = await jobStates(queue, [...candidates]);
    const open = new Set<TrackedJob>();
    for (const [job, state] of states) {
      if (NOT_STARTED.has(state)) open.add(job);
      else if (FINISHED.has(state)) this.forget(job);
    }
    return keys.filter((k) => !(this.byKey.get(k) ?? []).some((job) => open.has(job)));
  }

  /** Forgets every remembered job that has finished; run periodically to bound memory. */
  async prune(queue: Queue): Promise<void> {
    if (this.jobs.size === 0) return;
    const states = await jobStates(queue, [...this.jobs.values()]);
    for (const [job, state] of states) if (FINISHED.has(state)) this.forget(job);
  }

  private forget(job: TrackedJob): void {
    if (!this.jobs.delete(job.id)) return;
    for (const k of job.keys) {
      const list = this.byKey.get(k);
      if (!list) continue;
      const rest = list.filter((j) => j !== job);
      if (rest.length === 0) this.byKey.delete(k);
      else this.byKey.set(k, rest);
    }
  }
}

/** States of several jobs, asked concurrently (the commands share one connection's pipeline). */
async function jobStates(queue: Queue, jobs: readonly TrackedJob[]): Promise<Array<[TrackedJob, string]>> {
  return Promise.all(jobs.map(async (job): Promise<[TrackedJob, string]> => [job, await queue.getJobState(job.id)]));
}
