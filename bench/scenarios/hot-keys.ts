/**
 * 4. Hot-key contention: writers on every node hammer a few keys, so local group commits
 * and merges from peers keep invalidating each other's WATCHes. Reports merges/s (over the
 * time to verified convergence), optimistic-transaction retries per merge, and the proof
 * that the final state converged. The issue sets no target; the baseline is the same load
 * spread over many keys, so the ratio isolates what contention costs.
 *
 * Diagnostics (no target) answer issue 2's "measure which is cheaper" about coalescing:
 * the same writers, on the same keys and Redis, replicated through BullMQ jobs deduplicated
 * per key in debounce mode (bench/lib/dedup-replication.ts) instead of our key-only jobs
 * batched per window; per written value, ratio = ours / dedup (lower is cheaper for us).
 */
import type { Redis } from 'ioredis';
import { DEFAULT_REPLICATION_OPTIONS } from '../../src/replication/options.js';
import { clusterCounter, startCluster, waitForConvergence, type BenchCluster } from '../lib/cluster.js';
import type { BenchContext } from '../lib/context.js';
import { dedupReplicationRun, type DedupRunResult } from '../lib/dedup-replication.js';
import { closedLoop } from '../lib/load.js';
import { seededRandom, valueOfBytes } from '../lib/payload.js';
import { resetServer } from '../lib/redis-stats.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';
import { costSince, costSnapshot, type WriteCost } from '../lib/write-cost.js';

interface ContentionRun {
  keys: number;
  writes: number;
  merges: number;
  retries: number;
  conflicts: number;
  convergeMs: number;
  mergesPerSec: number;
  retriesPerMerge: number;
  writesPerSec: number;
  /** Cost per written value over the measured load, to verified convergence. */
  cost: WriteCost;
  /** Mean length of the encoded records (bytes), so the dedup diagnostic stores as much. */
  recordBytes: number;
  details: Record<string, unknown>;
}

async function counters(cluster: BenchCluster) {
  return {
    writes: await clusterCounter(cluster, 'eventual_cache_writes_total'),
    merges: await clusterCounter(cluster, 'eventual_cache_merges_total'),
    jobs: await clusterCounter(cluster, 'eventual_cache_replication_jobs_total'),
    applied: await clusterCounter(cluster, 'eventual_cache_merges_total', { outcome: 'applied' }),
    retries: await clusterCounter(cluster, 'eventual_cache_transaction_retries_total'),
    conflictRetries: await clusterCounter(cluster, 'eventual_cache_transaction_retries_total', { reason: 'conflict' }),
    conflicts: await clusterCounter(cluster, 'eventual_cache_conflicts_total'),
  };
}

async function contention(ctx: BenchContext, keyCount: number): Promise<ContentionRun> {
  const { writersPerNode, durationMs } = ctx.sizes.hotKeys;
  await resetServer(ctx.admin);
  const cluster = await startCluster(ctx.server, { size: 3 });
  try {
    const n = cluster.nodes.length;
    const random = seededRandom(keyCount);
    const written = new Set<string>();
    const load = (ms: number) =>
      closedLoop({
        concurrency: writersPerNode * n,
        warmupMs: 0,
        durationMs: ms,
        op: (seq) => {
          const key = `hot-${Math.floor(random() * keyCount)}`;
          written.add(key);
          return cluster.nodes[seq % n]?.put(key, valueOfBytes(seq, 100)) as Promise<unknown>;
        },
      });
    // Warm-up: same load, then converge; none of it is counted.
    await load(Math.max(200, durationMs / 5));
    await waitForConvergence(cluster, { timeoutMs: ctx.sizes.convergeTimeoutMs, expectedRecords: written.size });

    const before = await counters(cluster);
    const cost0 = await costSnapshot(ctx.admin);
    const t0 = performance.now();
    const result = await load(durationMs);
    const mergesWhileWriting = (await clusterCounter(cluster, 'eventual_cache_merges_total')) - before.merges;
    const conv = await waitForConvergence(cluster, { timeoutMs: ctx.sizes.convergeTimeoutMs, expectedRecords: written.size });
    const convergeMs = Math.max(conv.convergedAt, t0 + result.elapsedMs) - t0;
    const after = await counters(cluster);
    const merges = after.merges - before.merges;
    const retries = after.retries - before.retries;
    const writes = after.writes - before.writes;
    const cost = await costSince(ctx.admin, cost0, {
      writes,
      writesPerSec: (writes * 1000) / result.elapsedMs,
      jobs: after.jobs - before.jobs,
      applies: merges,
      appliesWhileWriting: mergesWhileWriting,
    });
    const recordBytes = await meanRecordBytes(cluster, [...written].slice(0, 16));
    ctx.log(`${keyCount} keys: ${writes} writes, ${merges} merges, ${retries} retries, converged in ${Math.round(convergeMs)} ms on ${conv.records} identical records`);
    return {
      keys: keyCount,
      writes,
      merges,
      retries,
      conflicts: after.conflicts - before.conflicts,
      convergeMs,
      mergesPerSec: (merges * 1000) / convergeMs,
      retriesPerMerge: merges > 0 ? retries / merges : Number.NaN,
      writesPerSec: (writes * 1000) / result.elapsedMs,
      cost,
      recordBytes,
      details: {
        keys: keyCount,
        writers: writersPerNode * n,
        writes,
        writesPerSec: round((writes * 1000) / result.elapsedMs),
        merges,
        appliedMerges: after.applied - before.applied,
        mergesPerWrite: round(merges / Math.max(1, writes), 3),
        transactionRetries: retries,
        conflictRetries: after.conflictRetries - before.conflictRetries,
        lwwConflictsResolved: after.conflicts - before.conflicts,
        convergeMs: Math.round(convergeMs),
        converged: true,
        verifiedIdenticalRecords: conv.records,
      },
    };
  } finally {
    await cluster.close();
  }
}

async function meanRecordBytes(cluster: BenchCluster, keys: readonly string[]): Promise<number> {
  const node = cluster.nodes[0] as BenchCluster['nodes'][number];
  const lengths = await Promise.all(keys.map((k) => (cluster.raw[0] as Redis).strlen(node.keys.record(k))));
  return Math.round(lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length));
}

/** The same load as {@link contention}, replicated through deduplicated BullMQ jobs instead. */
async function dedupDebounce(ctx: BenchContext, ours: ContentionRun): Promise<DedupRunResult> {
  const { writersPerNode, durationMs } = ctx.sizes.hotKeys;
  const { delayMs, concurrency, keepCompletedJobs } = DEFAULT_REPLICATION_OPTIONS;
  if (typeof delayMs !== 'number') throw new Error('the coalescing diagnostic needs a fixed default delayMs');
  await resetServer(ctx.admin);
  const run = await dedupReplicationRun({
    server: ctx.server,
    admin: ctx.admin,
    mode: 'debounce',
    nodes: 3,
    keyCount: ours.keys,
    writers: writersPerNode * 3,
    warmupMs: Math.max(200, durationMs / 5),
    durationMs,
    delayMs,
    recordBytes: ours.recordBytes,
    workerConcurrency: concurrency,
    keepCompletedJobs,
    timeoutMs: ctx.sizes.convergeTimeoutMs,
  });
  const c = run.cost;
  ctx.log(
    `dedup-debounce, ${ours.keys} keys: ${c.writes} writes, ${c.jobsPerWrite} jobs/write, ${c.appliesPerWrite} applies/write ` +
      `(${Math.round(c.appliedWhileWritingShare * 100)}% while writing), ${c.redisCommandsPerWrite} Redis commands/write, ` +
      `${run.details['staleCopiesAtEnd'] as number} stale copies of ${run.details['verifiedCopies'] as number}`,
  );
  return run;
}

/** Rows comparing our coalescing with BullMQ's dedup-debounce, per written value. */
function coalescingRows(ours: ContentionRun, dedup: DedupRunResult, writers: number): ResultRow[] {
  const a = ours.cost;
  const b = dedup.cost;
  const tag = `diag: coalescing, ours vs BullMQ dedup-debounce (${ours.keys} keys, ${writers} writers)`;
  return [
    row(`${tag}: Redis commands/write`, {
      ours: a.redisCommandsPerWrite,
      baseline: b.redisCommandsPerWrite,
      unit: 'cmds/write',
      details: {
        definition:
          'per written value, from the first write of the measured load to verified delivery; ' +
          'ours: the real 3-node cluster (key-only jobs batched per window, merge by WATCH/MULTI); ' +
          'dedup: SET + one queue.add per peer with deduplication {id: key, ttl: D, extend, replace}, worker GET + SET (no merge, no outbox: a lower bound)',
        ours: a,
        dedup: { ...b, ...dedup.details },
      },
    }),
    row(`${tag}: Redis CPU/write`, { ours: a.redisCpuUsPerWrite, baseline: b.redisCpuUsPerWrite, unit: 'µs/write' }),
    row(`${tag}: Node CPU/write`, { ours: a.nodeCpuUsPerWrite, baseline: b.nodeCpuUsPerWrite, unit: 'µs/write' }),
    row(`${tag}: jobs created/write`, { ours: a.jobsPerWrite, baseline: b.jobsPerWrite, unit: 'jobs/write' }),
    row(`${tag}: merges or applies/write`, { ours: a.appliesPerWrite, baseline: b.appliesPerWrite, unit: 'applies/write' }),
  ];
}

export const hotKeysScenario: Scenario = {
  id: 'hot-keys',
  title: '4. Hot-key contention',
  async run(ctx) {
    const { hotKeys, spreadKeys, writersPerNode } = ctx.sizes.hotKeys;
    ctx.log(`${hotKeys} hot keys, ${writersPerNode} writers on each of 3 nodes`);
    const hot = await contention(ctx, hotKeys);
    ctx.log(`baseline: the same writers over ${spreadKeys} keys`);
    const spread = await contention(ctx, spreadKeys);
    ctx.log(`diagnostic: the same writers replicated through BullMQ dedup-debounce jobs, ${hotKeys} then ${spreadKeys} keys`);
    const dedupHot = await dedupDebounce(ctx, hot);
    const dedupSpread = await dedupDebounce(ctx, spread);
    const label = `${hotKeys} keys vs ${spreadKeys}, ${writersPerNode * 3} writers`;
    return [
      row(`hot keys: merges/s (${label})`, {
        ours: hot.mergesPerSec,
        baseline: spread.mergesPerSec,
        unit: 'merges/s',
        details: { hot: hot.details, spread: spread.details },
      }),
      row(`hot keys: transaction retries per merge (${label})`, { ours: hot.retriesPerMerge, baseline: spread.retriesPerMerge, unit: 'retries/merge' }),
      // Coalescing turns many writes to one key into one merge, so merges/s alone
      // understates what a hot key sustains; the acknowledged write rate shows it.
      row(`hot keys: acknowledged writes/s (${label})`, { ours: hot.writesPerSec, baseline: spread.writesPerSec, unit: 'writes/s' }),
      ...coalescingRows(hot, dedupHot, writersPerNode * 3),
      ...coalescingRows(spread, dedupSpread, writersPerNode * 3),
    ];
  },
};
