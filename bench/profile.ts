/**
 * CPU profile of one side of one scenario, summarised: where this process spends its time
 * (by package, and the hottest functions, self and inclusive). For the performance pass.
 *
 *   npx tsx bench/profile.ts replicated          3-node replicated run (scenario 2, ours only)
 *   npx tsx bench/profile.ts local-write-c1      node.put at concurrency 1 (scenario 1, ours only)
 *   npx tsx bench/profile.ts local-write-c64     node.put at concurrency 64
 *   npx tsx bench/profile.ts lag                 1,000 writes/s with D = 50 ms (scenario 3, ours only)
 *   add --full for the full-run sizes, --out=file.cpuprofile to keep the raw profile
 *
 * Redis' own CPU is not in this profile; the scenarios report it (cpuUs…, redisCommands…).
 */
import { writeFileSync } from 'node:fs';
import { Session, type Profiler } from 'node:inspector';
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { LocalRedisServer } from '../src/local-redis/local-redis.js';
import { ReplicaNode } from '../src/node/replica-node.js';
import { startCluster, waitForConvergence } from './lib/cluster.js';
import { SIZES, type BenchContext } from './lib/context.js';
import { closedLoop, openLoop } from './lib/load.js';
import { valueOfBytes } from './lib/payload.js';
import { replicatedRun } from './lib/replicated-run.js';

type CallFrame = Profiler.ProfileNode['callFrame'];

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

const WORKLOADS: Record<string, Workload> = {
  'local-write-c1': localWrite(1),
  'local-write-c64': localWrite(64),
  replicated: async (ctx, profiled) => {
    const { writes, warmupWrites, concurrency } = ctx.sizes.replicated;
    await replicatedRun(ctx, { nodes: 3, writes: warmupWrites, warmupWrites, concurrency });
    await profiled(() => replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency }));
    return writes + warmupWrites;
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

function post<T>(session: Session, method: string, params: object = {}): Promise<T> {
  return new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
}

function category(frame: CallFrame): string {
  if (!frame.url) return frame.functionName || '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  if (pkg) return pkg[1] as string;
  const src = /\/(src|bench)\/(.*)$/.exec(frame.url);
  if (src) return `${src[1]}/${src[2]}`;
  if (frame.url.startsWith('node:')) return 'node (internals)';
  return frame.url;
}

function summarise(profile: Profiler.Profile): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.samples?.length ?? 1) / 1000;
  const self = new Map<number, number>();
  for (const id of profile.samples ?? []) self.set(id, (self.get(id) ?? 0) + interval);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byCategory = new Map<string, number>();
  const bySelf = new Map<string, number>();
  const inclusive = new Map<string, number>();
  // tsx compiles each file onto few lines, so line numbers would only add noise.
  const name = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${category(f)}`;
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id) as Profiler.ProfileNode;
    const key = name(node.callFrame);
    let sum = self.get(id) ?? 0;
    const cat = category(node.callFrame);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + (self.get(id) ?? 0));
    bySelf.set(key, (bySelf.get(key) ?? 0) + (self.get(id) ?? 0));
    const fresh = !onStack.has(key);
    if (fresh) onStack.add(key);
    for (const child of node.children ?? []) sum += walk(child, onStack);
    if (fresh) {
      onStack.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + sum);
    }
    return sum;
  };
  walk(profile.nodes[0]?.id as number, new Set());
  const pct = (ms: number) => `${((ms / total) * 100).toFixed(1).padStart(5)}%`;
  const top = (m: Map<string, number>, n: number, filter: (k: string) => boolean = () => true) =>
    [...m]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${pct(v)}  ${Math.round(v).toString().padStart(6)} ms  ${k}`)
      .join('\n');
  return [
    `sampled ${Math.round(total)} ms of CPU in this process`,
    'self time by package / file:',
    top(byCategory, 18),
    'hottest functions (self):',
    top(bySelf, 25),
    'inclusive time of this project\'s functions (src/):',
    top(inclusive, 25, (k) => k.includes(' src/')),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { full: { type: 'boolean', default: false }, out: { type: 'string' } } });
  const workload = WORKLOADS[positionals[0] ?? ''];
  if (!workload) throw new Error(`usage: npx tsx bench/profile.ts <${Object.keys(WORKLOADS).join('|')}> [--full] [--out=file.cpuprofile]`);
  const server = await LocalRedisServer.start();
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
