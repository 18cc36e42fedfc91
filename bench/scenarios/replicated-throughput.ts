/**
 * 2. Replicated throughput: a 3-node cluster takes N writes spread over the nodes; the
 * rate is N over the time until all three hold identical state, against raw BullMQ
 * moving N jobs (add + no-op process) on the same Redis.
 *
 * "≥ 1.0×" means a write reaching two peers must cost less than one plain BullMQ job.
 * With several rounds, ours and the baseline alternate and the medians are compared.
 *
 * Diag row: the same run with `minConcurrentBatch: 1` (a group commit starts whenever a
 * transaction connection is free, as before it needed 16 writes beside another), in the
 * same rounds: time per write per peer and transactions (EXEC) per write.
 */
import { moveJobs } from '../lib/bullmq-baseline.js';
import { cpuSnapshot, cpuSpent, type BenchContext } from '../lib/context.js';
import { valueOfBytes } from '../lib/payload.js';
import { commandStats, perOperation, resetServer } from '../lib/redis-stats.js';
import { replicatedRun, VALUE_BYTES, type ReplicatedRunResult } from '../lib/replicated-run.js';
import { row } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { median, round } from '../lib/stats.js';

interface BaselineRun {
  jobsPerSec: number;
  details: Record<string, unknown>;
}

async function baseline(ctx: BenchContext): Promise<BaselineRun> {
  const { writes, warmupWrites, concurrency } = ctx.sizes.replicated;
  await resetServer(ctx.admin);
  ctx.log(`raw BullMQ: ${writes} jobs (add concurrency ${concurrency}, worker concurrency ${concurrency})`);
  const cpu0 = await cpuSnapshot(ctx.admin);
  const cmd0 = await commandStats(ctx.admin);
  const base = await moveJobs({
    url: ctx.server.url(9),
    jobs: writes,
    warmupJobs: warmupWrites,
    concurrency,
    workerConcurrency: concurrency,
    payload: (i) => ({ key: `w-${i}`, value: valueOfBytes(i, VALUE_BYTES) }),
    timeoutMs: ctx.sizes.convergeTimeoutMs,
  });
  const cpu = cpuSpent(cpu0, await cpuSnapshot(ctx.admin));
  const cmd = await commandStats(ctx.admin);
  ctx.log(`raw BullMQ: ${Math.round(base.jobsPerSec)} jobs/s`);
  const all = writes + warmupWrites;
  return {
    jobsPerSec: base.jobsPerSec,
    details: {
      jobs: writes,
      jobsPerSec: round(base.jobsPerSec),
      elapsedMs: Math.round(base.elapsedMs),
      workerConcurrency: concurrency,
      cpuUsPerJob: { process: round(cpu.processUs / all, 3), redis: round(cpu.redisUs / all, 3) },
      redisCommandsPerJob: perOperation(cmd0, cmd, all, 8),
    },
  };
}

export const replicatedThroughputScenario: Scenario = {
  id: 'replicated-throughput',
  title: '2. Replicated throughput',
  async run(ctx) {
    const { writes, warmupWrites, concurrency } = ctx.sizes.replicated;
    const ours: ReplicatedRunResult[] = [];
    const eager: ReplicatedRunResult[] = [];
    const bases: BaselineRun[] = [];
    for (let r = 1; r <= ctx.sizes.rounds; r++) {
      if (ctx.sizes.rounds > 1) ctx.log(`round ${r}/${ctx.sizes.rounds}`);
      ours.push(await replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency }));
      bases.push(await baseline(ctx));
      eager.push(await replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency, storeOptions: { minConcurrentBatch: 1 } }));
    }
    const oursRate = median(ours.map((o) => o.convergedWritesPerSec));
    const baseRate = median(bases.map((b) => b.jobsPerSec));
    const middle = <T>(runs: T[], rate: (t: T) => number) => [...runs].sort((a, b) => rate(a) - rate(b))[Math.floor((runs.length - 1) / 2)] as T;
    return [
      row('replicated throughput, 3 nodes', {
        ours: oursRate,
        baseline: baseRate,
        unit: 'writes/s vs jobs/s',
        target: { kind: 'min-ratio', min: 1 },
        details: {
          rounds: ctx.sizes.rounds,
          perRound: ours.map((o, i) => ({ ours: round(o.convergedWritesPerSec), baseline: round((bases[i] as BaselineRun).jobsPerSec) })),
          ours: middle(ours, (o) => o.convergedWritesPerSec).details,
          baseline: middle(bases, (b) => b.jobsPerSec).details,
        },
      }),
      row('diag: replicated, group commit beside another from 16 writes vs from 1 (minConcurrentBatch)', {
        ours: median(ours.map((o) => o.costUsPerWritePeer)),
        baseline: median(eager.map((o) => o.costUsPerWritePeer)),
        unit: 'µs/write/peer',
        details: { transactionsPerWrite: { ours: median(ours.map((o) => o.transactionsPerWrite)), baseline: median(eager.map((o) => o.transactionsPerWrite)) }, baseline: middle(eager, (o) => o.costUsPerWritePeer).details },
      }),
    ];
  },
};
