/**
 * A fully meshed cluster whose every node runs in its own process (see node-process.ts),
 * on the private Redis with one database per node, as `cluster.ts` lays out the
 * in-process one. "Converged" means the same as there: every node applied what its peers
 * wrote, replication is drained, and every node holds byte-identical records, read by
 * this process straight from each node's database.
 */
import { Redis } from 'ioredis';
import type { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import type { ReplicationOptions } from '../../src/replication/options.js';
import type { StoreOptions } from '../../src/store/record-store.js';
import { KeyBuilder } from '../../src/store/keys.js';
import { BENCH_PREFIX, nodeId, verifyStores, type StoreView, type Verification } from './cluster.js';
import { ConvergenceError, sleep } from './deadline.js';
import { NodeProcess, toLocalTime, type NodeBacklog, type NodeHostSpec } from './node-process.js';

/**
 * The node processes of a scenario, started once and reused run after run: a cluster of
 * n nodes runs in the first n. A process that died (or failed to stop its node) is
 * replaced at the next {@link NodeProcessPool.take}.
 */
export class NodeProcessPool {
  private readonly processes: Array<NodeProcess | undefined> = [];
  private readonly execArgv: string[] | undefined;

  constructor(options: { execArgv?: string[] } = {}) {
    this.execArgv = options.execArgv;
  }

  /** The first `n` processes, spawning (all at once) those missing. */
  async take(n: number): Promise<NodeProcess[]> {
    // Start-up compiles and loads the sources in every child; on 2 cores seven of them take a while.
    const startTimeoutMs = 30_000 + 10_000 * n;
    const spawned = await Promise.allSettled(
      Array.from({ length: n }, async (_, i) => {
        const existing = this.processes[i];
        if (existing?.alive) return existing;
        existing?.kill();
        const p = await NodeProcess.spawn({ label: String(i + 1), startTimeoutMs, ...(this.execArgv ? { execArgv: this.execArgv } : {}) });
        this.processes[i] = p;
        return p;
      }),
    );
    const failure = spawned.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
    return spawned.map((s) => (s as PromiseFulfilledResult<NodeProcess>).value);
  }

  /** Drops a process that misbehaved (it is killed and replaced when next taken). */
  discard(p: NodeProcess): void {
    p.kill();
  }

  /** Exits every process. */
  async close(): Promise<void> {
    await Promise.all(this.processes.map((p) => p?.exit().catch(() => p.kill())));
    this.processes.length = 0;
  }
}

export interface ProcessCluster {
  readonly nodes: NodeProcess[];
  /** Each node's database, for verification only. */
  readonly stores: StoreView[];
  /** Stops every node; the processes stay in the pool. */
  close(): Promise<void>;
}

export interface ProcessClusterOptions {
  size: number;
  /** Database of the first node; node i uses `firstDb + i`. @defaultValue 1 */
  firstDb?: number;
  replication?: Partial<ReplicationOptions>;
  store?: Partial<StoreOptions>;
}

/** Starts one node in each of the pool's first `size` processes, all at once, and waits until every node runs. */
export async function startProcessCluster(pool: NodeProcessPool, server: LocalRedisServer, options: ProcessClusterOptions): Promise<ProcessCluster> {
  const firstDb = options.firstDb ?? 1;
  if (firstDb + options.size > 16) throw new Error(`a ${options.size}-node cluster from DB ${firstDb} needs more than Redis' 16 databases`);
  const ids = Array.from({ length: options.size }, (_, i) => nodeId(i));
  const url = (i: number) => server.url(firstDb + i);
  const specs: NodeHostSpec[] = ids.map((id, i) => ({
    id,
    redis: url(i),
    prefix: BENCH_PREFIX,
    peers: ids.flatMap((peer, j) => (j === i ? [] : [{ id: peer, redis: url(j) }])),
    ...(options.replication ? { replication: options.replication } : {}),
    ...(options.store ? { store: options.store } : {}),
  }));
  const processes = await pool.take(options.size);
  const stopAll = async (nodes: readonly NodeProcess[]) =>
    Promise.all(
      nodes.map((n) =>
        n.stopNode().catch(() => {
          pool.discard(n);
        }),
      ),
    );
  const started = await Promise.allSettled(specs.map((spec, i) => (processes[i] as NodeProcess).startNode(spec)));
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    await stopAll(processes.filter((_, i) => started[i]?.status === 'fulfilled'));
    for (const [i, s] of started.entries()) if (s.status === 'rejected') pool.discard(processes[i] as NodeProcess);
    throw failure.reason;
  }
  const stores = ids.map((id, i) => {
    const redis = new Redis(url(i), { maxRetriesPerRequest: 1 });
    // Failures surface as failed reads; without a listener ioredis would also print every reconnect attempt.
    redis.on('error', () => undefined);
    return { keys: new KeyBuilder(BENCH_PREFIX, id), redis };
  });
  return {
    nodes: processes,
    stores,
    close: async () => {
      await stopAll(processes);
      for (const s of stores) s.redis.disconnect();
    },
  };
}

/**
 * Waits until node i counted `expected[i]` applied `replicated` events (each child resolves
 * its wait itself, so nothing polls during the run) and returns the time of the last one
 * on this process's clock. Throws {@link ConvergenceError} at the deadline, with the counts.
 */
export async function waitForApplied(cluster: ProcessCluster, expected: readonly number[], timeoutMs: number): Promise<{ lastAppliedAt: number }> {
  const results = await Promise.all(cluster.nodes.map((n, i) => n.waitApplied(expected[i] as number, timeoutMs)));
  if (results.some((r) => !r.reached)) {
    const counts = results.map((r, i) => `${cluster.nodes[i]?.id} ${r.applied}/${expected[i]}`).join(', ');
    const backlog = await clusterBacklog(cluster).catch(() => undefined);
    const drain = backlog ? `; outbox ${backlog.outbox}, unfinished jobs ${backlog.jobs}, failed jobs ${backlog.failed}` : '';
    throw new ConvergenceError(`not converged after ${timeoutMs} ms: applied events ${counts}${drain}`);
  }
  return { lastAppliedAt: Math.max(...results.map((r) => toLocalTime(r.lastAppliedAt))) };
}

/** Outbox entries and unfinished replication jobs over the whole cluster. */
export async function clusterBacklog(cluster: ProcessCluster): Promise<NodeBacklog> {
  const all = await Promise.all(cluster.nodes.map((n) => n.backlog()));
  return all.reduce((a, b) => ({ outbox: a.outbox + b.outbox, jobs: a.jobs + b.jobs, failed: a.failed + b.failed }), { outbox: 0, jobs: 0, failed: 0 });
}

/**
 * Waits until replication is drained and every node holds identical records (`expectedRecords`
 * of them; only `keys` when given). Throws {@link ConvergenceError} at the deadline, saying
 * what differed.
 */
export async function verifyConverged(
  cluster: ProcessCluster,
  options: { timeoutMs: number; keys?: readonly string[]; expectedRecords: number },
): Promise<{ records: number; checks: number }> {
  const deadline = performance.now() + options.timeoutMs;
  let checks = 0;
  let last: { drain?: NodeBacklog; verification?: Verification } = {};
  while (performance.now() < deadline) {
    const drain = await clusterBacklog(cluster);
    last = { drain };
    if (drain.outbox === 0 && drain.jobs === 0) {
      checks += 1;
      const verification = await verifyStores(cluster.stores, options.keys);
      last.verification = verification;
      if (verification.identical && verification.records.every((r) => r === options.expectedRecords)) return { records: verification.records[0] ?? 0, checks };
    }
    await sleep(20);
  }
  const parts = [`not identical after ${options.timeoutMs} ms`];
  if (last.drain) parts.push(`outbox ${last.drain.outbox}, unfinished jobs ${last.drain.jobs}, failed jobs ${last.drain.failed}`);
  if (last.verification) parts.push(`records per node ${last.verification.records.join('/')} (expected ${options.expectedRecords})`, ...last.verification.mismatches);
  throw new ConvergenceError(parts.join('; '));
}
