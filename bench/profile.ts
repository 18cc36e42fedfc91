/**
 * CPU profile of one side of one scenario, summarised: where this process spends its time
 * (by package, and the hottest functions, self and inclusive). For the performance pass.
 *
 *   npx tsx bench/profile.ts replicated          3-node replicated run (scenario 2, ours only)
 *   npx tsx bench/profile.ts replicated-cluster  the same on one 3-master Redis Cluster, 3 partitions (scenario 11)
 *   npx tsx bench/profile.ts replicated-standalone  its baseline: the same sizes, a private redis-server per node
 *   npx tsx bench/profile.ts local-write-c1      node.put at concurrency 1 (scenario 1, ours only)
 *   npx tsx bench/profile.ts local-write-c64     node.put at concurrency 64
 *   npx tsx bench/profile.ts lag                 1,000 writes/s with D = 50 ms (scenario 3, ours only)
 *   npx tsx bench/profile.ts http-node           the HTTP server process under autocannon (scenario 5)
 *   npx tsx bench/profile.ts http-bare           the bare Express server, for comparison
 *   npx tsx bench/profile.ts scale [--nodes=3,7] [--rate=300]   scenario 7 (a process per node): every
 *                                                node process profiled over the measured writes; self
 *                                                time by package in µs per write per peer, side by side;
 *                                                --rate offers each node that many writes/s (open loop)
 *                                                instead of the scenario's closed loop;
 *                                                --replication='{"maxKeysPerJob":10}' sets node options;
 *                                                --preload=1000000 loads that many keys first (default 10,000)
 *   npx tsx bench/profile.ts job-cost            Redis commands and BullMQ scripts of one replication
 *                                                job, apart from its keys (lib/job-cost.ts)
 *   npx tsx bench/profile.ts summarise file.cpuprofile   any `node --cpu-prof` output
 *   add --full for the full-run sizes, --out=file.cpuprofile to keep the raw profile
 *
 * Redis' own CPU is not in this profile; the scenarios report it (cpuUs…, redisCommands…).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session, type Profiler } from 'node:inspector';
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { LocalRedisCluster } from '../src/local-redis/local-cluster.js';
import { LocalRedisServer } from '../src/local-redis/local-redis.js';
import { ReplicaNode } from '../src/node/replica-node.js';
import { BENCH_PREFIX, startCluster, waitForConvergence } from './lib/cluster.js';
import { ClusterStore, StandaloneServers, type StoreSetup } from './lib/store-setup.js';
import { SIZES, type BenchContext } from './lib/context.js';
import { closedLoop, openLoop } from './lib/load.js';
import { valueOfBytes } from './lib/payload.js';
import { selfByCategory, summarise } from './lib/profile-summary.js';
import { processRun, warmProcesses } from './lib/process-run.js';
import { measureJobCost } from './lib/job-cost.js';
import type { ReplicationOptions } from '../src/replication/options.js';
import { NodeProcessPool } from './lib/process-cluster.js';
import { replicatedRun } from './lib/replicated-run.js';
import { load, startTarget } from './scenarios/http.js';

/** Runs a warm-up, then the measured part inside `profiled`; returns how many writes that part made. */
type Workload = (ctx: BenchContext, profiled: <T>(fn: () => Promise<T>) => Promise<T>) => Promise<number>;

const localWrite =
  (concurrency: number): Workload =>
  async (ctx, profiled) => {
    const node = await ReplicaNode.start({
      id: 'n1',
      redis: ctx.server.url(1),
      prefix: 'bench',
      peers: [
        { id: 'n2', redis: ctx.server.url(2) },
        { id: 'n3', redis: ctx.server.url(3) },
      ],
    });
    try {
      await node.resynced();
      const { warmupMs, durationMs, keyspace } = ctx.sizes.localWrite;
      const op = (seq: number) => node.put(`key-${Math.floor(Math.random() * keyspace)}`, valueOfBytes(seq, 100));
      await closedLoop({ concurrency, warmupMs, durationMs: 0, op });
      const result = await profiled(() => closedLoop({ concurrency, warmupMs: 0, durationMs, op }));
      return result.totalOps;
    } finally {
      await node.close();
    }
  };

/** Scenario 11's replicated run on `store`: a warm-up run, then the measured one inside `profiled`. */
async function clusterStoreRun(ctx: BenchContext, store: StoreSetup, profiled: <T>(fn: () => Promise<T>) => Promise<T>): Promise<number> {
  const { writes, warmupWrites, concurrency } = ctx.sizes.clusterStore;
  await replicatedRun(ctx, { nodes: 3, writes: warmupWrites, warmupWrites, concurrency, store });
  await replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency, store, measured: profiled });
  return writes;
}

const WORKLOADS: Record<string, Workload> = {
  'local-write-c1': localWrite(1),
  'local-write-c64': localWrite(64),
  replicated: async (ctx, profiled) => {
    const { writes, warmupWrites, concurrency } = ctx.sizes.replicated;
    await replicatedRun(ctx, { nodes: 3, writes: warmupWrites, warmupWrites, concurrency });
    await replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency, measured: profiled });
    return writes;
  },
  'replicated-cluster': async (ctx, profiled) => {
    // Scenario 11's cluster side: 3 nodes on one 3-master cluster (no replicas), 3 partitions each.
    const rc = await LocalRedisCluster.start({ masters: 3, replicasPerMaster: 0 });
    const store = new ClusterStore(rc, BENCH_PREFIX, 'one 3-master Redis Cluster, 3 partitions per node', 3);
    try {
      return await clusterStoreRun(ctx, store, profiled);
    } finally {
      store.close();
      await rc.destroy();
    }
  },
  'replicated-standalone': async (ctx, profiled) => {
    // Scenario 11's baseline: the same run with each node on its own private redis-server.
    const store = await StandaloneServers.start(3);
    try {
      return await clusterStoreRun(ctx, store, profiled);
    } finally {
      await store.destroy();
    }
  },
  lag: async (ctx, profiled) => {
    const { ratePerSec, durationMs, delayMs } = ctx.sizes.lag;
    const cluster = await startCluster(ctx.server, { size: 3, replication: { delayMs } });
    try {
      const run = (prefix: string, ms: number) =>
        openLoop({ ratePerSec, durationMs: ms, settleTimeoutMs: 60_000, op: (seq) => cluster.nodes[seq % 3]?.put(`${prefix}-${seq}`, valueOfBytes(seq, 100)) as Promise<unknown> });
      await run('warm', 500);
      const load = await profiled(() => run('lag', durationMs));
      await waitForConvergence(cluster, { timeoutMs: 60_000, expectedRecords: load.issued + Math.round(ratePerSec / 2) });
      return load.issued;
    } finally {
      await cluster.close();
    }
  },
};

interface ScaleColumn {
  nodes: number;
  /** Self CPU per write per peer (µs) by package, summed over the node processes. */
  perCategory: Map<string, number>;
  sampledUs: number;
  cpu: Record<string, number>;
  wait: Record<string, number>;
  calls: number;
  keysPerJob: number;
}

async function profileCount(ctx: BenchContext, pool: NodeProcessPool, nodes: number, out: string | undefined, load: ScaleLoad): Promise<ScaleColumn> {
  const { writes, warmupWritesPerNode, concurrencyPerNode, preload } = ctx.sizes.scale;
  const r = await processRun(ctx, pool, {
    nodes,
    writes,
    warmupWritesPerNode,
    concurrencyPerNode,
    preload: load.preload ?? preload[0],
    profile: true,
    ...(load.rate ? { ratePerNode: load.rate } : {}),
    ...(load.replication ? { replication: load.replication } : {}),
  });
  const writePeers = r.writes * (nodes - 1);
  const perCategory = new Map<string, number>();
  for (const profile of r.profiles?.values() ?? []) {
    for (const [cat, ms] of selfByCategory(profile)) if (cat !== '(idle)') perCategory.set(cat, (perCategory.get(cat) ?? 0) + (ms * 1000) / writePeers);
  }
  const first = r.profiles?.get('n1');
  if (out && first) writeFileSync(out, JSON.stringify(first));
  console.log(`${nodes} nodes: ${r.costUsPerWritePeer.toFixed(1)} µs wall per write per peer, ${String(r.details.keysPerJob)} keys per job`);
  console.log(`Redis commands per write per peer: ${JSON.stringify(r.details.redisCommandsPerWritePeer)}`);
  if (first) console.log(`node n1's profile:\n${summarise(first)}`);
  const sampledUs = [...perCategory.values()].reduce((a, b) => a + b, 0);
  return { nodes, perCategory, sampledUs, cpu: r.cpuUsPerWritePeer, wait: r.cpuWaitUsPerWritePeer, calls: r.redisCallsPerWritePeer, keysPerJob: Number(r.details.keysPerJob) };
}

/**
 * Scenario 7's run at each node count with every node process profiled over the measured
 * writes: where the CPU per write per peer goes, by package, summed over the processes
 * (idle time left out), with the run's Redis commands per write per peer. `--out` keeps
 * node n1's profile of the last count.
 */
interface ScaleLoad {
  /** Writes/s offered per node (open loop) instead of the scenario's closed loop. */
  rate: number | undefined;
  replication: Partial<ReplicationOptions> | undefined;
  /** Keys loaded on every node before the run (default: the scenario's small keyspace). */
  preload?: number | undefined;
}

async function profileScale(ctx: BenchContext, counts: number[], out: string | undefined, load: ScaleLoad): Promise<void> {
  const columns: ScaleColumn[] = [];
  const pool = new NodeProcessPool();
  try {
    const { processWarmupWritesPerNode, concurrencyPerNode } = ctx.sizes.scale;
    await warmProcesses(ctx, pool, Math.max(...counts), processWarmupWritesPerNode, concurrencyPerNode);
    for (const nodes of counts) columns.push(await profileCount(ctx, pool, nodes, out, load));
  } finally {
    await pool.close();
  }
  const cats = [...new Set(columns.flatMap((c) => [...c.perCategory.keys()]))];
  const widest = (cat: string) => Math.max(...columns.map((c) => c.perCategory.get(cat) ?? 0));
  cats.sort((a, b) => widest(b) - widest(a));
  const line = (label: string, cells: number[]) => console.log(`${label.slice(0, 39).padEnd(40)}${cells.map((v) => v.toFixed(2).padStart(10)).join('')}`);
  console.log(`\nself CPU per write per peer (µs), summed over every node process\n${'nodes'.padEnd(40)}${columns.map((c) => String(c.nodes).padStart(10)).join('')}`);
  line('(sampled, all)', columns.map((c) => c.sampledUs));
  for (const cat of cats.slice(0, 30)) line(cat, columns.map((c) => c.perCategory.get(cat) ?? 0));
  line('process.cpuUsage(), node processes', columns.map((c) => c.cpu.nodes ?? 0));
  line('redis-server CPU', columns.map((c) => c.cpu.redis ?? 0));
  line('waiting for a CPU, node processes', columns.map((c) => c.wait.nodes ?? 0));
  line('waiting for a CPU, redis-server', columns.map((c) => c.wait.redis ?? 0));
  line('Redis commands per write per peer', columns.map((c) => c.calls));
  line('keys per replication job', columns.map((c) => c.keysPerJob));
}

function post<T>(session: Session, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
}

/** Profiles the HTTP target process (`--cpu-prof`, written when it exits) under a warm-up and a measured autocannon run. */
async function profileHttp(node: boolean, ctx: BenchContext, out: string | undefined): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'eventual-cache-prof-'));
  try {
    const args = node ? ['node', ctx.server.url(1), ctx.server.url(2), ctx.server.url(3)] : ['bare'];
    // Only the measured run should be in the profile, but --cpu-prof covers the process's whole life;
    // the warm-up is kept short so it stays a small share.
    const target = await startTarget(args, ['--cpu-prof', '--cpu-prof-dir', dir]);
    let requests = 0;
    try {
      await load(ctx, target.port, 1, 'profile warm-up');
      requests = (await load(ctx, target.port, ctx.sizes.http.durationSec * 2, 'profile'))['2xx'];
    } finally {
      await target.stop();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the HTTP target wrote no profile in ${dir}`);
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profiler.Profile;
    if (out) writeFileSync(out, JSON.stringify(profile));
    console.log(`${requests} requests in the measured run (the profile also covers start-up and a 1 s warm-up)`);
    console.log(summarise(profile));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { full: { type: 'boolean', default: false }, out: { type: 'string' }, nodes: { type: 'string', default: '3,7' }, rate: { type: 'string' }, preload: { type: 'string' }, replication: { type: 'string' } },
  });
  const name = positionals[0] ?? '';
  if (name === 'summarise' && positionals[1]) {
    console.log(summarise(JSON.parse(readFileSync(positionals[1], 'utf8')) as Profiler.Profile));
    return;
  }
  const workload = WORKLOADS[name];
  const http = name === 'http-node' || name === 'http-bare';
  if (!workload && !http && name !== 'scale' && name !== 'job-cost') {
    throw new Error(`usage: npx tsx bench/profile.ts <${[...Object.keys(WORKLOADS), 'http-node', 'http-bare', 'scale [--nodes=3,7]', 'job-cost', 'summarise <file>'].join('|')}> [--full] [--out=file.cpuprofile]`);
  }
  const server = await LocalRedisServer.start();
  if (name === 'job-cost') {
    try {
      console.log(JSON.stringify(await measureJobCost(server), null, 2));
    } finally {
      await server.destroy();
    }
    return;
  }
  if (name === 'scale') {
    const counts = (values.nodes ?? '').split(',').map(Number);
    if (counts.some((n) => !Number.isInteger(n) || n < 2 || n > 15)) throw new Error(`--nodes takes node counts from 2 to 15, e.g. --nodes=3,7 (got ${values.nodes})`);
    const admin = new Redis(server.url(0), { maxRetriesPerRequest: 1 });
    try {
      const profile = values.full ? 'full' : 'quick';
      const rate = values.rate === undefined ? undefined : Number(values.rate);
      if (rate !== undefined && !(rate > 0)) throw new Error(`--rate takes writes per second per node, e.g. --rate=300 (got ${values.rate})`);
      const replication = values.replication === undefined ? undefined : (JSON.parse(values.replication) as Partial<ReplicationOptions>);
      const preload = values.preload === undefined ? undefined : Number(values.preload);
      if (preload !== undefined && !(Number.isInteger(preload) && preload >= SIZES[profile].scale.writes)) throw new Error(`--preload takes a key count of at least the run's writes, e.g. --preload=1000000 (got ${values.preload})`);
      await profileScale({ profile, sizes: SIZES[profile], server, admin, log: (m) => process.stderr.write(`${m}\n`) }, counts, values.out, { rate, replication, preload });
    } finally {
      admin.disconnect();
      await server.destroy();
    }
    return;
  }
  if (http) {
    try {
      await profileHttp(name === 'http-node', { profile: values.full ? 'full' : 'quick', sizes: SIZES[values.full ? 'full' : 'quick'], server, admin: new Redis(server.url(0), { lazyConnect: true }), log: () => undefined }, values.out);
    } finally {
      await server.destroy();
    }
    return;
  }
  if (!workload) return;
  const admin = new Redis(server.url(0), { maxRetriesPerRequest: 1 });
  const session = new Session();
  session.connect();
  try {
    const ctx: BenchContext = { profile: values.full ? 'full' : 'quick', sizes: SIZES[values.full ? 'full' : 'quick'], server, admin, log: (m) => process.stderr.write(`${m}\n`) };
    let profile: Profiler.Profile | undefined;
    const sockets = { writes: 0, bytes: 0, counting: false };
    const write = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
      if (sockets.counting) {
        sockets.writes += 1;
        const chunk = args[0] as string | Uint8Array;
        sockets.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      }
      return write.apply(this, args);
    } as Socket['write'];
    const ops = await workload(ctx, async (fn) => {
      sockets.counting = true;
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.setSamplingInterval', { interval: 200 });
      await post(session, 'Profiler.start');
      try {
        return await fn();
      } finally {
        profile = (await post<{ profile: Profiler.Profile }>(session, 'Profiler.stop')).profile;
        sockets.counting = false;
      }
    });
    Socket.prototype.write = write;
    if (!profile) throw new Error('the workload never started the profiler');
    if (values.out) writeFileSync(values.out, JSON.stringify(profile));
    console.log(`${ops} writes profiled; ${sockets.writes} socket writes (${(sockets.writes / ops).toFixed(1)} per write, ${Math.round(sockets.bytes / ops)} bytes per write)`);
    console.log(summarise(profile));
  } finally {
    session.disconnect();
    admin.disconnect();
    await server.destroy();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
