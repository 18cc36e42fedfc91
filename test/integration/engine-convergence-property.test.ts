/**
 * Property, against real Redis: whatever the random writes and deletes on three nodes, and
 * however they interleave with replication, once replication settles every replica holds
 * byte-identical records, each equal to the highest-HLC write of its key.
 *
 * Fewer runs than the pure merge properties in test/unit (each run costs real round trips
 * and BullMQ jobs); no shrinking, because a shrink step would replay against Redis — the
 * failing seed and history are printed instead.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';

const h = useRedisHarness();
const NODES = ['A', 'B', 'C'] as const;
const KEYS = ['a', 'b', 'c', 'd'] as const;

type Op = { node: number; kind: 'put'; key: string; value: number } | { node: number; kind: 'delete'; key: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ node: fc.integer({ min: 0, max: 2 }), kind: fc.constant('put' as const), key: fc.constantFrom(...KEYS), value: fc.integer() }) },
  { weight: 1, arbitrary: fc.record({ node: fc.integer({ min: 0, max: 2 }), kind: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
);
/** Rounds of operations; the operations of one round run concurrently, rounds one after another. */
const historyArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 });

describe('ReplicaNode', () => {
  describe('when random writes and deletes run on three nodes', () => {
    it('should converge to byte-identical replicas holding the highest-HLC write per key', async () => {
      // round 1: A put a | C delete b | B put a …   (concurrently, replication delay 0–30 ms)
      // round 2: …                                   (replication of round 1 may still be running)
      // settle: every key byte-identical on A, B, C and equal to its highest acknowledged HLC
      const cluster = await h.cluster('prop', [...NODES], { common: { replication: { delayMs: { min: 0, max: 30 } } } });
      let run = 0;

      await fc.assert(
        fc.asyncProperty(historyArb, async (rounds) => {
          run += 1;
          const ns = `r${run}:`;
          const highest = new Map<string, { hlc: string; deleted: boolean; valueJson?: string }>();
          for (const round of rounds) {
            await Promise.all(
              round.map(async (op) => {
                const node = cluster.node(NODES[op.node] as string);
                const key = ns + op.key;
                const ack =
                  op.kind === 'put'
                    ? { hlc: (await node.put(key, op.value)).hlc, deleted: false, valueJson: JSON.stringify(op.value) }
                    : { hlc: (await node.delete(key)).hlc, deleted: true };
                const best = highest.get(key);
                if (!best || ack.hlc > best.hlc) highest.set(key, ack);
              }),
            );
          }
          const keys = [...highest.keys()];
          const expectedHlc = new Map(keys.map((k) => [k, (highest.get(k) as { hlc: string }).hlc]));
          const agreed = await waitForConvergence(cluster.nodes, keys, { expectedHlc, timeoutMs: 10_000, message: `run ${run} to converge` });
          for (const key of keys) {
            const want = highest.get(key);
            const got = agreed.get(key);
            expect(got?.deleted, `${key} deleted`).toBe(want?.deleted);
            expect(got?.valueJson, `${key} value`).toBe(want?.valueJson);
          }
        }),
        { numRuns: 25, endOnFailure: true },
      );
      expect(run).toBe(25);
    }, 90_000);
  });
});
