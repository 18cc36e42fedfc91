/**
 * Anti-entropy for one node: periodic exchanges with every peer, tombstone collection and
 * digest verification. Rounds and collection run one at a time on one chain, so they never
 * compete (and a collected tombstone can never race a repair of the same key). Folds and
 * the second half of verification run one at a time on a second chain: its check of the
 * tree against the entries must not see a fold midway (the first half, records against
 * entries, runs beside folds), but a fold must not wait out a round's
 * confirmation delay either (the log would grow meanwhile, and a fold asked for, as by
 * `foldDigest()`, would wait seconds). A round reads the local digest while folds commit,
 * as it reads the peer's while the peer folds: each fold commits atomically, and a
 * difference it makes or hides for a moment is settled by the second look or the next round.
 *
 * Triggers: node start, every `intervalMs` after the previous pass (every 2 s in the first
 * minute while a peer keeps no digest yet: it is starting too), a peer's Redis coming
 * back after a failure (its reader reconnects), this node's own Redis coming back (it may
 * have been restored from a snapshot), and `runNow()` (`POST /admin/anti-entropy`, the
 * `repair` CLI). Tombstone collection has its own interval; verification runs every
 * `verifyIntervalMs`.
 */
import type { Redis } from 'ioredis';
import type { CacheRecord } from '../record/record.js';
import { closeRedis, createRedis, type RedisTarget } from '../store/connections.js';
import { keysFor, type KeyBuilder } from '../store/keys.js';
import type { RecordStore } from '../store/record-store.js';
import { Serial } from '../store/serial.js';
import { collectTombstones, type CollectReport } from './collector.js';
import { exchange, type RoundReport, type RoundResult } from './exchange.js';
import type { AntiEntropyMetrics } from './metrics.js';
import type { AntiEntropyOptions } from './options.js';
import { verifyDigest } from './verify.js';
import { FOLD_STEP_ENTRIES } from '../store/digest-fold.js';

/** What `/cluster` shows per peer about anti-entropy. */
export interface PeerAntiEntropyStatus {
  /** Start of the last exchange with the peer (ms since the epoch); absent before the first. */
  lastRoundAt?: number;
  result?: RoundResult;
  /** Records changed by the last exchange. */
  keysRepaired: number;
  /** Tombstones past retention waiting for this peer's acknowledgement (last collection pass). */
  tombstonesPending: number;
  lastError?: string;
}

/**
 * A fold of at least this many keys (about one full step at c=64) means a heavy write load:
 * fold again after {@link BUSY_FOLD_INTERVAL_MS}, so the log stays near one step. Smaller
 * folds wait the interval: a fold costs a command per bucket it touches, so folding few
 * keys often costs more per key.
 */
const BUSY_FOLD_KEYS = 20_000;
const BUSY_FOLD_INTERVAL_MS = 250;

export interface AntiEntropyDeps {
  readonly store: RecordStore;
  readonly prefix: string;
  /** Partitions of a cluster store (the peers' key names depend on it). */
  readonly clusterPartitions: number;
  readonly peers: ReadonlyArray<{ id: string; redis: RedisTarget }>;
  readonly options: AntiEntropyOptions;
  readonly metrics: AntiEntropyMetrics;
  /** Merges records pulled from `peerId` through the node's normal merge path; resolves with records changed. */
  readonly repair: (peerId: string, records: CacheRecord[]) => Promise<number>;
  readonly now: () => number;
  readonly onError: (error: unknown) => void;
}

interface Peer {
  readonly id: string;
  readonly redis: Redis;
  readonly keys: KeyBuilder;
  status: PeerAntiEntropyStatus;
}

/** How long after start a peer found without a digest is looked at again sooner. */
const STARTUP_MS = 60_000;
/** How soon, then. */
const STARTUP_RETRY_MS = 2_000;

export class AntiEntropy {
  private readonly deps: AntiEntropyDeps;
  private readonly peers: Peer[];
  /** Rounds and collection. */
  private readonly chain = new Serial();
  /** Folds and verification. */
  private readonly digestChain = new Serial();
  private roundQueued: Promise<RoundReport[]> | undefined;
  private timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly wakers = new Set<() => void>();
  private lastVerifyAt: number;
  private lastHeartbeat: number | undefined;
  private restoredAt: number | undefined;
  /** Keys the last fold folded. */
  private lastFolded = 0;

  constructor(deps: AntiEntropyDeps) {
    this.deps = deps;
    this.lastVerifyAt = deps.now();
    this.peers = deps.peers.map((p) => ({
      id: p.id,
      redis: createRedis(p.redis, 'command', `${deps.prefix}:${deps.store.keys.nodeId}:ae-${p.id}`),
      keys: keysFor(deps.prefix, p.id, p.redis, deps.clusterPartitions),
      status: { keysRepaired: 0, tombstonesPending: 0 },
    }));
  }

  /** True when exchanges run (enabled, and this node keeps a digest). */
  get active(): boolean {
    return this.deps.options.enabled && this.deps.store.digest !== undefined;
  }

  /** Connects to the peers in the background and starts the timers; the first round runs now. */
  start(): void {
    for (const peer of this.peers) {
      let lost = false;
      peer.redis.on('close', () => (lost = true));
      peer.redis.on('ready', () => {
        if (lost && this.active) void this.runNow().catch(this.deps.onError);
        lost = false;
      });
      peer.redis.connect().catch(() => undefined);
    }
    let ownLost = false;
    this.deps.store.redis.on('close', () => (ownLost = true));
    this.deps.store.redis.on('ready', () => {
      if (ownLost && this.active) void this.runNow().catch(this.deps.onError);
      ownLost = false;
    });
    // A peer that started with this node may not have set up its digest yet at the first
    // round ('incompatible'): while that lasts, and only in the first minute, look again soon.
    const startedAt = this.deps.now();
    const roundEvery = () => {
      const { intervalMs } = this.deps.options;
      const starting = this.deps.now() - startedAt < STARTUP_MS && this.peers.some((p) => p.status.result === 'incompatible');
      return starting ? Math.min(intervalMs, STARTUP_RETRY_MS) : intervalMs;
    };
    if (this.active) this.loop('round', 0, roundEvery, () => this.runNow().then(() => undefined));
    this.loop('collect', this.deps.options.collectIntervalMs, this.deps.options.collectIntervalMs, () => this.collectNow().then(() => undefined));
    // Under a heavy write load the next fold comes sooner, so the log (and the digest's lag
    // behind the data) stays near one fold step rather than one interval of writes.
    const foldEvery = () => (this.lastFolded >= BUSY_FOLD_KEYS ? Math.min(BUSY_FOLD_INTERVAL_MS, this.deps.options.foldIntervalMs) : this.deps.options.foldIntervalMs);
    if (this.deps.store.digest) this.loop('fold', this.deps.options.foldIntervalMs, foldEvery, () => this.withDigest(() => this.fold()).then(() => undefined));
  }

  /** Status per peer id. */
  status(peerId: string): PeerAntiEntropyStatus | undefined {
    const peer = this.peers.find((p) => p.id === peerId);
    return peer ? { ...peer.status } : undefined;
  }

  /**
   * One exchange with every peer, now (queued behind a pass already running; calls made
   * while one is queued share it). Resolves with one report per peer.
   */
  runNow(): Promise<RoundReport[]> {
    this.roundQueued ??= this.enqueue(async () => {
      this.roundQueued = undefined;
      return this.round();
    });
    return this.roundQueued;
  }

  /** One tombstone-collection pass, now. */
  collectNow(): Promise<CollectReport> {
    return this.enqueue(() => this.collect());
  }

  /**
   * Folds the digest log now, on the same chain as verification (whose check of
   * the tree against the entries must not see a fold midway); resolves with the keys folded.
   */
  foldNow(): Promise<number> {
    return this.withDigest(async () => {
      await this.fold();
      return this.lastFolded;
    });
  }

  /** Stops the timers, waits for the pass in progress and closes the peer connections. */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.wakers) wake();
    this.wakers.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all([this.chain.idle(), this.digestChain.idle()]);
    await Promise.all(this.peers.map((p) => closeRedis(p.redis)));
  }

  private async round(): Promise<RoundReport[]> {
    const { store, options } = this.deps;
    const shape = store.digest;
    if (!shape || this.closed) return [];
    await this.heartbeat();
    await this.withDigest(() => this.fold());
    if (options.verifyIntervalMs > 0 && this.deps.now() - this.lastVerifyAt >= options.verifyIntervalMs) {
      this.lastVerifyAt = this.deps.now();
      // Only the pass's second half holds the fold chain (see verify.ts).
      const fixes = await verifyDigest(store, () => this.pause(), () => this.closed, (fn) => this.withDigest(fn));
      if (fixes > 0) this.deps.metrics.digestFixes.inc(fixes);
      await this.withDigest(() => this.fold());
    }
    const reports: RoundReport[] = [];
    for (const peer of this.peers) {
      if (this.closed) break;
      const report = await exchange(
        { peerId: peer.id, local: { redis: store.redis, keys: store.keys }, remote: { redis: peer.redis, keys: peer.keys }, shape },
        options,
        (records) => this.deps.repair(peer.id, records),
        { isClosing: () => this.closed, sleep: (ms) => this.sleep(ms), refresh: () => this.withDigest(() => this.fold()) },
      );
      this.deps.metrics.observe(report);
      peer.status = {
        ...peer.status,
        lastRoundAt: report.startedAt,
        result: report.result,
        keysRepaired: report.keysRepaired,
        ...(report.error === undefined ? {} : { lastError: report.error }),
      };
      if (report.error === undefined) delete peer.status.lastError;
      reports.push(report);
    }
    return reports;
  }

  /** Folds this node's digest change log into the digest peers read. */
  private async fold(): Promise<void> {
    const { store } = this.deps;
    if (store.folder && !this.closed) this.lastFolded = await store.folder.fold({ maxEntries: FOLD_STEP_ENTRIES, pauseMs: this.deps.options.stepPauseMs });
  }

  private async collect(): Promise<CollectReport> {
    const report = await collectTombstones(this.deps.store, this.peers, this.deps.now());
    if (report.collected > 0) this.deps.metrics.tombstonesCollected.inc(report.collected);
    for (const peer of this.peers) {
      peer.status.tombstonesPending = report.pending[peer.id] ?? 0;
      this.deps.metrics.tombstonesPending.set({ peer: peer.id }, peer.status.tombstonesPending);
    }
    return report;
  }

  /**
   * Records that this node is alive in its own `dig:meta`, and checks that its Redis did
   * not go back in time. Two witnesses: the heartbeat this process last wrote (a restore
   * under the running node), and the heartbeat each peer last saw here, which the peer
   * keeps in its own `dig:meta` as `seen:<id>` (a restore before this process started).
   * A restored node is repaired by the rounds that follow (peers' `dig:gone:` markers carry
   * the deletes they collected meanwhile); the event is reported because a snapshot older
   * than `tombstoneRetentionMs` can hold keys whose tombstones are gone everywhere. A
   * snapshot taken after the last heartbeat loses nothing the heartbeat can see, so the
   * detection has the granularity of one round.
   */
  private async heartbeat(): Promise<void> {
    const { redis, keys } = this.deps.store;
    const stored = Number((await redis.hget(keys.digestMeta, 'heartbeatAt')) ?? 0);
    let seen = this.lastHeartbeat ?? 0;
    for (const peer of this.peers) {
      const theirs = await peer.redis.hget(peer.keys.digestMeta, `seen:${keys.nodeId}`).catch(() => null);
      seen = Math.max(seen, Number(theirs ?? 0));
      const their = await peer.redis.hget(peer.keys.digestMeta, 'heartbeatAt').catch(() => null);
      if (their !== null) await redis.hset(keys.digestMeta, `seen:${peer.id}`, their);
    }
    if (seen > stored) {
      this.restoredAt = this.deps.now();
      this.deps.onError(
        new Error(
          `node ${keys.nodeId}: its Redis holds an older state than it had reached (restored from a snapshot about ${Math.round((seen - stored) / 1000)} s old?); anti-entropy is repairing it from the peers`,
        ),
      );
    }
    this.lastHeartbeat = this.deps.now();
    await redis.hset(keys.digestMeta, 'heartbeatAt', this.lastHeartbeat);
  }

  /** When this node last found its Redis restored to an older state (ms since the epoch). */
  get restoredFromSnapshotAt(): number | undefined {
    return this.restoredAt;
  }

  private pause(): Promise<void> {
    const ms = this.deps.options.stepPauseMs;
    return ms > 0 ? this.sleep(ms) : Promise.resolve();
  }

  /** A wait that `close()` cuts short, so closing never waits out a confirmation delay. */
  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakers.delete(wake);
        resolve();
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.wakers.add(wake);
    });
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    return this.chain.run(fn);
  }

  private withDigest<T>(fn: () => Promise<T>): Promise<T> {
    return this.digestChain.run(fn);
  }

  private loop(_name: string, firstMs: number, everyMs: number | (() => number), fn: () => Promise<void>): void {
    const tick = (ms: number) => {
      if (this.closed) return;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        fn()
          .catch((error: unknown) => {
            if (!this.closed) this.deps.onError(error);
          })
          .finally(() => tick(typeof everyMs === 'number' ? everyMs : everyMs()));
      }, ms);
      timer.unref();
      this.timers.add(timer);
    };
    tick(firstMs);
  }
}
