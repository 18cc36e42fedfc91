/**
 * Coalescing: jobs carry keys, not values, so a key already waiting in a job that has not
 * started is not enqueued again — N writes inside one delay window cost each peer one merge.
 */
import { describe, expect, it } from 'vitest';
import type { ReplicatedEvent } from '../../src/node/replica-node.js';
import { counterValue, waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { pause, waitFor } from '../support/wait.js';

const h = useRedisHarness();
const DELAY_MS = 500;

describe('ReplicaNode', () => {
  describe('when one key is written 50 times in a burst', () => {
    it('should cost each peer at most one applied merge', async () => {
      // A: put k ×50, one after another, all within the first job's delay window
      //    write 1 ──► job {k} for B, job {k} for C (delayed 500 ms)
      //    writes 2..50 ──► k is already in a job that has not started: coalesced
      // t0+500: B and C each run one job, read A's *current* record (write 50), merge once
      const cluster = await h.cluster('coalesce', ['A', 'B', 'C'], { common: { replication: { delayMs: DELAY_MS } } });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const events = new Map<string, ReplicatedEvent[]>([
        ['B', []],
        ['C', []],
      ]);
      B.on('replicated', (e) => events.get('B')?.push(e));
      C.on('replicated', (e) => events.get('C')?.push(e));

      // Two halves: the first 25 writes share one relay window (deduplicated in the outbox);
      // the rest come after that window's job was enqueued, so they exercise the other
      // mechanism: the key is already in a job that has not started, and is not enqueued again.
      const started = Date.now();
      let last = await A.put('counter', 0);
      for (let i = 1; i < 25; i++) last = await A.put('counter', i);
      await waitFor(async () => {
        const jobs = { B: await counterValue(A, 'replicationJobs', { peer: 'B' }), C: await counterValue(A, 'replicationJobs', { peer: 'C' }) };
        return { done: jobs.B === 1 && jobs.C === 1, observed: jobs };
      }, {
        timeoutMs: 2_000,
        message: 'the first half\'s job to be enqueued for B and C',
      });
      for (let i = 25; i < 50; i++) last = await A.put('counter', i);
      const burstMs = Date.now() - started;
      expect(burstMs, 'premise: the burst fits in one delay window').toBeLessThan(DELAY_MS - 100);

      await waitForConvergence(cluster.nodes, ['counter'], { expectedHlc: { counter: last.hlc }, message: 'the last write to reach B and C' });
      // Nothing else is on its way: give any stray second job time to show up.
      await pause(DELAY_MS + 200);

      for (const peer of ['B', 'C']) {
        const merges = (events.get(peer) ?? []).filter((e) => e.record.key === 'counter' && e.from === 'A');
        expect(
          merges.map((e) => e.outcome),
          `merges of "counter" on ${peer}`,
        ).toEqual(['applied']);
        expect(await counterValue(A, 'replicationJobs', { peer }), `jobs enqueued for ${peer}`).toBe(1);
        expect(await counterValue(A, 'replicationKeys', { peer, kind: 'enqueued' }), `keys enqueued for ${peer}`).toBe(1);
        // The second half is coalesced into the first job (at least once: writes of one
        // relay window are deduplicated before this check, so not necessarily 25).
        expect(await counterValue(A, 'replicationKeys', { peer, kind: 'coalesced' }), `writes coalesced for ${peer}`).toBeGreaterThan(0);
      }
      for (const node of cluster.nodes) expect((await node.get('counter'))?.value, `value on ${node.id}`).toBe(49);
    });
  });
});
