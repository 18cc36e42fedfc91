/**
 * One replicated-throughput run (scenarios 2 and 7): an N-node cluster takes `writes`
 * writes to distinct keys spread round-robin over the nodes, and the clock stops when
 * every node holds identical records — verified, not assumed.
 *
 * Keys are distinct on purpose: every write must reach every peer, so coalescing repeated
 * keys cannot help, and the result is the cost of moving writes, not of skipping them.
 */
import { formatTimestamp } from '../../src/clock/timestamp.js';
import { KeyBuilder } from '../../src/store/keys.js';
import type { ReplicationOptions } from '../../src/replication/options.js';
import type { StoreOptions } from '../../src/store/store-options.js';
import { BENCH_PREFIX, clusterCounter, nodeId, startClusterOn, waitForConvergence, type BenchCluster } from './cluster.js';
import { cpuSnapshot, cpuSpent, type BenchContext } from './context.js';
import { sleep } from './deadline.js';
import { runCount } from './load.js';
import { sampleDistinct, seededRandom, valueOfBytes } from './payload.js';
import { seedStore } from './seed-store.js';
import { perOperation } from './redis-stats.js';
import { round } from './stats.js';
import { serverDatabases, type StoreSetup } from './store-setup.js';

export const VALUE_BYTES = 100;

export interface ReplicatedRunOptions {
  nodes: number;
  writes: number;
  warmupWrites: number;
  concurrency: number;
  /** Keys already held, identically, by every node before the run; writes then update a sample of them. */
  preload?: number;
  replication?: Partial<ReplicationOptions>;
  /** Record store options of every node (group commit and the like). */
  storeOptions?: Partial<StoreOptions>;
  /** Where the nodes' stores are. @defaultValue the private server, a database per node ({@link serverDatabases}) */
  store?: StoreSetup;
  /** Wraps the measured part (writes, convergence, the end fold): a profiler's window. */
  measured?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export interface ReplicatedRunResult {
  nodes: number;
  writes: number;
  /** From the first write to the verified convergence of all nodes. */
  convergeMs: number;
  /** From the first write to the last acknowledgement. */
  writePhaseMs: number;
  convergedWritesPerSec: number;
  /** Wall time per write per peer that had to apply it (µs): the cost that should stay flat. */
  costUsPerWritePeer: number;
  /** Commands the store's Redis ran per measured write, over the same window (stabler than wall time). */
  redisCommandsPerWrite: number;
  /** EXEC calls per measured write: the transactions (group commits, merges, folds) it cost. */
  transactionsPerWrite: number;
  /** Replication jobs the nodes produced for the measured writes. */
  replicationJobs: number;
  details: Record<string, unknown>;
}

/**
 * Writes `count` converged records (same bytes on every node) straight into each node's
 * database (node i: DB 1 + i), with the node's start marker: the nodes then start as they
 * would after a restart on existing data, not as new nodes that resync everything from
 * their peers.
 */
export async function preload(ctx: BenchContext, nodes: number, count: number): Promise<void> {
  const hlc = formatTimestamp({ wallMs: Date.now() - 60_000, logical: 0, nodeId: 'n1' });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      // The digest is seeded with the records, as the write path would have kept it;
      // otherwise every node would rebuild it at start.
      const value = (k: number) => JSON.stringify(valueOfBytes(k, VALUE_BYTES));
      await seedStore(ctx.server.url(1 + i), new KeyBuilder(BENCH_PREFIX, nodeId(i)), count, (key, k) => ({ key, hlc, origin: 'n1', version: { n1: 1 }, written: { n1: 1 }, deleted: false, valueJson: value(k) }));
    }),
  );
  ctx.log(`preloaded ${count.toLocaleString('en-US')} keys on each of ${nodes} nodes in ${Math.round(performance.now() - started)} ms`);
  // Redis finishes growing its hash tables incrementally (a bucket per command, 1 ms per
  // cron tick); measuring before that ends would charge the preload's rehash to the run.
  const settled = await waitForIdleRedis(ctx);
  ctx.log(`redis idle again after ${Math.round(settled)} ms`);
}

/** Waits (up to 60 s) until redis-server uses under 5% of a core over 250 ms; returns the time waited. */
async function waitForIdleRedis(ctx: BenchContext): Promise<number> {
  const started = performance.now();
  let last = await cpuSnapshot(ctx.admin);
  while (performance.now() - started < 60_000) {
    await sleep(250);
    const now = await cpuSnapshot(ctx.admin);
    const busyUs = now.redisUs - last.redisUs;
    last = now;
    if (busyUs < 0.05 * 250_000) break;
  }
  return performance.now() - started;
}

async function writeAll(cluster: BenchCluster, keys: readonly string[], concurrency: number): Promise<number> {
  const n = cluster.nodes.length;
  const { elapsedMs } = await runCount({
    concurrency,
    total: keys.length,
    op: (i) => cluster.nodes[i % n]?.put(keys[i] as string, valueOfBytes(i, VALUE_BYTES)) as Promise<unknown>,
  });
  return elapsedMs;
}

/** Folds every node's digest log (nodes with digests off have none). */
async function foldDigests(cluster: BenchCluster): Promise<void> {
  await Promise.all(cluster.nodes.map((n) => (n.options.store.digestLeaves > 0 ? n.foldDigest() : 0)));
}

export async function replicatedRun(ctx: BenchContext, o: ReplicatedRunOptions): Promise<ReplicatedRunResult> {
  const store = o.store ?? serverDatabases(ctx);
  if (o.preload && o.store) throw new Error('replicatedRun: a preload is written to the private server\'s databases, so it cannot be combined with another store setup');
  await store.reset();
  const peers = o.nodes - 1;
  if (o.preload) await preload(ctx, o.nodes, o.preload);
  const cluster = await startClusterOn((i) => store.target(i), { size: o.nodes, ...(store.clusterPartitions ? { clusterPartitions: store.clusterPartitions } : {}), ...(o.replication ? { replication: o.replication } : {}), ...(o.storeOptions ? { store: o.storeOptions } : {}) });
  try {
    const timeoutMs = ctx.sizes.convergeTimeoutMs;
    const warmKeys = Array.from({ length: o.warmupWrites }, (_, i) => `warm-${i}`);
    await writeAll(cluster, warmKeys, o.concurrency);
    await waitForConvergence(cluster, { timeoutMs, expectedApplied: warmKeys.length * peers, keys: warmKeys, expectedRecords: warmKeys.length });

    const keys = o.preload
      ? sampleDistinct(o.writes, o.preload, seededRandom(7)).map((k) => `p-${k}`)
      : Array.from({ length: o.writes }, (_, i) => `w-${i}`);
    const applied0 = cluster.events.applied;
    const jobs0 = await clusterCounter(cluster, 'eventual_cache_replication_jobs_total');
    const retries0 = await clusterCounter(cluster, 'eventual_cache_transaction_retries_total');
    // Digest upkeep is partly deferred (the fold): the warm-up's is settled before the
    // clock starts, and the measured writes' is done before it stops.
    await foldDigests(cluster);
    await store.beforeMeasured?.();
    const cpu0 = await store.cpu();
    const cmd0 = await store.commands();
    ctx.log(`${o.nodes} nodes: ${o.writes} writes (concurrency ${o.concurrency})${o.preload ? ` over ${o.preload.toLocaleString('en-US')} preloaded keys` : ''}`);
    const measured = o.measured ?? ((fn) => fn());
    const t0 = performance.now();
    const { writePhaseMs, conv } = await measured(async () => {
      const writePhaseMs = await writeAll(cluster, keys, o.concurrency);
      const conv = await waitForConvergence(cluster, {
        timeoutMs,
        expectedApplied: applied0 + o.writes * peers,
        // With a preload, compare only the keys this run wrote (the rest were written identically by `preload`).
        ...(o.preload ? { keys, expectedRecords: keys.length } : { expectedRecords: warmKeys.length + keys.length }),
      });
      await foldDigests(cluster);
      return { writePhaseMs, conv };
    });
    const tWrites = t0 + writePhaseMs;
    const tFolded = performance.now();
    const cpu = cpuSpent(cpu0, await store.cpu());
    const cmd = await store.commands();
    await store.afterMeasured?.();
    const convergeMs = Math.max(conv.convergedAt, tWrites, tFolded) - t0;
    const jobs = (await clusterCounter(cluster, 'eventual_cache_replication_jobs_total')) - jobs0;
    const retries = (await clusterCounter(cluster, 'eventual_cache_transaction_retries_total')) - retries0;
    const writePeers = o.writes * peers;
    const commands = perOperation(cmd0, cmd, o.writes, 40);
    ctx.log(`${o.nodes} nodes: converged in ${Math.round(convergeMs)} ms (writes acknowledged after ${Math.round(writePhaseMs)} ms), ${jobs} jobs, verified ${conv.records} records identical on every node`);
    return {
      nodes: o.nodes,
      writes: o.writes,
      convergeMs,
      writePhaseMs,
      convergedWritesPerSec: (o.writes * 1000) / convergeMs,
      costUsPerWritePeer: (convergeMs * 1000) / writePeers,
      redisCommandsPerWrite: commands['(total)']?.calls ?? Number.NaN,
      transactionsPerWrite: commands.exec?.calls ?? Number.NaN,
      replicationJobs: jobs,
      details: {
        nodes: o.nodes,
        writes: o.writes,
        store: store.description,
        preloadedKeys: o.preload ?? 0,
        concurrency: o.concurrency,
        convergeMs: Math.round(convergeMs),
        writePhaseMs: Math.round(writePhaseMs),
        acknowledgedWritesPerSec: round((o.writes * 1000) / writePhaseMs),
        replicationJobs: jobs,
        keysPerJob: round(writePeers / Math.max(1, jobs), 3),
        transactionRetries: retries,
        cpuUsPerWritePeer: { process: round(cpu.processUs / writePeers, 3), redis: round(cpu.redisUs / writePeers, 3) },
        redisCommandsPerWrite: commands,
        verifiedIdenticalRecords: conv.records,
        convergenceChecks: conv.checks,
      },
    };
  } finally {
    const closing = performance.now();
    await cluster.close();
    ctx.log(`closed the ${o.nodes}-node cluster in ${Math.round(performance.now() - closing)} ms`);
  }
}
