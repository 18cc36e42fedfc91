/**
 * The reference program's demo, and two of the ways it fails (clock skew, equal
 * timestamps), replayed against real Redis with three replica nodes.
 */
import { describe, expect, it } from 'vitest';
import type { ConflictEvent } from '../../src/node/replica-node.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { pause, waitFor } from '../support/wait.js';

const h = useRedisHarness();

describe('ReplicaNode', () => {
  describe('when running the seed demo', () => {
    it('should serve stale reads first, converge after the delay, and resolve concurrent writes by LWW everywhere', async () => {
      // A(t0) put user:123 {age 30} ── delayed job ──► B, C (t0+250)
      // B, C read at t0+ε:   absent (stale)
      // ... converge: A = B = C = {age 30}
      // A(t1)      put {age 31}  ┐ concurrent: neither saw the other
      // B(t1+50ms) put {age 32}  ┘ B's HLC is later
      // ... converge: A = B = C = {age 32}; every node logged the LWW conflict (B beat A)
      const cluster = await h.cluster('seed-demo', ['A', 'B', 'C'], { common: { replication: { delayMs: 250 } } });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const key = 'user:123';

      const first = await A.put(key, { name: 'Alice', age: 30 });
      expect(await A.get(key)).toMatchObject({ value: { name: 'Alice', age: 30 }, origin: 'A' });
      expect(await B.get(key)).toBeUndefined();
      expect(await C.get(key)).toBeUndefined();

      await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: first.hlc }, message: 'the first write to reach B and C' });
      for (const node of cluster.nodes) expect((await node.get(key))?.value).toEqual({ name: 'Alice', age: 30 });

      const conflicts: ConflictEvent[] = [];
      for (const node of cluster.nodes) node.on('conflict', (c) => conflicts.push(c));
      const fromA = await A.put(key, { name: 'Alice', age: 31 });
      await pause(50);
      const fromB = await B.put(key, { name: 'Alice', age: 32 });
      // The premise of the scenario: B wrote without having seen A's second write.
      expect(fromB.version).toEqual({ A: 1, B: 1 });
      expect(fromA.version).toEqual({ A: 2 });
      expect(fromB.hlc > fromA.hlc).toBe(true);

      await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: fromB.hlc }, message: "B's concurrent write to win everywhere" });
      for (const node of cluster.nodes) {
        const view = await node.get(key);
        expect(view?.value, `value on ${node.id}`).toEqual({ name: 'Alice', age: 32 });
        expect(view?.version, `merged version vector on ${node.id}`).toEqual({ A: 2, B: 1 });
      }

      await waitFor(async () => (await Promise.all(cluster.nodes.map((n) => n.conflicts()))).every((log) => log.length > 0), {
        message: 'every node to log the conflict',
      });
      for (const node of cluster.nodes) {
        const log = await node.conflicts();
        expect(log, `conflict log of ${node.id}`).toHaveLength(1);
        expect(log[0]).toMatchObject({
          key,
          node: node.id,
          winner: { hlc: fromB.hlc, origin: 'B' },
          loser: { hlc: fromA.hlc, origin: 'A' },
        });
      }
      expect(new Set(conflicts.map((c) => c.node))).toEqual(new Set(['A', 'B', 'C']));
    });
  });

  describe('when a writer clock is 2 s behind', () => {
    it('should let the causally later write win on every node', async () => {
      // A (true clock)    put k=v1 @ T ──► B, C
      // B (clock T-2000)  get k -> v1, then put k=v2   (causally after v1)
      // seed: A=v1, B=v2, C=v1 forever.  Here: the HLC of v2 > v1, so v2 everywhere.
      const cluster = await h.cluster('skew', ['A', 'B', 'C'], { perNode: { B: { clockOffsetMs: -2_000 } } });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const key = 'config:mode';
      expect(Date.now() - B.clock.physicalNow()).toBeGreaterThanOrEqual(1_990);

      const v1 = await A.put(key, 'v1');
      await waitFor(async () => (await B.get(key))?.value === 'v1', { message: 'B to read v1 from A' });
      const v2 = await B.put(key, 'v2');

      // B's wall clock says the write happened ~2 s before v1, yet it orders after it.
      expect(v2.hlc > v1.hlc).toBe(true);
      expect(v2.version).toEqual({ A: 1, B: 1 });
      const agreed = await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: v2.hlc }, message: "B's later write to win everywhere" });
      expect(agreed.get(key)?.valueJson).toBe('"v2"');
      for (const node of cluster.nodes) expect((await node.get(key))?.value, `value on ${node.id}`).toBe('v2');
      // Causal order, not a concurrent LWW race: nobody logged a conflict.
      for (const node of cluster.nodes) expect(await node.conflicts(), `conflicts on ${node.id}`).toEqual([]);
    });
  });

  describe('when writes carry equal wall-clock timestamps', () => {
    it('should converge to the highest node id at equal wall time and counter', async () => {
      // Every clock is frozen at the same millisecond F.
      // A put k=fromA @ (F,0,A) ┐
      // B put k=fromB @ (F,0,B) ├ concurrent, same wall time, same counter
      // C put k=fromC @ (F,0,C) ┘
      // seed: a tie keeps the local value (permanent divergence). Here: C wins on all.
      const frozen = Date.now() + 5_000;
      const cluster = await h.cluster('tie', ['A', 'B', 'C'], { common: { now: () => frozen, replication: { delayMs: 50 } } });
      const key = 'tie';
      const writes = await Promise.all(cluster.nodes.map((n) => n.put(key, `from${n.id}`)));
      const stamps = writes.map((w) => w.hlc.slice(0, w.hlc.lastIndexOf('/')));
      expect(new Set(stamps).size, `wall time and counter of ${writes.map((w) => w.hlc).join(', ')}`).toBe(1);
      const fromC = writes.find((w) => w.origin === 'C');

      const agreed = await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: fromC?.hlc ?? '' }, message: "C's write to win the tie" });
      expect(agreed.get(key)?.valueJson).toBe('"fromC"');
      expect(agreed.get(key)?.version).toEqual({ A: 1, B: 1, C: 1 });
      for (const node of cluster.nodes) expect((await node.get(key))?.value, `value on ${node.id}`).toBe('fromC');
    });
  });
});
