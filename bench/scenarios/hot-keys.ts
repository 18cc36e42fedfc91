/**
 * 4. Hot-key contention: writers on every node hammer a few keys, so local group commits
 * and merges from peers keep invalidating each other's WATCHes. Reports merges/s (over the
 * time to verified convergence), optimistic-transaction retries per merge, and the proof
 * that the final state converged. The issue sets no target; the baseline is the same load
 * spread over many keys, so the ratio isolates what contention costs.
 */
import { clusterCounter, startCluster, waitForConvergence, type BenchCluster } from '../lib/cluster.js';
import type { BenchContext } from '../lib/context.js';
import { closedLoop } from '../lib/load.js';
import { seededRandom, valueOfBytes } from '../lib/payload.js';
import { resetServer } from '../lib/redis-stats.js';
import { row } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

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
  details: Record<string, unknown>;
}

async function counters(cluster: BenchCluster) {
  return {
    writes: await clusterCounter(cluster, 'eventual_cache_writes_total'),
    merges: await clusterCounter(cluster, 'eventual_cache_merges_total'),
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
    const t0 = performance.now();
    const result = await load(durationMs);
    const conv = await waitForConvergence(cluster, { timeoutMs: ctx.sizes.convergeTimeoutMs, expectedRecords: written.size });
    const convergeMs = Math.max(conv.convergedAt, t0 + result.elapsedMs) - t0;
    const after = await counters(cluster);
    const merges = after.merges - before.merges;
    const retries = after.retries - before.retries;
    const writes = after.writes - before.writes;
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

export const hotKeysScenario: Scenario = {
  id: 'hot-keys',
  title: '4. Hot-key contention',
  async run(ctx) {
    const { hotKeys, spreadKeys, writersPerNode } = ctx.sizes.hotKeys;
    ctx.log(`${hotKeys} hot keys, ${writersPerNode} writers on each of 3 nodes`);
    const hot = await contention(ctx, hotKeys);
    ctx.log(`baseline: the same writers over ${spreadKeys} keys`);
    const spread = await contention(ctx, spreadKeys);
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
    ];
  },
};
