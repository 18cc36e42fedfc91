/**
 * Deletes (tombstones) and TTLs across three nodes, including the late, older write that
 * must not bring a deleted or expired key back.
 *
 * "Late" is produced with per-node replication delays: C's outgoing jobs run after A's
 * newer write/delete, while A's outgoing jobs run last of all. Jobs carry keys and read
 * the origin's record when they run, so C's job delivers C's older write to A (and B)
 * after A already holds the newer record.
 */
import { describe, expect, it } from 'vitest';
import { HybridLogicalClock } from '../../src/clock/hlc.js';
import type { ReplicatedEvent } from '../../src/node/replica-node.js';
import { encodeRecord } from '../../src/record/record.js';
import { KeyBuilder } from '../../src/store/keys.js';
import { RecordStore } from '../../src/store/record-store.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { pause, waitFor } from '../support/wait.js';

const h = useRedisHarness();

describe('ReplicaNode', () => {
  describe('.delete', () => {
    it('should replicate a tombstone that reads as absent on every node', async () => {
      // A put k ──► B, C ;  B delete k ──► A, C ;  all: get(k) = undefined, list() empty
      const cluster = await h.cluster('delete', ['A', 'B', 'C']);
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const put = await A.put('doomed', 1);
      await waitForConvergence(cluster.nodes, ['doomed'], { expectedHlc: { doomed: put.hlc } });

      const del = await B.delete('doomed');
      expect(del.hlc > put.hlc).toBe(true);
      const agreed = await waitForConvergence(cluster.nodes, ['doomed'], { expectedHlc: { doomed: del.hlc }, message: 'the tombstone to reach every node' });
      expect(agreed.get('doomed')).toMatchObject({ deleted: true, origin: 'B', version: { A: 1, B: 1 } });
      for (const node of cluster.nodes) {
        expect(await node.get('doomed'), `get on ${node.id}`).toBeUndefined();
        expect((await node.list()).items.map((i) => i.key), `list on ${node.id}`).not.toContain('doomed');
      }
      // Deleting again is idempotent: the same tombstone comes back, nothing new is written.
      expect((await A.delete('doomed')).hlc).toBe(del.hlc);
    });

    it('should stay deleted when an older concurrent write is delivered late', async () => {
      // C (delay 400)   put k=old @t0 ─────────────────────► A, B at t0+400
      // A (delay 1500)  delete k @t0+30 (never saw old) ─────────────────────► B, C at t0+1530
      // t0+400: A receives old -> stale (A stays deleted); B receives old -> applied (B shows old)
      // t0+1530: tombstone reaches B and C -> deleted everywhere, byte-identical
      const cluster = await h.cluster('late-delete', ['A', 'B', 'C'], {
        perNode: { A: { replication: { delayMs: 1_500 } }, C: { replication: { delayMs: 400 } } },
      });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const key = 'session:42';
      const arrivedAtA: ReplicatedEvent[] = [];
      const arrivedAtB: ReplicatedEvent[] = [];
      A.on('replicated', (e) => arrivedAtA.push(e));
      B.on('replicated', (e) => arrivedAtB.push(e));

      const old = await C.put(key, 'old');
      const oldRecord = await C.getRecord(key);
      await pause(30); // A's write must be strictly later in real time, but before C's job runs
      const del = await A.delete(key);
      expect(del.hlc > old.hlc).toBe(true);
      expect(del.version, 'A deleted without having seen C').toEqual({ A: 1 });

      await waitFor(() => arrivedAtA.some((e) => e.from === 'C' && e.record.key === key), { message: "C's older write to be delivered to A" });
      expect(arrivedAtA.find((e) => e.from === 'C')?.outcome).toBe('stale');
      expect(await A.get(key), 'A after the late older write').toBeUndefined();
      expect((await A.getRecord(key))?.deleted).toBe(true);
      // B got the older write first (it had nothing), which the tombstone must then beat.
      await waitFor(() => arrivedAtB.some((e) => e.from === 'C'), { message: "C's older write to be delivered to B" });
      expect(arrivedAtB.find((e) => e.from === 'C')?.outcome).toBe('applied');

      const agreed = await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: del.hlc }, message: 'the tombstone to win everywhere' });
      expect(agreed.get(key)).toMatchObject({ deleted: true, version: { A: 1, C: 1 } });
      for (const node of cluster.nodes) expect(await node.get(key), `get on ${node.id}`).toBeUndefined();

      // However late: re-delivering C's original record through the store's merge changes nothing.
      if (!oldRecord) throw new Error("C's record was not read before the delete");
      const encodedOnB = async () => {
        const record = await B.getRecord(key);
        return record ? encodeRecord(record) : null;
      };
      const store = new RecordStore(cluster.redisOf('B'), new KeyBuilder(cluster.prefix, 'B'), new HybridLogicalClock('B'));
      await store.connect();
      try {
        const before = await encodedOnB();
        const [report] = await store.applyRemote([oldRecord]);
        expect(report?.result.outcome).toBe('stale');
        expect(await encodedOnB()).toBe(before);
      } finally {
        await store.close();
      }
      expect(await B.get(key)).toBeUndefined();
    });
  });

  describe('when a write carries ttlMs', () => {
    it('should expire at the same absolute time on every node', async () => {
      // A put k ttl=800 ms @t0 ──► B, C (expiresAt = t0+800, on A's clock, replicated)
      // before t0+800: live on A, B, C ;  after: absent on A, B, C (record still stored)
      const cluster = await h.cluster('ttl', ['A', 'B', 'C']);
      const A = cluster.node('A');
      const put = await A.put('otp', '123456', { ttlMs: 800 });
      expect(put.expiresAt).toBeDefined();
      const expiresAt = put.expiresAt as number;

      await waitFor(
        async () => {
          const views = await Promise.all(cluster.nodes.map((n) => n.get('otp')));
          return { done: views.every((v) => v?.expiresAt === expiresAt), observed: views };
        },
        { timeoutMs: 700, message: 'every node to serve the key with the same expiry before it expires' },
      );
      await waitFor(
        async () => {
          const views = await Promise.all(cluster.nodes.map((n) => n.get('otp')));
          return { done: views.every((v) => v === undefined), observed: { now: Date.now(), expiresAt, views } };
        },
        { timeoutMs: 3_000, message: 'the key to expire on every node' },
      );
      expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
      const agreed = await waitForConvergence(cluster.nodes, ['otp'], { expectedHlc: { otp: put.hlc } });
      expect(agreed.get('otp')).toMatchObject({ expiresAt, deleted: false });
      for (const node of cluster.nodes) expect((await node.list()).items, `list on ${node.id}`).toEqual([]);
    });

    it('should not let a late older write resurrect a key whose newer write expired', async () => {
      // C (delay 500)   put k=old (no TTL) @t0 ───────────────────► A, B at t0+500
      // A (delay 1300)  put k=new ttl=150 @t0+30 ; expires @t0+180 ─────────────► B, C at t0+1330
      // t0+500: A receives old -> stale: k stays expired (absent) on A; B shows old meanwhile
      // t0+1330: the expired newer record reaches B and C -> absent everywhere, byte-identical
      const cluster = await h.cluster('late-ttl', ['A', 'B', 'C'], {
        perNode: { A: { replication: { delayMs: 1_300 } }, C: { replication: { delayMs: 500 } } },
      });
      const [A, C] = [cluster.node('A'), cluster.node('C')];
      const key = 'token';
      const arrivedAtA: ReplicatedEvent[] = [];
      A.on('replicated', (e) => arrivedAtA.push(e));

      const old = await C.put(key, 'old');
      await pause(30); // A's write must be strictly later in real time, but before C's job runs
      const fresh = await A.put(key, 'new', { ttlMs: 150 });
      expect(fresh.hlc > old.hlc).toBe(true);
      expect(fresh.version, 'A wrote without having seen C').toEqual({ A: 1 });

      await waitFor(async () => (await A.get(key)) === undefined, { timeoutMs: 2_000, message: "A's TTL write to expire on A" });
      await waitFor(() => arrivedAtA.some((e) => e.from === 'C' && e.record.key === key), { message: "C's older write to be delivered to A" });
      expect(Date.now(), 'the older write arrived after the expiry').toBeGreaterThan(fresh.expiresAt as number);
      expect(arrivedAtA.find((e) => e.from === 'C')?.outcome).toBe('stale');
      expect(await A.get(key), 'A after the late older write').toBeUndefined();

      const agreed = await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: fresh.hlc }, message: 'the expired newer write to win everywhere' });
      expect(agreed.get(key)).toMatchObject({ valueJson: '"new"', expiresAt: fresh.expiresAt });
      for (const node of cluster.nodes) expect(await node.get(key), `get on ${node.id}`).toBeUndefined();
    });
  });
});
