/**
 * Nothing acknowledged is lost: not when the process is killed between acknowledging a
 * write and enqueueing its replication jobs, and not when a node is closed while its
 * writes are still on their way to the peers.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { NodeClosedError } from '../../src/errors/index.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { adminClient } from '../support/redis.js';
import { pause } from '../support/wait.js';

const h = useRedisHarness();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('../support/crash-after-ack.ts', import.meta.url));

interface ChildResult {
  signal: NodeJS.Signals | null;
  code: number | null;
  stdout: string;
  stderr: string;
}

function runChild(env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Jobs in every state of node `origin`'s queue for `peer`. */
async function jobCount(url: string, prefix: string, origin: string, peer: string): Promise<Record<string, number>> {
  const connection = await adminClient(url);
  const queue = new Queue(`to-${peer}`, { connection, prefix: `${prefix}:${origin}:q` });
  try {
    return await queue.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized', 'waiting-children');
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((s, n) => s + n, 0);

describe('ReplicaNode', () => {
  describe('when the process dies between acknowledging a write and enqueueing it', () => {
    it('should still deliver the acknowledged write to every peer after a restart', async () => {
      // B, C: running the whole time (already started, so no start-up resync hides anything)
      // child A: put k ── EXEC (record + outbox entry) ── ack "ACK <hlc>" ── SIGKILL
      //                                                  (the relay never ran: no job)
      // parent:  A's outbox holds k, queues to-B / to-C are empty, B and C do not have k
      // restart A: its start-up sweep enqueues the outbox ──► B, C converge to <hlc>
      const ids = ['A', 'B', 'C'];
      const cluster = await h.cluster('crash', ids, {
        start: ['B', 'C'],
        // A long sweep interval: only the write's own notification (in the child) or the
        // start-up sweep (after the restart) may move the outbox.
        perNode: { A: { replication: { sweepIntervalMs: 600_000 } } },
      });
      const [B, C] = [cluster.node('B'), cluster.node('C')];
      const urlA = cluster.redisOf('A') as string;

      const child = await runChild({ EC_NODE_OPTIONS: JSON.stringify(cluster.optionsFor('A')), EC_KEY: 'order:1', EC_VALUE: JSON.stringify('paid') });
      const ack = /^ACK (\S+)$/m.exec(child.stdout)?.[1];
      expect(child.signal, `child exit (code ${child.code}); stderr:\n${child.stderr}`).toBe('SIGKILL');
      expect(ack, `child stdout:\n${child.stdout}\nstderr:\n${child.stderr}`).toBeDefined();

      const admin = await adminClient(urlA);
      try {
        const outbox = await admin.xrange(`${cluster.prefix}:A:outbox`, '-', '+');
        expect(outbox, 'the acknowledged write left its outbox entry').toHaveLength(1);
        expect(outbox[0]?.[1]).toEqual(expect.arrayContaining([JSON.stringify(['order:1'])]));
        expect(await admin.get(`${cluster.prefix}:A:rec:order:1`)).toContain(ack);
      } finally {
        admin.disconnect();
      }
      expect(total(await jobCount(urlA, cluster.prefix, 'A', 'B')), 'jobs for B before the restart').toBe(0);
      expect(total(await jobCount(urlA, cluster.prefix, 'A', 'C')), 'jobs for C before the restart').toBe(0);
      // Nothing else could deliver it: several replication delays later, B and C still lack it.
      await pause(200);
      expect(await B.getRecord('order:1')).toBeUndefined();
      expect(await C.getRecord('order:1')).toBeUndefined();

      await cluster.start(['A']);
      const agreed = await waitForConvergence(cluster.nodes, ['order:1'], { expectedHlc: { 'order:1': ack as string }, message: 'the acknowledged write to reach B and C' });
      expect(agreed.get('order:1')?.valueJson).toBe('"paid"');
      expect((await cluster.node('A').status()).outbox).toBe(0);
    });
  });

  describe('.close', () => {
    it('should lose nothing that was in flight or queued, and let the node restart', async () => {
      // A: put×50 (acked) ; put×50 fired ─┐ close() at once: waits for the 50 in flight
      //    (their commits are held 50 ms,  │ (committed, so acknowledged), hands the outbox —
      //     so they are still in the       │ which still holds them — to the queues, closes
      //     outbox when close() runs)      │
      //    (delay 400 ms: no job has run yet when close() returns)
      // B, C: their workers pull A's queued jobs from A's Redis while A is closed ──► all 100
      // A restarted ──► same records; a new write from A still replicates
      let holdCommits = false;
      const cluster = await h.cluster('close', ['A', 'B', 'C'], {
        common: { replication: { delayMs: 400 } },
        perNode: { A: { transactionHooks: { beforeExec: async () => (holdCommits ? pause(50) : undefined) } } },
      });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const acked = new Map<string, string>();
      const first = await Promise.all(Array.from({ length: 50 }, (_, i) => A.put(`item:${i}`, { i })));
      for (const v of first) acked.set(v.key, v.hlc);
      holdCommits = true;
      const inFlight = Array.from({ length: 50 }, (_, i) => A.put(`item:${50 + i}`, { i: 50 + i }));

      const closing = A.close();
      expect(A.close(), 'close() is idempotent').toBe(closing);
      await expect(A.put('late', 1)).rejects.toBeInstanceOf(NodeClosedError);
      for (const v of await Promise.all(inFlight)) acked.set(v.key, v.hlc);
      await closing;
      await cluster.stop('A');
      holdCommits = false;

      const urlA = cluster.redisOf('A') as string;
      const admin = await adminClient(urlA);
      try {
        expect(await admin.xlen(`${cluster.prefix}:A:outbox`), 'close() handed the whole outbox to the queues').toBe(0);
      } finally {
        admin.disconnect();
      }
      const pendingForB = await jobCount(urlA, cluster.prefix, 'A', 'B');
      expect((pendingForB.delayed ?? 0) + (pendingForB.waiting ?? 0) + (pendingForB.prioritized ?? 0), `A's jobs for B still queued after close: ${JSON.stringify(pendingForB)}`).toBeGreaterThan(0);

      const keys = [...acked.keys()];
      expect(keys).toHaveLength(100);
      await waitForConvergence([B, C], keys, { expectedHlc: acked, message: "B and C to receive all of A's writes while A is closed" });

      await cluster.start(['A']);
      const restarted = cluster.node('A');
      await waitForConvergence(cluster.nodes, keys, { expectedHlc: acked, message: 'the restarted A to agree with B and C' });
      const after = await restarted.put('after-restart', true);
      await waitForConvergence(cluster.nodes, ['after-restart'], { expectedHlc: { 'after-restart': after.hlc }, message: "the restarted A's write to replicate" });
    });
  });
});
