/**
 * Restarting a node: its clock stays monotonic even if the wall clock stepped back, and a
 * node whose database was wiped while it was stopped pulls back what its peers hold.
 */
import { describe, expect, it } from 'vitest';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';

const h = useRedisHarness();

describe('ReplicaNode', () => {
  describe('when a node restarts with its wall clock stepped back', () => {
    it('should issue timestamps after every one it issued before the restart', async () => {
      // run 1: A's clock at T+10 s: put a, put b (hwm persisted in A's Redis)
      // run 2: A's clock at T (10 s back): put c — its HLC must still order after b's
      let offsetMs = 10_000;
      const cluster = await h.cluster('clock-back', ['A', 'B'], { perNode: { A: { now: () => Date.now() + offsetMs } } });
      await cluster.node('A').put('a', 1);
      const before = await cluster.node('A').put('b', 2);

      await cluster.stop('A');
      offsetMs = 0;
      await cluster.start(['A']);
      const A = cluster.node('A');
      expect(A.clock.physicalNow(), 'premise: the wall clock is now behind the last timestamp').toBeLessThan(Date.parse(before.hlc.slice(0, 24)));

      const after = await A.put('c', 3);
      expect(after.hlc > before.hlc, `${after.hlc} > ${before.hlc}`).toBe(true);
      await waitForConvergence(cluster.nodes, ['a', 'b', 'c'], { message: 'A and B to agree after the restart' });
    });
  });

  describe("when a node's database was wiped while the node was stopped", () => {
    it('should pull every record its peers hold when it starts again', async () => {
      // A, B, C: 20 keys written on A and B, converged
      // C stopped; C's redis-server (no persistence) restarted: C's database is empty
      // A writes 5 more keys while C is away (queued for C in A's Redis)
      // C started: no start marker -> resync from A and B, plus the queued jobs -> all 25 keys
      const server = await h.privateServer({ persistence: 'none' });
      const cluster = await h.cluster('wiped', ['A', 'B', 'C'], { redis: { C: server.url(1) } });
      const keys: string[] = [];
      for (let i = 0; i < 10; i++) {
        await cluster.node('A').put(`from-a:${i}`, i);
        await cluster.node('B').put(`from-b:${i}`, i);
        keys.push(`from-a:${i}`, `from-b:${i}`);
      }
      await cluster.node('B').delete('from-b:0');
      await waitForConvergence(cluster.nodes, keys, { message: 'the first writes to converge' });

      await cluster.stop('C');
      await server.stop();
      await server.resume();
      for (let i = 0; i < 5; i++) {
        await cluster.node('A').put(`while-away:${i}`, i);
        keys.push(`while-away:${i}`);
      }

      await cluster.start(['C']);
      const C = cluster.node('C');
      await waitForConvergence(cluster.nodes, keys, { message: 'the wiped C to get every record back' });
      expect(await C.get('from-b:0'), 'the tombstone came back too').toBeUndefined();
      expect((await C.getRecord('from-b:0'))?.deleted).toBe(true);
    });
  });
});
