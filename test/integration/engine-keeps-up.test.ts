/**
 * The relay keeps up with whatever the node can commit: a 2 s closed-loop burst at
 * concurrency 4 leaves no backlog behind, and the peer holds the last write within
 * D + 2 s. (Before the relay drained in full rounds it fell minutes behind: 64 s here.)
 */
import { describe, expect, it } from 'vitest';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { adminClient } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const h = useRedisHarness();
const DELAY_MS = 50;
const BURST_MS = 2_000;
const CONCURRENCY = 4;

describe('OutboxRelay', () => {
  describe('when one node writes at its maximum rate for 2 s at concurrency 4', () => {
    it('should keep the outbox drained and deliver the last write within D + 2 s', async () => {
      // A: 4 closed-loop writers, 2 s, keys k-<writer>-<i % 500>
      //    ──► relay moves full rounds of jobs while entries remain (no 1 s sweep pacing)
      // t_end: last ack ──► B holds every key's last acknowledged HLC by t_end + D + 2 s
      // The production sweep interval: before the fix, a backlog drained one job per sweep.
      const cluster = await h.cluster('keeps-up', ['A', 'B'], { common: { replication: { delayMs: DELAY_MS, sweepIntervalMs: 1_000 } } });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const acked = new Map<string, string>();
      const lastOfWriter = new Map<string, string>();
      let writes = 0;
      const stopAt = Date.now() + BURST_MS;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, w) => {
          for (let i = 0; Date.now() < stopAt; i++) {
            const key = `k-${w}-${i % 500}`;
            const { hlc } = await A.put(key, { w, i });
            acked.set(key, hlc);
            lastOfWriter.set(String(w), key);
            writes += 1;
          }
        }),
      );
      const lastAck = Date.now();
      expect(writes, 'the burst wrote a meaningful load').toBeGreaterThan(1_000);

      const lastKeys = [...lastOfWriter.values()];
      await waitFor(
        async () => {
          const held = await Promise.all(lastKeys.map(async (k) => (await B.getRecord(k))?.hlc === acked.get(k)));
          return { done: held.every(Boolean), observed: { lastKeys, held, outboxOnA: (await A.status()).outbox } };
        },
        { timeoutMs: DELAY_MS + 2_000, intervalMs: 25, message: `B to hold the last writes (of ${writes}) within D + 2 s of the last acknowledgement` },
      );
      expect(Date.now() - lastAck, 'measured from the last acknowledgement').toBeLessThan(DELAY_MS + 2_000 + 1_000);
      // And nothing before the last writes was lost on the way.
      await waitForConvergence([A, B], [...acked.keys()], { expectedHlc: acked, message: 'B to hold every acknowledged write' });
      await waitFor(async () => ({ done: (await A.status()).outbox === 0, observed: await A.status() }), {
        timeoutMs: 2_000,
        message: "A's outbox to be empty after the burst",
      });
    });
  });

  describe('when the outbox holds a backlog of 3,000 entries outside a drain', () => {
    it('should move all of it in one pass instead of one small job per sweep', async () => {
      // A: 3,000 keys written and replicated (B holds them all)
      // then 3,000 outbox entries of one key each appear at once (what a relay that fell
      // behind leaves), and only the periodic sweep (every 1 s) notices them:
      //   before: one job of <= 128 entries per sweep  ──► ~23 s
      //   now:    rounds of full jobs while entries remain ──► well under one sweep period
      const cluster = await h.cluster('backlog', ['A', 'B'], { common: { replication: { delayMs: DELAY_MS, sweepIntervalMs: 1_000 } } });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const keys = Array.from({ length: 3_000 }, (_, i) => `b-${i}`);
      for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => A.put(k, k)));
      await waitFor(async () => ({ done: (await A.status()).outbox === 0, observed: await A.status() }), { message: "A's outbox to drain after the writes" });

      const admin = await adminClient(h.urlFor(['A', 'B'], 'A'));
      h.defer(() => admin.quit());
      const pipeline = admin.pipeline();
      for (const k of keys) pipeline.xadd(A.keys.outbox(), '*', 't', String(Date.now()), 'k', JSON.stringify([k]));
      await pipeline.exec();
      const appeared = Date.now();
      await waitFor(async () => ({ done: (await A.status()).outbox === 0, observed: await A.status() }), {
        timeoutMs: 5_000,
        intervalMs: 25,
        message: 'the sweep to move the whole backlog of 3,000 entries',
      });
      // One sweep period to notice, plus the pass itself; the old relay needed ~23 periods.
      expect(Date.now() - appeared, 'the backlog drained within a few sweep periods').toBeLessThan(4_000);
      await waitForConvergence([A, B], keys.slice(-5), { message: 'B to hold the keys' });
    });
  });
});
