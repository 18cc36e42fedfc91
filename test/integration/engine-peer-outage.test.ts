/**
 * The seed's failure 3: a peer that is offline loses every write made meanwhile. Here C's
 * Redis (a private server with AOF persistence) is stopped while A and B keep writing,
 * then started again: the writes wait in A's and B's queues, retried with backoff, and
 * C catches up with nothing lost.
 */
import { describe, expect, it } from 'vitest';
import { RedisUnavailableError } from '../../src/errors/index.js';
import type { ReplicaNode } from '../../src/node/replica-node.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const h = useRedisHarness();

async function failuresFrom(node: ReplicaNode, peer: string): Promise<number> {
  const metric = await node.metrics.replicationFailures.get();
  return metric.values.filter((v) => v.labels.peer === peer).reduce((sum, v) => sum + v.value, 0);
}

async function pendingFor(node: ReplicaNode, peer: string) {
  const status = await node.status();
  const p = status.peers.find((x) => x.id === peer);
  if (!p) throw new Error(`${node.id} has no peer ${peer}`);
  if (!p.backlog) throw new Error(`${node.id} could not read its backlog for ${peer} (its own Redis is unreachable)`);
  return { ...p.backlog, oldestPendingMs: p.oldestPendingMs };
}

describe('ReplicaNode', () => {
  describe("when a peer's Redis is stopped during writes and restarted", () => {
    it('should keep accepting writes, retry while the peer is down and let it catch up with nothing lost', async () => {
      // t0  A: before-0..4, C: on-c           ──► converge (C's Redis has them on disk)
      // t1  C's redis-server stopped ✗
      // t2  A: during-0..19, before-0 again;  B: during-b0..4   (all acknowledged)
      //     to-C jobs fail on C ("unreachable") and are retried with backoff;
      //     A.status() shows the backlog for C, C counts failed attempts
      // t3  C's redis-server restarted (AOF: on-c is still there)
      // t4  converge: every key byte-identical on A, B, C; backlog for C drains to zero
      const server = await h.privateServer({ persistence: 'aof' });
      const cluster = await h.cluster('outage', ['A', 'B', 'C'], {
        redis: { C: server.url(1) },
        common: { replication: { delayMs: 20, retryInitialMs: 50, retryMaxMs: 200 } },
      });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];

      const before = ['before-0', 'before-1', 'before-2', 'before-3', 'before-4'];
      for (const key of before) await A.put(key, { phase: 'before', key });
      await C.put('on-c', 'written on C before the outage');
      await waitForConvergence(cluster.nodes, [...before, 'on-c'], { message: 'the pre-outage writes to converge' });

      await server.stop();

      const during: string[] = [];
      const acked = new Map<string, string>();
      for (let i = 0; i < 20; i++) {
        const key = `during-${i}`;
        during.push(key);
        acked.set(key, (await A.put(key, { phase: 'during', i })).hlc);
      }
      for (let i = 0; i < 5; i++) {
        const key = `during-b${i}`;
        during.push(key);
        acked.set(key, (await B.put(key, { phase: 'during', from: 'B', i })).hlc);
      }
      acked.set('before-0', (await A.put('before-0', { phase: 'during', overwritten: true })).hlc);

      // C's own writes fail fast while its Redis is away (nothing half-applied).
      await expect(C.put('on-c-during', 'x')).rejects.toBeInstanceOf(RedisUnavailableError);

      await waitFor(
        async () => {
          const a = await pendingFor(A, 'C');
          const failures = await failuresFrom(C, 'A');
          return { done: a.delayed + a.waiting + a.active > 0 && a.oldestPendingMs > 0 && failures >= 2, observed: { backlogOnAForC: a, failedAttemptsOnCFromA: failures } };
        },
        { timeoutMs: 10_000, message: "A's backlog for C and C's failed attempts (retries) to show while C is down" },
      );
      // B and A are unaffected: one dead peer does not delay the others.
      await waitForConvergence([A, B], [...before, ...during], { expectedHlc: acked, message: 'A and B to converge while C is down' });
      // A job that failed stays in the queue for its next attempt. (Overdue small jobs are
      // folded into a new one, which starts at attempt 0: under load, wait for its failure.)
      await waitFor(
        async () => {
          const pending = (await A.queues.find((q) => q.name === 'to-C')?.getJobs(['delayed', 'wait', 'active'])) ?? [];
          return { done: pending.some((job) => job.attemptsMade >= 1), observed: pending.map((job) => job.attemptsMade) };
        },
        { timeoutMs: 10_000, message: 'some to-C job to have been attempted and to be waiting for its retry' },
      );
      expect((await pendingFor(A, 'C')).failed, 'no job failed for good').toBe(0);
      // C's background work (outbox sweeps) failed meanwhile: reported as 'error' events, never thrown.
      expect(cluster.errors.filter((e) => e.node === 'C').map((e) => e.error.name)).toContain('RedisUnavailableError');

      await server.resume();

      const all = [...before, 'on-c', ...during];
      await waitForConvergence(cluster.nodes, all, { expectedHlc: acked, timeoutMs: 20_000, message: 'C to catch up after its Redis came back' });
      expect((await C.get('on-c'))?.value, "C's own pre-outage write survived the restart (AOF)").toBe('written on C before the outage');
      expect((await C.get('before-0'))?.value).toEqual({ phase: 'during', overwritten: true });

      const cStatus = await C.status();
      const fromA = cStatus.peers.find((p) => p.id === 'A');
      expect(fromA?.retries, "C's status counts the retried attempts from A").toBeGreaterThan(0);
      expect(fromA?.lastError).toMatch(/unreachable/);

      await waitFor(
        async () => {
          const [a, b] = await Promise.all([pendingFor(A, 'C'), pendingFor(B, 'C')]);
          const left = a.delayed + a.waiting + a.active + a.failed + b.delayed + b.waiting + b.active + b.failed;
          return { done: left === 0, observed: { A: a, B: b } };
        },
        { message: 'the backlog for C to drain' },
      );

      // The link from C works again too.
      const after = await C.put('on-c-after', 'back');
      await waitForConvergence(cluster.nodes, ['on-c-after'], { expectedHlc: { 'on-c-after': after.hlc }, message: "C's post-restart write to reach A and B" });
    });
  });
});
