/**
 * One node's records in its own Redis database.
 *
 * - Local writes are group-committed: writes that arrive while a transaction is in flight
 *   share the next WATCH/MULTI/EXEC, and the same MULTI appends the batch's keys to the
 *   outbox stream and raises the persisted clock high-water mark. A write is acknowledged
 *   only after EXEC, so an acknowledged write always has its outbox entry (crash safety).
 * - Remote records are merged with the pure `merge` inside optimistic transactions.
 * - Tombstones and expired records stay until retention passed and every peer has them
 *   (`src/anti-entropy/collector.ts`), so late, older writes cannot resurrect them.
 * - The same MULTI logs the keys for the anti-entropy digest's fold (`digest-fold.ts`).
 */
import type { Redis } from 'ioredis';
import type { HybridLogicalClock } from '../clock/hlc.js';
import { formatTimestamp, parseTimestamp } from '../clock/timestamp.js';
import type { RedisUnavailableError } from '../errors/index.js';
import { groupBy } from './group-by.js';
import { replicaWait } from './replica-wait.js';
import { merge, type Conflict, type MergeResult } from '../record/merge.js';
import { isLive, type CacheRecord } from '../record/record.js';
import { localWrite, type WriteOp } from '../record/write.js';
import { closeRedis, connect, createRedis, createTransactionPool, isConnectionError, unavailable, type RedisTarget, type TransactionConnection, type TransactionConnections } from './connections.js';
import { KeyLocks } from './key-locks.js';
import type { KeyBuilder } from './keys.js';
import { optimisticTransaction, type TransactionHooks, type TransactionPlan } from './transaction.js';
import { decodeAll, decodeStored, queueQuarantine, type BadRecord } from './quarantine.js';
import { ensureDigest, queueRecordWrites, type RecordWriteContext } from './digest-store.js';
import { queueLogEntry, type Folder } from './digest-fold.js';
import { createFolder } from './fold-thread.js';
import { digestShape, type DigestShape } from '../digest/digest.js';
import { readRecords, scanRecords } from './record-reads.js';
import { resolveStoreOptions, type StoreOptions } from './store-options.js';
import { Outbox } from './outbox.js';
import { WriteQueue } from './write-queue.js';

export { readRecords, scanRecords } from './record-reads.js';
export { DEFAULT_STORE_OPTIONS, type StoreOptions } from './store-options.js';
export type { OutboxEntry } from './outbox.js';

export interface StoreHooks extends TransactionHooks {
  /** An unusable record of this store was moved to the quarantine list (the key is writable again). */
  onBadRecord?: (bad: BadRecord) => void;
}

/** A logged conflict: which concurrent write lost to which, where and when. */
export interface ConflictEntry extends Conflict {
  /** The node that observed the conflict. */
  readonly node: string;
  /** When it was observed, ms since the epoch (this node's clock). */
  readonly at: number;
}

/** One merged record and what the merge decided. */
export interface MergeReport {
  readonly incoming: CacheRecord;
  readonly result: MergeResult;
}

interface PendingWrite {
  readonly op: WriteOp;
  readonly resolve: (record: CacheRecord) => void;
  readonly reject: (error: unknown) => void;
}

export class RecordStore {
  readonly keys: KeyBuilder;
  readonly target: RedisTarget;
  /** Connection for reads, the outbox and BullMQ's queues; never used for a WATCH. */
  readonly redis: Redis;
  /** Connection for digest upkeep (folds, rebuilds, verification): MULTIs and pipelines, no WATCH. */
  readonly digestRedis: Redis;
  private readonly clock: HybridLogicalClock;
  private readonly opts: StoreOptions;
  private readonly hooks: StoreHooks;
  /** Keys whose unusable record is being moved aside after a read. */
  private readonly settingAside = new Set<string>();
  private readonly pool: TransactionConnections;
  private readonly locks = new KeyLocks();
  /** Accepted local writes, waiting for their group commit (see `write-queue.ts`). */
  private readonly writes: WriteQueue<PendingWrite>;
  /** The outbox streams, one per partition (see `outbox.ts`). */
  readonly outbox: Outbox;
  /** The digest's shape; `undefined` when digest upkeep is off. */
  readonly digest: DigestShape | undefined;
  /** Folds the digest log into the digest peers read (`undefined` when digest upkeep is off). */
  readonly folder: Folder | undefined;
  private readonly writeContext: RecordWriteContext;

  constructor(target: RedisTarget, keys: KeyBuilder, clock: HybridLogicalClock, options: Partial<StoreOptions> = {}, hooks: StoreHooks = {}) {
    this.opts = resolveStoreOptions(options);
    if (this.opts.digestLeaves !== 0) this.digest = digestShape(this.opts.digestLeaves);
    this.writeContext = { keys, tombstoneRetentionMs: this.opts.tombstoneRetentionMs, digest: this.digest !== undefined };
    this.target = target;
    this.keys = keys;
    this.clock = clock;
    this.hooks = hooks;
    this.redis = createRedis(target, 'command', `${keys.prefix}:${keys.nodeId}:main`);
    this.digestRedis = createRedis(target, 'transaction', `${keys.prefix}:${keys.nodeId}:digest`);
    this.pool = createTransactionPool(target, this.redis, this.opts.transactionPoolSize, `${keys.prefix}:${keys.nodeId}`);
    this.writes = new WriteQueue({
      partitions: keys.partitions,
      partitionOf: (key) => keys.partition(key),
      maxBatch: this.opts.maxWriteBatch,
      minConcurrentBatch: this.opts.minConcurrentBatch,
      slots: () => this.pool.size,
      commit: (partition, batch) => this.commitBatch(partition, batch),
    });
    this.outbox = new Outbox(this.redis, keys, (fn) => this.guard(fn));
    if (this.digest) this.folder = createFolder(target, this.digestRedis, keys, this.digest, this.opts, (watch, plan) => this.transact(watch, plan));
    this.waitForReplicas = replicaWait(this.opts.waitReplicas, this.opts.waitTimeoutMs);
  }

  get options(): Readonly<StoreOptions> {
    return this.opts;
  }

  /** With `waitReplicas`, the Redis `WAIT` after each local commit (see `replica-wait.ts`). */
  private readonly waitForReplicas: ((connection: TransactionConnection) => Promise<void>) | undefined;

  /** Connects every connection and restores the clock's persisted high-water mark. */
  async connect(): Promise<void> {
    await connect(this.redis, this.target, this.opts.connectTimeoutMs);
    await connect(this.digestRedis, this.target, this.opts.connectTimeoutMs);
    await this.pool.connect(this.opts.connectTimeoutMs);
    const marks = await Promise.all(this.partitionList().map((p) => this.redis.zscore(this.keys.clock(p), 'hwm')));
    const hwm = Math.max(...marks.map((m) => (m === null ? -Infinity : Number(m))));
    if (Number.isFinite(hwm)) this.clock.restore(hwm);
    await ensureDigest(this.digestRedis, this.keys, this.folder);
  }

  /**
   * Runs an optimistic transaction over `redisKeys` with this store's connections, key
   * locks and retry policy (for the collector and digest repairs beside this class);
   * `afterExec` runs on its connection after a successful EXEC.
   */
  transact<T>(redisKeys: readonly string[], plan: (values: ReadonlyArray<string | null>) => TransactionPlan<T>, afterExec?: (connection: TransactionConnection) => Promise<void>): Promise<T> {
    return optimisticTransaction(this.pool, this.target, redisKeys, plan, { maxRetries: this.opts.maxTransactionRetries, locks: this.locks, ...this.hooks, afterExec });
  }

  /** Runs `fn` holding this process's locks on `redisKeys`: no write or merge of these keys runs meanwhile. */
  async withKeyLocks<T>(redisKeys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unlock = await this.locks.acquire(redisKeys);
    try {
      return await fn();
    } finally {
      unlock();
    }
  }

  async close(): Promise<void> {
    await this.folder?.close();
    await this.pool.close();
    await closeRedis(this.redis);
    await closeRedis(this.digestRedis);
  }

  /** True when Redis answers PING. */
  async ping(): Promise<boolean> {
    if (this.redis.status !== 'ready') return false;
    try {
      return (await Promise.race([this.redis.ping(), new Promise((r) => setTimeout(() => r('timeout'), 1_000))])) === 'PONG';
    } catch {
      return false;
    }
  }

  /** Throws {@link RedisUnavailableError} at once (no waiting) while the main connection is down. */
  assertConnected(): void {
    if (this.redis.status !== 'ready') throw unavailable(this.target, new Error(`connection is ${this.redis.status}`));
  }

  /** The stored record of `key`, tombstones and expired records included. */
  async read(key: string): Promise<CacheRecord | undefined> {
    const raw = await this.guard(() => this.redis.get(this.keys.record(key)));
    if (raw === null) return undefined;
    const decoded = decodeStored(key, this.keys.record(key), raw);
    if (decoded.bad) this.setAside(decoded.bad);
    return decoded.record;
  }

  /** Records of several keys in one round trip (absent keys are skipped). */
  readMany(keys: readonly string[]): Promise<CacheRecord[]> {
    return this.guard(() => readRecords(this.redis, this.keys, keys, (bad) => this.setAside(bad)));
  }

  /**
   * Commits a local write or delete and resolves with the stored record once EXEC
   * succeeded. Deleting a key that is already a tombstone returns that tombstone unchanged.
   */
  write(op: WriteOp): Promise<CacheRecord> {
    return new Promise((resolve, reject) => {
      this.writes.push({ op, resolve, reject });
      this.writes.pump();
    });
  }

  /**
   * Like {@link write} for each op, but all are queued before a transaction starts, so they
   * share one group commit (or `maxWriteBatch`-sized ones): one promise per op, in order.
   */
  writeMany(ops: readonly WriteOp[]): Array<Promise<CacheRecord>> {
    const promises = ops.map((op) => new Promise<CacheRecord>((resolve, reject) => this.writes.push({ op, resolve, reject })));
    this.writes.pump();
    return promises;
  }

  /** Number of local writes accepted but not yet committed. */
  get pendingWrites(): number {
    return this.writes.size;
  }

  /** The partition numbers, 0 … partitions − 1. */
  partitionList(): number[] {
    return Array.from({ length: this.keys.partitions }, (_, i) => i);
  }

  private async commitBatch(partition: number, batch: PendingWrite[]): Promise<void> {
    const userKeys = [...new Set(batch.map((w) => w.op.key))];
    const redisKeys = userKeys.map((k) => this.keys.record(k));
    let found: BadRecord[] = [];
    try {
      const records = await this.transact(
        redisKeys,
        (values) => {
          // Per key: an unusable record counts as absent and is moved aside in this MULTI.
          const { records: stored, bad } = decodeAll(userKeys, redisKeys, values);
          const current = new Map<string, CacheRecord | undefined>(stored);
          found = bad;
          const changed = new Set<string>();
          const nowMs = this.clock.physicalNow();
          const results = batch.map(({ op }) => {
            const existing = current.get(op.key);
            if (op.kind === 'delete' && existing?.deleted) return existing;
            const ts = existing ? this.clock.after(parseTimestamp(existing.hlc)) : this.clock.now();
            const record = localWrite(existing, op, formatTimestamp(ts), this.clock.nodeId, nowMs);
            current.set(op.key, record);
            changed.add(op.key);
            return record;
          });
          if (changed.size === 0 && bad.length === 0) return { result: results };
          return {
            result: results,
            write: (multi) => {
              queueQuarantine(multi, this.keys, bad, nowMs, true);
              const keysJson = JSON.stringify([...changed]);
              queueRecordWrites(multi, this.writeContext, [...changed].map((key) => current.get(key) as CacheRecord), keysJson);
              multi.xadd(this.keys.outbox(partition), '*', 't', String(Date.now()), 'k', keysJson);
              // The clock's own mark, not the records' walls: a write stamped after a
              // far-future record (beyond maxDriftMs) must not drag the restarted clock there.
              multi.zadd(this.keys.clock(partition), 'GT', this.clock.last.wallMs, 'hwm');
            },
          };
        },
        this.waitForReplicas,
      );
      this.outbox.committed(partition);
      batch.forEach((w, i) => w.resolve(records[i] as CacheRecord));
      for (const bad of found) this.hooks.onBadRecord?.(bad);
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }

  /**
   * Merges records received from a peer. Records for the same key are folded in order;
   * the whole batch commits in one transaction (or is retried as a whole).
   */
  async applyRemote(incoming: readonly CacheRecord[]): Promise<MergeReport[]> {
    if (incoming.length === 0) return [];
    if (this.keys.partitions === 1) return this.applyInPartition(incoming);
    // One transaction per partition (one slot on a cluster), all at once; reports in order.
    const groups = groupBy(incoming, (r) => this.keys.partition(r.key));
    const byRecord = new Map<CacheRecord, MergeReport>();
    await Promise.all(
      [...groups.values()].map(async (records) => {
        for (const report of await this.applyInPartition(records)) byRecord.set(report.incoming, report);
      }),
    );
    return incoming.map((r) => byRecord.get(r) as MergeReport);
  }

  private async applyInPartition(incoming: readonly CacheRecord[]): Promise<MergeReport[]> {
    const partition = this.keys.partition((incoming[0] as CacheRecord).key);
    const userKeys = [...new Set(incoming.map((r) => r.key))];
    const redisKeys = userKeys.map((k) => this.keys.record(k));
    let found: BadRecord[] = [];
    const reports = await this.transact(redisKeys, (values) => {
      // An unusable local record counts as absent: the incoming one repairs the key.
      const { records: stored, bad } = decodeAll(userKeys, redisKeys, values);
      const current = new Map<string, CacheRecord | undefined>(stored);
      found = bad;
      const changed = new Set<string>();
      const conflicts: ConflictEntry[] = [];
      const nowMs = this.clock.physicalNow();
      const reports = incoming.map((record) => {
        const result = merge(current.get(record.key), record);
        if (result.changed) {
          current.set(record.key, result.record);
          changed.add(record.key);
        }
        if (result.conflict) conflicts.push({ ...result.conflict, node: this.keys.nodeId, at: nowMs });
        return { incoming: record, result };
      });
      if (changed.size === 0 && conflicts.length === 0 && bad.length === 0) return { result: reports };
      return {
        result: reports,
        write: (multi) => {
          queueQuarantine(multi, this.keys, bad, nowMs, true);
          queueRecordWrites(multi, this.writeContext, [...changed].map((key) => current.get(key) as CacheRecord));
          if (conflicts.length > 0) {
            multi.lpush(this.keys.conflicts(partition), ...conflicts.map((c) => JSON.stringify(c)));
            multi.ltrim(this.keys.conflicts(partition), 0, this.opts.conflictLogSize - 1);
          }
        },
      };
    });
    for (const bad of found) this.hooks.onBadRecord?.(bad);
    return reports;
  }

  /**
   * Moves an unusable record found by a read to the quarantine list, in a transaction of
   * its own that leaves the key alone if it changed meanwhile. Runs in the background;
   * when it fails the next access tries again.
   */
  private setAside(bad: BadRecord): void {
    if (this.settingAside.has(bad.key)) return;
    this.settingAside.add(bad.key);
    this.transact([bad.redisKey], ([raw]) =>
      raw === bad.raw
        ? {
            result: true,
            write: (multi) => {
              queueQuarantine(multi, this.keys, [bad], this.clock.physicalNow(), true);
              // The record leaves the digest with it, so the tree sums stay exact.
              if (this.digest) queueLogEntry(multi, this.keys, this.keys.partition(bad.key), JSON.stringify([bad.key]));
            },
          }
        : { result: false },
    )
      .then((moved) => moved && this.hooks.onBadRecord?.(bad))
      .catch(() => undefined)
      .finally(() => this.settingAside.delete(bad.key));
  }

  /** The newest `limit` conflicts, newest first. */
  async conflicts(limit: number): Promise<ConflictEntry[]> {
    const lists = await this.guard(() => Promise.all(this.partitionList().map((p) => this.redis.lrange(this.keys.conflicts(p), 0, Math.max(0, limit - 1)))));
    // Each partition's list is newest first; merged, newest first across partitions.
    const rows = lists.flat().map((r) => JSON.parse(r) as ConflictEntry);
    return lists.length === 1 ? rows : rows.sort((a, b) => b.at - a.at).slice(0, limit);
  }

  /**
   * One page of live records whose keys start with `keyPrefix`, in Redis SCAN order.
   * Like SCAN, a key present for the whole iteration is returned at least once.
   */
  async scan(keyPrefix: string, cursor: string, count: number): Promise<{ records: CacheRecord[]; cursor: string }> {
    const page = await this.guard(() => scanRecords(this.redis, this.keys, keyPrefix, cursor, count, (bad) => this.setAside(bad)));
    const nowMs = this.clock.physicalNow();
    return { records: page.records.filter((r) => isLive(r, nowMs)), cursor: page.cursor };
  }

  /** True when this node has never written its start marker (a new or wiped database). */
  async markStarted(): Promise<boolean> {
    const created = await this.guard(() => this.redis.set(this.keys.meta, JSON.stringify({ firstStart: Date.now() }), 'NX'));
    return created === 'OK';
  }

  /** Runs a command on the shared connection, turning "Redis is away" into {@link RedisUnavailableError}. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isConnectionError(error)) {
        throw unavailable(this.target, error);
      }
      throw error;
    }
  }
}

