/**
 * 3. Convergence lag at a steady offered load with replication delay D:
 * lag = (time the last peer applied the write) − (time `put` was called) − D,
 * measured in-process from the nodes' `replicated` events.
 *
 * Diagnostics (separate rows, no targets) locate BullMQ's own delayed-job lateness: raw
 * BullMQ delayed jobs at the same D, idle (a few jobs/s) and busy (the same rate), with
 * and without producer-side promotion at the due time, and with Redis' `hz` raised from
 * 10 to 100 — if BullMQ's lateness is Redis' timer tick, it shrinks tenfold.
 */
import { delayedLateness } from '../lib/bullmq-baseline.js';
import { clusterCounter, startCluster, waitForConvergence } from '../lib/cluster.js';
import { cpuSnapshot, cpuSpent, type BenchContext } from '../lib/context.js';
import { openLoop } from '../lib/load.js';
import { valueOfBytes } from '../lib/payload.js';
import { resetServer } from '../lib/redis-stats.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { round, roundSummary, summarize, type Summary } from '../lib/stats.js';

interface LagRun {
  lagMs: Summary;
  lagFromAckMs: Summary;
  putLatencyMs: Summary;
  generatorLateMs: Summary;
  writes: number;
  /** Writes a peer applied sooner than D after `put` (they shared a job with an older write; a job's delay counts from its oldest write). */
  appliedBeforeD: number;
  verifiedIdenticalRecords: number;
  /** Keys per replication job (writes × peers / jobs): how well the relay batched at this rate. */
  keysPerJob: number;
  /** CPU of this process (all three nodes) and of Redis per write, in µs. */
  cpuUsPerWrite: { process: number; redis: number };
}

interface Tracked {
  start: number;
  ack: number;
  mask: number;
  last: number;
}

async function clusterLag(ctx: BenchContext, options: { promptPromotion: boolean; durationMs: number; warmupMs: number }): Promise<LagRun> {
  const { ratePerSec, delayMs } = ctx.sizes.lag;
  await resetServer(ctx.admin);
  const tracked = new Map<string, Tracked>();
  const index = new Map<string, number>();
  const cluster = await startCluster(ctx.server, {
    size: 3,
    replication: { delayMs, promptPromotion: options.promptPromotion },
    onReplicated: (node, key, at) => {
      const t = tracked.get(key);
      const bit = 1 << (index.get(node.id) ?? 0);
      if (t && (t.mask & bit) === 0) {
        t.mask |= bit;
        t.last = Math.max(t.last, at);
      }
    },
  });
  cluster.nodes.forEach((n, i) => index.set(n.id, i));
  try {
    const jobs0 = await clusterCounter(cluster, 'eventual_cache_replication_jobs_total');
    const cpu0 = await cpuSnapshot(ctx.admin);
    const load = await openLoop({
      ratePerSec,
      durationMs: options.durationMs,
      settleTimeoutMs: ctx.sizes.convergeTimeoutMs,
      op: async (seq) => {
        const key = `lag-${seq}`;
        const origin = seq % 3;
        const t: Tracked = { start: performance.now(), ack: 0, mask: 1 << origin, last: 0 };
        tracked.set(key, t);
        await cluster.nodes[origin]?.put(key, valueOfBytes(seq, 100));
        t.ack = performance.now();
      },
    });
    const conv = await waitForConvergence(cluster, { timeoutMs: ctx.sizes.convergeTimeoutMs, expectedApplied: load.issued * 2, expectedRecords: load.issued });
    const cpu = cpuSpent(cpu0, await cpuSnapshot(ctx.admin));
    const jobs = (await clusterCounter(cluster, 'eventual_cache_replication_jobs_total')) - jobs0;
    const full = (1 << 3) - 1;
    const lag: number[] = [];
    const fromAck: number[] = [];
    const put: number[] = [];
    const firstMeasured = Math.ceil((options.warmupMs * ratePerSec) / 1000);
    for (let seq = firstMeasured; seq < load.issued; seq++) {
      const t = tracked.get(`lag-${seq}`) as Tracked;
      if (t.mask !== full) throw new Error(`write lag-${seq} was not applied by every peer although the cluster converged`);
      lag.push(t.last - t.start - delayMs);
      fromAck.push(t.last - t.ack - delayMs);
      put.push(t.ack - t.start);
    }
    return {
      lagMs: summarize(lag),
      lagFromAckMs: summarize(fromAck),
      putLatencyMs: summarize(put),
      generatorLateMs: summarize(load.issueLateMs),
      writes: lag.length,
      appliedBeforeD: lag.filter((l) => l < 0).length,
      verifiedIdenticalRecords: conv.records,
      keysPerJob: round((load.issued * 2) / Math.max(1, jobs), 3),
      cpuUsPerWrite: { process: round(cpu.processUs / load.issued), redis: round(cpu.redisUs / load.issued) },
    };
  } finally {
    await cluster.close();
  }
}

async function rawLateness(ctx: BenchContext, ratePerSec: number, promote: boolean): Promise<Summary> {
  const r = await delayedLateness({
    url: ctx.server.url(9),
    delayMs: ctx.sizes.lag.delayMs,
    ratePerSec,
    durationMs: ctx.sizes.lag.diagnosticMs,
    promote,
    timeoutMs: ctx.sizes.convergeTimeoutMs,
  });
  return summarize(r.latenessMs);
}

export const convergenceLagScenario: Scenario = {
  id: 'convergence-lag',
  title: '3. Convergence lag',
  async run(ctx) {
    const { ratePerSec, delayMs, durationMs, warmupMs, diagnosticMs, idleRatePerSec } = ctx.sizes.lag;
    const label = `D=${delayMs} ms, ${ratePerSec} writes/s`;
    ctx.log(`3 nodes, ${label} for ${durationMs} ms, promptPromotion on`);
    const on = await clusterLag(ctx, { promptPromotion: true, durationMs, warmupMs });
    ctx.log(`promptPromotion on: lag p50 ${on.lagMs.p50.toFixed(1)} p99 ${on.lagMs.p99.toFixed(1)} max ${on.lagMs.max.toFixed(1)} ms beyond D`);
    ctx.log(`diagnostic: same with promptPromotion off for ${diagnosticMs} ms`);
    const off = await clusterLag(ctx, { promptPromotion: false, durationMs: diagnosticMs, warmupMs: Math.min(warmupMs, diagnosticMs / 4) });
    ctx.log(`promptPromotion off: lag p99 ${off.lagMs.p99.toFixed(1)} ms beyond D`);

    await resetServer(ctx.admin);
    const originalHz = Number(((await ctx.admin.config('GET', 'hz')) as string[])[1] ?? 10);
    const raw: Record<string, Summary> = {};
    try {
      await ctx.admin.config('SET', 'hz', '10');
      for (const [name, rate, promote] of [
        ['busy', ratePerSec, false],
        ['busy+promote', ratePerSec, true],
        ['idle', idleRatePerSec, false],
        ['idle+promote', idleRatePerSec, true],
      ] as const) {
        ctx.log(`diagnostic: raw BullMQ delayed jobs, ${name} (${rate} jobs/s, D=${delayMs} ms, hz 10)`);
        raw[name] = await rawLateness(ctx, rate, promote);
      }
      await ctx.admin.config('SET', 'hz', '100');
      ctx.log(`diagnostic: raw BullMQ delayed jobs, idle (${idleRatePerSec} jobs/s) with hz 100`);
      raw['idle hz100'] = await rawLateness(ctx, idleRatePerSec, false);
    } finally {
      await ctx.admin.config('SET', 'hz', String(originalHz));
    }
    const r = (s: Summary) => roundSummary(s, 3);
    const rawDetails = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, r(v)]));
    const busy = raw['busy'] as Summary;
    const rows: ResultRow[] = [
      row(`convergence lag p99 beyond D (${label})`, {
        ours: on.lagMs.p99,
        baseline: busy.p99,
        unit: 'ms',
        target: { kind: 'max-value', max: 25 },
        details: {
          definition: 'last peer applied − put() called − D; baseline: raw BullMQ delayed job start − (job timestamp + D) at the same rate',
          writesMeasured: on.writes,
          writesAppliedBeforeD: on.appliedBeforeD,
          keysPerJob: on.keysPerJob,
          cpuUsPerWrite: on.cpuUsPerWrite,
          verifiedIdenticalRecords: on.verifiedIdenticalRecords,
          lagMs: r(on.lagMs),
          lagFromAckMs: r(on.lagFromAckMs),
          putLatencyMs: r(on.putLatencyMs),
          loadGeneratorLateMs: r(on.generatorLateMs),
          rawBullmqLatenessMs: rawDetails,
        },
      }),
      row(`convergence lag p50 beyond D (${label})`, { ours: on.lagMs.p50, baseline: busy.p50, unit: 'ms' }),
      row(`convergence lag max beyond D (${label})`, { ours: on.lagMs.max, baseline: busy.max, unit: 'ms' }),
      row('diag: lag p99, promptPromotion off vs on', {
        ours: off.lagMs.p99,
        baseline: on.lagMs.p99,
        unit: 'ms',
        details: { off: { lagMs: r(off.lagMs), lagFromAckMs: r(off.lagFromAckMs), writesMeasured: off.writes, keysPerJob: off.keysPerJob, cpuUsPerWrite: off.cpuUsPerWrite, verifiedIdenticalRecords: off.verifiedIdenticalRecords } },
      }),
      row(`diag: raw BullMQ lateness p99, producer promote vs plain (${ratePerSec}/s)`, { ours: (raw['busy+promote'] as Summary).p99, baseline: busy.p99, unit: 'ms' }),
      row(`diag: raw BullMQ lateness p99, producer promote vs plain (idle ${idleRatePerSec}/s)`, {
        ours: (raw['idle+promote'] as Summary).p99,
        baseline: (raw['idle'] as Summary).p99,
        unit: 'ms',
      }),
      row(`diag: raw BullMQ lateness p99, Redis hz 100 vs 10 (idle ${idleRatePerSec}/s)`, {
        ours: (raw['idle hz100'] as Summary).p99,
        baseline: (raw['idle'] as Summary).p99,
        unit: 'ms',
      }),
    ];
    return rows;
  },
};
