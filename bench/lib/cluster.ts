/**
 * An in-process cluster on the private Redis (one database per node), or on any Redis
 * targets (a server per node, a Redis Cluster shared by all), and the one definition of
 * "converged" every replicated scenario uses: replication drained on every node AND every
 * node holding byte-identical records (the encoding is canonical, so equal bytes mean
 * equal records), with the expected number of keys.
 */
import { Cluster, Redis } from 'ioredis';
import { ReplicaNode } from '../../src/node/replica-node.js';
import type { ReplicationOptions } from '../../src/replication/options.js';
import { isClusterTarget, type RedisTarget } from '../../src/store/connections.js';
import type { StoreOptions } from '../../src/store/record-store.js';
import type { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import type { KeyBuilder } from '../../src/store/keys.js';
import { ConvergenceError, sleep } from './deadline.js';

export interface BenchCluster {
  readonly nodes: ReplicaNode[];
  /** A plain connection to each node's store (a cluster client for a Redis Cluster), for verification only. */
  readonly raw: Array<Redis | Cluster>;
  /** Counts of `replicated` events (every outcome) and of those that applied a newer record. */
  readonly events: { replicated: number; applied: number; lastAt: number };
  /** Background errors the nodes reported (a run with any is not trusted). */
  readonly errors: Error[];
  close(): Promise<void>;
}

export interface ClusterOptions {
  size: number;
  /** Database of the first node; node i uses `firstDb + i`. @defaultValue 1 */
  firstDb?: number;
  prefix?: string;
  /** Partitions of the nodes' cluster stores (the engine's default when absent). */
  clusterPartitions?: number;
  replication?: Partial<ReplicationOptions>;
  store?: Partial<StoreOptions>;
  /** Called for every `replicated` event with the node that applied it and the time (performance.now()). */
  onReplicated?: (node: ReplicaNode, key: string, at: number) => void;
}

/** Key prefix of every benchmark cluster. */
export const BENCH_PREFIX = 'bench';

export function nodeId(i: number): string {
  return `n${i + 1}`;
}

/** Starts `size` fully meshed nodes on the private server, a database each; each listens for `replicated` and `error`. */
export async function startCluster(server: LocalRedisServer, options: ClusterOptions): Promise<BenchCluster> {
  const firstDb = options.firstDb ?? 1;
  if (firstDb + options.size > 16) throw new Error(`a ${options.size}-node cluster from DB ${firstDb} needs more than Redis' 16 databases`);
  return startClusterOn((i) => server.url(firstDb + i), options);
}

/** {@link startCluster} with node i's store on `target(i)` (nodes sharing a target are kept apart by their ids). */
export async function startClusterOn(url: (i: number) => RedisTarget, options: Omit<ClusterOptions, 'firstDb'>): Promise<BenchCluster> {
  const ids = Array.from({ length: options.size }, (_, i) => nodeId(i));
  const events = { replicated: 0, applied: 0, lastAt: 0 };
  const errors: Error[] = [];
  const nodes = await Promise.all(
    ids.map((id, i) =>
      ReplicaNode.start({
        id,
        redis: url(i),
        prefix: options.prefix ?? BENCH_PREFIX,
        ...(options.clusterPartitions ? { clusterPartitions: options.clusterPartitions } : {}),
        peers: ids.flatMap((peer, j) => (j === i ? [] : [{ id: peer, redis: url(j) }])),
        ...(options.replication ? { replication: options.replication } : {}),
        ...options.store,
      }),
    ),
  );
  for (const node of nodes) {
    node.on('error', (error) => errors.push(error));
    node.on('replicated', (event) => {
      const at = performance.now();
      events.replicated += 1;
      if (event.outcome === 'applied') events.applied += 1;
      events.lastAt = at;
      options.onReplicated?.(node, event.record.key, at);
    });
  }
  // A node that starts on a database without its start marker pulls every peer's records
  // (anti-entropy) in the background; measurements must not overlap that.
  await Promise.all(nodes.map((n) => n.resynced()));
  const raw = ids.map((_, i) => openRaw(url(i)));
  return {
    nodes,
    raw,
    events,
    errors,
    close: async () => {
      await Promise.all(nodes.map((n) => n.close()));
      raw.forEach((r) => r.disconnect());
    },
  };
}

/** A verification connection to `target`: a cluster client for a Redis Cluster, else a plain one. */
export function openRaw(target: RedisTarget): Redis | Cluster {
  if (isClusterTarget(target)) return new Cluster([...target.cluster], { redisOptions: { maxRetriesPerRequest: 1 } });
  return typeof target === 'string' ? new Redis(target, { maxRetriesPerRequest: 1 }) : new Redis({ ...target, maxRetriesPerRequest: 1 });
}

/** Sum of a counter in a node's metrics registry (all label sets unless `labels` narrows it). */
export async function counterTotal(node: ReplicaNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = node.metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** `counterTotal` summed over every node of the cluster. */
export async function clusterCounter(cluster: BenchCluster, name: string, labels: Record<string, string> = {}): Promise<number> {
  const totals = await Promise.all(cluster.nodes.map((n) => counterTotal(n, name, labels)));
  return totals.reduce((a, b) => a + b, 0);
}

/** Outbox entries and unfinished replication jobs over the whole cluster. */
export async function backlog(cluster: BenchCluster): Promise<{ outbox: number; jobs: number; failed: number }> {
  let outbox = 0;
  let jobs = 0;
  let failed = 0;
  await Promise.all(
    cluster.nodes.map(async (node, i) => {
      const redis = cluster.raw[i] as Redis | Cluster;
      // One outbox per partition (64 on a Redis Cluster store, 1 on a single server).
      const lengths = await Promise.all(Array.from({ length: node.keys.partitions }, (_, p) => redis.xlen(node.keys.outbox(p))));
      outbox += lengths.reduce((a, b) => a + b, 0);
      for (const queue of node.queues) {
        const c = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed', 'waiting-children');
        jobs += (c.waiting ?? 0) + (c.delayed ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0) + (c['waiting-children'] ?? 0);
        failed += c.failed ?? 0;
      }
    }),
  );
  return { outbox, jobs, failed };
}

/** A node's database as the verification reads it: its key layout and a plain connection. */
export interface StoreView {
  readonly keys: KeyBuilder;
  readonly redis: Redis | Cluster;
}

/** Every record of one node as `userKey -> stored bytes` (or only `keys`, when given). */
export async function readState(cluster: BenchCluster, index: number, keys?: readonly string[]): Promise<Map<string, string>> {
  return readStore({ keys: (cluster.nodes[index] as ReplicaNode).keys, redis: cluster.raw[index] as Redis | Cluster }, keys);
}

/** {@link readState} of a store given by its key layout and connection (e.g. a node in another process). */
export async function readStore(store: StoreView, keys?: readonly string[]): Promise<Map<string, string>> {
  const { redis } = store;
  const out = new Map<string, string>();
  // An MGET must stay in one slot on a Redis Cluster: the keys of one partition share its tag.
  const fetch = async (redisKeys: string[]) => {
    const byPartition = new Map<number, string[]>();
    for (const k of redisKeys) {
      const p = store.keys.partition(store.keys.userKey(k));
      const group = byPartition.get(p);
      if (group) group.push(k);
      else byPartition.set(p, [k]);
    }
    for (const group of byPartition.values()) {
      const values = await redis.mget(...group);
      group.forEach((k, j) => {
        const v = values[j];
        if (v !== null && v !== undefined) out.set(store.keys.userKey(k), v);
      });
    }
  };
  if (keys) {
    for (let i = 0; i < keys.length; i += 1_000) await fetch(keys.slice(i, i + 1_000).map((k) => store.keys.record(k)));
    return out;
  }
  // A cluster client does not SCAN the cluster: every master is scanned on its own.
  if (redis instanceof Cluster && redis.status !== 'ready') await redis.ping(); // the slot map, so nodes() knows the masters
  const scanned = redis instanceof Cluster ? redis.nodes('master') : [redis];
  if (scanned.length === 0) throw new Error(`${store.keys.nodeId}: the cluster client knows no master to scan`);
  for (const server of scanned) {
    let cursor = '0';
    do {
      const [next, found] = await server.scan(cursor, 'MATCH', store.keys.recordPattern(), 'COUNT', 2_000);
      await fetch(found);
      cursor = next;
    } while (cursor !== '0');
  }
  return out;
}

export interface Verification {
  identical: boolean;
  /** Records per node (equal on every node when identical). */
  records: number[];
  /** Up to 5 examples of differences, for the failure message. */
  mismatches: string[];
}

/**
 * Compares every node's records with node 0's, byte for byte. With `keys`, only those keys
 * are read and compared (counts are then of those keys), which is how the 10^6-key scale
 * run verifies what it wrote without reading a million records on every node.
 */
export async function verifyIdentical(cluster: BenchCluster, keys?: readonly string[]): Promise<Verification> {
  return verifyStores(
    cluster.nodes.map((node, i) => ({ keys: node.keys, redis: cluster.raw[i] as Redis })),
    keys,
  );
}

/** {@link verifyIdentical} over stores given by key layout and connection (the first is the reference). */
export async function verifyStores(stores: readonly StoreView[], keys?: readonly string[]): Promise<Verification> {
  const states = await Promise.all(stores.map((store) => readStore(store, keys)));
  const reference = states[0] as Map<string, string>;
  const mismatches: string[] = [];
  states.forEach((state, i) => {
    if (i === 0) return;
    if (state.size !== reference.size) mismatches.push(`${nodeId(i)} holds ${state.size} records, ${nodeId(0)} ${reference.size}`);
    for (const [key, value] of reference) {
      if (mismatches.length >= 5) break;
      const other = state.get(key);
      if (other !== value) mismatches.push(`key ${JSON.stringify(key)}: ${nodeId(0)}=${value.slice(0, 60)}… ${nodeId(i)}=${other?.slice(0, 60) ?? '(missing)'}`);
    }
  });
  return { identical: mismatches.length === 0, records: states.map((s) => s.size), mismatches };
}

export interface Convergence {
  /** performance.now() of the last `replicated` event before identical state was verified. */
  convergedAt: number;
  verifiedAt: number;
  records: number;
  checks: number;
}

/**
 * Waits until replication is drained and every node holds identical records, then returns
 * when that happened: the time of the last `replicated` event (state only changes through
 * merges, and each merge emits its events after it committed, so the state was already
 * identical then). Throws {@link ConvergenceError} at the deadline, saying what differed.
 *
 * `expectedApplied` lets a run whose keys are all distinct skip polling Redis until the
 * events say every peer applied every write; `expectedRecords` is the number of keys every
 * node must hold (identical but incomplete state is not convergence).
 */
export async function waitForConvergence(
  cluster: BenchCluster,
  options: { timeoutMs: number; keys?: readonly string[]; expectedApplied?: number; expectedRecords?: number },
): Promise<Convergence> {
  const deadline = performance.now() + options.timeoutMs;
  let checks = 0;
  let last: { drain?: Awaited<ReturnType<typeof backlog>>; verification?: Verification } = {};
  while (performance.now() < deadline) {
    if (cluster.errors.length > 0) throw new ConvergenceError(`a node reported an error while converging: ${cluster.errors[0]?.message}`);
    if (options.expectedApplied !== undefined && cluster.events.applied < options.expectedApplied) {
      await sleep(5);
      continue;
    }
    const drain = await backlog(cluster);
    last = { drain };
    if (drain.outbox === 0 && drain.jobs === 0) {
      checks += 1;
      const verification = await verifyIdentical(cluster, options.keys);
      last.verification = verification;
      const complete = options.expectedRecords === undefined || verification.records.every((r) => r === options.expectedRecords);
      if (verification.identical && complete) {
        return { convergedAt: cluster.events.lastAt, verifiedAt: performance.now(), records: verification.records[0] ?? 0, checks };
      }
    }
    await sleep(20);
  }
  const parts = [
    `not converged after ${options.timeoutMs} ms`,
    `applied events ${cluster.events.applied}${options.expectedApplied === undefined ? '' : ` of ${options.expectedApplied} expected`}`,
  ];
  if (last.drain) parts.push(`outbox ${last.drain.outbox}, unfinished jobs ${last.drain.jobs}, failed jobs ${last.drain.failed}`);
  if (last.verification) {
    parts.push(`records per node ${last.verification.records.join('/')}${options.expectedRecords === undefined ? '' : ` (expected ${options.expectedRecords})`}`);
    parts.push(...last.verification.mismatches);
  }
  throw new ConvergenceError(parts.join('; '));
}
