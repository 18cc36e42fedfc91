/**
 * 11. Cluster store: what a Redis Cluster store costs against standalone stores, in the
 * same run.
 *
 * - The replicated run of scenario 2 (3 nodes, distinct keys, writes spread over the
 *   nodes, clock stopped at verified identical state) once with every node on its own
 *   private `redis-server`, and once with all three nodes on one private 3-master Redis
 *   Cluster (the nodes' keys apart by node id). The row is the wall time per write per
 *   peer, cluster over standalone.
 *   The rows with targets compare like with like: three masters and no replicas against
 *   three standalone servers, which have none either, with `clusterPartitions` 3 (one
 *   partition per master, as the docs recommend). Diag rows run the same on a cluster with
 *   a replica per master (6 redis-server processes: what a failover needs; the replicas
 *   apply every write again on the same 2 cores), with the default 12 partitions, and
 *   the cluster and standalone pair again at 4× the concurrency: a cluster node commits a
 *   transaction per partition (slot) where a standalone node commits one, and that fixed
 *   cost is shared by more writes when more are in flight.
 * - During the cluster run: keys (`bench:*`, once converged) and commands (from the first
 *   measured write to convergence, `CONFIG RESETSTAT` just before) on each master, max over
 *   min. A partition per master and 3 tagged queue shards per peer should put an even
 *   share on every master.
 * - The durability option: local write latency on the cluster with `waitReplicas: 1`
 *   (every group commit waits for Redis `WAIT 1`) against `waitReplicas: 0`, at c=1 and
 *   c=64. Report only: the cost of the option is the finding, there is no target.
 *
 * This machine has 2 cores: the clusters' redis-server processes and the one Node
 * process that hosts every node share them, so a cluster cannot show a throughput gain
 * here (on separate machines each master would bring its own core). The rows show the
 * per-write overhead and the spread instead; the commands per write (a diag row) are the
 * figure least moved by other load on the machine.
 */
import { ReplicaNode } from '../../src/node/replica-node.js';
import { LocalRedisCluster } from '../../src/local-redis/local-cluster.js';
import { CLUSTER_PARTITIONS } from '../../src/store/layout.js';
import { BENCH_PREFIX } from '../lib/cluster.js';
import { cpuSpent, type BenchContext } from '../lib/context.js';
import { closedLoop } from '../lib/load.js';
import { seededRandom, valueOfBytes } from '../lib/payload.js';
import { perOperation } from '../lib/redis-stats.js';
import { replicatedRun, VALUE_BYTES, type ReplicatedRunResult } from '../lib/replicated-run.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { median, perSecond, round, roundSummary, summarize, type Summary } from '../lib/stats.js';
import { ClusterStore, StandaloneServers, type MasterSpread, type StoreSetup } from '../lib/store-setup.js';

const NODES = 3;
const MASTERS = 3;
/** The diag row's load: this many times the scenario's concurrency. */
const LOADED = 4;

/** The cluster setups a round runs besides the standalone servers. */
interface Clusters {
  /** 3 masters, no replicas, 3 partitions: the rows with targets. */
  tuned: ClusterStore;
  /** 3 masters with a replica each, 3 partitions. */
  replicated: ClusterStore;
  /** 3 masters, no replicas, the default partition count. */
  defaults: ClusterStore;
}

interface ClusterRun {
  run: ReplicatedRunResult;
  spread: MasterSpread;
}

function summary(r: ReplicatedRunResult) {
  return { convergedWritesPerSec: Math.round(r.convergedWritesPerSec), costUsPerWritePeer: round(r.costUsPerWritePeer), ...r.details };
}

function middle<T>(runs: readonly T[], by: (t: T) => number): T {
  return [...runs].sort((a, b) => by(a) - by(b))[Math.floor((runs.length - 1) / 2)] as T;
}

function byPort(m: Map<number, number>): Record<string, number> {
  return Object.fromEntries([...m].map(([port, n]) => [String(port), n]));
}

function spreadRow(name: string, perMaster: Map<number, number>, unit: string, details: Record<string, unknown>): ResultRow {
  const values = [...perMaster.values()];
  if (values.length !== MASTERS) throw new Error(`${name}: counted ${values.length} masters, expected ${MASTERS}`);
  return row(name, { ours: Math.max(...values), baseline: Math.min(...values), unit, target: { kind: 'max-ratio', max: 1.25 }, details: { perMaster: byPort(perMaster), ...details } });
}

/** One side's runs, summed up. */
function sideOf(runs: readonly ReplicatedRunResult[]) {
  return { cost: median(runs.map((r) => r.costUsPerWritePeer)), rate: median(runs.map((r) => r.convergedWritesPerSec)), commands: median(runs.map((r) => r.redisCommandsPerWrite)), mid: middle(runs, (r) => r.costUsPerWritePeer) };
}

/**
 * The replicated run on the standalone servers, on the cluster with as many partitions as
 * masters (the configuration the docs recommend: the rows with targets), and on the
 * cluster with the default 12 partitions (a diag row), the three in a rotating order.
 */
async function replicatedRows(ctx: BenchContext, standalone: StandaloneServers, clusters: Clusters): Promise<ResultRow[]> {
  const { writes, warmupWrites, concurrency } = ctx.sizes.clusterStore;
  const options = { nodes: NODES, writes, warmupWrites, concurrency };
  const bases: ReplicatedRunResult[] = [];
  const ours: ClusterRun[] = [];
  const withReplicas: ReplicatedRunResult[] = [];
  const defaults: ReplicatedRunResult[] = [];
  // The same pair at 4× the writers: a cluster node commits a transaction per partition,
  // whose fixed cost fuller batches share.
  const loaded = { ...options, concurrency: concurrency * LOADED };
  const basesLoaded: ReplicatedRunResult[] = [];
  const oursLoaded: ReplicatedRunResult[] = [];
  const sides = ['standalone', 'tuned', 'replicated', 'defaults', 'standaloneLoaded', 'tunedLoaded'] as const;
  // One unmeasured run on each store first: this is the only scenario that drives the
  // cluster client's code, which a full run otherwise reaches cold (JIT) in its first
  // round while the standalone code is warm from the scenarios before.
  for (const store of [standalone, clusters.tuned]) await replicatedRun(ctx, { ...options, store });
  ctx.log('warm-up runs done (unmeasured)');
  for (let r = 1; r <= ctx.sizes.rounds; r++) {
    const tag = ctx.sizes.rounds > 1 ? ` (round ${r}/${ctx.sizes.rounds})` : '';
    // The sides take turns at going first, so a slow start of a round does not always land on one.
    const order = [...sides.slice((r - 1) % sides.length), ...sides.slice(0, (r - 1) % sides.length)];
    for (const side of order) {
      if (side === 'standalone' || side === 'standaloneLoaded') {
        const base = await replicatedRun(ctx, { ...(side === 'standalone' ? options : loaded), store: standalone });
        ctx.log(`standalone${side === 'standalone' ? '' : `, concurrency ${loaded.concurrency}`}${tag}: ${base.costUsPerWritePeer.toFixed(1)} µs per write per peer, ${Math.round(base.convergedWritesPerSec)} converged writes/s`);
        (side === 'standalone' ? bases : basesLoaded).push(base);
        continue;
      }
      if (side === 'tunedLoaded') {
        const run = await replicatedRun(ctx, { ...loaded, store: clusters.tuned });
        ctx.log(`cluster (${clusters.tuned.description}), concurrency ${loaded.concurrency}${tag}: ${run.costUsPerWritePeer.toFixed(1)} µs per write per peer, ${Math.round(run.convergedWritesPerSec)} converged writes/s`);
        oursLoaded.push(run);
        continue;
      }
      const cluster = clusters[side];
      const run = await replicatedRun(ctx, { ...options, store: cluster });
      if (!cluster.spread) throw new Error('the cluster run recorded no per-master counts');
      ctx.log(`cluster (${cluster.description})${tag}: ${run.costUsPerWritePeer.toFixed(1)} µs per write per peer, ${Math.round(run.convergedWritesPerSec)} converged writes/s; keys per master ${[...cluster.spread.keys.values()].join('/')}, commands per master ${[...cluster.spread.commands.values()].join('/')}`);
      if (side === 'tuned') ours.push({ run, spread: cluster.spread });
      else if (side === 'replicated') withReplicas.push(run);
      else defaults.push(run);
    }
  }
  const tuned = sideOf(ours.map((o) => o.run));
  const base = sideOf(bases);
  const dflt = sideOf(defaults);
  const repl = sideOf(withReplicas);
  const tunedHigh = sideOf(oursLoaded);
  const baseHigh = sideOf(basesLoaded);
  const exec = (runs: readonly ReplicatedRunResult[]) => round(median(runs.map((r) => r.transactionsPerWrite)), 3);
  const mid = middle(ours, (o) => o.run.costUsPerWritePeer);
  const details = {
    rounds: ctx.sizes.rounds,
    perRound: ours.map((o, i) => ({
      cluster: { costUsPerWritePeer: round(o.run.costUsPerWritePeer), convergedWritesPerSec: round(o.run.convergedWritesPerSec) },
      clusterWithReplicas: { costUsPerWritePeer: round((withReplicas[i] as ReplicatedRunResult).costUsPerWritePeer), convergedWritesPerSec: round((withReplicas[i] as ReplicatedRunResult).convergedWritesPerSec) },
      clusterDefaultPartitions: { costUsPerWritePeer: round((defaults[i] as ReplicatedRunResult).costUsPerWritePeer), convergedWritesPerSec: round((defaults[i] as ReplicatedRunResult).convergedWritesPerSec) },
      standalone: { costUsPerWritePeer: round((bases[i] as ReplicatedRunResult).costUsPerWritePeer), convergedWritesPerSec: round((bases[i] as ReplicatedRunResult).convergedWritesPerSec) },
    })),
    cluster: summary(mid.run),
    clusterWithReplicas: summary(repl.mid),
    clusterDefaultPartitions: summary(dflt.mid),
    standalone: summary(base.mid),
    note: `clusterPartitions ${MASTERS} (one partition per master) and no replicas unless said otherwise (clusterWithReplicas: a replica per master, 6 redis-server processes); CPU counts every process, commands the masters only`,
  };
  const spreadDetails = { run: 'the cluster run with the median cost per write per peer', nodes: NODES, masters: MASTERS, clusterPartitions: MASTERS };
  return [
    row(`cluster: cost per replicated write, 3-master Cluster store (${MASTERS} partitions) vs standalone`, {
      ours: tuned.cost,
      baseline: base.cost,
      unit: 'µs/write/peer',
      target: { kind: 'max-ratio', max: 1.3 },
      details,
    }),
    row(`diag: cluster: cost per replicated write at concurrency ${loaded.concurrency}, ${MASTERS} partitions vs standalone`, {
      ours: tunedHigh.cost,
      baseline: baseHigh.cost,
      unit: 'µs/write/peer',
      details: {
        transactionsPerWrite: { [`concurrency ${concurrency}`]: { cluster: exec(ours.map((o) => o.run)), standalone: exec(bases) }, [`concurrency ${loaded.concurrency}`]: { cluster: exec(oursLoaded), standalone: exec(basesLoaded) } },
        cluster: summary(tunedHigh.mid),
        standalone: summary(baseHigh.mid),
        note: 'EXEC calls per write: group commits, merges and folds',
      },
    }),
    row(`diag: cluster: cost per replicated write, a replica per master vs standalone`, { ours: repl.cost, baseline: base.cost, unit: 'µs/write/peer' }),
    row(`diag: cluster: cost per replicated write, default ${CLUSTER_PARTITIONS} partitions vs standalone`, { ours: dflt.cost, baseline: base.cost, unit: 'µs/write/peer' }),
    row(`cluster: converged writes/s, 3-master Cluster store (${MASTERS} partitions) vs standalone`, { ours: tuned.rate, baseline: base.rate, unit: 'writes/s' }),
    row(`diag: cluster: Redis commands per replicated write, ${MASTERS} partitions vs standalone`, {
      ours: tuned.commands,
      baseline: base.commands,
      unit: 'cmds/write',
      details: {
        replicationJobsPerWrite: { cluster: round(median(ours.map((o) => o.run.replicationJobs / o.run.writes)), 3), standalone: round(median(bases.map((b) => b.replicationJobs / b.writes)), 3) },
        note: 'commands on the masters (cluster) or the servers (standalone), from the first measured write to verified convergence; per command in the first row\'s details',
      },
    }),
    row(`diag: cluster: Redis commands per replicated write, default ${CLUSTER_PARTITIONS} partitions vs standalone`, { ours: dflt.commands, baseline: base.commands, unit: 'cmds/write' }),
    spreadRow('cluster: keys per master, max/min', mid.spread.keys, 'keys', { pattern: `${BENCH_PREFIX}:*`, ...spreadDetails }),
    spreadRow('cluster: commands per master, max/min', mid.spread.commands, 'commands', { window: 'first measured write to verified convergence; introspection (CLUSTER, INFO, PING, …) left out', ...spreadDetails }),
  ];
}

interface LatencyRun {
  latency: Summary;
  opsPerSec: number;
  details: Record<string, unknown>;
}

/** A closed loop of `node.put` at `concurrency`, with CPU and commands (masters) per write. */
async function measureLatency(ctx: BenchContext, store: StoreSetup, node: ReplicaNode, concurrency: number): Promise<LatencyRun> {
  const { warmupMs, durationMs, keyspace } = ctx.sizes.clusterStore.latency;
  const random = seededRandom(concurrency);
  const values = Array.from({ length: 64 }, (_, i) => valueOfBytes(i, VALUE_BYTES));
  const cpu0 = await store.cpu();
  const cmd0 = await store.commands();
  const result = await closedLoop({ concurrency, warmupMs, durationMs, op: (seq) => node.put(`key-${Math.floor(random() * keyspace)}`, values[seq % values.length] as string) });
  const cpu = cpuSpent(cpu0, await store.cpu());
  const cmd = await store.commands();
  const latency = summarize(result.latenciesMs);
  return {
    latency,
    opsPerSec: perSecond(result.ops, result.elapsedMs),
    details: {
      ops: result.ops,
      opsPerSec: round(perSecond(result.ops, result.elapsedMs)),
      latencyMs: roundSummary(latency),
      cpuUsPerOp: { process: round(cpu.processUs / result.totalOps, 3), redis: round(cpu.redisUs / result.totalOps, 3) },
      redisCommandsPerOp: perOperation(cmd0, cmd, result.totalOps, 6),
    },
  };
}

async function durabilityRows(ctx: BenchContext, cluster: ClusterStore): Promise<ResultRow[]> {
  await cluster.reset();
  // Two writers on the cluster, each with two peers declared (so the relay enqueues) whose
  // processes are not started, as in scenario 1: only the writer's own cost is measured.
  const start = (id: string, waitReplicas: number) =>
    ReplicaNode.start({ id, redis: cluster.target(), prefix: BENCH_PREFIX, clusterPartitions: MASTERS, peers: [{ id: `${id}-p2`, redis: cluster.target() }, { id: `${id}-p3`, redis: cluster.target() }], waitReplicas });
  const started = await Promise.allSettled([start('wait0', 0), start('wait1', 1)]);
  const running = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const rows: ResultRow[] = [];
  try {
    if (failed) throw failed.reason;
    const nodes = { 0: running[0] as ReplicaNode, 1: running[1] as ReplicaNode };
    const errors: Error[] = [];
    for (const node of running) node.on('error', (e) => errors.push(e));
    await Promise.all(running.map((n) => n.resynced()));
    for (const concurrency of ctx.sizes.clusterStore.latency.concurrencies) {
      const runs: Record<0 | 1, LatencyRun[]> = { 0: [], 1: [] };
      for (let r = 1; r <= ctx.sizes.rounds; r++) {
        const tag = ctx.sizes.rounds > 1 ? ` (round ${r}/${ctx.sizes.rounds})` : '';
        for (const wait of r % 2 === 1 ? ([0, 1] as const) : ([1, 0] as const)) {
          const m = await measureLatency(ctx, cluster, nodes[wait], concurrency);
          ctx.log(`waitReplicas ${wait}, c=${concurrency}${tag}: p50 ${m.latency.p50.toFixed(3)} ms, p99 ${m.latency.p99.toFixed(3)} ms, ${Math.round(m.opsPerSec)} ops/s`);
          runs[wait].push(m);
        }
      }
      if (errors.length > 0) throw errors[0];
      const p = (wait: 0 | 1, f: keyof Summary) => median(runs[wait].map((m) => m.latency[f]));
      const side = (wait: 0 | 1) => ({
        p50Ms: round(p(wait, 'p50')),
        p99Ms: round(p(wait, 'p99')),
        meanMs: round(p(wait, 'mean')),
        opsPerSec: round(median(runs[wait].map((m) => m.opsPerSec))),
        medianRound: middle(runs[wait], (m) => m.latency.p50).details,
      });
      rows.push(
        row(`cluster: local write latency with waitReplicas 1 vs 0, c=${concurrency}`, {
          ours: p(1, 'p50'),
          baseline: p(0, 'p50'),
          unit: 'ms (p50)',
          details: { concurrency, rounds: ctx.sizes.rounds, 'waitReplicas 1': side(1), 'waitReplicas 0': side(0), setup: 'one writer on the 3-master cluster (1 replica per master), two peers declared but not started; medians over the rounds' },
        }),
      );
    }
    return rows;
  } finally {
    await Promise.all(running.map((n) => n.close()));
  }
}

export const clusterStoreScenario: Scenario = {
  id: 'cluster-store',
  title: '11. Cluster store',
  async run(ctx) {
    ctx.log(`starting two ${MASTERS}-master Redis Clusters (no replicas; 1 replica each) and ${NODES} standalone redis-servers`);
    const started = await Promise.allSettled([LocalRedisCluster.start({ masters: MASTERS, replicasPerMaster: 0 }), LocalRedisCluster.start({ masters: MASTERS, replicasPerMaster: 1 }), StandaloneServers.start(NODES)] as const);
    const [bare, withReplicas, standalone] = started;
    if (bare.status === 'rejected' || withReplicas.status === 'rejected' || standalone.status === 'rejected') {
      await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.destroy() : undefined)));
      throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
    }
    const on = (partitions: number, replicas: string) => `one ${MASTERS}-master Redis Cluster (${replicas}) shared by the ${NODES} nodes, ${partitions} partitions each`;
    const clusters: Clusters = {
      tuned: new ClusterStore(bare.value, BENCH_PREFIX, on(MASTERS, 'no replicas'), MASTERS),
      replicated: new ClusterStore(withReplicas.value, BENCH_PREFIX, on(MASTERS, '1 replica per master'), MASTERS),
      defaults: new ClusterStore(bare.value, BENCH_PREFIX, on(CLUSTER_PARTITIONS, 'no replicas')),
    };
    try {
      return [...(await replicatedRows(ctx, standalone.value, clusters)), ...(await durabilityRows(ctx, clusters.replicated))];
    } finally {
      for (const c of Object.values(clusters)) c.close();
      await Promise.all([bare.value.destroy(), withReplicas.value.destroy(), standalone.value.destroy()]);
    }
  },
};
