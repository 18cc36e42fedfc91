/**
 * A cluster of replica nodes for integration tests: every node knows every other as a
 * peer, all share one fresh prefix, each has its own Redis target. Nodes can be closed
 * and started again (same id, prefix and Redis) to test restarts.
 *
 * Also the convergence helpers: "converged" means every node holds a byte-identical
 * record (compared through `encodeRecord`, the form stored in Redis) for every key.
 */
import { ReplicaNode } from '../../src/node/replica-node.js';
import type { ReplicaNodeOptions } from '../../src/node/options.js';
import type { ReplicationOptions } from '../../src/replication/options.js';
import type { RedisTarget } from '../../src/store/connections.js';
import { encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { waitFor } from './wait.js';

/** Options shared by all nodes, or set for one node; `replication` is merged field by field. */
export type NodeOverrides = Partial<Omit<ReplicaNodeOptions, 'id' | 'redis' | 'peers' | 'prefix'>>;

export interface ClusterOptions {
  /** Nodes started by {@link startCluster} (default: all). */
  start?: readonly string[];
  /** Prefix every node uses (all nodes of a cluster must agree on it). */
  prefix: string;
  /** Node ids and their Redis, in order. */
  nodes: ReadonlyArray<{ id: string; redis: RedisTarget }>;
  /** Options for every node. Tests default to a short replication delay. */
  common?: NodeOverrides;
  /** Options for single nodes, applied over `common`. */
  perNode?: Readonly<Record<string, NodeOverrides>>;
}

/** Test defaults: fast replication and quick retries, so the suite stays short. */
export const TEST_REPLICATION: Partial<ReplicationOptions> = {
  delayMs: 30,
  retryInitialMs: 50,
  retryMaxMs: 250,
  sweepIntervalMs: 200,
};

export class Cluster {
  readonly prefix: string;
  /** Background errors the nodes emitted (Redis down, …), for failure messages. */
  readonly errors: Array<{ node: string; error: Error }> = [];
  private readonly specs: ClusterOptions;
  private readonly running = new Map<string, ReplicaNode>();

  constructor(options: ClusterOptions) {
    this.specs = options;
    this.prefix = options.prefix;
  }

  /** Every node id, in the order given. */
  get ids(): string[] {
    return this.specs.nodes.map((n) => n.id);
  }

  /** The running nodes, in the order given. */
  get nodes(): ReplicaNode[] {
    return this.ids.flatMap((id) => {
      const node = this.running.get(id);
      return node ? [node] : [];
    });
  }

  /** The running node `id`; throws if it is not running. */
  node(id: string): ReplicaNode {
    const node = this.running.get(id);
    if (!node) throw new Error(`node ${id} is not running in this cluster (running: ${[...this.running.keys()].join(', ') || 'none'})`);
    return node;
  }

  /** The Redis target of node `id`. */
  redisOf(id: string): RedisTarget {
    const spec = this.specs.nodes.find((n) => n.id === id);
    if (!spec) throw new Error(`no node ${id} in this cluster`);
    return spec.redis;
  }

  /** The full options node `id` is started with. */
  optionsFor(id: string): ReplicaNodeOptions {
    const spec = this.specs.nodes.find((n) => n.id === id);
    if (!spec) throw new Error(`no node ${id} in this cluster`);
    const common = this.specs.common ?? {};
    const own = this.specs.perNode?.[id] ?? {};
    return {
      ...common,
      ...own,
      id,
      redis: spec.redis,
      prefix: this.prefix,
      peers: this.specs.nodes.filter((n) => n.id !== id).map((n) => ({ id: n.id, redis: n.redis })),
      replication: { ...TEST_REPLICATION, ...common.replication, ...own.replication },
    };
  }

  /**
   * Starts the given nodes (default: all not running) in parallel and waits until each has
   * finished the anti-entropy resync a node runs when it starts on a new database, so a
   * test begins from a quiet cluster: every later merge comes from a replication job.
   */
  async start(ids: readonly string[] = this.ids.filter((id) => !this.running.has(id))): Promise<void> {
    const started = await Promise.allSettled(ids.map((id) => this.startOne(id)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await Promise.all(ids.map((id) => this.node(id).resynced()));
  }

  /** Closes node `id` (idempotent) and forgets it; `start([id])` brings it back. */
  async stop(id: string): Promise<void> {
    const node = this.running.get(id);
    if (!node) return;
    this.running.delete(id);
    await node.close();
  }

  /** Closes every running node; never throws, never hangs longer than `timeoutMs` per node. */
  async closeAll(timeoutMs = 15_000): Promise<void> {
    const nodes = [...this.running.values()];
    this.running.clear();
    await Promise.allSettled(
      nodes.map((node) =>
        Promise.race([node.close(), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]),
      ),
    );
  }

  private async startOne(id: string): Promise<ReplicaNode> {
    if (this.running.has(id)) throw new Error(`node ${id} is already running`);
    const node = await ReplicaNode.start(this.optionsFor(id));
    node.on('error', (error) => this.errors.push({ node: id, error }));
    this.running.set(id, node);
    return node;
  }
}

/** Starts a cluster with every node running. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const cluster = new Cluster(options);
  try {
    await cluster.start(options.start ?? cluster.ids);
  } catch (error) {
    await cluster.closeAll();
    throw error;
  }
  return cluster;
}

/** The stored encoding of `key` on each node (`null` when the node holds no record). */
export async function encodingsOf(nodes: readonly ReplicaNode[], key: string): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  await Promise.all(
    nodes.map(async (node) => {
      const record = await node.getRecord(key);
      out[node.id] = record ? encodeRecord(record) : null;
    }),
  );
  return out;
}

/** What every node holds for every key: `{ key: { A: encoding, B: … } }`. */
export async function snapshot(nodes: readonly ReplicaNode[], keys: readonly string[]): Promise<Record<string, Record<string, string | null>>> {
  const out: Record<string, Record<string, string | null>> = {};
  for (const key of keys) out[key] = await encodingsOf(nodes, key);
  return out;
}

export interface ConvergenceOptions {
  /** Per key, the HLC every node must end up holding (e.g. the highest acknowledged write). */
  expectedHlc?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  timeoutMs?: number;
  message?: string;
}

/**
 * Waits until every node holds a byte-identical record for every key — and, when
 * `expectedHlc` is given, that record carries the expected HLC. Returns the agreed records.
 */
export async function waitForConvergence(
  nodes: readonly ReplicaNode[],
  keys: readonly string[],
  options: ConvergenceOptions = {},
): Promise<Map<string, CacheRecord>> {
  const expected = options.expectedHlc instanceof Map ? options.expectedHlc : new Map(Object.entries(options.expectedHlc ?? {}));
  const agreed = new Map<string, CacheRecord>();
  await waitFor(
    async () => {
      const pending: Record<string, unknown> = {};
      for (const key of keys) {
        const records = await Promise.all(nodes.map((n) => n.getRecord(key)));
        const encodings = records.map((r) => (r ? encodeRecord(r) : null));
        const first = encodings[0];
        const same = first !== null && first !== undefined && encodings.every((e) => e === first);
        const want = expected.get(key);
        const right = want === undefined || records[0]?.hlc === want;
        if (same && right) {
          agreed.set(key, records[0] as CacheRecord);
        } else {
          pending[key] = {
            ...(want === undefined ? {} : { expectedHlc: want }),
            ...Object.fromEntries(nodes.map((n, i) => [n.id, encodings[i]])),
          };
        }
      }
      const open = Object.keys(pending);
      return { done: open.length === 0, observed: { notConverged: open.length, of: keys.length, sample: Object.fromEntries(Object.entries(pending).slice(0, 5)) } };
    },
    { timeoutMs: options.timeoutMs ?? 15_000, message: options.message ?? `nodes ${nodes.map((n) => n.id).join(', ')} to converge on ${keys.length} key(s)` },
  );
  return agreed;
}

/** The sum of a node's replication counter over the series whose labels match `labels`. */
export async function counterValue(node: ReplicaNode, name: 'replicationJobs' | 'replicationKeys', labels: Record<string, string>): Promise<number> {
  const metric = await node.metrics[name].get();
  return metric.values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((s, v) => s + v.value, 0);
}
