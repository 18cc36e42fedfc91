/**
 * 9. What a peer outage costs. Two nodes, n1 and n2, on the private Redis; n2 is stopped.
 *
 * - outage cost: `writes` writes on n1 (9 in 10 to `hotKeys` hot keys, 1 in 10 to a new
 *   distinct key) while n2 is down; then the bytes n1's Redis holds for n2 (its queue's
 *   keys + the outbox, MEMORY USAGE) per distinct key pending (target ≤ 200 B, the bound
 *   documented in the README); n2 restarts and the merges it makes per distinct key are
 *   counted (target ≤ 2).
 * - catch-up: `catchUpKeys` distinct keys pending for n2 (records and outbox written
 *   straight into n1's database, the relay turns them into jobs while n2 is down); keys
 *   per second n2 applies after it restarts, against the replicated-throughput run
 *   (scenario 2's measure) of the same run. Target ≥ 0.5×.
 */
import { Redis } from 'ioredis';
import { ReplicaNode } from '../../src/node/replica-node.js';
import type { ReplicaNodeOptions } from '../../src/node/options.js';
import { encodeRecord } from '../../src/record/record.js';
import { formatTimestamp } from '../../src/clock/timestamp.js';
import { BENCH_PREFIX, counterTotal } from '../lib/cluster.js';
import type { BenchContext } from '../lib/context.js';
import { sleep, waitFor } from '../lib/deadline.js';
import { runCount } from '../lib/load.js';
import { valueOfBytes } from '../lib/payload.js';
import { keysMemory, resetServer } from '../lib/redis-stats.js';
import { replicatedRun, VALUE_BYTES } from '../lib/replicated-run.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

const DELAY_MS = 50;

function optionsOf(ctx: BenchContext, i: 0 | 1): ReplicaNodeOptions {
  const ids = ['n1', 'n2'];
  const url = (j: number) => ctx.server.url(1 + j);
  return {
    id: ids[i] as string,
    redis: url(i),
    prefix: BENCH_PREFIX,
    peers: [{ id: ids[1 - i] as string, redis: url(1 - i) }],
    replication: { delayMs: DELAY_MS },
  };
}

/** Starts n1 and n2 (so n2's database is known), then stops n2. */
async function startWithPeerDown(ctx: BenchContext): Promise<{ n1: ReplicaNode; raw: Redis }> {
  await resetServer(ctx.admin);
  const [n1, n2] = await Promise.all([ReplicaNode.start(optionsOf(ctx, 0)), ReplicaNode.start(optionsOf(ctx, 1))]);
  await n2.close();
  return { n1, raw: new Redis(ctx.server.url(1), { maxRetriesPerRequest: 1 }) };
}

/**
 * What n1's queue for n2 holds: per key, the unfinished jobs carrying it. Each is one merge
 * at n2 when it returns (jobs carry keys; every job that runs merges each of its keys once).
 */
async function jobsPerKey(n1: ReplicaNode): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const job of (await n1.queues[0]?.getJobs(['delayed', 'wait', 'active', 'prioritized'])) ?? []) {
    for (const k of job.data.keys) out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/** Restarts n2 and waits until it made `merges` merges (every pending job ran). */
async function catchUp(ctx: BenchContext, merges: number): Promise<{ n2: ReplicaNode; ms: number }> {
  const t0 = performance.now();
  const n2 = await ReplicaNode.start(optionsOf(ctx, 1));
  await waitFor(async () => ((await counterTotal(n2, 'eventual_cache_merges_total')) >= merges ? true : undefined), {
    timeoutMs: ctx.sizes.convergeTimeoutMs,
    intervalMs: 10,
    describe: async () => `n2 to make ${merges} merges (made ${await counterTotal(n2, 'eventual_cache_merges_total')})`,
  });
  return { n2, ms: performance.now() - t0 };
}

async function outageCost(ctx: BenchContext): Promise<ResultRow[]> {
  const { writes, hotKeys, distinctKeys } = ctx.sizes.outage;
  const { n1, raw } = await startWithPeerDown(ctx);
  let n2: ReplicaNode | undefined;
  try {
    ctx.log(`outage: ${writes} writes on n1 (${hotKeys} hot keys + ${distinctKeys} distinct) while n2 is down`);
    const keyOf = (i: number) => (i % 10 === 0 ? `d-${i / 10}` : `h-${Math.floor(i / 10) % hotKeys}`);
    await runCount({ concurrency: 16, total: writes, op: (i) => n1.put(keyOf(i), valueOfBytes(i, VALUE_BYTES)) });
    await n1.flushOutbox();
    const pending = hotKeys + distinctKeys;
    // Let the relay's sweep fold overdue small jobs (a peer that is away for long sees this state).
    await sleep(2_500);
    const queue = await keysMemory(raw, `${BENCH_PREFIX}:n1:q:*`);
    const outbox = (await raw.memory('USAGE', n1.keys.outbox(), 'SAMPLES', '0')) ?? 0;
    const perKey = (queue.bytes + outbox) / pending;
    const jobs = await n1.queues[0]?.getJobCounts();
    ctx.log(`outage: ${Math.round(perKey)} B per pending key (${queue.keys} queue keys, ${queue.bytes} B), jobs ${JSON.stringify(jobs)}`);
    const perKeyJobs = await jobsPerKey(n1);
    const counts = [...perKeyJobs.values()];
    const total = counts.reduce((a, b) => a + b, 0);
    const most = Math.max(...counts);
    if (perKeyJobs.size !== pending) throw new Error(`n1's queue for n2 holds ${perKeyJobs.size} keys, expected ${pending}`);
    const up = await catchUp(ctx, total);
    n2 = up.n2;
    const made = await counterTotal(n2, 'eventual_cache_merges_total');
    return [
      row('outage: replication bytes per distinct pending key', {
        ours: perKey,
        baseline: null,
        unit: 'B',
        target: { kind: 'max-value', max: 200 },
        details: { writes, pendingKeys: pending, queueKeys: queue.keys, queueBytes: queue.bytes, outboxBytes: outbox, jobs },
      }),
      row('outage: merges per distinct key at catch-up (max)', {
        ours: most,
        baseline: null,
        unit: 'merges',
        target: { kind: 'max-value', max: 2 },
        details: { meanMeasured: round(made / pending, 3), mergesMeasured: made, keys: pending, catchUpMs: Math.round(up.ms) },
      }),
    ];
  } finally {
    await n2?.close();
    await n1.close();
    raw.disconnect();
  }
}

/** Writes `count` records and outbox entries of 500 keys straight into n1's database. */
async function pendingKeys(raw: Redis, n1: ReplicaNode, count: number): Promise<void> {
  const hlc = formatTimestamp({ wallMs: Date.now(), logical: 0, nodeId: 'n1' });
  for (let start = 0; start < count; start += 500) {
    const keys = Array.from({ length: Math.min(500, count - start) }, (_, j) => `c-${start + j}`);
    const args = keys.flatMap((key, j) => [n1.keys.record(key), encodeRecord({ key, hlc, origin: 'n1', version: { n1: 1 }, written: { n1: 1 }, deleted: false, valueJson: JSON.stringify(valueOfBytes(start + j, VALUE_BYTES)) })]);
    await raw.mset(...args);
    await raw.xadd(n1.keys.outbox(), '*', 't', String(Date.now()), 'k', JSON.stringify(keys));
  }
}

async function catchUpRate(ctx: BenchContext): Promise<ResultRow> {
  const count = ctx.sizes.outage.catchUpKeys;
  const { writes, warmupWrites, concurrency } = ctx.sizes.replicated;
  const reference = await replicatedRun(ctx, { nodes: 3, writes, warmupWrites, concurrency });
  const { n1, raw } = await startWithPeerDown(ctx);
  let n2: ReplicaNode | undefined;
  try {
    ctx.log(`catch-up: ${count} distinct keys pending for n2`);
    await pendingKeys(raw, n1, count);
    await n1.flushOutbox();
    const up = await catchUp(ctx, count);
    n2 = up.n2;
    if ((await n2.status()).outbox === null) throw new Error('n2 lost its Redis');
    const rate = (count * 1000) / up.ms;
    ctx.log(`catch-up: ${Math.round(rate)} keys/s (replicated throughput ${Math.round(reference.convergedWritesPerSec)} writes/s)`);
    return row(`catch-up on ${count.toLocaleString('en-US')} pending distinct keys`, {
      ours: rate,
      baseline: reference.convergedWritesPerSec,
      unit: 'keys/s vs replicated writes/s',
      target: { kind: 'min-ratio', min: 0.5 },
      details: { keys: count, catchUpMs: Math.round(up.ms), replicatedThroughput: reference.details },
    });
  } finally {
    await n2?.close();
    await n1.close();
    raw.disconnect();
  }
}

export const outageScenario: Scenario = {
  id: 'outage',
  title: '9. Peer outage: cost and catch-up',
  async run(ctx) {
    return [...(await outageCost(ctx)), await catchUpRate(ctx)];
  },
};
