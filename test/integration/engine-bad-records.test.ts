/**
 * Bad data stays local to its key. A record whose bytes do not decode, or whose HLC is at
 * the format's ceiling (no write could ever follow it), used to fail the whole group
 * commit it fell into and stall the replication job that carried it. Now it is set aside
 * and reported, and everything around it proceeds.
 */
import { describe, expect, it } from 'vitest';
import { BadRecordError } from '../../src/errors/index.js';
import type { ReplicaNode } from '../../src/node/replica-node.js';
import { encodeRecord } from '../../src/record/record.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { adminClient } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const h = useRedisHarness();
const CEILING_HLC = '9999-12-31T23:59:59.999Z/999999/B';
const CORRUPT = 'definitely not a record';

function ceilingRecord(key: string): string {
  return encodeRecord({ key, hlc: CEILING_HLC, origin: 'B', version: { B: 1 }, written: { B: 1 }, deleted: false, valueJson: '"from the far future"' });
}

async function badCount(node: ReplicaNode, where: 'local' | 'peer'): Promise<number> {
  const metric = await node.metrics.badRecords.get();
  return metric.values.filter((v) => v.labels.where === where).reduce((sum, v) => sum + v.value, 0);
}

describe('ReplicaNode', () => {
  describe("when a node's own store holds a corrupt record and a ceiling-HLC record", () => {
    it('should commit the other writes of their group commits, report both keys and make them writable again', async () => {
      // A: bad-corrupt := "definitely not a record", bad-ceiling := record at the HLC ceiling
      //    (written straight into A's Redis, as a foreign program or a broken node would)
      // A: 20 concurrent puts to other keys + puts to both bad keys, in the same group commits
      //    ──► all 22 acknowledged; both bad records moved to A's quarantine list
      // B: receives all 22 keys
      const cluster = await h.cluster('bad-local', ['A', 'B']);
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const admin = await adminClient(h.urlFor(['A', 'B'], 'A'));
      h.defer(() => admin.quit());
      await admin.set(A.keys.record('bad-corrupt'), CORRUPT);
      await admin.set(A.keys.record('bad-ceiling'), ceilingRecord('bad-ceiling'));

      const others = Array.from({ length: 20 }, (_, i) => `ok-${i}`);
      const results = await Promise.allSettled([...others.map((k) => A.put(k, k)), A.put('bad-corrupt', 'fixed'), A.put('bad-ceiling', 'fixed too')]);
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      expect(failed, 'every write of the group commits succeeded').toEqual([]);

      expect((await A.get('bad-corrupt'))?.value).toBe('fixed');
      expect((await A.get('bad-ceiling'))?.value).toBe('fixed too');
      expect(((await A.getRecord('bad-ceiling'))?.hlc ?? CEILING_HLC) < CEILING_HLC, 'the rewrite carries an ordinary timestamp').toBe(true);
      await waitForConvergence([A, B], [...others, 'bad-corrupt', 'bad-ceiling'], { message: 'B to hold every write, the rewritten bad keys included' });

      // Reported: the /cluster count, the metric, one error event naming each key.
      expect((await A.status()).badRecords).toEqual({ quarantined: 2, poisoned: 0 });
      expect(await badCount(A, 'local')).toBe(2);
      const reported = cluster.errors.filter((e) => e.node === 'A' && e.error instanceof BadRecordError).map((e) => e.error as BadRecordError);
      expect(reported.map((e) => [e.key, e.reason]).sort()).toEqual([
        ['bad-ceiling', 'hlc-out-of-range'],
        ['bad-corrupt', 'undecodable'],
      ]);
      expect(reported[0]?.message).toMatch(/bad-c/);
      // Kept aside for inspection, raw bytes and reason.
      const { quarantined } = await A.badRecordList();
      expect(quarantined.map((q) => [q.key, q.reason, q.raw]).sort()).toEqual([
        ['bad-ceiling', 'hlc-out-of-range', ceilingRecord('bad-ceiling')],
        ['bad-corrupt', 'undecodable', CORRUPT],
      ]);
      // And writable again, for good.
      await A.put('bad-ceiling', 'again');
      expect((await A.get('bad-ceiling'))?.value).toBe('again');
    });

    it('should treat a bad record that is only read as absent, move it aside, and let a peer repair the key', async () => {
      // A: shared := "v1" ──► B.  Then A's copy is corrupted.
      // A.get(shared) ──► undefined (not a 500), record quarantined
      // B: shared := "v2" ──► A holds v2 again (the merge treats the bad local record as absent)
      const cluster = await h.cluster('bad-read', ['A', 'B']);
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      await A.put('shared', 'v1');
      await waitForConvergence([A, B], ['shared'], { message: 'B to get v1' });
      const admin = await adminClient(h.urlFor(['A', 'B'], 'A'));
      h.defer(() => admin.quit());
      await admin.set(A.keys.record('shared'), CORRUPT);

      expect(await A.get('shared')).toBeUndefined();
      await waitFor(async () => ({ done: (await A.status()).badRecords?.quarantined === 1, observed: await A.status() }), { message: 'the read to move the bad record aside' });
      expect(await admin.get(A.keys.record('shared')), 'the bad bytes left the key').toBeNull();

      const v2 = await B.put('shared', 'v2');
      await waitForConvergence([A, B], ['shared'], { expectedHlc: { shared: v2.hlc }, message: "A to be repaired by B's write" });
    });
  });

  describe('when an origin holds a corrupt record and a ceiling-HLC record in a job of 100 keys', () => {
    it('should apply the other 98 keys at the peer and list the two bad ones with their reasons', async () => {
      // A, B start; B stops (its database is known, so its restart runs no resync)
      // A: k-0..k-99 ──► one job for B of 100 keys, waiting on A's Redis
      // A's Redis: k-7 := corrupt bytes, k-42 := ceiling-HLC record
      // B restarts ──► the job completes: 98 keys applied, k-7 and k-42 in B's poison list
      const cluster = await h.cluster('bad-origin', ['A', 'B'], { common: { replication: { delayMs: 200 } } });
      const A = cluster.node('A');
      await cluster.stop('B');
      const keys = Array.from({ length: 100 }, (_, i) => `k-${i}`);
      await Promise.all(keys.map((k) => A.put(k, k)));
      await A.flushOutbox();
      const queue = A.queues.find((q) => q.name === 'to-B');
      if (!queue) throw new Error('A has no queue for B');
      const pending = await queue.getJobs(['delayed', 'wait']);
      expect(pending.flatMap((j) => j.data.keys).sort(), 'the 100 keys wait for B').toEqual([...keys].sort());

      const admin = await adminClient(h.urlFor(['A', 'B'], 'A'));
      h.defer(() => admin.quit());
      await admin.set(A.keys.record('k-7'), CORRUPT);
      await admin.set(A.keys.record('k-42'), ceilingRecord('k-42'));

      await cluster.start(['B']);
      const B = cluster.node('B');
      const good = keys.filter((k) => k !== 'k-7' && k !== 'k-42');
      await waitFor(
        async () => {
          const held = await Promise.all(good.map(async (k) => (await B.get(k))?.value === k));
          return { done: held.every(Boolean), observed: { heldOnB: held.filter(Boolean).length, of: good.length } };
        },
        { message: 'B to apply the 98 good keys of the job' },
      );
      expect(await B.getRecord('k-7')).toBeUndefined();
      expect(await B.getRecord('k-42')).toBeUndefined();

      await waitFor(async () => ({ done: (await B.status()).badRecords?.poisoned === 2, observed: await B.status() }), { message: 'the two bad keys to be listed' });
      const { poisoned } = await B.badRecordList();
      expect(poisoned.map((p) => [p.key, p.reason, p.from]).sort()).toEqual([
        ['k-42', 'hlc-out-of-range', 'A'],
        ['k-7', 'undecodable', 'A'],
      ]);
      expect(new Set(poisoned.map((p) => p.jobId)), 'both name the job that carried them').toEqual(new Set(pending.map((j) => j.id)));
      expect(await badCount(B, 'peer')).toBe(2);
      expect(cluster.errors.filter((e) => e.node === 'B' && e.error instanceof BadRecordError).map((e) => (e.error as BadRecordError).key).sort()).toEqual(['k-42', 'k-7']);
      // The job did not stall: it completed, and its log says what was skipped and why.
      await waitFor(async () => ({ done: ((await queue.getJobCounts('completed')).completed ?? 0) >= pending.length, observed: await queue.getJobCounts() }), { message: 'the job to complete' });
      const logs = (await Promise.all(pending.map((j) => queue.getJobLogs(j.id as string)))).flatMap((l) => l.logs).join('\n');
      expect(logs).toMatch(/skipped "k-7": undecodable/);
      expect(logs).toMatch(/skipped "k-42": hlc-out-of-range/);

      // The origin repairs the keys by writing them again; they then reach B as usual.
      const r7 = await A.put('k-7', 'repaired');
      const r42 = await A.put('k-42', 'repaired');
      await waitForConvergence([A, B], ['k-7', 'k-42'], { expectedHlc: { 'k-7': r7.hlc, 'k-42': r42.hlc }, message: 'the repaired keys to reach B' });
    });
  });
});
