/**
 * Consumer side of replication: a BullMQ worker on a peer's Redis that takes the jobs the
 * peer queued for this node ("to-<self>"), reads the peer's current records for the job's
 * keys and merges them into this node's store.
 *
 * A job that cannot be applied (this node's Redis is down, say) throws, and BullMQ retries
 * it with capped exponential backoff for as long as it takes; nothing is ever dropped.
 * Jobs that exhaust even that, or fail for good, stay in the failed set, visible in the
 * dashboard and re-queued by `retryFailed()` and at every start.
 */
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { closeRedis, createRedis, waitUntilReady, type RedisTarget } from '../store/connections.js';
import { keysFor, type KeyBuilder, replicationQueueName } from '../store/keys.js';
import { readRecords, scanRecords } from '../store/record-store.js';
import type { BadRecord } from '../store/quarantine.js';
import type { CacheRecord } from '../record/record.js';
import { retryDelayMs, type ReplicationOptions } from './options.js';
import type { ReplicationJobData } from './outbox-relay.js';

export interface PeerReceiverHooks {
  /** Applies the records; throwing makes BullMQ retry the job. */
  apply(records: CacheRecord[], job: ReplicationJobData): Promise<void>;
  /**
   * The peer's records for these keys are unusable (see `store/quarantine.ts`); the job's
   * other keys were applied. Must record them durably (the poison list); throwing makes
   * BullMQ retry the job, which is harmless because merges are idempotent.
   */
  onPoisoned(peer: string, bad: readonly BadRecord[], jobId: string | undefined): Promise<void>;
  /** Throws at once while this node's own Redis is not connected: the job fails fast and is retried. */
  assertReady(): void;
  onAttemptFailed(peer: string, error: Error, attemptsMade: number): void;
  onError(peer: string, error: unknown): void;
}

/** What this node knows about its link from one peer. */
export interface ReceiverStatus {
  /** Failed attempts since start (each is retried). */
  readonly retries: number;
  /** Message of the most recent failure, if any. */
  readonly lastError?: string;
  readonly lastErrorAt?: number;
}

export class PeerReceiver {
  readonly peerId: string;
  /** One worker per queue shard of the peer (one on a standalone store). */
  readonly workers: Array<Worker<ReplicationJobData>> = [];
  private readonly workerConnection: Redis;
  /** Command connection to the peer's Redis (reads its records; also used by the cluster view). */
  readonly reader: Redis;
  private readonly sourceKeys: KeyBuilder;
  private readonly sourceTarget: RedisTarget;
  private retries = 0;
  private lastError: { message: string; at: number } | undefined;

  constructor(selfId: string, peer: { id: string; redis: RedisTarget }, prefix: string, clusterPartitions: number, options: ReplicationOptions, hooks: PeerReceiverHooks) {
    this.peerId = peer.id;
    this.sourceKeys = keysFor(prefix, peer.id, peer.redis, clusterPartitions);
    this.sourceTarget = peer.redis;
    this.workerConnection = createRedis(peer.redis, 'worker', `${prefix}:${selfId}:from-${peer.id}`);
    this.reader = createRedis(peer.redis, 'command', `${prefix}:${selfId}:read-${peer.id}`);
    // Connect in the background: a peer whose Redis is down must not stop this node starting.
    this.workerConnection.connect().catch(() => undefined);
    this.reader.connect().catch(() => undefined);

    for (let shard = 0; shard < this.sourceKeys.queueShards; shard++) {
      const worker = new Worker<ReplicationJobData>(replicationQueueName(selfId, shard), (job) => this.process(job), {
        connection: this.workerConnection,
        prefix: this.sourceKeys.queuePrefix(shard),
        concurrency: options.concurrency,
        // A job whose worker died is handed out again instead of failing after one stall.
        maxStalledCount: 1_000_000,
        settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade, options) },
      });
      worker.on('failed', (job, error) => {
        this.retries += 1;
        this.lastError = { message: error.message, at: Date.now() };
        hooks.onAttemptFailed(peer.id, error, job?.attemptsMade ?? 0);
      });
      worker.on('error', (error) => hooks.onError(peer.id, error));
      this.workers.push(worker);
    }
    this.hooks = hooks;
  }

  private readonly hooks: PeerReceiverHooks;

  get status(): ReceiverStatus {
    return this.lastError
      ? { retries: this.retries, lastError: this.lastError.message, lastErrorAt: this.lastError.at }
      : { retries: this.retries };
  }

  private async process(job: Job<ReplicationJobData>): Promise<void> {
    // Failing before reading keeps the attempt short while this node's Redis is away, so
    // later writes to the job's keys find it delayed (for its retry) and coalesce into it.
    this.hooks.assertReady();
    await waitUntilReady(this.reader, this.sourceTarget, 2_000);
    const bad: BadRecord[] = [];
    const records = await readRecords(this.reader, this.sourceKeys, job.data.keys, (b) => bad.push(b));
    await this.hooks.apply(records, job.data);
    if (bad.length === 0) return;
    await this.hooks.onPoisoned(this.peerId, bad, job.id);
    // Also on the job itself, so the dashboard shows why those keys were not applied.
    for (const b of bad) await job.log(`skipped ${JSON.stringify(b.key)}: ${b.reason} (${b.detail})`).catch(() => undefined);
  }

  /**
   * Anti-entropy: reads every record the peer holds, page by page, and hands each page to
   * `apply`. Used when this node's database is new or was wiped, so it recovers writes it
   * can no longer receive through the queues.
   */
  async pullAll(apply: (records: CacheRecord[]) => Promise<void>, pageSize = 500): Promise<number> {
    let cursor = '0';
    let total = 0;
    do {
      await waitUntilReady(this.reader, this.sourceTarget, 2_000);
      const bad: BadRecord[] = [];
      const page = await scanRecords(this.reader, this.sourceKeys, '', cursor, pageSize, (b) => bad.push(b));
      if (page.records.length > 0) await apply(page.records);
      if (bad.length > 0) await this.hooks.onPoisoned(this.peerId, bad, undefined);
      total += page.records.length;
      cursor = page.cursor;
    } while (cursor !== '0');
    return total;
  }

  /**
   * Stops taking jobs, waits for the ones in progress (not with `force`: a job cut off is
   * handed out again later, as after a crash), closes the connections.
   */
  async close(force = false): Promise<void> {
    if (force) {
      await Promise.all([closeRedis(this.workerConnection), closeRedis(this.reader)]);
      await Promise.all(this.workers.map((w) => w.close(true).catch(() => undefined)));
      return;
    }
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([closeRedis(this.workerConnection), closeRedis(this.reader)]);
  }
}

