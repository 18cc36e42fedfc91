/**
 * 2. Replicated throughput: a 3-node cluster takes N writes spread over the nodes; the
 * rate is N over the time until all three hold identical state, against raw BullMQ
 * moving N jobs (add + no-op process) on the same Redis.
 *
 * "≥ 1.0×" means a write reaching two peers must cost less than one plain BullMQ job.
 */
import { moveJobs } from '../lib/bullmq-baseline.js';
import { cpuSnapshot, cpuSpent } from '../lib/context.js';
import { commandStats, perOperation, resetServer } from '../lib/redis-stats.js';
import { replicatedRun, VALUE_BYTES } from '../lib/replicated-run.js';
import { row } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';
import { valueOfBytes } from '../lib/payload.js';

export const replicatedThroughputScenario: Scenario = {
  id: 'replicated-throughput',
  title: '2. Replicated throughput',
  async run(ctx) {
    const { writes, warmupWrites, concurrency } = ctx.sizes.replicated;
    const ours = await replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency });

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
    return [
      row('replicated throughput, 3 nodes', {
        ours: ours.convergedWritesPerSec,
        baseline: base.jobsPerSec,
        unit: 'writes/s vs jobs/s',
        target: { kind: 'min-ratio', min: 1 },
        details: {
          ours: ours.details,
          baseline: {
            jobs: writes,
            elapsedMs: Math.round(base.elapsedMs),
            workerConcurrency: concurrency,
            cpuUsPerJob: { process: round(cpu.processUs / all, 3), redis: round(cpu.redisUs / all, 3) },
            redisCommandsPerJob: perOperation(cmd0, cmd, all, 8),
          },
        },
      }),
    ];
  },
};
