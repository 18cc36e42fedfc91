/**
 * 10. Anti-entropy: what a digest exchange costs, and what keeping the digest costs.
 *
 * - Equal replicas: bytes read from the peer and time of one exchange between two stores
 *   holding the same `large` keys, against the same at `small` keys (median of runs).
 * - Repair: `d` keys made newer on the peer, then one exchange pulls them; bytes and time
 *   at `large` keys against the same `d` at `small` keys.
 * - Upkeep: local write throughput at c=64 with the digest kept against digests off.
 * - Memory: used_memory per key of records plus digest against a plain `SET` of the same
 *   key and value.
 * - Idle CPU: three nodes holding `large` keys each; process plus Redis CPU of one pass
 *   (every node: an exchange with both peers, a collection pass), divided by the default
 *   interval: the share of one core anti-entropy uses when nothing changes.
 *
 * Stores are seeded through a pipeline with the digest computed by the pure module (as
 * the write path would have kept it), so 10^6 keys take seconds rather than minutes.
 * Exchanges run with `confirmDelayMs: 0` and no step pause: the rows measure the work of a
 * round, not the waits that pace it.
 */
import { Redis } from 'ioredis';
import { exchange, type RoundReport } from '../../src/anti-entropy/exchange.js';
import { DEFAULT_ANTI_ENTROPY_OPTIONS, resolveAntiEntropyOptions } from '../../src/anti-entropy/options.js';
import { HybridLogicalClock } from '../../src/clock/hlc.js';
import { formatTimestamp } from '../../src/clock/timestamp.js';
import { digestShape } from '../../src/digest/digest.js';
import { ReplicaNode } from '../../src/node/replica-node.js';
import type { CacheRecord } from '../../src/record/record.js';
import { RedisDigest } from '../../src/store/digest-store.js';
import { KeyBuilder } from '../../src/store/keys.js';
import { DEFAULT_STORE_OPTIONS, RecordStore } from '../../src/store/record-store.js';
import { cpuSnapshot, cpuSpent, type BenchContext } from '../lib/context.js';
import { closedLoop } from '../lib/load.js';
import { seededRandom, valueOfBytes } from '../lib/payload.js';
import { seedStore } from '../lib/seed-store.js';
import { resetServer, usedMemory } from '../lib/redis-stats.js';
import { row, type ResultRow } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { median, perSecond, round } from '../lib/stats.js';

const PREFIX = 'bench';
const VALUE_BYTES = 100;
const SHAPE = digestShape(DEFAULT_STORE_OPTIONS.digestLeaves);
const EXCHANGE = resolveAntiEntropyOptions({ confirmDelayMs: 0, stepPauseMs: 0 });
/** Wall time of every seeded record: the copies must be byte-identical. */
const SEED_WALL_MS = Date.now() - 60_000;

function record(key: string, wallMs: number, node: string, seq: number): CacheRecord {
  const version = { [node]: seq };
  return { key, hlc: formatTimestamp({ wallMs, logical: 0, nodeId: node }), origin: node, version, written: version, deleted: false, valueJson: JSON.stringify(valueOfBytes(seq, VALUE_BYTES)) };
}

/** Writes `count` records (`p-0` …) and their digest into `db` under node `id`. */
function seed(ctx: BenchContext, db: number, id: string, count: number): Promise<void> {
  return seedStore(ctx.server.url(db), new KeyBuilder(PREFIX, id), count, (key) => record(key, SEED_WALL_MS, 'n1', 1));
}

interface Pair {
  readonly a: RecordStore;
  readonly b: RecordStore;
  readonly reader: Redis;
  close(): Promise<void>;
}

async function openPair(ctx: BenchContext, dbA: number, dbB: number): Promise<Pair> {
  const open = async (db: number, id: string) => {
    const store = new RecordStore(ctx.server.url(db), new KeyBuilder(PREFIX, id), new HybridLogicalClock(id));
    await store.connect();
    return store;
  };
  const a = await open(dbA, 'n1');
  const b = await open(dbB, 'n2');
  const reader = new Redis(ctx.server.url(dbB), { maxRetriesPerRequest: 1 });
  return { a, b, reader, close: async () => void (await Promise.all([a.close(), b.close(), reader.quit()])) };
}

/** One exchange: A pulls from B. */
function pull(pair: Pair): Promise<RoundReport> {
  return exchange({ peerId: 'n2', local: { redis: pair.a.redis, keys: pair.a.keys }, remote: { redis: pair.reader, keys: pair.b.keys }, shape: SHAPE }, EXCHANGE, async (records) =>
    (await pair.a.applyRemote(records)).filter((r) => r.result.changed).length,
  );
}

async function equalRound(pair: Pair, runs: number): Promise<{ bytes: number; ms: number }> {
  const bytes: number[] = [];
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await pull(pair);
    ms.push(performance.now() - t0);
    if (r.result !== 'equal') throw new Error(`equal stores compared as ${r.result} (${r.differingKeys} keys)`);
    bytes.push(r.bytesRead);
  }
  return { bytes: median(bytes), ms: median(ms) };
}

/** Makes `d` keys newer on B (through B's merge path, which keeps B's digest), then A pulls them. */
async function repairRound(pair: Pair, count: number, d: number, generation: number): Promise<{ bytes: number; ms: number; repaired: number }> {
  const random = seededRandom(1_000 + generation);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(d, count)) chosen.add(Math.floor(random() * count));
  const newer = [...chosen].map((k) => record(`p-${k}`, Date.now() - 1_000 + generation, 'n2', generation + 1));
  for (let at = 0; at < newer.length; at += 500) await pair.b.applyRemote(newer.slice(at, at + 500));
  await pair.b.folder?.fold();
  const t0 = performance.now();
  const r = await pull(pair);
  const ms = performance.now() - t0;
  await pair.a.folder?.fold();
  if (r.keysRepaired !== newer.length) throw new Error(`repair of ${newer.length} keys changed ${r.keysRepaired} (${r.result}: ${r.error ?? ''})`);
  const [[ra], [rb]] = await Promise.all([new RedisDigest(pair.a.redis, pair.a.keys, SHAPE).sums(0, [0]), new RedisDigest(pair.reader, pair.b.keys, SHAPE).sums(0, [0])]);
  if (ra !== rb) throw new Error('digests still differ after the repair');
  return { bytes: r.bytesRead, ms, repaired: r.keysRepaired };
}

interface Upkeep {
  opsPerSec: number;
  /** CPU per write (µs) of this process (every thread: the fold thread too) and of Redis, warm-up and final fold included. */
  cpuUsPerWrite: { process: number; redis: number };
}

async function writeThroughput(ctx: BenchContext, digestLeaves: number, db: number): Promise<Upkeep> {
  const node = await ReplicaNode.start({ id: 'w1', redis: ctx.server.url(db), prefix: `${PREFIX}-${digestLeaves}`, peers: [{ id: 'w2', redis: ctx.server.url(db + 1) }], digestLeaves });
  try {
    const random = seededRandom(64);
    const values = Array.from({ length: 64 }, (_, i) => valueOfBytes(i, VALUE_BYTES));
    const { warmupMs, durationMs, keyspace } = ctx.sizes.localWrite;
    const cpu0 = await cpuSnapshot(ctx.admin);
    const result = await closedLoop({ concurrency: 64, warmupMs, durationMs, op: (seq) => node.put(`key-${Math.floor(random() * keyspace)}`, values[seq % values.length] as string) });
    // Digest upkeep is partly deferred (the fold); the time to fold what is left counts too.
    const t0 = performance.now();
    if (digestLeaves > 0) await node.antiEntropyRound();
    const cpu = cpuSpent(cpu0, await cpuSnapshot(ctx.admin));
    return {
      opsPerSec: perSecond(result.ops, result.elapsedMs + (performance.now() - t0)),
      cpuUsPerWrite: { process: round(cpu.processUs / result.totalOps), redis: round(cpu.redisUs / result.totalOps) },
    };
  } finally {
    await node.close();
  }
}

export const antiEntropyScenario: Scenario = {
  id: 'anti-entropy',
  title: '10. Anti-entropy',
  async run(ctx) {
    const { small, large, diffs, equalRuns, idlePasses } = ctx.sizes.antiEntropy;
    const rows: ResultRow[] = [];
    await resetServer(ctx.admin);
    const label = (n: number) => n.toLocaleString('en-US');

    // Memory: records + digest vs plain SET, measured while seeding the large store.
    const m0 = await usedMemory(ctx.admin);
    await seed(ctx, 1, 'n1', large);
    const m1 = await usedMemory(ctx.admin);
    const plain = new Redis(ctx.server.url(9), { maxRetriesPerRequest: 1 });
    for (let start = 0; start < large; start += 1_000) {
      const args: string[] = [];
      for (let k = start; k < Math.min(large, start + 1_000); k++) args.push(`p-${k}`, JSON.stringify(valueOfBytes(k, VALUE_BYTES)));
      await plain.mset(...args);
    }
    const m2 = await usedMemory(ctx.admin);
    await plain.flushdb();
    plain.disconnect();
    rows.push(row(`anti-entropy: used_memory per key, records + digest vs plain SET (${label(large)} keys)`, { ours: (m1 - m0) / large, baseline: (m2 - m1) / large, unit: 'bytes/key', target: { kind: 'max-ratio', max: 2 } }));
    ctx.log(`seeded ${label(large)} keys with digest; now the copies`);
    await seed(ctx, 2, 'n2', large);
    await seed(ctx, 3, 'n1', small);
    await seed(ctx, 4, 'n2', small);

    const bigPair = await openPair(ctx, 1, 2);
    const smallPair = await openPair(ctx, 3, 4);
    try {
      const eqLarge = await equalRound(bigPair, equalRuns);
      const eqSmall = await equalRound(smallPair, equalRuns);
      const eqName = `anti-entropy: equal replicas round, ${label(large)} vs ${label(small)} keys`;
      rows.push(
        row(`${eqName}: bytes read from the peer`, { ours: eqLarge.bytes, baseline: eqSmall.bytes, unit: 'bytes', target: { kind: 'max-value', max: 4096 } }),
        row(`${eqName}: time`, { ours: eqLarge.ms, baseline: eqSmall.ms, unit: 'ms', target: { kind: 'max-value', max: 50 } }),
        row(`${eqName}: time ratio`, { ours: eqLarge.ms, baseline: eqSmall.ms, unit: 'ms', target: { kind: 'max-ratio', max: 1.5 } }),
      );
      for (const [i, d] of diffs.entries()) {
        ctx.log(`repair of ${d} differing keys`);
        const rl = await repairRound(bigPair, large, d, i + 1);
        const rs = await repairRound(smallPair, small, Math.min(d, small), i + 1);
        const name = `anti-entropy: repair d=${label(d)}, ${label(large)} vs ${label(small)} keys`;
        rows.push(
          row(`${name}: bytes read`, { ours: rl.bytes, baseline: rs.bytes, unit: 'bytes', ...(d === 100 ? { target: { kind: 'max-ratio', max: 2 } as const } : {}), details: { large: rl, small: rs } }),
          row(`${name}: time`, { ours: rl.ms, baseline: rs.ms, unit: 'ms' }),
        );
      }
    } finally {
      await Promise.all([bigPair.close(), smallPair.close()]);
    }

    // Idle CPU: three nodes with `large` keys each (dbs 1, 2 and a third copy in 5).
    ctx.log('idle CPU of anti-entropy on 3 nodes');
    await seed(ctx, 5, 'n3', large);
    // n1..n3 hold identical records; db 2 was seeded as n2, db 1 as n1.
    const ids = ['n1', 'n2', 'n3'];
    const dbs = [1, 2, 5];
    const nodes = await Promise.all(
      ids.map((id, i) =>
        ReplicaNode.start({ id, redis: ctx.server.url(dbs[i] as number), prefix: PREFIX, peers: ids.flatMap((p, j) => (j === i ? [] : [{ id: p, redis: ctx.server.url(dbs[j] as number) }])), antiEntropy: { intervalMs: 3_600_000 } }),
      ),
    );
    try {
      for (const node of nodes) await node.antiEntropyRound();
      const cpu0 = await cpuSnapshot(ctx.admin);
      for (let pass = 0; pass < idlePasses; pass++) for (const node of nodes) await node.antiEntropyRound();
      const cpu = cpuSpent(cpu0, await cpuSnapshot(ctx.admin));
      const perPassUs = cpu.totalUs / idlePasses;
      const share = (perPassUs / 1_000 / DEFAULT_ANTI_ENTROPY_OPTIONS.intervalMs) * 100;
      rows.push(
        row(`anti-entropy: idle CPU at the default ${DEFAULT_ANTI_ENTROPY_OPTIONS.intervalMs / 1000} s interval, 3 nodes × ${label(large)} keys`, {
          ours: share,
          baseline: null,
          unit: '% of a core',
          target: { kind: 'max-value', max: 1 },
          details: { perPassUs: round(perPassUs), processUs: round(cpu.processUs / idlePasses), redisUs: round(cpu.redisUs / idlePasses), passes: idlePasses },
        }),
      );
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }

    // Upkeep: write throughput with digests on vs off (alternating rounds, medians).
    const on: Upkeep[] = [];
    const off: Upkeep[] = [];
    for (let r = 0; r < ctx.sizes.rounds; r++) {
      await resetServer(ctx.admin);
      off.push(await writeThroughput(ctx, 0, 10));
      await resetServer(ctx.admin);
      on.push(await writeThroughput(ctx, DEFAULT_STORE_OPTIONS.digestLeaves, 12));
      const line = (u: Upkeep) => `${Math.round(u.opsPerSec)} ops/s (CPU per write ${u.cpuUsPerWrite.process} µs process, ${u.cpuUsPerWrite.redis} µs Redis)`;
      ctx.log(`upkeep round ${r + 1}: on ${line(on[r] as Upkeep)}, off ${line(off[r] as Upkeep)}`);
    }
    const cpuOf = (side: Upkeep[]) => ({ process: median(side.map((u) => u.cpuUsPerWrite.process)), redis: median(side.map((u) => u.cpuUsPerWrite.redis)) });
    rows.push(
      row('anti-entropy: local write c=64 throughput, digests kept vs off', {
        ours: median(on.map((u) => u.opsPerSec)),
        baseline: median(off.map((u) => u.opsPerSec)),
        unit: 'ops/s',
        target: { kind: 'min-ratio', min: 0.85 },
        details: { rounds: ctx.sizes.rounds, cpuUsPerWrite: { digestsKept: cpuOf(on), digestsOff: cpuOf(off) }, perRound: on.map((u, i) => ({ kept: u, off: off[i] })), note: 'CPU: this process (all threads, the fold thread included) and Redis, warm-up and final fold included, per write; medians' },
      }),
    );
    await resetServer(ctx.admin);
    return rows;
  },
};
