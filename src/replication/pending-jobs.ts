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
/**
 * Unfinished jobs a key may be in. A write to a key whose only jobs are running needs a new
 * job (they may have read the key before the write); once a key is in two running jobs the
 * relay waits for one of them to settle instead (a failed attempt returns it to `delayed`,
 * ready to coalesce into), so a key costs a peer at most two merges, however long it is down.
 */
export const MAX_JOBS_PER_KEY = 2;
/** Longest wait for a running job to settle before a new job is added anyway (a job whose worker died stays active until BullMQ's stall check). */
const SETTLE_WAIT_MS = 1_000;
const SETTLE_POLL_MS = 5;

export interface TrackedJob {
  readonly id: string;
  readonly keys: readonly string[];
  /** When the job was due (ms since the epoch). */
  readonly dueAt: number;
  /**
   * The queue holding the job, when one memory serves several queues (a peer's queue
   * shards on a cluster store; job ids are unique per queue only). Otherwise the queue the
   * caller passes.
   */
  readonly queue?: Queue;
}

export class PendingJobs {
  private readonly jobs = new Set<TrackedJob>();
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
    this.jobs.add(job);
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
    const deadline = Date.now() + SETTLE_WAIT_MS;
    const covered = new Set<string>();
    for (let todo: readonly string[] = keys; ; ) {
      const open = await this.unstarted(queue, todo);
      const saturated: string[] = [];
      for (const k of todo) {
        const jobs = this.byKey.get(k) ?? [];
        if (jobs.some((job) => open.has(job))) covered.add(k);
        else if (jobs.length >= MAX_JOBS_PER_KEY) saturated.push(k);
      }
      // Keys already in the most running jobs allowed: wait for one to settle, then look again.
      if (saturated.length === 0 || Date.now() >= deadline) break;
      todo = saturated;
      await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    }
    return keys.filter((k) => !covered.has(k));
  }

  /** The remembered jobs holding any of `keys` that have not started; finished ones are forgotten. */
  private async unstarted(queue: Queue, keys: readonly string[]): Promise<Set<TrackedJob>> {
    const jobs = new Set<TrackedJob>();
    for (const k of keys) for (const job of this.byKey.get(k) ?? []) jobs.add(job);
    const open = new Set<TrackedJob>();
    if (jobs.size === 0) return open;
    for (const [job, state] of await jobStates(queue, [...jobs])) {
      if (NOT_STARTED.has(state)) open.add(job);
      else if (FINISHED.has(state)) this.forget(job);
    }
    return open;
  }

  /**
   * Forgets every remembered job that has finished; run periodically to bound memory.
   * Returns the jobs that are overdue (due more than `graceMs` ago) and still not started:
   * the peer is not taking them, so the relay may fold them into fewer, fuller jobs.
   */
  async prune(queue: Queue, graceMs: number): Promise<TrackedJob[]> {
    if (this.jobs.size === 0) return [];
    const overdue: TrackedJob[] = [];
    const cutoff = Date.now() - graceMs;
    for (const [job, state] of await jobStates(queue, [...this.jobs])) {
      if (FINISHED.has(state)) this.forget(job);
      else if (NOT_STARTED.has(state) && job.dueAt < cutoff) overdue.push(job);
    }
    return overdue;
  }

  /** Forgets a job (it finished, or it was removed after its keys moved to another job). */
  forget(job: TrackedJob): void {
    if (!this.jobs.delete(job)) return;
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
  return Promise.all(jobs.map(async (job): Promise<[TrackedJob, string]> => [job, await (job.queue ?? queue).getJobState(job.id)]));
}
