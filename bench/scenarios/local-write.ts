/**
 * 1. Local write: `node.put` against raw ioredis `MULTI { SET, HSET }` of the same bytes,
 * at concurrency 1 and 64, on the same private Redis.
 *
 * The node is a real cluster member (two peers declared, so every write also goes
 * through the outbox relay into two BullMQ queues), but the peers' processes are not
 * started: in production they run on other machines, and their CPU is not the writer's.
 */
import { Redis } from 'ioredis';
import { ReplicaNode } from '../../src/node/replica-node.js';
import { cpuSnapshot, cpuSpent, type BenchContext } from '../lib/context.js';
import { closedLoop, type ClosedLoopResult } from '../lib/load.js';
import { seededRandom, valueOfBytes } from '../lib/payload.js';
import { commandStats, perOperation, resetServer } from '../lib/redis-stats.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { median, perSecond, round, roundSummary, summarize } from '../lib/stats.js';

const VALUE_BYTES = 100;

interface Measured {
  result: ClosedLoopResult;
  opsPerSec: number;
  p50: number;
  p99: number;
  details: Record<string, unknown>;
}

async function measure(ctx: BenchContext, concurrency: number, op: (key: string, value: string) => Promise<unknown>): Promise<Measured> {
  const { warmupMs, durationMs, keyspace } = ctx.sizes.localWrite;
  // Same seed on both sides: the same keys in the same order.
  const random = seededRandom(concurrency);
  const values = Array.from({ length: 64 }, (_, i) => valueOfBytes(i, VALUE_BYTES));
  const cpu0 = await cpuSnapshot(ctx.admin);
  const cmd0 = await commandStats(ctx.admin);
  const result = await closedLoop({
    concurrency,
    warmupMs,
    durationMs,
    op: (seq) => op(`key-${Math.floor(random() * keyspace)}`, values[seq % values.length] as string),
  });
  const cpu = cpuSpent(cpu0, await cpuSnapshot(ctx.admin));
  const cmd = await commandStats(ctx.admin);
  const latency = summarize(result.latenciesMs);
  // CPU and command counts cover the warm-up too, so they are divided by every op that ran.
  const allOps = result.totalOps;
  return {
    result,
    opsPerSec: perSecond(result.ops, result.elapsedMs),
    p50: latency.p50,
    p99: latency.p99,
    details: {
      ops: result.ops,
      latencyMs: roundSummary(latency),
      cpuUsPerOp: { process: round(cpu.processUs / allOps, 3), redis: round(cpu.redisUs / allOps, 3) },
      redisCommandsPerOp: perOperation(cmd0, cmd, allOps, 6),
    },
  };
}

/** The median of each figure over the rounds; `details` are those of the median-throughput round. */
function medianRun(runs: Measured[]): Measured {
  const byRate = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  const middle = byRate[Math.floor((byRate.length - 1) / 2)] as Measured;
  return { ...middle, opsPerSec: median(runs.map((r) => r.opsPerSec)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) };
}

function roundRun(m: Measured) {
  return { opsPerSec: round(m.opsPerSec), p50: round(m.p50), p99: round(m.p99) };
}

export const localWriteScenario: Scenario = {
  id: 'local-write',
  title: '1. Local write',
  async run(ctx) {
    await resetServer(ctx.admin);
    const raw = new Redis(ctx.server.url(4), { maxRetriesPerRequest: 1 });
    const node = await ReplicaNode.start({
      id: 'n1',
      redis: ctx.server.url(1),
      prefix: 'bench',
      peers: [
        { id: 'n2', redis: ctx.server.url(2) },
        { id: 'n3', redis: ctx.server.url(3) },
      ],
    });
    const errors: Error[] = [];
    node.on('error', (e) => errors.push(e));
    await node.resynced();
    const rows: ResultRow[] = [];
    try {
      for (const concurrency of ctx.sizes.localWrite.concurrencies) {
        const bases: Measured[] = [];
        const ourRuns: Measured[] = [];
        for (let round = 1; round <= ctx.sizes.rounds; round++) {
          const tag = ctx.sizes.rounds > 1 ? ` (round ${round}/${ctx.sizes.rounds})` : '';
          ctx.log(`concurrency ${concurrency}${tag}: raw ioredis MULTI{SET,HSET}`);
          const base = await measure(ctx, concurrency, (key, value) => {
            const json = JSON.stringify(value);
            return raw.multi().set(`raw:rec:${key}`, json).hset('raw:idx', key, json).exec();
          });
          ctx.log(`concurrency ${concurrency}${tag}: raw ${Math.round(base.opsPerSec)} ops/s p99 ${base.p99.toFixed(2)} ms; now node.put`);
          const ours = await measure(ctx, concurrency, (key, value) => node.put(key, value));
          ctx.log(`concurrency ${concurrency}${tag}: ours ${Math.round(ours.opsPerSec)} ops/s p99 ${ours.p99.toFixed(2)} ms`);
          bases.push(base);
          ourRuns.push(ours);
        }
        const ours = medianRun(ourRuns);
        const base = medianRun(bases);
        if (errors.length > 0) throw errors[0];
        const details = {
          concurrency,
          valueBytes: VALUE_BYTES,
          setup: 'ours: node n1 with peers n2, n3 declared (relay enqueues), transaction pool of 4; baseline: one ioredis connection, concurrent MULTIs pipelined on it',
          rounds: ctx.sizes.rounds,
          perRound: ourRuns.map((o, i) => ({ ours: roundRun(o), baseline: roundRun(bases[i] as Measured) })),
          ours: ours.details,
          baseline: base.details,
        };
        rows.push(
          row(`local write c=${concurrency}: throughput`, {
            ours: ours.opsPerSec,
            baseline: base.opsPerSec,
            unit: 'ops/s',
            ...(concurrency === 64 ? { target: { kind: 'min-ratio', min: 0.5 } as const } : {}),
            details,
          }),
          row(`local write c=${concurrency}: p50 latency`, { ours: ours.p50, baseline: base.p50, unit: 'ms' }),
          row(`local write c=${concurrency}: p99 latency`, {
            ours: ours.p99,
            baseline: base.p99,
            unit: 'ms',
            ...(concurrency === 1 ? { target: { kind: 'max-value', max: 2 } as const } : {}),
          }),
        );
      }
      return rows;
    } finally {
      await node.close();
      raw.disconnect();
    }
  },
};
