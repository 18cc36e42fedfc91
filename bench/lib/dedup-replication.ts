/**
 * The coalescing alternative issue 2 allows beside ours: one BullMQ job per write and per
 * peer, deduplicated by key, consumed by a worker that reads the key's current value when
 * the job runs. Issue 2 asks which of the two is cheaper; this is the other side.
 *
 *   write on A: SET A:rec:k ─► Queue(A→B).add({k}, {delay: D, deduplication: {id: k, …}})
 *                          └─► Queue(A→C).add(…)            (at most one delayed job per key)
 *   worker A→B, when the job runs: GET A:rec:k ─► SET B:copy:A:k
 *
 * It is the cheapest honest version of "dedup jobs per key", so a lower bound on what it
 * would cost us: the write is a plain SET of a string as long as our records (no clock,
 * version vector or crash-safe outbox), the apply a blind SET (no WATCH/MULTI merge), and
 * no producer promotes jobs at their due time. Each origin's copies live under their own
 * key on the peer, so "the peer holds the newest value" is checkable without a merge.
 */
import { Queue, Worker, type DeduplicationOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import { waitFor } from './deadline.js';
import { closedLoop } from './load.js';
import { seededRandom, valueOfBytes } from './payload.js';
import { costSince, costSnapshot, type WriteCost } from './write-cost.js';

/**
 * `debounce`: `{id: key, ttl: D, extend: true, replace: true}` — each write replaces the
 * key's delayed job (newest data, delay restarted), so a key written more often than every
 * D is not replicated until its writes pause. `throttle`: `{id: key, ttl: D}` — writes
 * within D of the first are dropped and the first job, due D after it, carries them all.
 */
export type DedupMode = 'debounce' | 'throttle';

export interface DedupRunOptions {
  server: LocalRedisServer;
  admin: Redis;
  mode: DedupMode;
  /** Nodes (node i uses database `1 + i`, like the benchmark clusters). */
  nodes: number;
  /** Keys `hot-0 … hot-(keyCount-1)`, drawn with the same seeded generator as our run. */
  keyCount: number;
  writers: number;
  warmupMs: number;
  durationMs: number;
  /** Job delay and deduplication ttl (ms); ours uses the same as its `delayMs`. */
  delayMs: number;
  /** Bytes of each stored value: the length of our encoded records. */
  recordBytes: number;
  /** Jobs each worker runs at once (ours: `replication.concurrency`). */
  workerConcurrency: number;
  /** Completed jobs kept per queue (ours: `replication.keepCompletedJobs`). */
  keepCompletedJobs: number;
  timeoutMs: number;
}

export interface DedupRunResult {
  cost: WriteCost;
  details: Record<string, unknown>;
}

const QUEUE_PREFIX = 'dedupbull';
const recordKey = (key: string) => `dedup:rec:${key}`;
const copyKey = (origin: string, key: string) => `dedup:copy:${origin}:${key}`;

function deduplication(mode: DedupMode, key: string, delayMs: number): DeduplicationOptions {
  return mode === 'debounce' ? { id: key, ttl: delayMs, extend: true, replace: true } : { id: key, ttl: delayMs };
}

interface Link {
  origin: number;
  peer: number;
  queue: Queue<{ key: string }>;
  worker: Worker<{ key: string }>;
  reader: Redis;
  blocking: Redis;
  /** Ids `add` returned; a new id is a created job, a known one a write folded into it. */
  ids: Set<string>;
}

/**
 * Runs the same closed-loop load as the hot-keys scenario (`writers` writers, key drawn
 * by `seededRandom(keyCount)`, origin `seq % nodes`) through deduplicated jobs: a warm-up,
 * drain, then the measured load; the cost window runs from its first write to the verified
 * delivery of every key's newest value to every peer.
 */
export async function dedupReplicationRun(o: DedupRunOptions): Promise<DedupRunResult> {
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
  const url = (i: number) => o.server.url(1 + i);
  const data = ids.map((_, i) => new Redis(url(i), { maxRetriesPerRequest: 1 }));
  const producers = ids.map((_, i) => new Redis(url(i), { maxRetriesPerRequest: 1 }));
  const errors: Error[] = [];
  let applied = 0;
  let added = 0;
  const links: Link[] = [];
  for (let origin = 0; origin < o.nodes; origin++) {
    for (let peer = 0; peer < o.nodes; peer++) {
      if (peer === origin) continue;
      const name = `to-${ids[peer]}`;
      const reader = new Redis(url(origin), { maxRetriesPerRequest: 1 });
      const blocking = new Redis(url(origin), { maxRetriesPerRequest: null });
      const target = data[peer] as Redis;
      const originId = ids[origin] as string;
      const queue = new Queue<{ key: string }>(name, {
        connection: producers[origin] as Redis,
        prefix: QUEUE_PREFIX,
        streams: { events: { maxLen: 1_000 } },
        defaultJobOptions: { removeOnComplete: { count: o.keepCompletedJobs }, removeOnFail: false },
      });
      const worker = new Worker<{ key: string }>(
        name,
        async (job: Job<{ key: string }>) => {
          const value = await reader.get(recordKey(job.data.key));
          if (value !== null) await target.set(copyKey(originId, job.data.key), value);
          applied += 1;
        },
        { connection: blocking, prefix: QUEUE_PREFIX, concurrency: o.workerConcurrency },
      );
      worker.on('failed', (_job, error) => errors.push(error));
      worker.on('error', (error) => errors.push(error));
      queue.on('error', (error) => errors.push(error));
      links.push({ origin, peer, queue, worker, reader, blocking, ids: new Set() });
    }
  }
  const outgoing = ids.map((_, i) => links.filter((l) => l.origin === i));
  const written = ids.map(() => new Set<string>());
  const random = seededRandom(o.keyCount);
  const load = (ms: number) =>
    closedLoop({
      concurrency: o.writers,
      warmupMs: 0,
      durationMs: ms,
      op: async (seq) => {
        const key = `hot-${Math.floor(random() * o.keyCount)}`;
        const origin = seq % o.nodes;
        written[origin]?.add(key);
        await (data[origin] as Redis).set(recordKey(key), JSON.stringify(valueOfBytes(seq, o.recordBytes)));
        await Promise.all(
          (outgoing[origin] as Link[]).map(async (link) => {
            const job = await link.queue.add('replicate', { key }, { delay: o.delayMs, deduplication: deduplication(o.mode, key, o.delayMs) });
            if (job.id) link.ids.add(job.id);
            added += 1;
          }),
        );
      },
    });
  const jobsCreated = () => links.reduce((sum, l) => sum + l.ids.size, 0);
  const drain = () =>
    waitFor(
      async () => {
        if (errors.length > 0) throw new Error(`dedup replication: a worker failed: ${errors[0]?.message}`);
        const counts = await Promise.all(links.map((l) => l.queue.getJobCounts('delayed', 'waiting', 'active', 'prioritized')));
        return counts.every((c) => Object.values(c).every((n) => n === 0)) ? true : undefined;
      },
      { timeoutMs: o.timeoutMs, describe: () => `dedup replication (${o.mode}) did not drain: ${applied} jobs run` },
    );
  try {
    await Promise.all(links.map((l) => l.worker.waitUntilReady()));
    await load(o.warmupMs);
    await drain();

    const before = { applied, added, jobs: jobsCreated(), snapshot: await costSnapshot(o.admin) };
    const result = await load(o.durationMs);
    const appliedWhileWriting = applied - before.applied;
    await drain();
    const verification = await verifyCopies(ids, data, written);
    const writes = result.ops;
    const adds = added - before.added;
    const jobs = jobsCreated() - before.jobs;
    const cost = await costSince(o.admin, before.snapshot, {
      writes,
      writesPerSec: (writes * 1000) / Math.max(1, result.elapsedMs),
      jobs,
      applies: applied - before.applied,
      appliesWhileWriting: appliedWhileWriting,
    });
    return {
      cost,
      details: {
        mode: o.mode,
        deduplication: deduplication(o.mode, '<key>', o.delayMs),
        writes,
        adds,
        jobsCreated: jobs,
        addsFoldedIntoAnExistingJob: adds - jobs,
        jobsRun: applied - before.applied,
        recordBytes: o.recordBytes,
        verifiedCopies: verification.checked,
        // Copies that did not end with the origin's newest value: a write deduplicated into
        // a job that had already read the key is never delivered.
        staleCopiesAtEnd: verification.stale,
      },
    };
  } finally {
    await Promise.all(links.map((l) => l.worker.close().catch(() => undefined)));
    await Promise.all(links.map((l) => l.queue.close().catch(() => undefined)));
    for (const r of [...data, ...producers, ...links.flatMap((l) => [l.reader, l.blocking])]) r.disconnect();
  }
}

/** Compares every peer's copy of each origin's keys with the origin's current value. */
async function verifyCopies(ids: readonly string[], data: readonly Redis[], written: ReadonlyArray<Set<string>>): Promise<{ checked: number; stale: number }> {
  let checked = 0;
  let stale = 0;
  for (let origin = 0; origin < ids.length; origin++) {
    const keys = [...(written[origin] ?? [])];
    for (let start = 0; start < keys.length; start += 1_000) {
      const chunk = keys.slice(start, start + 1_000);
      const newest = await (data[origin] as Redis).mget(...chunk.map(recordKey));
      for (let peer = 0; peer < ids.length; peer++) {
        if (peer === origin) continue;
        const copies = await (data[peer] as Redis).mget(...chunk.map((k) => copyKey(ids[origin] as string, k)));
        copies.forEach((c, j) => {
          checked += 1;
          if (c !== newest[j]) stale += 1;
        });
      }
    }
  }
  if (checked === 0) throw new Error('dedup replication verified no copies: the load wrote nothing');
  return { checked, stale };
}
