/**
 * Options of a replica node, with their defaults and validation.
 */
import { CLUSTER_PARTITIONS, MAX_CLUSTER_PARTITIONS } from '../store/layout.js';
import { DEFAULT_CLOCK_OPTIONS } from '../clock/hlc.js';
import { isNodeId, NODE_ID_PATTERN } from '../clock/timestamp.js';
import { InvalidOptionsError } from '../errors/index.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from './bounded-close.js';
import { resolveReplicationOptions, type ReplicationOptions } from '../replication/options.js';
import type { RedisTarget } from '../store/connections.js';
import { maskUrl } from '../store/credentials.js';
import { DEFAULT_LEASE_TTL_MS } from '../store/lease.js';
import { DEFAULT_STORE_OPTIONS, type StoreOptions } from '../store/record-store.js';
import type { TransactionHooks } from '../store/transaction.js';
import { resolveAntiEntropyOptions, type AntiEntropyOptions } from '../anti-entropy/options.js';

export interface PeerOptions {
  /** The peer's node id. */
  id: string;
  /** The peer's Redis: its replication queues live there, and so do the records they name. */
  redis: RedisTarget;
}

export interface LimitOptions {
  /**
   * Longest key, in UTF-8 bytes.
   * @defaultValue 1024
   */
  maxKeyBytes: number;
  /**
   * Largest value, in bytes of its JSON text.
   * @defaultValue 1048576 (1 MiB)
   */
  maxValueBytes: number;
  /**
   * Longest TTL a write may carry. Unit: milliseconds.
   * @defaultValue 31536000000 (365 days)
   */
  maxTtlMs: number;
  /**
   * Most operations in one batch (`ReplicaNode.batch`, `POST /batch`); a bigger batch is
   * refused whole. Bounds the work and the memory one request can ask for.
   * @defaultValue 1000
   */
  maxBatchOps: number;
}

export const DEFAULT_LIMIT_OPTIONS: LimitOptions = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxTtlMs: 365 * 24 * 60 * 60 * 1000,
  maxBatchOps: 1000,
});

export interface ReplicaNodeOptions extends Partial<StoreOptions> {
  /** This node's id: letters, digits, `_` or `-`, at most 64 characters. */
  id: string;
  /**
   * This node's own Redis: a URL such as `redis://127.0.0.1:6379/1`, ioredis options, or a
   * Redis Cluster by its seed URLs, `{cluster: ['redis://h1:7000', 'redis://h2:7001']}`
   * (database 0 only; see {@link clusterSeedsProblem}).
   */
  redis: RedisTarget;
  /** The other nodes of the cluster. */
  peers: PeerOptions[];
  /**
   * First part of every Redis key and BullMQ prefix; all nodes of a cluster must agree.
   * @defaultValue "ec"
   */
  prefix?: string;
  /**
   * Partitions of a node whose store is a Redis Cluster: each has its own hash tag (slot),
   * records, outbox, digest and group commit (see `src/store/layout.ts`). All nodes of a
   * deployment must agree (each computes its peers' key names with it). The number of
   * masters, or a multiple, gives the largest transactions that still spread evenly (3 on
   * a 3-master cluster halves the cost per replicated write against 12); 12 spreads
   * evenly over 2, 3, 4, 6 or 12 masters. Nodes on single servers ignore it. Changing it
   * re-partitions a cluster node's keys: migrate as from a single server (README).
   * @defaultValue 12
   */
  clusterPartitions?: number;
  /** Replication delay, batching, retries; see {@link ReplicationOptions}. */
  replication?: Partial<ReplicationOptions>;
  /** Digest exchanges with the peers and tombstone collection; see {@link AntiEntropyOptions}. */
  antiEntropy?: Partial<AntiEntropyOptions>;
  /**
   * Shifts this node's physical clock (to demonstrate skew). Unit: milliseconds.
   * @defaultValue 0
   */
  clockOffsetMs?: number;
  /**
   * Remote timestamps further ahead than this are counted as drift and do not move the
   * local clock (records carrying them are still applied). Unit: milliseconds.
   * @defaultValue 60000
   */
  maxDriftMs?: number;
  /**
   * Physical clock source (ms since the epoch); tests inject a fake.
   * @defaultValue `Date.now`
   */
  now?: () => number;
  /** Input limits; see {@link LimitOptions}. */
  limits?: Partial<LimitOptions>;
  /** Fault injection for tests (e.g. kill a connection between WATCH and EXEC). */
  transactionHooks?: TransactionHooks;
  /**
   * Longest `close()`: waiting for work in flight, handing the outbox to the queues and
   * letting workers finish are each cut short when this is spent (nothing acknowledged is
   * lost: it stays in the outbox). Unit: milliseconds.
   * @defaultValue 4000
   */
  closeTimeoutMs?: number;
  /**
   * TTL of the node-id lease in the node's Redis, renewed every third of it: a second
   * process started with the same id refuses to start while it is held. A holder that
   * died on this host is taken over at once; one elsewhere after at most this long.
   * `0` disables the lease. Unit: milliseconds.
   * @defaultValue 15000
   */
  leaseTtlMs?: number;
}

export interface ResolvedNodeOptions {
  id: string;
  redis: RedisTarget;
  peers: PeerOptions[];
  prefix: string;
  clusterPartitions: number;
  replication: ReplicationOptions;
  antiEntropy: AntiEntropyOptions;
  store: StoreOptions;
  clock: { now: () => number; clockOffsetMs: number; maxDriftMs: number };
  limits: LimitOptions;
  transactionHooks: TransactionHooks;
  closeTimeoutMs: number;
  leaseTtlMs: number;
}

const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Validates synchronously; throws {@link InvalidOptionsError} naming the field. */
export function resolveNodeOptions(o: ReplicaNodeOptions): ResolvedNodeOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidOptionsError('options', 'expected an object');
  if (!isNodeId(o.id)) {
    throw new InvalidOptionsError('id', `must match ${NODE_ID_PATTERN} (letters, digits, "_" or "-") and not be a reserved name like "constructor", got ${JSON.stringify(o.id)}`);
  }
  checkTarget('redis', o.redis);
  if (!Array.isArray(o.peers)) throw new InvalidOptionsError('peers', 'must be an array of {id, redis}');
  const seen = new Set([o.id]);
  o.peers.forEach((p, i) => {
    if (!isNodeId(p?.id)) throw new InvalidOptionsError(`peers[${i}].id`, `must match ${NODE_ID_PATTERN}`);
    if (seen.has(p.id)) throw new InvalidOptionsError(`peers[${i}].id`, `duplicate node id ${JSON.stringify(p.id)}`);
    seen.add(p.id);
    checkTarget(`peers[${i}].redis`, p.redis);
  });
  const prefix = o.prefix ?? 'ec';
  if (!PREFIX_PATTERN.test(prefix)) throw new InvalidOptionsError('prefix', `must match ${PREFIX_PATTERN}`);
  const clusterPartitions = o.clusterPartitions ?? CLUSTER_PARTITIONS;
  if (!Number.isSafeInteger(clusterPartitions) || clusterPartitions < 1 || clusterPartitions > MAX_CLUSTER_PARTITIONS) {
    throw new InvalidOptionsError('clusterPartitions', `must be an integer from 1 to ${MAX_CLUSTER_PARTITIONS}, got ${String(clusterPartitions)}`);
  }
  const clockOffsetMs = o.clockOffsetMs ?? DEFAULT_CLOCK_OPTIONS.clockOffsetMs;
  const maxDriftMs = o.maxDriftMs ?? DEFAULT_CLOCK_OPTIONS.maxDriftMs;
  if (!Number.isFinite(clockOffsetMs)) throw new InvalidOptionsError('clockOffsetMs', 'must be a finite number of milliseconds');
  if (!(Number.isFinite(maxDriftMs) && maxDriftMs > 0)) throw new InvalidOptionsError('maxDriftMs', 'must be a positive number of milliseconds');
  const limits = { ...DEFAULT_LIMIT_OPTIONS, ...definedOnly(o.limits ?? {}) };
  for (const field of ['maxKeyBytes', 'maxValueBytes', 'maxTtlMs', 'maxBatchOps'] as const) {
    if (!Number.isSafeInteger(limits[field]) || limits[field] <= 0) throw new InvalidOptionsError(`limits.${field}`, 'must be a positive integer');
  }
  const closeTimeoutMs = o.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  if (!Number.isSafeInteger(closeTimeoutMs) || closeTimeoutMs < 0) throw new InvalidOptionsError('closeTimeoutMs', 'must be a non-negative integer number of milliseconds');
  const leaseTtlMs = o.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  if (!Number.isSafeInteger(leaseTtlMs) || leaseTtlMs < 0) throw new InvalidOptionsError('leaseTtlMs', 'must be a non-negative integer number of milliseconds (0 disables the lease)');
  const store: StoreOptions = { ...DEFAULT_STORE_OPTIONS };
  for (const field of Object.keys(DEFAULT_STORE_OPTIONS) as Array<keyof StoreOptions>) {
    const v = o[field];
    if (v !== undefined) (store as unknown as Record<string, unknown>)[field] = v;
  }
  return {
    id: o.id,
    redis: o.redis,
    peers: o.peers.map((p) => ({ id: p.id, redis: p.redis })),
    prefix,
    clusterPartitions,
    replication: resolveReplicationOptions(o.replication),
    antiEntropy: resolveAntiEntropyOptions(o.antiEntropy),
    store,
    clock: { now: o.now ?? DEFAULT_CLOCK_OPTIONS.now, clockOffsetMs, maxDriftMs },
    limits,
    transactionHooks: o.transactionHooks ?? {},
    closeTimeoutMs,
    leaseTtlMs,
  };
}

function checkTarget(field: string, target: unknown): void {
  if (typeof target === 'string') {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new InvalidOptionsError(field, 'must be a Redis URL such as redis://127.0.0.1:6379/1');
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new InvalidOptionsError(field, `unsupported scheme ${url.protocol} (use redis:// or rediss://)`);
    }
    return;
  }
  if (typeof target !== 'object' || target === null) throw new InvalidOptionsError(field, 'must be a Redis URL, ioredis options or {cluster: [seed URLs]}');
  if ('cluster' in target) {
    const problem = clusterSeedsProblem((target as { cluster: unknown }).cluster);
    if (problem) throw new InvalidOptionsError(problem.index === undefined ? `${field}.cluster` : `${field}.cluster[${problem.index}]`, problem.message);
  }
}

/** What is wrong with one entry of a cluster's seed list; `index` is absent for the list as a whole. */
export interface ClusterSeedsProblem {
  index?: number;
  message: string;
}

const SEED_EXAMPLE = 'redis://h1:7000';

/**
 * What is wrong with `seeds` as the seed list of a Redis Cluster target
 * (`{cluster: seeds}`), or `undefined`. Every seed is a `redis://` or `rediss://` URL with
 * a host, naming no database but 0 (a cluster has only database 0, so a URL naming another
 * is a mistake, not a choice), and all of them use the same scheme, credentials and
 * options: the client reaches every node it discovers with one user and one TLS setting,
 * so seeds that differ could not all be honoured. Messages never quote credentials.
 */
export function clusterSeedsProblem(seeds: unknown): ClusterSeedsProblem | undefined {
  if (!Array.isArray(seeds)) return { message: `must be an array of seed URLs such as ["${SEED_EXAMPLE}", "redis://h2:7001"]` };
  if (seeds.length === 0) return { message: `must list at least one seed URL such as ${SEED_EXAMPLE}` };
  let first: string | undefined;
  for (const [index, seed] of seeds.entries()) {
    const url = typeof seed === 'string' ? parseUrl(seed) : undefined;
    if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
      return { index, message: `must be a redis:// or rediss:// URL with a host, such as ${SEED_EXAMPLE}` };
    }
    const named = [url.pathname.replace(/^\//, ''), url.searchParams.get('db')].find((db) => db !== null && Number(db) !== 0);
    if (named !== undefined) {
      return { index, message: `${maskUrl(seed as string)} names database ${named}, but a Redis Cluster has only database 0: drop the database from the URL` };
    }
    const params = [...url.searchParams].filter(([k]) => k !== 'db').sort(([a], [b]) => a.localeCompare(b));
    const shared = `${url.protocol}${url.username}:${url.password}?${new URLSearchParams(params).toString()}`;
    if (first === undefined) first = shared;
    else if (shared !== first) {
      return { index, message: 'must use the same scheme (redis:// or rediss://), credentials and options as the first seed: one client reaches every node of the cluster with one user and one TLS setting' };
    }
  }
  return undefined;
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
