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
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { OutboxEntry, RecordStore } from '../store/record-store.js';
import { replicationQueueName } from '../store/keys.js';
import { drawDelayMs, type ReplicationOptions } from './options.js';

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
/** Upper bound on the relay's batching window. */
const MAX_WINDOW_MS = 50;
/** Outbox entries read per round; each holds one group-committed batch of keys. */
const OUTBOX_READ_COUNT = 128;
export const REPLICATION_JOB_NAME = 'replicate';
/** BullMQ's attempts field must be finite; this is "never give up" in practice (2^31 - 1 tries). */
export const UNLIMITED_ATTEMPTS = 2_147_483_647;

interface TrackedJob {
  readonly id: string;
  readonly dueAt: number;
  readonly keys: readonly string[];
}

export interface RelayHooks {
  onEnqueued(peer: string, keys: number, coalesced: number): void;
  onError(error: unknown): void;
}

export class OutboxRelay {
  readonly queues = new Map<string, Queue<ReplicationJobData>>();
  private readonly store: RecordStore;
  private readonly opts: ReplicationOptions;
  private readonly hooks: RelayHooks;
  private readonly origin: string;
  /** Per peer: jobs not yet due, oldest first, and which of them holds each key. */
  private readonly tracked = new Map<string, { jobs: TrackedJob[]; byKey: Map<string, TrackedJob> }>();
  private readonly promotions = new Set<NodeJS.Timeout>();
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Keys notified since the last pass started. */
  private pendingWrites = 0;
  /** When this node last committed a write (ms). */
  private lastWriteAt = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(store: RecordStore, peers: readonly string[], connection: Redis, options: ReplicationOptions, hooks: RelayHooks) {
    this.store = store;
    this.opts = options;
    this.hooks = hooks;
    this.origin = store.keys.nodeId;
    for (const peer of peers) {
      const queue = new Queue<ReplicationJobData>(replicationQueueName(peer), {
        connection,
        prefix: store.keys.queuePrefix,
        // Nothing here reads BullMQ's event stream; keep it short (default 10,000 entries).
        streams: { events: { maxLen: EVENTS_MAX_LEN } },
        defaultJobOptions: {
          attempts: UNLIMITED_ATTEMPTS,
          backoff: { type: 'replication' },
          removeOnComplete: { count: options.keepCompletedJobs },
          removeOnFail: false,
        },
      });
      queue.on('error', (error) => hooks.onError(error));
      this.queues.set(peer, queue);
      this.tracked.set(peer, { jobs: [], byKey: new Map() });
    }
  }

  /** Starts the periodic sweep and drains whatever a previous run left in the outbox. */
  start(): void {
    this.sweepTimer = setInterval(() => this.notify(0), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
    void this.run(true);
  }

  /**
   * `writes` keys were committed to the outbox. The relay waits for the batching window
   * (half the smallest delay, at most 50 ms) to gather more, or flushes at once when a full
   * job's worth is waiting. The wait never delays delivery: a job's delay is counted from
   * its oldest write, so every write is applied about `delayMs` after it committed or
   * sooner, and a busy node sends at most one job per peer per window.
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
      full ? 0 : this.windowMs,
    );
  }

  private get windowMs(): number {
    const d = this.opts.delayMs;
    return Math.min(MAX_WINDOW_MS, Math.floor((typeof d === 'number' ? d : d.min) / 2));
  }

  /**
   * One relay pass. Outside a drain it stops once less than a full job is left (the window
   * gathers the rest); a drain (start, close, `flush()`) goes on until the outbox is empty.
   */
  private run(drain: boolean): Promise<void> {
    if (this.running) return drain ? this.running.then(() => this.run(true)) : this.running;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = (async () => {
      try {
        this.pendingWrites = 0;
        for (;;) {
          const moved = await this.flushOnce();
          if (moved === 0 || (!drain && moved < this.opts.maxKeysPerJob)) break;
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
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
  }

  /** One batch: returns how many keys it moved (0 when the outbox was empty). */
  private async flushOnce(): Promise<number> {
    const read = await this.store.readOutbox(OUTBOX_READ_COUNT);
    if (read.length === 0) return 0;
    const entries = takeUpToKeys(read, this.opts.maxKeysPerJob);
    const keys = uniqueKeys(entries);
    const committedAt = Math.min(...entries.map((e) => e.committedAt));
    await Promise.all([...this.queues.keys()].map((peer) => this.enqueue(peer, keys, committedAt)));
    await this.store.ackOutbox(entries.map((e) => e.id));
    return keys.length;
  }

  private async enqueue(peer: string, keys: string[], committedAt: number): Promise<void> {
    const queue = this.queues.get(peer) as Queue<ReplicationJobData>;
    const fresh = await this.withoutKeysAlreadyPending(peer, queue, keys);
    const coalesced = keys.length - fresh.length;
    if (fresh.length === 0) {
      this.hooks.onEnqueued(peer, 0, coalesced);
      return;
    }
    const now = Date.now();
    const delay = Math.max(0, committedAt + drawDelayMs(this.opts.delayMs) - now);
    const job = await queue.add(REPLICATION_JOB_NAME, { origin: this.origin, keys: fresh, committedAt }, { delay });
    this.hooks.onEnqueued(peer, fresh.length, coalesced);
    if (delay > 0 && job.id) {
      this.track(peer, { id: job.id, dueAt: now + delay, keys: fresh });
      if (this.opts.promptPromotion) this.promoteAt(job, delay);
    }
  }

  /**
   * Drops keys that sit in a job of this peer's queue that has not started: that job will
   * read the key's current record, which already includes this write. A job is trusted
   * only after Redis confirms it is still delayed or waiting; the write committed before
   * that check, so even a job that starts right after it reads the write.
   */
  private async withoutKeysAlreadyPending(peer: string, queue: Queue<ReplicationJobData>, keys: string[]): Promise<string[]> {
    const t = this.tracked.get(peer) as { jobs: TrackedJob[]; byKey: Map<string, TrackedJob> };
    const now = Date.now();
    while (t.jobs.length > 0 && (t.jobs[0] as TrackedJob).dueAt <= now) {
      const done = t.jobs.shift() as TrackedJob;
      for (const k of done.keys) if (t.byKey.get(k) === done) t.byKey.delete(k);
    }
    const candidates = new Set<TrackedJob>();
    for (const k of keys) {
      const job = t.byKey.get(k);
      if (job) candidates.add(job);
    }
    if (candidates.size === 0) return keys;
    const notStarted = new Set<TrackedJob>();
    await Promise.all(
      [...candidates].map(async (job) => {
        const state = await queue.getJobState(job.id);
        if (state === 'delayed' || state === 'waiting' || state === 'prioritized') notStarted.add(job);
      }),
    );
    return keys.filter((k) => {
      const job = t.byKey.get(k);
      return !(job && notStarted.has(job));
    });
  }

  private track(peer: string, job: TrackedJob): void {
    const t = this.tracked.get(peer) as { jobs: TrackedJob[]; byKey: Map<string, TrackedJob> };
    t.jobs.push(job);
    for (const k of job.keys) t.byKey.set(k, job);
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
