/**
 * A replica node: one HLC, one store in its own Redis, one outbox relay producing a queue
 * per peer, and one receiver per peer consuming the queue that peer fills for this node.
 *
 *   put ─► RecordStore (WATCH/MULTI: SET + XADD outbox) ─► ack
 *                       └─► OutboxRelay ─► Queue "to-B" (on A's Redis, delayed job)
 *                                                 └─► B's PeerReceiver ─► merge into B (WATCH/MULTI)
 */
import { EventEmitter } from 'node:events';
import { HybridLogicalClock } from '../clock/hlc.js';
import { AntiEntropyUnavailableError, NodeClosedError } from '../errors/index.js';
import { isLive, toView, type CacheRecord, type JsonValue, type RecordView } from '../record/record.js';
import type { WriteOp } from '../record/write.js';
import { OutboxRelay, type ReplicationJobData } from '../replication/outbox-relay.js';
import { PeerReceiver } from '../replication/peer-receiver.js';
import { keysFor, type KeyBuilder } from '../store/keys.js';
import { NodeLease } from '../store/lease.js';
import { createRedis, closeRedis, connect } from '../store/connections.js';
import { RecordStore, type MergeReport } from '../store/record-store.js';
import { runBatch, toDeleteResult, type BatchOp, type BatchOutcome } from './batch.js';
import { ClusterView } from './cluster-view.js';
import { clusterViewSource } from './cluster-view-source.js';
import { CloseBudget } from './bounded-close.js';
import { NodeMetrics } from './metrics.js';
import { PeerCheck } from './peer-check.js';
import { BadRecordReporter } from './bad-records.js';
import { listBadRecords, type BadRecordEntry } from '../store/quarantine.js';
import { checkKey, checkTtl, checkValue } from './input.js';
import { listPage } from './listing.js';
import { applyRemoteRecords, type RemoteApplyContext } from './remote-apply.js';
import { Resync } from './resync.js';
import { resolveNodeOptions, type ReplicaNodeOptions, type ResolvedNodeOptions } from './options.js';
import { nodeStatus, queueBacklog, type ClusterStatus } from './status.js';
import type { ConflictEvent, DeleteResult, ListOptions, ListPage, PutOptions, ReplicaNodeEvents } from './types.js';
import type { Redis } from 'ioredis';
import { AntiEntropy } from '../anti-entropy/anti-entropy.js';
import type { RoundReport } from '../anti-entropy/exchange.js';
import { AntiEntropyMetrics } from '../anti-entropy/metrics.js';

export type { PutOptions, DeleteResult, ListOptions, ListPage, ReplicatedEvent, ConflictEvent, DriftEvent, ReplicaNodeEvents } from './types.js';
export type { PeerStatus, ClusterStatus } from './status.js';
export type { BatchOp, BatchOutcome } from './batch.js';

export class ReplicaNode extends EventEmitter<ReplicaNodeEvents> {
  readonly id: string;
  readonly clock: HybridLogicalClock;
  readonly metrics: NodeMetrics;
  readonly keys: KeyBuilder;
  readonly options: ResolvedNodeOptions;
  private readonly store: RecordStore;
  private readonly queueConnection: Redis;
  private readonly relay: OutboxRelay;
  private readonly badRecords: BadRecordReporter;
  private readonly receivers: PeerReceiver[] = [];
  private readonly antiEntropy: AntiEntropy;
  /** What the cluster view page shows; see ./cluster-view.ts. */
  readonly view: ClusterView;
  private readonly inflight = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly resyncer: Resync;
  private readonly remote: RemoteApplyContext;
  /** Aborted by close(): wakes waits that would otherwise hold the shutdown. */
  private readonly stopping = new AbortController();
  private readonly lease: NodeLease | undefined;
  private peerCheck: PeerCheck | undefined;

  /** Validates the options synchronously; call {@link ReplicaNode.start} to get a running node. */
  constructor(options: ReplicaNodeOptions) {
    super();
    this.options = resolveNodeOptions(options);
    const o = this.options;
    this.id = o.id;
    this.clock = new HybridLogicalClock(o.id, o.clock);
    this.keys = keysFor(o.prefix, o.id, o.redis, o.clusterPartitions);
    this.store = new RecordStore(o.redis, this.keys, this.clock, o.store, {
      ...o.transactionHooks,
      onRetry: (attempt, reason) => {
        this.metrics.transactionRetries.inc({ reason });
        o.transactionHooks.onRetry?.(attempt, reason);
      },
      onBadRecord: (bad) => this.badRecords.quarantined(bad),
    });
    this.metrics = new NodeMetrics(o.id, () => this.backlogRows());
    this.badRecords = new BadRecordReporter(this.keys, this.store.redis, this.metrics, (error) => this.fail(error));
    this.queueConnection = createRedis(o.redis, 'command', `${o.prefix}:${o.id}:queues`);
    this.remote = { clock: this.clock, store: this.store, keys: this.keys, metrics: this.metrics, events: this, tombstoneRetentionMs: o.store.tombstoneRetentionMs };
    this.resyncer = new Resync({
      receivers: () => this.receivers,
      apply: (peer, records) => this.applyRecords(peer, records),
      markStarted: () => this.store.markStarted(),
      retry: o.replication,
      signal: this.stopping.signal,
      onError: (error) => this.fail(error),
    });
    this.antiEntropy = new AntiEntropy({
      store: this.store,
      prefix: o.prefix,
      clusterPartitions: o.clusterPartitions,
      peers: o.peers,
      options: o.antiEntropy,
      metrics: new AntiEntropyMetrics(this.metrics.registry),
      repair: async (peer, records) => (await this.applyRecords(peer, records)).filter((r) => r.result.changed).length,
      now: () => this.clock.physicalNow(),
      onError: (error) => this.fail(error),
    });
    if (o.leaseTtlMs > 0) this.lease = new NodeLease(o.redis, this.keys.lease, o.id, o.leaseTtlMs, (error) => this.fail(error));
    this.relay = new OutboxRelay(
      this.store,
      o.peers.map((p) => p.id),
      this.queueConnection,
      o.replication,
      {
        onEnqueued: (peer, keys, coalesced, jobs) => {
          if (jobs > 0) this.metrics.replicationJobs.inc({ peer }, jobs);
          this.metrics.replicationKeys.inc({ peer, kind: 'enqueued' }, keys);
          if (coalesced > 0) this.metrics.replicationKeys.inc({ peer, kind: 'coalesced' }, coalesced);
        },
        onError: (error) => this.fail(error),
      },
    );
    this.view = new ClusterView(clusterViewSource(this, this.store.redis, (id) => this.receivers.find((r) => r.peerId === id)?.reader));
    this.on('write', (record) => this.view.touch(record.key));
  }

  /** Creates a node, connects to its Redis (failing with `RedisUnavailableError` if it cannot) and starts replicating. */
  static async start(options: ReplicaNodeOptions): Promise<ReplicaNode> {
    const node = new ReplicaNode(options);
    await node.open();
    return node;
  }

  private async open(): Promise<void> {
    const o = this.options;
    let freshDatabase: boolean;
    try {
      await this.store.connect();
      await connect(this.queueConnection, o.redis, o.store.connectTimeoutMs);
      await this.lease?.acquire(o.store.connectTimeoutMs);
      freshDatabase = await this.store.markStarted();
    } catch (error) {
      await this.lease?.release();
      await this.store.close();
      await closeRedis(this.queueConnection);
      throw error;
    }
    for (const peer of o.peers) {
      this.receivers.push(
        new PeerReceiver(o.id, peer, o.prefix, o.clusterPartitions, o.replication, {
          apply: (records, job) => this.applyFromPeer(peer.id, records, job),
          onPoisoned: (peerId, bad, jobId) => this.badRecords.poisoned(peerId, bad, jobId),
          assertReady: () => this.store.assertConnected(),
          onAttemptFailed: (peerId) => this.metrics.replicationFailures.inc({ peer: peerId }),
          onError: (_peer, error) => this.fail(error),
        }),
      );
    }
    this.relay.start();
    this.antiEntropy.start();
    this.view.start();
    this.peerCheck = new PeerCheck({ selfId: o.id, prefix: o.prefix, clusterPartitions: o.clusterPartitions, redis: o.redis, peers: o.peers, registry: this.metrics.registry, onProblem: (e) => this.fail(e) });
    await this.peerCheck.start(this.store.redis).catch((error: unknown) => this.fail(error));
    // A database without this node's start marker is new or was wiped (e.g. a Redis without
    // persistence restarted): the queues only carry writes made from now on, so pull what
    // the peers already hold. Runs in the background; a peer that is down is retried.
    if (freshDatabase && o.peers.length > 0) this.resyncer.start();
    // The same check after every reconnect: a Redis without persistence that restarted
    // under a running node comes back empty.
    this.store.redis.on('ready', () => void this.resyncer.ifWiped());
    // Jobs that failed for good in an earlier run get another chance now.
    await this.retryFailed().catch((error: unknown) => this.fail(error));
  }

  /** Writes `value` under `key` locally and returns the stored record; peers get it asynchronously. */
  async put(key: string, value: JsonValue, options: PutOptions = {}): Promise<RecordView> {
    this.checkKey(key);
    const valueJson = checkValue(value, this.options.limits);
    const ttlMs = checkTtl(options.ttlMs, this.options.limits);
    const op: WriteOp = ttlMs === undefined ? { kind: 'put', key, valueJson } : { kind: 'put', key, valueJson, ttlMs };
    return toView(await this.write(op));
  }

  /** Deletes `key` by writing a tombstone that replicates like a write. Idempotent. */
  async delete(key: string): Promise<DeleteResult> {
    this.checkKey(key);
    return toDeleteResult(await this.write({ kind: 'delete', key }));
  }

  /** Validates every op (`BatchInputError`, nothing runs), then runs them in order; see ./batch.ts. */
  batch(ops: readonly BatchOp[]): Promise<BatchOutcome[]> {
    this.assertOpen();
    return runBatch(ops, { limits: this.options.limits, get: (key) => this.get(key), writeMany: (writes) => this.writeMany(writes) });
  }

  /** The live value of `key` on this node (possibly stale), or `undefined` if absent, deleted or expired. */
  async get(key: string): Promise<RecordView | undefined> {
    this.checkKey(key);
    const record = await this.track(this.store.read(key));
    return record && isLive(record, this.clock.physicalNow()) ? toView(record) : undefined;
  }

  /** The stored record including tombstones and expired records (for inspection and tests). */
  async getRecord(key: string): Promise<CacheRecord | undefined> {
    this.checkKey(key);
    return this.track(this.store.read(key));
  }

  /**
   * A page of live keys, in Redis SCAN order. Like SCAN, every key that exists for the
   * whole iteration is returned at least once; keys written meanwhile may or may not be.
   */
  async list(options: ListOptions = {}): Promise<ListPage> {
    this.assertOpen();
    return listPage((prefix, cursor, count) => this.track(this.store.scan(prefix, cursor, count)), options);
  }

  /** The newest `limit` conflicts this node resolved, newest first. */
  async conflicts(limit = 50): Promise<ConflictEvent[]> {
    this.assertOpen();
    return this.track(this.store.conflicts(limit));
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** True when this node's Redis answers. */
  ping(): Promise<boolean> {
    return this.store.ping();
  }

  /** Replication backlog and health per peer (see ./status.ts). */
  async status(): Promise<ClusterStatus> {
    this.assertOpen();
    return nodeStatus({
      nodeId: this.id,
      store: this.store,
      peers: this.options.peers,
      queue: (peer) => this.relay.queues.get(peer),
      receiver: (peer) => this.receivers.find((r) => r.peerId === peer)?.status,
      antiEntropy: (peer) => this.antiEntropy.status(peer),
      warnings: () => this.peerCheck?.warnings ?? [],
    });
  }

  /** The newest `limit` unusable records moved out of this store (`quarantined`) or skipped in peers' jobs (`poisoned`). */
  async badRecordList(limit = 50): Promise<{ quarantined: BadRecordEntry[]; poisoned: BadRecordEntry[] }> {
    this.assertOpen();
    return this.track(this.store.guard(() => listBadRecords(this.store.redis, this.keys, limit)));
  }

  /** Re-queues every failed replication job of this node's queues (one per peer). */
  async retryFailed(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.retryJobs({ state: 'failed' })));
  }

  /**
   * Anti-entropy: merges every record each peer holds into this node (pages of 500, one
   * transaction per page). Runs by itself when the node starts on a new or wiped database;
   * call it to repair a node by hand. Resolves with the number of records read per peer.
   */
  async resync(): Promise<Record<string, number>> {
    this.assertOpen();
    return this.track(this.resyncer.once());
  }

  /**
   * One anti-entropy exchange with every peer now (digest comparison, confirmation, repair),
   * then a tombstone-collection pass. Resolves with one report per peer.
   */
  async antiEntropyRound(): Promise<RoundReport[]> {
    this.assertOpen();
    if (!this.store.digest) throw new AntiEntropyUnavailableError(this.id);
    const reports = await this.track(this.antiEntropy.runNow());
    await this.track(this.antiEntropy.collectNow());
    return reports;
  }

  /**
   * Folds the digest log now, so the digest peers read covers every write and merge made so
   * far (it otherwise does within `antiEntropy.foldIntervalMs`). Resolves with the keys folded.
   */
  async foldDigest(): Promise<number> {
    this.assertOpen();
    if (!this.store.digest) throw new AntiEntropyUnavailableError(this.id);
    return this.track(this.antiEntropy.foldNow());
  }

  /** Resolves when the start-up resync of a new or wiped database finished (immediately if none). */
  async resynced(): Promise<void> {
    await this.resyncer.done;
  }

  /** Reads the peers' published peer lists now (also done periodically); see `/cluster` `warnings`. */
  async checkPeers(): Promise<string[]> {
    await this.peerCheck?.check();
    return this.peerCheck?.warnings ?? [];
  }

  /** Hands the outbox to the queues now (normally automatic); resolves once it was empty. */
  flushOutbox(): Promise<void> {
    return this.relay.flush();
  }

  /** The BullMQ queues this node produces (one per peer, or per peer and shard on a cluster), e.g. for a dashboard. */
  get queues() {
    return [...this.relay.queues.values()].flat();
  }

  /**
   * Stops accepting operations, waits for those in flight, hands the outbox to the queues,
   * lets the workers finish their current jobs and closes every connection, all within
   * `closeTimeoutMs` (what is not done by then is abandoned). Idempotent: later calls
   * return the same promise. Nothing acknowledged is lost: what could not be enqueued stays
   * in the outbox for the next start.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const budget = new CloseBudget(this.options.closeTimeoutMs);
      this.stopping.abort();
      await budget.within(Promise.allSettled([...this.inflight, this.resyncer.done]));
      await budget.within(this.antiEntropy.close());
      await budget.within(this.view.close());
      await budget.within(this.relay.close());
      const receivers = Promise.all(this.receivers.map((r) => r.close().catch((error: unknown) => this.fail(error))));
      if (!(await budget.within(receivers))) await Promise.all(this.receivers.map((r) => r.close(true).catch(() => undefined)));
      await this.peerCheck?.close();
      await this.store.close();
      await closeRedis(this.queueConnection);
      await this.lease?.release();
    })();
    return this.closing;
  }

  private write(op: WriteOp): Promise<CacheRecord> {
    return this.writeMany([op])[0] as Promise<CacheRecord>;
  }

  /** Queues `ops` together, so they share a group commit; one promise per op. */
  private writeMany(ops: readonly WriteOp[]): Array<Promise<CacheRecord>> {
    // Checked before the store queues anything: a closed node must not commit unacknowledged writes.
    this.assertOpen();
    return this.store.writeMany(ops).map((p) =>
      this.track(p).then((record) => {
        (record.deleted ? this.metrics.deletes : this.metrics.writes).inc();
        this.relay.notify(1);
        this.emit('write', record);
        return record;
      }),
    );
  }

  private async applyFromPeer(from: string, records: CacheRecord[], job: ReplicationJobData): Promise<void> {
    await this.applyRecords(from, records);
    this.metrics.replicationLag.observe(Math.max(0, Date.now() - job.committedAt) / 1000);
  }

  private applyRecords(from: string, records: CacheRecord[]): Promise<MergeReport[]> {
    return applyRemoteRecords(this.remote, from, records);
  }

  private async backlogRows(): Promise<Array<{ peer: string; state: string; count: number }>> {
    const rows: Array<{ peer: string; state: string; count: number }> = [];
    const outbox = await this.store.outbox.length();
    for (const [peer, queue] of this.relay.queues) {
      const { counts } = await queueBacklog(queue, false);
      for (const [state, count] of Object.entries(counts)) rows.push({ peer, state, count });
      rows.push({ peer, state: 'outbox', count: outbox });
    }
    return rows;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.assertOpen();
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private assertOpen(): void {
    if (this.closing) throw new NodeClosedError(this.id);
  }

  private checkKey(key: unknown): asserts key is string {
    this.assertOpen();
    checkKey(key, this.options.limits);
  }

  private fail(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    // An 'error' event without a listener would crash the process; background failures
    // are also visible in metrics and /cluster, so they are only emitted when someone listens.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}
