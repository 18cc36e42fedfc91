/**
 * Redis Cluster connections: the cluster client, the dedicated per-master connections that
 * optimistic transactions borrow, and the few multi-key reads that must be split by slot.
 *
 * - The ioredis `Cluster` client routes each command by its key's slot and follows MOVED
 *   and ASK by itself. It serves reads, streams, BullMQ and the digest folds, each of which
 *   touches one slot per command or per MULTI.
 * - A WATCH must stay on one socket until its EXEC, and a cluster client does not promise
 *   that (ioredis#999). So transactions borrow a dedicated connection to the master that
 *   owns the slot, from a small pool per master, with the same socket-generation guard as
 *   on a single server. A redirect (MOVED, ASK), CLUSTERDOWN, TRYAGAIN or a dead master
 *   abandons the attempt before EXEC, or makes EXEC fail as a whole (EXECABORT): nothing is
 *   ever written blind. The attempt is retried on the master the refreshed slot map names.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { keySlot } from './layout.js';
import { closeRedis, TransactionConnection, type ClusterTarget } from './connections.js';

/** The seeds and the per-connection options (credentials, TLS) of a cluster target. */
export function clusterSeeds(target: ClusterTarget): { seeds: Array<{ host: string; port: number }>; redisOptions: RedisOptions } {
  const redisOptions: RedisOptions = {};
  const seeds = target.cluster.map((text) => {
    const url = new URL(text);
    if (url.username) redisOptions.username = decodeURIComponent(url.username);
    if (url.password) redisOptions.password = decodeURIComponent(url.password);
    if (url.protocol === 'rediss:') redisOptions.tls = {};
    return { host: url.hostname, port: Number(url.port || 6379) };
  });
  return { seeds, redisOptions };
}

/** A cluster client for `role`'s options (`roleOptions` as for a single server). */
export function createCluster(target: ClusterTarget, roleOptions: RedisOptions, name: string): Cluster {
  const { seeds, redisOptions } = clusterSeeds(target);
  const { enableOfflineQueue, ...perNode } = roleOptions;
  const options: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue: enableOfflineQueue ?? true,
    redisOptions: { ...redisOptions, ...perNode, connectionName: name },
    clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    // A failover takes `cluster-node-timeout` plus an election: keep retrying redirects
    // and CLUSTERDOWN for a few seconds instead of failing the command at once.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 32,
    slotsRefreshTimeout: 2_000,
  };
  const cluster = new Cluster(seeds, options);
  cluster.on('error', () => undefined);
  return cluster;
}

/** True for the replies that mean "ask the slot's new owner": a retry after a slot map refresh may succeed. */
export function isRedirectError(error: unknown): boolean {
  return error instanceof Error && /^(MOVED|ASK|CLUSTERDOWN|TRYAGAIN)\b|EXECABORT|Failed to refresh slots cache|None of startup nodes is available/i.test(error.message);
}

/**
 * Dedicated transaction connections per cluster master, lent by the slot of the keys a
 * transaction watches. `topology` is the store's cluster client, whose slot map says which
 * master owns a slot.
 */
export class ClusterTransactionPool {
  private readonly topology: Cluster;
  private readonly options: RedisOptions;
  private readonly name: string;
  private readonly perMaster: number;
  private readonly pools = new Map<string, { idle: TransactionConnection[]; all: TransactionConnection[]; waiters: Array<(c: TransactionConnection) => void> }>();
  private readonly owner = new Map<TransactionConnection, string>();
  private closed = false;

  constructor(target: ClusterTarget, topology: Cluster, perMaster: number, name: string, roleOptions: RedisOptions) {
    this.topology = topology;
    this.options = { ...clusterSeeds(target).redisOptions, ...roleOptions };
    this.perMaster = perMaster;
    this.name = name;
  }

  /** Transactions that may run at once (the per-master size; more masters add more). */
  get size(): number {
    return this.perMaster * Math.max(1, this.pools.size);
  }

  /** The topology client connects with the store; masters' connections open on first use. */
  async connect(_timeoutMs: number): Promise<void> {
    // Nothing to open ahead: a master's connections are made the first time a transaction needs them.
  }

  /** The master that owns the slot of `keys` (all in one slot, or this throws: a layout bug). */
  private masterOf(keys: readonly string[]): string {
    const slot = keySlot(keys[0] as string);
    for (const k of keys) if (keySlot(k) !== slot) throw new Error(`keys of one transaction span slots: ${keys[0] as string} and ${k}`);
    const owner = this.topology.slots[slot]?.[0];
    if (!owner) throw Object.assign(new Error(`CLUSTERDOWN no known master for slot ${slot}`), { code: 'ECONNREFUSED' });
    return owner;
  }

  acquire(keys: readonly string[]): Promise<TransactionConnection> {
    const master = this.masterOf(keys);
    let pool = this.pools.get(master);
    if (!pool) {
      pool = { idle: [], all: [], waiters: [] };
      const [host, port] = splitNodeKey(master);
      for (let i = 0; i < this.perMaster; i++) {
        const redis = new Redis({ ...this.options, host, port, lazyConnect: true, connectionName: `${this.name}:tx${i}@${master}` });
        redis.on('error', () => undefined);
        const c = new TransactionConnection(redis);
        pool.all.push(c);
        pool.idle.push(c);
        this.owner.set(c, master);
        redis.connect().catch(() => undefined);
      }
      this.pools.set(master, pool);
    }
    const c = pool.idle.pop();
    if (c) return Promise.resolve(c);
    const waiting = pool;
    return new Promise((resolve) => waiting.waiters.push(resolve));
  }

  release(c: TransactionConnection): void {
    const pool = this.pools.get(this.owner.get(c) as string);
    if (!pool) return;
    const next = pool.waiters.shift();
    if (next) next(c);
    else pool.idle.push(c);
  }

  /** Asks the topology client to re-read the slot map (after a redirect or a dead master). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.topology.refreshSlotsCache(() => resolve()));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pools.values()].flatMap((p) => p.all.map((c) => closeRedis(c.redis))));
  }
}

function splitNodeKey(key: string): [string, number] {
  const at = key.lastIndexOf(':');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}
