/**
 * An outage costs space in proportion to the distinct keys written, not to time or to
 * retries: keys keep coalescing into jobs that wait for a retry, BullMQ keeps one stack
 * trace per job, and when the peer returns each distinct key is merged there at most twice.
 * (Before: 50,000 writes to 10 hot keys left 462 jobs on the writer and cost 4,615 merges.)
 */
import { describe, expect, it } from 'vitest';
import { STACK_TRACE_LIMIT } from '../../src/replication/outbox-relay.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { adminClient } from '../support/redis.js';
import { waitFor } from '../support/wait.js';
import { keysMemory } from '../../bench/lib/redis-stats.js';

const h = useRedisHarness();
const WRITES = 50_000;
const HOT_KEYS = 10;
const DISTINCT_KEYS = 5_000;
const CONCURRENCY = 16;
/** The documented bound (README "Guarantees and limits"): Redis bytes of replication state per distinct pending key. */
const BYTES_PER_PENDING_KEY = 200;

describe('ReplicaNode', () => {
  describe("when a peer's Redis is down while 50,000 writes go to 10 hot keys and 5,000 distinct keys", () => {
    it('should keep replication state per distinct key bounded, one stack trace per job, and merge each key at most twice at catch-up', { timeout: 120_000 }, async () => {
      // t0  A, B running; B's redis-server (AOF) stopped ✗
      // t1  A: 50,000 writes, 16 at a time: 45,000 to h-0..h-9, one each to d-0..d-4999
      //     B's workers keep taking A's jobs and failing them (retried with backoff)
      // t2  A's replication state (queue keys + outbox) measured: <= 200 B per distinct key;
      //     every job holds at most one stack trace
      // t3  B's Redis resumes ──► B converges; each key merged at most twice
      const server = await h.privateServer({ persistence: 'aof' });
      // Anti-entropy off: this measures the queues' bound. A round that starts when B's Redis
      // returns may repair a hot key before its job arrives, a third (harmless) merge that
      // the queue bound does not cover.
      const common = { replication: { delayMs: 30 }, antiEntropy: { enabled: false } };
      const cluster = await h.cluster('outage-cost', ['A', 'B'], { redis: { B: server.url(0) }, common });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const merges = new Map<string, number>();
      B.on('replicated', (e) => merges.set(e.record.key, (merges.get(e.record.key) ?? 0) + 1));

      await server.stop();
      const acked = new Map<string, string>();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let i = next++; i < WRITES; i = next++) {
            const key = i % 10 === 0 ? `d-${i / 10}` : `h-${Math.floor(i / 10) % HOT_KEYS}`;
            const { hlc } = await A.put(key, i);
            if ((acked.get(key) ?? '') < hlc) acked.set(key, hlc);
          }
        }),
      );
      expect(acked.size).toBe(HOT_KEYS + DISTINCT_KEYS);
      await A.flushOutbox();

      // Some retries happen while B is down, so the bound below includes their cost.
      const queue = A.queues.find((q) => q.name === 'to-B');
      if (!queue) throw new Error('A has no queue for B');
      await waitFor(
        async () => {
          const jobs = await queue.getJobs(['delayed', 'wait', 'active']);
          return { done: jobs.filter((j) => j.attemptsMade >= 3).length >= 2, observed: jobs.map((j) => j.attemptsMade).slice(0, 20) };
        },
        { timeoutMs: 15_000, message: "A's jobs for B to be retried a few times while B's Redis is down" },
      );

      const admin = await adminClient(h.urlFor(['A', 'B'], 'A'));
      h.defer(() => admin.quit());
      // Overdue small jobs are folded into full ones on the relay's sweep; measure once settled.
      let jobs: Awaited<ReturnType<typeof queue.getJobs>> = [];
      let perKey = Infinity;
      await waitFor(
        async () => {
          const queueMemory = await keysMemory(admin, `${cluster.prefix}:A:q:*`);
          const outboxBytes = (await admin.memory('USAGE', A.keys.outbox(), 'SAMPLES', '0')) ?? 0;
          perKey = (queueMemory.bytes + outboxBytes) / acked.size;
          jobs = await queue.getJobs(['delayed', 'wait', 'active', 'prioritized']);
          const observed = { perKey: Math.round(perKey), queueMemory, outboxBytes, jobs: jobs.length, keysInJobs: jobs.reduce((n, j) => n + j.data.keys.length, 0) };
          return { done: perKey <= BYTES_PER_PENDING_KEY, observed };
        },
        { timeoutMs: 15_000, intervalMs: 500, message: `A's replication state for B to settle within ${BYTES_PER_PENDING_KEY} B per distinct key` },
      );
      for (const job of jobs) expect((job.stacktrace ?? []).length, `stack traces of job ${job.id}`).toBeLessThanOrEqual(STACK_TRACE_LIMIT);
      // Each hot key sits in at most two unfinished jobs.
      const jobsPerKey = new Map<string, number>();
      for (const job of jobs) for (const k of job.data.keys) jobsPerKey.set(k, (jobsPerKey.get(k) ?? 0) + 1);
      expect(Math.max(...jobsPerKey.values()), 'most unfinished jobs holding one key').toBeLessThanOrEqual(2);

      await server.resume();
      await waitForConvergence([A, B], [...acked.keys()].filter((k) => k.startsWith('h-')).concat(['d-0', `d-${DISTINCT_KEYS - 1}`]), {
        expectedHlc: acked,
        timeoutMs: 30_000,
        message: 'B to catch up after its Redis came back',
      });
      await waitFor(async () => ({ done: merges.size === acked.size, observed: { keysMergedOnB: merges.size, of: acked.size } }), {
        timeoutMs: 30_000,
        message: 'B to merge every key',
      });
      const most = [...merges.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
      expect(most[0]?.[1], `merges per key at catch-up (top: ${JSON.stringify(most)})`).toBeLessThanOrEqual(2);
    });
  });
});
