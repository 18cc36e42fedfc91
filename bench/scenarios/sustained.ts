/**
 * 8. Sustained max-rate writes: one node of three takes closed-loop writes to distinct keys
 * at concurrency 1, 4 and 64 for the run's duration, as fast as it acknowledges them.
 *
 * - keeps up: per peer, keys applied per second (over the peer's span from first to last
 *   apply) ÷ writes acknowledged per second at the writer (over its span from first to
 *   last ack). 1.0 means the peer's applies track the writer's acks; a relay that falls
 *   behind stretches the apply span and drops the ratio. Target ≥ 1.0 (the worse peer).
 * - lag p99 beyond D: apply at the peer − ack at the writer − D, over every key and peer.
 * - drain: from the last ack until every peer applied every write. Target ≤ D + 1 s.
 */
import { startCluster, waitForConvergence } from '../lib/cluster.js';
import type { BenchContext } from '../lib/context.js';
import { closedLoop } from '../lib/load.js';
import { valueOfBytes } from '../lib/payload.js';
import { resetServer } from '../lib/redis-stats.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { percentile, round } from '../lib/stats.js';
import { VALUE_BYTES } from '../lib/replicated-run.js';

async function sustained(ctx: BenchContext, concurrency: number): Promise<ResultRow[]> {
  const { durationMs, delayMs } = ctx.sizes.sustained;
  await resetServer(ctx.admin);
  const acks = new Map<string, number>();
  const applies = [new Map<string, number>(), new Map<string, number>()];
  const cluster = await startCluster(ctx.server, {
    size: 3,
    replication: { delayMs },
    onReplicated: (node, key, at) => {
      const i = cluster.nodes.indexOf(node) - 1;
      const seen = applies[i];
      if (seen && !seen.has(key)) seen.set(key, at);
    },
  });
  try {
    const writer = cluster.nodes[0];
    if (!writer) throw new Error('no writer');
    ctx.log(`sustained c=${concurrency}: closed-loop writes on 1 node of 3 for ${durationMs} ms (D = ${delayMs} ms)`);
    const backlogSamples: number[] = [];
    const sampler = setInterval(() => {
      void writer.status().then((s) => backlogSamples.push(s.outbox ?? 0), () => undefined);
    }, 250);
    const run = await closedLoop({
      concurrency,
      warmupMs: 0,
      durationMs,
      op: async (seq) => {
        const key = `s-${concurrency}-${seq}`;
        await writer.put(key, valueOfBytes(seq, VALUE_BYTES));
        acks.set(key, performance.now());
      },
    });
    clearInterval(sampler);
    const writes = acks.size;
    await waitForConvergence(cluster, { timeoutMs: ctx.sizes.convergeTimeoutMs, expectedApplied: writes * 2, expectedRecords: writes });
    const ackTimes = [...acks.values()];
    // A loop, not Math.min(...ackTimes): c=64 acknowledges well over 100,000 writes in a
    // run, more arguments than a call's stack takes.
    let firstAck = Infinity;
    let lastAck = -Infinity;
    for (const t of ackTimes) {
      if (t < firstAck) firstAck = t;
      if (t > lastAck) lastAck = t;
    }
    const ackRate = (writes * 1000) / Math.max(1, lastAck - firstAck);
    const lags: number[] = [];
    let lastApply = 0;
    const peerRatios = applies.map((seen) => {
      let first = Infinity;
      let last = 0;
      for (const [key, at] of seen) {
        first = Math.min(first, at);
        last = Math.max(last, at);
        lags.push(at - (acks.get(key) ?? at) - delayMs);
      }
      lastApply = Math.max(lastApply, last);
      return (seen.size * 1000) / Math.max(1, last - first) / ackRate;
    });
    lags.sort((a, b) => a - b);
    const drainMs = lastApply - lastAck;
    const details = {
      concurrency,
      writes,
      durationMs: Math.round(run.elapsedMs),
      acknowledgedWritesPerSec: round(ackRate),
      appliedPerSecRatioPerPeer: peerRatios.map((r) => round(r, 3)),
      lagBeyondDMs: { p50: round(percentile(lags, 0.5)), p99: round(percentile(lags, 0.99)), max: round(lags[lags.length - 1] ?? 0) },
      outboxBacklogMax: Math.max(0, ...backlogSamples),
      drainMs: round(drainMs),
    };
    ctx.log(`sustained c=${concurrency}: ${Math.round(ackRate)} writes/s, peers ${peerRatios.map((r) => r.toFixed(3)).join('/')}, drain ${Math.round(drainMs)} ms, outbox max ${details.outboxBacklogMax}`);
    return [
      row(`sustained c=${concurrency}: peer applies/s ÷ acked writes/s`, {
        ours: Math.min(...peerRatios),
        baseline: null,
        unit: '×',
        target: { kind: 'min-value', min: 1 },
        details,
      }),
      row(`sustained c=${concurrency}: lag p99 beyond D`, { ours: percentile(lags, 0.99), baseline: null, unit: 'ms' }),
      row(`sustained c=${concurrency}: drain after the run`, { ours: drainMs, baseline: null, unit: 'ms', target: { kind: 'max-value', max: delayMs + 1_000 } }),
    ];
  } finally {
    await cluster.close();
  }
}

export const sustainedScenario: Scenario = {
  id: 'sustained',
  title: '8. Sustained max-rate writes',
  async run(ctx) {
    const rows: ResultRow[] = [];
    for (const c of ctx.sizes.sustained.concurrencies) rows.push(...(await sustained(ctx, c)));
    return rows;
  },
};
