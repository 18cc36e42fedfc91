/**
 * Raw BullMQ on the same private Redis: what the replicated scenarios are compared with.
 * Queue and worker use the settings a careful user would (completed jobs trimmed like
 * ours, a no-op processor), so the baseline is BullMQ at its best rather than a straw man.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { withTimeout } from './deadline.js';
import { openLoop, runCount } from './load.js';

interface Harness {
  queue: Queue;
  worker: Worker;
  close(): Promise<void>;
}

function connections(url: string) {
  return {
    producer: new Redis(url, { maxRetriesPerRequest: 1 }),
    consumer: new Redis(url, { maxRetriesPerRequest: null }),
  };
}

function harness(url: string, name: string, concurrency: number, processor: (job: Job) => Promise<void>): Harness {
  const { producer, consumer } = connections(url);
  const queue = new Queue(name, { connection: producer, prefix: 'rawbull', defaultJobOptions: { removeOnComplete: { count: 100 }, removeOnFail: false } });
  const worker = new Worker(name, processor, { connection: consumer, prefix: 'rawbull', concurrency });
  return {
    queue,
    worker,
    close: async () => {
      await worker.close();
      await queue.close();
      producer.disconnect();
      consumer.disconnect();
    },
  };
}

export interface MoveJobsResult {
  jobs: number;
  elapsedMs: number;
  jobsPerSec: number;
}

/**
 * Adds `jobs` jobs (one `queue.add` each, `concurrency` in flight) carrying `payload(i)`
 * and processes them with a no-op handler; the time runs from the first add to the last
 * completion. A warm-up batch runs first on the same queue and is not measured.
 */
export async function moveJobs(options: {
  url: string;
  jobs: number;
  warmupJobs: number;
  concurrency: number;
  workerConcurrency: number;
  payload: (i: number) => Record<string, unknown>;
  timeoutMs: number;
}): Promise<MoveJobsResult> {
  let completed = 0;
  let target = 0;
  let onTarget: (() => void) | undefined;
  const h = harness(options.url, 'move', options.workerConcurrency, async () => undefined);
  h.worker.on('completed', () => {
    completed += 1;
    if (completed === target) onTarget?.();
  });
  const run = async (count: number) => {
    target = completed + count;
    const done = new Promise<void>((resolve) => {
      onTarget = resolve;
    });
    const start = performance.now();
    await runCount({ concurrency: options.concurrency, total: count, op: (i) => h.queue.add('job', options.payload(i)) });
    await withTimeout(done, options.timeoutMs, () => `raw BullMQ (${completed} of ${target} jobs completed)`);
    return performance.now() - start;
  };
  try {
    await h.worker.waitUntilReady();
    await run(options.warmupJobs);
    const elapsedMs = await run(options.jobs);
    return { jobs: options.jobs, elapsedMs, jobsPerSec: (options.jobs * 1000) / elapsedMs };
  } finally {
    await h.close();
  }
}

export interface LatenessResult {
  jobs: number;
  /** Processor start − (job timestamp + delay), in ms, one per job. */
  latenessMs: number[];
}

/**
 * Offers delayed jobs at `ratePerSec` for `durationMs` and records how late each one
 * started relative to its due time (BullMQ's own timestamp + delay). With `promote`, the
 * producer also calls `job.promote()` at the due time from a local timer — the technique
 * behind the library's `promptPromotion` — to show how much of the lateness it removes.
 */
export async function delayedLateness(options: {
  url: string;
  delayMs: number;
  ratePerSec: number;
  durationMs: number;
  promote: boolean;
  timeoutMs: number;
}): Promise<LatenessResult> {
  const lateness: number[] = [];
  let expected = Number.POSITIVE_INFINITY;
  let onAll: (() => void) | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const h = harness(options.url, `lateness-${options.promote ? 'promote' : 'plain'}`, 8, async (job) => {
    lateness.push(Date.now() - (job.timestamp + (job.opts.delay ?? 0)));
    if (lateness.length >= expected) onAll?.();
  });
  try {
    await h.worker.waitUntilReady();
    const all = new Promise<void>((resolve) => {
      onAll = resolve;
    });
    const load = await openLoop({
      ratePerSec: options.ratePerSec,
      durationMs: options.durationMs,
      settleTimeoutMs: options.timeoutMs,
      op: async (i) => {
        const job = await h.queue.add('late', { i }, { delay: options.delayMs });
        if (options.promote) {
          const remaining = job.timestamp + options.delayMs - Date.now();
          const timer = setTimeout(() => {
            timers.delete(timer);
            job.promote().catch(() => undefined);
          }, Math.max(0, remaining));
          timers.add(timer);
        }
      },
    });
    expected = load.issued;
    if (lateness.length < expected) await withTimeout(all, options.timeoutMs, () => `delayed jobs (${lateness.length} of ${expected} processed)`);
    return { jobs: lateness.length, latenessMs: lateness };
  } finally {
    for (const t of timers) clearTimeout(t);
    await h.close();
  }
}
