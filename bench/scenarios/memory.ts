/**
 * 6. Memory: Redis bytes per replicated key (MEMORY USAGE of each node's record key, 100-byte
 * values, after replication converged and every outbox drained) against a plain
 * `SET key value` of the same user key and value. Also the whole-server `used_memory`
 * delta per stored key for both, which includes everything else the library keeps
 * (queues, kept completed jobs, outbox stream, clock).
 */
import type { Redis } from 'ioredis';
import { Redis as IORedis } from 'ioredis';
import { startCluster, waitForConvergence } from '../lib/cluster.js';
import type { BenchContext } from '../lib/context.js';
import { sleep } from '../lib/deadline.js';
import { runCount } from '../lib/load.js';
import { valueOfBytes } from '../lib/payload.js';
import { resetServer, usedMemory } from '../lib/redis-stats.js';
import { row } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

/** MEMORY USAGE of every key matching `match` in one database, split into the keys `isRecord` accepts and the rest. */
async function memoryByKey(redis: Redis, isRecord: (key: string) => boolean): Promise<{ recordBytes: number[]; otherBytes: number; otherKeys: number }> {
  const recordBytes: number[] = [];
  let otherBytes = 0;
  let otherKeys = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1_000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const k of keys) pipeline.call('MEMORY', 'USAGE', k);
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((k, i) => {
      const bytes = Number(replies[i]?.[1] ?? 0);
      if (isRecord(k)) recordBytes.push(bytes);
      else {
        otherBytes += bytes;
        otherKeys += 1;
      }
    });
  } while (cursor !== '0');
  return { recordBytes, otherBytes, otherKeys };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** used_memory after letting client buffers settle. */
async function settledMemory(ctx: BenchContext): Promise<number> {
  await sleep(200);
  return usedMemory(ctx.admin);
}

export const memoryScenario: Scenario = {
  id: 'memory',
  title: '6. Memory',
  async run(ctx) {
    const { keys, valueBytes } = ctx.sizes.memory;
    const userKeys = Array.from({ length: keys }, (_, i) => `mem-${i}`);
    const values = userKeys.map((_, i) => valueOfBytes(i, valueBytes));

    await resetServer(ctx.admin);
    const cluster = await startCluster(ctx.server, { size: 3 });
    let ours: { usage: number; deltaPerCopy: number; details: Record<string, unknown> };
    try {
      const before = await settledMemory(ctx);
      ctx.log(`3 nodes: ${keys} keys with ${valueBytes}-byte values, spread over the nodes`);
      await runCount({ concurrency: 16, total: keys, op: (i) => cluster.nodes[i % 3]?.put(userKeys[i] as string, values[i] as string) as Promise<unknown> });
      const conv = await waitForConvergence(cluster, { timeoutMs: ctx.sizes.convergeTimeoutMs, expectedApplied: keys * 2, expectedRecords: keys });
      const after = await settledMemory(ctx);
      const perNode = await Promise.all(cluster.nodes.map((node, i) => memoryByKey(cluster.raw[i] as Redis, (k) => k.startsWith(node.keys.record('')))));
      const usage = perNode.flatMap((p) => p.recordBytes);
      const copies = keys * cluster.nodes.length;
      ours = {
        usage: mean(usage),
        deltaPerCopy: (after - before) / copies,
        details: {
          keys,
          nodes: 3,
          valueBytes,
          recordKeyExample: cluster.nodes[0]?.keys.record(userKeys[0] as string),
          memoryUsagePerRecord: { mean: round(mean(usage)), min: Math.min(...usage), max: Math.max(...usage) },
          usedMemoryDeltaPerRecordCopy: round((after - before) / copies),
          bookkeepingKeysPerNode: perNode.map((p) => p.otherKeys),
          bookkeepingBytesPerNode: perNode.map((p) => p.otherBytes),
          verifiedIdenticalRecords: conv.records,
        },
      };
    } finally {
      await cluster.close();
    }

    await resetServer(ctx.admin);
    const raw = new IORedis(ctx.server.url(10), { maxRetriesPerRequest: 1 });
    try {
      await raw.ping();
      const before = await settledMemory(ctx);
      ctx.log(`baseline: ${keys} plain SETs of the same keys and values`);
      for (let i = 0; i < keys; i += 500) {
        const p = raw.pipeline();
        for (let j = i; j < Math.min(keys, i + 500); j++) p.set(userKeys[j] as string, JSON.stringify(values[j]));
        await p.exec();
      }
      const after = await settledMemory(ctx);
      const { recordBytes } = await memoryByKey(raw, () => true);
      const usage = mean(recordBytes);
      const deltaPerKey = (after - before) / keys;
      ctx.log(`MEMORY USAGE ${round(ours.usage)} vs ${round(usage)} bytes; used_memory delta ${round(ours.deltaPerCopy)} vs ${round(deltaPerKey)} bytes per key`);
      return [
        row('memory: MEMORY USAGE per replicated record', {
          ours: ours.usage,
          baseline: usage,
          unit: 'bytes/key',
          target: { kind: 'max-ratio', max: 2 },
          details: { ours: ours.details, baseline: { keys, memoryUsagePerKey: round(usage), usedMemoryDeltaPerKey: round(deltaPerKey) } },
        }),
        row('memory: used_memory delta per stored record', { ours: ours.deltaPerCopy, baseline: deltaPerKey, unit: 'bytes/key', target: { kind: 'max-ratio', max: 2 } }),
      ];
    } finally {
      raw.disconnect();
    }
  },
};
