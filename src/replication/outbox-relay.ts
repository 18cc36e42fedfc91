/**
 * Producer side of replication: moves committed writes from the node's outbox stream into
 * one BullMQ queue per destination peer, as delayed jobs.
 *
 *   local MULTI: SET record + XADD outbox ──► relay: XRANGE outbox ──► Queue("to-B").add(delayed)
 *                                                                   └─► Queue("to-C").add(delayed)
 *                                                       then XDEL the entries
 *
 * An entry is deleted only after every peer's job was added, so a crash at any point
 * leaves it in the stream for the next sweep (at-least-once; merges are idempotent).
 *
 * Jobs carry keys, not values: the peer reads the origin's *current* record when the job
 * runs. So writes to one key coalesce: a key already waiting in a job that has not started
 * yet is not enqueued again, because that job will read the newer record anyway.
 */
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { OutboxEntry, RecordStore } from '../store/record-store.js';
import { replicationQueueName } from '../store/keys.js';
import { BatchWindow } from './batch-window.js';
import { drawDelayMs, type ReplicationOptions } from './options.js';
import { PendingJobs } from './pending-jobs.js';

/** Data of a replication job. */
export interface ReplicationJobData {
  /** Node whose outbox produced the job (and whose Redis holds the records). */
  readonly origin: string;
  /** User keys to replicate; the receiver reads their current records from the origin. */
  readonly keys: string[];
  /** Real time (ms) the oldest of these writes committed on the origin. */
  readonly committedAt: number;
}

/** Entries kept in each queue's BullMQ event stream (for QueueEvents listeners). */
const EVENTS_MAX_LEN = 1_000;
/** A node that wrote this recently keeps its Redis busy enough that delayed jobs wake on time. */
const BUSY_MS = 5;
/** Most jobs per peer one relay round produces (added with one `addBulk` per peer). */
const JOBS_PER_ROUND = 4;
/** Cap on outbox entries read per round; each holds one group-committed batch of keys. */
const MAX_OUTBOX_READ = 2_000;
/**
 * Stack traces BullMQ keeps per job. It appends one per failed attempt and attempts are
 * unlimited, so without a bound a job retried through a long outage grows without end.
 */
export const STACK_TRACE_LIMIT = 1;
/** Log lines kept per job (a receiver logs each unusable record it skipped). */
const KEEP_JOB_LOGS = 100;
/**
 * Overdue, unstarted jobs of one peer (it is down, or its workers are stopped) are folded
 * into full jobs once at least this many hold fewer than half a job's keys each: a peer
 * that is away then costs about one job per `maxKeysPerJob` distinct keys, however small
 * the jobs were that a steady trickle of writes produced.
 */
const COMPACT_MIN_JOBS = 4;
/** How long past its due time a job must wait before it counts as overdue. */
const OVERDUE_GRACE_MS = 1_000;
export const REPLICATION_JOB_NAME = 'replicate';
/** BullMQ's attempts field must be finite; this is "never give up" in practice (2^31 - 1 tries). */
export const UNLIMITED_ATTEMPTS = 2_147_483_647;

export interface RelayHooks {
  /** `jobs` jobs carrying `keys` keys were added for `peer`; `coalesced` keys rode in jobs already pending. */
  onEnqueued(peer: string, keys: number, coalesced: number, jobs: number): void;
  onError(error: unknown): void;
}

export class OutboxRelay {
  /**
   * Per destination peer, its queues: one on a standalone store; on a cluster one per
   * queue shard, each with its own hash tag (see `KeyBuilder.queuePrefix`).
   */
  readonly queues = new Map<string, Array<Queue<ReplicationJobData>>>();
  private readonly store: RecordStore;
  private readonly opts: ReplicationOptions;
  private readonly hooks: RelayHooks;
  private readonly origin: string;
  /** Per peer: the jobs (of any of its queue shards) that may still carry each key (see {@link PendingJobs}). */
  private readonly tracked = new Map<string, PendingJobs>();
  /** Per peer: rounds sent so far, which picks the shard of the next round. */
  private readonly rounds = new Map<string, number>();
  private readonly promotions = new Set<NodeJS.Timeout>();
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Keys notified since the last pass started. */
  private pendingWrites = 0;
  /** When this node last committed a write (ms). */
  private lastWriteAt = 0;
  /** The batching window, from the recent passes' duration (see `batch-window.ts`). */
  private readonly window: BatchWindow;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The sweep asks the next pass to prune and compact the remembered jobs. */
  private pruneDue = false;
  private closed = false;

  constructor(store: RecordStore, peers: readonly string[], connection: Redis, options: ReplicationOptions, hooks: RelayHooks) {
    this.store = store;
    this.opts = options;
    this.window = new BatchWindow(options);
    this.hooks = hooks;
    this.origin = store.keys.nodeId;
    for (const peer of peers) {
      const shards: Array<Queue<ReplicationJobData>> = [];
      for (let shard = 0; shard < store.keys.queueShards; shard++) shards.push(this.openQueue(peer, shard, connection));
      this.queues.set(peer, shards);
      this.tracked.set(peer, new PendingJobs());
    }
  }

  private openQueue(peer: string, shard: number, connection: Redis): Queue<ReplicationJobData> {
    const queue = new Queue<ReplicationJobData>(replicationQueueName(peer, shard), {
        connection,
        prefix: this.store.keys.queuePrefix(shard),
        // Nothing here reads BullMQ's event stream; keep it short (default 10,000 entries).
        streams: { events: { maxLen: EVENTS_MAX_LEN } },
        defaultJobOptions: {
          attempts: UNLIMITED_ATTEMPTS,
          backoff: { type: 'replication' },
          removeOnComplete: { count: this.opts.keepCompletedJobs },
          removeOnFail: false,
          stackTraceLimit: STACK_TRACE_LIMIT,
          // Receivers log the keys they skipped as unusable; a retried job must not pile them up.
          keepLogs: KEEP_JOB_LOGS,
        },
      });
    queue.on('error', (error) => this.hooks.onError(error));
    return queue;
  }

  /** Starts the periodic sweep and drains whatever a previous run left in the outbox. */
  start(): void {
    this.sweepTimer = setInterval(() => {
      this.pruneDue = true;
      this.store.outbox.rescan();
      this.notify(0);
    }, this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
    void this.run(true);
  }

  /**
   * `writes` keys were committed to the outbox. The relay waits for the batching window
   * (half the smallest delay, at most 50 ms) to gather more, or flushes at once when a full
   * job's worth is waiting. The wait never delays delivery: a job's delay is counted from
   * its oldest write, so every write is applied about `delayMs` after it committed or
   * sooner, and a busy node sends at most one job per peer per window.
   *
   * Except on a saturated node: when its passes slow down (every round trip waits for a
   * CPU or for Redis), the window widens to 4× the recent pass time, up to
   * `maxBatchWindowMs` ({@link BatchWindow}). Otherwise such a node sends ever smaller
   * jobs, each with the same fixed cost, which loads it further (bench scenario 7).
   */
  notify(writes = 1): void {
    if (this.closed) return;
    if (writes > 0) this.lastWriteAt = Date.now();
    this.pendingWrites += writes;
    this.schedule();
  }

  /** Moves everything in the outbox to the queues now; resolves once the outbox was empty. */
  flush(): Promise<void> {
    return this.run(true);
  }

  private schedule(): void {
    if (this.running || this.closed) return; // the run in progress reschedules when it ends
    const full = this.pendingWrites >= this.opts.maxKeysPerJob;
    if (this.timer && !full) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.run(false);
      },
      full ? 0 : this.window.windowAt(performance.now()),
    );
  }

  /**
   * One relay pass: rounds of up to {@link JOBS_PER_ROUND} full jobs per peer, back to back,
   * while the outbox still holds entries, so the relay moves keys as fast as Redis takes
   * them whatever the size of each job. It stops once a round emptied the outbox (the
   * window then gathers the next writes); a drain (start, close, `flush()`) also goes on
   * until a read finds nothing.
   */
  private run(drain: boolean): Promise<void> {
    if (this.running) return drain ? this.running.then(() => this.run(true)) : this.running;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = (async () => {
      try {
        this.pendingWrites = 0;
        const started = performance.now();
        let moved = 0;
        for (;;) {
          const round = await this.flushOnce();
          moved += round.entries;
          if (round.entries === 0 || (!drain && !round.more)) break;
        }
        if (moved > 0) this.window.passed(started, performance.now());
        // Inside the pass, never beside a round: a round's coalescing decision must not
        // race with compaction removing the job it coalesced into.
        if (this.pruneDue && !this.closed) {
          this.pruneDue = false;
          await this.prune();
        }
      } catch (error) {
        this.hooks.onError(error);
      } finally {
        this.running = undefined;
        if (this.pendingWrites > 0) this.schedule();
      }
    })();
    return this.running;
  }

  /** Stops sweeping, makes one last attempt to empty the outbox, closes the queues. */
  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.flush();
    this.closed = true;
    clearTimeout(this.timer);
    for (const t of this.promotions) clearTimeout(t);
    this.promotions.clear();
    await Promise.all([...this.queues.values()].flat().map((q) => q.close().catch(() => undefined)));
  }

  /**
   * One round: reads enough outbox entries for {@link JOBS_PER_ROUND} full jobs, adds the
   * jobs of every peer, then deletes the entries (only after every peer's jobs were added:
   * a crash in between re-sends, never loses). `more` tells whether entries were left.
   */
  private async flushOnce(): Promise<{ entries: number; more: boolean }> {
    const maxKeys = this.opts.maxKeysPerJob * JOBS_PER_ROUND;
    const readCount = Math.min(MAX_OUTBOX_READ, maxKeys);
    const read = await this.store.outbox.read(readCount);
    if (read.length === 0) return { entries: 0, more: false };
    const entries = takeUpToKeys(read, maxKeys);
    // Every job of the round is due `delayMs` after the round's oldest write: never late.
    let committedAt = Infinity;
    for (const e of entries) committedAt = Math.min(committedAt, e.committedAt);
    const all = entries.every((e) => e.peer === undefined) ? uniqueKeys(entries) : undefined;
    await Promise.all(
      [...this.queues.keys()].map((peer) => {
        const keys = all ?? uniqueKeys(entries.filter((e) => e.peer === undefined || e.peer === peer));
        return keys.length > 0 ? this.enqueue(peer, keys, committedAt) : Promise.resolve();
      }),
    );
    await this.store.outbox.ack(entries);
    return { entries: entries.length, more: entries.length < read.length || read.length === readCount };
  }

  private async enqueue(peer: string, keys: string[], committedAt: number): Promise<void> {
    // A round's jobs for a peer go to one of its queue shards, the shards taking turns:
    // the queue load spreads over the shards (and the cluster's masters) without
    // splitting a round into one small job per shard. Coalescing spans the shards.
    const shards = this.queues.get(peer) as Array<Queue<ReplicationJobData>>;
    const round = this.rounds.get(peer) ?? 0;
    this.rounds.set(peer, round + 1);
    const queue = shards[round % shards.length] as Queue<ReplicationJobData>;
    const tracked = this.tracked.get(peer) as PendingJobs;
    const fresh = await tracked.withoutPending(queue, keys);
    const coalesced = keys.length - fresh.length;
    if (fresh.length === 0) {
      this.hooks.onEnqueued(peer, 0, coalesced, 0);
      return;
    }
    const now = Date.now();
    const delay = Math.max(0, committedAt + drawDelayMs(this.opts.delayMs) - now);
    const opts: JobsOptions = { delay };
    const chunks: string[][] = [];
    for (let i = 0; i < fresh.length; i += this.opts.maxKeysPerJob) chunks.push(fresh.slice(i, i + this.opts.maxKeysPerJob));
    const jobs = await queue.addBulk(chunks.map((chunk) => ({ name: REPLICATION_JOB_NAME, data: { origin: this.origin, keys: chunk, committedAt }, opts })));
    this.hooks.onEnqueued(peer, fresh.length, coalesced, jobs.length);
    for (const job of jobs) {
      if (!job.id) continue;
      tracked.add({ id: job.id, keys: job.data.keys, dueAt: now + delay, ...(shards.length > 1 ? { queue } : {}) });
      if (delay > 0 && this.opts.promptPromotion) this.promoteAt(job, delay);
    }
  }

  /**
   * Forgets finished jobs so the coalescing memory stays bounded by the keys pending, and
   * folds a peer's overdue small jobs into full ones (see {@link COMPACT_MIN_JOBS}).
   */
  private async prune(): Promise<void> {
    try {
      await Promise.all([...this.queues].map(([peer, shards]) => this.pruneOne(peer, shards[0] as Queue<ReplicationJobData>)));
    } catch (error) {
      this.hooks.onError(error);
    }
  }

  private async pruneOne(peer: string, queue: Queue<ReplicationJobData>): Promise<void> {
    const tracked = this.tracked.get(peer) as PendingJobs;
    const overdue = await tracked.prune(queue, OVERDUE_GRACE_MS);
    const small = overdue.filter((job) => job.keys.length < this.opts.maxKeysPerJob / 2);
    if (small.length < COMPACT_MIN_JOBS || this.closed) return;
    // The keys go back to the outbox first (durable), then the small jobs are removed, and
    // the next round enqueues the keys in full jobs through the ordinary coalescing path. A
    // small job that started meanwhile cannot be removed (BullMQ refuses while it is
    // locked) and simply runs. A crash in between costs a duplicate merge, never a write.
    const keys = [...new Set(small.flatMap((job) => job.keys))];
    const committedAt = Math.min(...(await Promise.all(small.map(async (job) => (await (job.queue ?? queue).getJob(job.id))?.data.committedAt ?? Date.now()))));
    await this.store.outbox.requeue(peer, keys, committedAt);
    await Promise.all(
      small.map(async (job) => {
        if ((await (job.queue ?? queue).remove(job.id)) === 1) tracked.forget(job);
      }),
    );
    this.pendingWrites += keys.length;
  }

  /** Jobs and distinct keys the relay remembers per peer (for tests and benchmarks). */
  trackedCounts(peer: string): { jobs: number; keys: number } {
    const t = this.tracked.get(peer);
    return { jobs: t?.size ?? 0, keys: t?.keyCount ?? 0 };
  }

  private promoteAt(job: Job<ReplicationJobData>, delay: number): void {
    const timer = setTimeout(() => {
      this.promotions.delete(timer);
      // Late wake-ups happen only when Redis is idle. While this node is still writing,
      // Redis is busy and wakes the worker on time, so the extra script is skipped.
      if (Date.now() - this.lastWriteAt < BUSY_MS) return;
      // Fails harmlessly when BullMQ already promoted (or a worker already took) the job.
      job.promote().catch(() => undefined);
    }, delay);
    timer.unref();
    this.promotions.add(timer);
  }
}

/** Whole entries (at least one) until their keys reach `maxKeys`. */
function takeUpToKeys(entries: readonly OutboxEntry[], maxKeys: number): OutboxEntry[] {
  const out: OutboxEntry[] = [];
  let keys = 0;
  for (const e of entries) {
    if (out.length > 0 && keys + e.keys.length > maxKeys) break;
    out.push(e);
    keys += e.keys.length;
  }
  return out;
}

function uniqueKeys(entries: readonly OutboxEntry[]): string[] {
  const keys = new Set<string>();
  for (const e of entries) for (const k of e.keys) keys.add(k);
  return [...keys];
}
