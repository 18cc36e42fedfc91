/**
 * One replicated run with every node in its own process (scenario 7): an N-node cluster
 * takes `writes` writes to distinct keys, node i writing every key whose index is i mod N
 * with `concurrencyPerNode` puts in flight inside its own process, and the clock stops when
 * every node applied every write and folded its digest log — identical records verified
 * by reading every node's database.
 *
 * Besides the wall time per write per peer it reports what each process spent: CPU of
 * every node process (from `process.cpuUsage()` in the child) and of redis-server, and
 * the Redis commands per write per peer (`INFO commandstats` deltas, over writes × peers).
 */
import { cpuSnapshot, cpuSpent, infoField, type BenchContext } from './context.js';
import { schedStat } from './schedstat.js';
import { sampleDistinct, seededRandom } from './payload.js';
import { commandStats, perOperation, resetServer } from './redis-stats.js';
import { preload } from './replicated-run.js';
import { startProcessCluster, verifyConverged, waitForApplied, type NodeProcessPool, type ProcessCluster } from './process-cluster.js';
import { toLocalTime, type NodeStats, type WriteResult } from './node-process.js';
import type { Profiler } from 'node:inspector';
import os from 'node:os';
import type { ReplicationOptions } from '../../src/replication/options.js';
import type { StoreOptions } from '../../src/store/record-store.js';
import { median, round } from './stats.js';

export interface ProcessRunOptions {
  nodes: number;
  writes: number;
  /**
   * Local writes every node makes before the measured part (so it also applies `nodes - 1`
   * times as many): each process warms its own JIT, which a cold process lacks for
   * thousands of writes; one shared process did that once for all its nodes.
   */
  warmupWritesPerNode: number;
  /** Puts in flight inside each node's process. */
  concurrencyPerNode: number;
  /** Offer each node's writes at this rate (writes/s, open loop) instead of `concurrencyPerNode` back to back. */
  ratePerNode?: number;
  /** Keys already held, identically, by every node before the run; writes then update a sample of them. */
  preload?: number;
  /** The previous run's data stays (it preloaded the same keys on as many nodes): no flush, no preload. */
  reuseData?: boolean;
  replication?: Partial<ReplicationOptions>;
  store?: Partial<StoreOptions>;
  /** Takes a CPU profile of every node process over the measured part (bench/profile.ts). */
  profile?: boolean;
}

export interface ProcessRunResult {
  nodes: number;
  writes: number;
  /** From the first write to the verified convergence of all nodes. */
  convergeMs: number;
  /** From the first write to the last acknowledgement. */
  writePhaseMs: number;
  convergedWritesPerSec: number;
  /** Wall time per write per peer that had to apply it (µs): the cost that should stay flat. */
  costUsPerWritePeer: number;
  /** CPU of every node process and of redis-server per write per peer (µs). */
  cpuUsPerWritePeer: { nodes: number; redis: number; total: number };
  /** Time the node processes' and redis-server's main threads waited for a CPU, per write per peer (µs; NaN off Linux). */
  cpuWaitUsPerWritePeer: { nodes: number; redis: number };
  /** Redis commands per write per peer (every command the cluster sent during the run). */
  redisCallsPerWritePeer: number;
  details: Record<string, unknown>;
  /** With `profile`: each node process's CPU profile of the measured part, by node id. */
  profiles?: Map<string, Profiler.Profile>;
}

/** `[key, seq]` pairs node `i` of `n` writes: every key whose index is i mod n. */
function slice(keys: readonly string[], i: number, n: number): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (let k = i; k < keys.length; k += n) out.push([keys[k] as string, k]);
  return out;
}

/** Writes `keys` spread over the nodes, all nodes at once; returns when the last acknowledgement came (local clock). */
async function writeAll(cluster: ProcessCluster, keys: readonly string[], load: { concurrency: number; ratePerSec?: number }, timeoutMs: number): Promise<{ endedAt: number; perNode: number[]; latencyMs: WriteResult['latencyMs'][] }> {
  const n = cluster.nodes.length;
  const results = await Promise.all(cluster.nodes.map((node, i) => node.write(slice(keys, i, n), load, timeoutMs)));
  return { endedAt: Math.max(...results.map((r) => toLocalTime(r.endedAt))), perNode: results.map((r) => r.writes), latencyMs: results.map((r) => r.latencyMs) };
}

/** Applied events every node must reach when `perNode[i]` writes were made on node i. */
function expectedApplied(base: readonly NodeStats[], perNode: readonly number[]): number[] {
  const total = perNode.reduce((a, b) => a + b, 0);
  return base.map((s, i) => s.applied + total - (perNode[i] as number));
}

const stats = (cluster: ProcessCluster) => Promise.all(cluster.nodes.map((n) => n.stats()));

/** One run on the pool's first `o.nodes` processes (spawned if missing). */
export async function processRun(ctx: BenchContext, pool: NodeProcessPool, o: ProcessRunOptions): Promise<ProcessRunResult> {
  const peers = o.nodes - 1;
  if (!o.reuseData) {
    await resetServer(ctx.admin);
    if (o.preload) await preload(ctx, o.nodes, o.preload);
  }
  const starting = performance.now();
  const cluster = await startProcessCluster(pool, ctx.server, { size: o.nodes, ...(o.replication ? { replication: o.replication } : {}), ...(o.store ? { store: o.store } : {}) });
  ctx.log(`${o.nodes} nodes started, each in its own process, in ${Math.round(performance.now() - starting)} ms`);
  try {
    const timeoutMs = ctx.sizes.convergeTimeoutMs;
    const warmKeys = Array.from({ length: o.warmupWritesPerNode * o.nodes }, (_, i) => `warm-${i}`);
    if (warmKeys.length > 0) {
      const warming = performance.now();
      const warmBase = await stats(cluster);
      const warm = await writeAll(cluster, warmKeys, { concurrency: o.concurrencyPerNode }, timeoutMs);
      await waitForApplied(cluster, expectedApplied(warmBase, warm.perNode), timeoutMs);
      await verifyConverged(cluster, { timeoutMs, keys: warmKeys, expectedRecords: warmKeys.length });
      ctx.log(`${o.nodes} nodes: warm-up of ${warmKeys.length} writes converged in ${Math.round(performance.now() - warming)} ms`);
    }

    const keys = o.preload
      ? sampleDistinct(o.writes, o.preload, seededRandom(7)).map((k) => `p-${k}`)
      : Array.from({ length: o.writes }, (_, i) => `w-${i}`);
    if (o.profile) await Promise.all(cluster.nodes.map((n) => n.profileStart()));
    const before = await stats(cluster);
    const redisPid = Number(infoField(await ctx.admin.info('server'), 'process_id'));
    const redisSched0 = schedStat(redisPid);
    const redis0 = await cpuSnapshot(ctx.admin);
    const cmd0 = await commandStats(ctx.admin);
    const load = o.ratePerNode ? `${o.ratePerNode} writes/s offered per node process` : `${o.concurrencyPerNode} in flight per node process`;
    ctx.log(`${o.nodes} nodes: ${o.writes} writes (${load})${o.preload ? ` over ${o.preload.toLocaleString('en-US')} preloaded keys` : ''}`);
    const t0 = performance.now();
    const written = await writeAll(cluster, keys, { concurrency: o.concurrencyPerNode, ...(o.ratePerNode ? { ratePerSec: o.ratePerNode } : {}) }, timeoutMs);
    const writePhaseMs = written.endedAt - t0;
    const { lastAppliedAt } = await waitForApplied(cluster, expectedApplied(before, written.perNode), timeoutMs);
    // Every write reached every peer; the digest's upkeep is part of their cost too. Each
    // node folds what its log still holds now: otherwise a short run leaves it to a fold
    // tick after the clock stopped (every 2 s), and a longer one pays it inside.
    const foldedKeys = await Promise.all(cluster.nodes.map((n) => n.fold(timeoutMs)));
    const foldedAt = performance.now();
    // Snapshot before the verification adds its own reads.
    const after = await stats(cluster);
    const redisCpu = cpuSpent(redis0, await cpuSnapshot(ctx.admin));
    const redisSched1 = schedStat(redisPid);
    const cmd = await commandStats(ctx.admin);
    const profiles = o.profile ? new Map(await Promise.all(cluster.nodes.map(async (n) => [n.id, await n.profileStop()] as const))) : undefined;
    const conv = await verifyConverged(cluster, { timeoutMs, keys, expectedRecords: keys.length });
    const errors = after.flatMap((s, i) => s.errors.map((e) => `${cluster.nodes[i]?.id}: ${e}`));
    if (errors.length > 0) throw new Error(`a node reported an error during the run: ${errors[0]}`);

    const convergeMs = Math.max(lastAppliedAt, written.endedAt, foldedAt) - t0;
    const writePeers = o.writes * peers;
    const perNodeCpuUs = after.map((s, i) => s.cpuUserUs + s.cpuSystemUs - ((before[i] as NodeStats).cpuUserUs + (before[i] as NodeStats).cpuSystemUs));
    const nodesCpuUs = perNodeCpuUs.reduce((a, b) => a + b, 0);
    const jobs = after.reduce((sum, s, i) => sum + s.jobs - (before[i] as NodeStats).jobs, 0);
    const retries = after.reduce((sum, s, i) => sum + s.retries - (before[i] as NodeStats).retries, 0);
    const commands = perOperation(cmd0, cmd, writePeers, 14);
    const redisCallsPerWritePeer = commands['(total)']?.calls ?? 0;
    // Time the main threads spent runnable but without a CPU: the machine's oversubscription, not the design's cost.
    const waitUs = after.map((s, i) => (s.sched && before[i]?.sched ? s.sched.waitUs - before[i].sched.waitUs : Number.NaN));
    const redisWaitUs = redisSched0 && redisSched1 ? redisSched1.waitUs - redisSched0.waitUs : Number.NaN;
    const waitUsPerWritePeer = { nodes: round(waitUs.reduce((a, b) => a + b, 0) / writePeers, 3), redis: round(redisWaitUs / writePeers, 3) };
    const cpuUsPerWritePeer = { nodes: round(nodesCpuUs / writePeers, 3), redis: round(redisCpu.redisUs / writePeers, 3), total: round((nodesCpuUs + redisCpu.redisUs) / writePeers, 3) };
    ctx.log(
      `${o.nodes} nodes: converged in ${Math.round(convergeMs)} ms (writes acknowledged after ${Math.round(writePhaseMs)} ms, put p50 ${round(median(written.latencyMs.map((l) => l.p50)), 2)} ms), ${jobs} jobs, ` +
        `CPU per write per peer ${cpuUsPerWritePeer.nodes} µs in node processes + ${cpuUsPerWritePeer.redis} µs in Redis ` +
        `(waiting for a CPU: ${waitUsPerWritePeer.nodes} + ${waitUsPerWritePeer.redis} µs), ${redisCallsPerWritePeer} Redis commands per write per peer, ` +
        `verified ${conv.records} records identical on every node`,
    );
    const per1k = o.writes / 1000;
    return {
      nodes: o.nodes,
      writes: o.writes,
      convergeMs,
      writePhaseMs,
      convergedWritesPerSec: (o.writes * 1000) / convergeMs,
      costUsPerWritePeer: (convergeMs * 1000) / writePeers,
      cpuUsPerWritePeer,
      cpuWaitUsPerWritePeer: waitUsPerWritePeer,
      redisCallsPerWritePeer,
      ...(profiles ? { profiles } : {}),
      details: {
        nodes: o.nodes,
        processes: 'one per node',
        writes: o.writes,
        preloadedKeys: o.preload ?? 0,
        ...(o.ratePerNode ? { offeredWritesPerSecPerNode: o.ratePerNode } : { concurrencyPerNode: o.concurrencyPerNode }),
        convergeMs: Math.round(convergeMs),
        // Digest log keys each node folded after the last write arrived (inside convergeMs).
        foldedAtEnd: foldedKeys,
        writePhaseMs: Math.round(writePhaseMs),
        acknowledgedWritesPerSec: round((o.writes * 1000) / writePhaseMs),
        // Put latency in each node process (median of the nodes' p50 and of their p99).
        putLatencyMs: { p50: median(written.latencyMs.map((l) => l.p50)), p99: median(written.latencyMs.map((l) => l.p99)) },
        replicationJobs: jobs,
        keysPerJob: round(writePeers / Math.max(1, jobs), 3),
        transactionRetries: retries,
        cpuUsPerWritePeer,
        // Per node process: CPU (user + system) per 1,000 writes made anywhere in the cluster.
        cpuMsPer1kWrites: Object.fromEntries(
          cluster.nodes.map((n, i) => {
            const b = before[i] as NodeStats;
            const a = after[i] as NodeStats;
            return [n.id, { user: round((a.cpuUserUs - b.cpuUserUs) / 1000 / per1k, 3), sys: round((a.cpuSystemUs - b.cpuSystemUs) / 1000 / per1k, 3), total: round((perNodeCpuUs[i] as number) / 1000 / per1k, 3) }];
          }),
        ),
        redisCpuMsPer1kWrites: round(redisCpu.redisUs / 1000 / per1k, 3),
        // Main threads runnable but waiting for a CPU (Linux schedstat), per write per peer and per node process.
        cpuWaitUsPerWritePeer: waitUsPerWritePeer,
        cpuWaitMsPer1kWrites: { ...Object.fromEntries(cluster.nodes.map((n, i) => [n.id, round((waitUs[i] as number) / 1000 / per1k, 3)])), redis: round(redisWaitUs / 1000 / per1k, 3) },
        loadAverage1m: round(os.loadavg()[0] ?? 0, 2),
        memoryMbPerNode: Object.fromEntries(cluster.nodes.map((n, i) => [n.id, { rss: round((after[i] as NodeStats).rssBytes / 2 ** 20, 1), heapUsed: round((after[i] as NodeStats).heapUsedBytes / 2 ** 20, 1) }])),
        redisCommandsPerWritePeer: commands,
        verifiedIdenticalRecords: conv.records,
        convergenceChecks: conv.checks,
      },
    };
  } finally {
    const closing = performance.now();
    await cluster.close();
    ctx.log(`stopped the ${o.nodes} nodes in ${Math.round(performance.now() - closing)} ms`);
  }
}

/**
 * Spawns the pool's first `nodes` processes and warms them with one unmeasured run of
 * `writesPerNode` local writes per node (each also applies the others'): a cold process
 * runs several times slower for thousands of writes, and its JIT state outlives its node.
 */
export async function warmProcesses(ctx: BenchContext, pool: NodeProcessPool, nodes: number, writesPerNode: number, concurrencyPerNode: number): Promise<void> {
  const spawning = performance.now();
  await pool.take(nodes);
  ctx.log(`${nodes} node processes spawned in ${Math.round(performance.now() - spawning)} ms`);
  const warm = await processRun(ctx, pool, { nodes, writes: writesPerNode * nodes, warmupWritesPerNode: 0, concurrencyPerNode });
  ctx.log(`warmed the processes (not measured): ${writesPerNode * nodes} writes on ${nodes} nodes converged in ${Math.round(warm.convergeMs)} ms`);
}
