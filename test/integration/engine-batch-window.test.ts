/**
 * The relay batches more when its passes slow down: a node whose Redis answers 20 ms late
 * (a saturated host looks the same to the relay) sends fewer, fuller jobs than with the
 * fixed window, and every write still arrives. Without it a busy node sent ever smaller
 * jobs, each with the same fixed cost (bench scenario 7: 1.5× the cost per write per peer
 * at 7 nodes as at 3 on one machine).
 */
import { describe, expect, it } from 'vitest';
import type { ReplicationOptions } from '../../src/replication/options.js';
import { counterValue, waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { LatencyProxy } from '../support/latency-proxy.js';

const h = useRedisHarness();
const ONE_WAY_MS = 10;
const WRITE_MS = 1_500;
const WRITERS = 8;

/** A and B, A's Redis behind the proxy; A writes for 1.5 s; returns the jobs A made for B and the writes. */
async function run(label: string, proxy: LatencyProxy, replication: Partial<ReplicationOptions>): Promise<{ jobs: number; writes: number }> {
  const cluster = await h.cluster(label, ['A', 'B'], { redis: { A: `redis://127.0.0.1:${proxy.port}/0` }, common: { replication: { delayMs: 50, ...replication } } });
  const [A, B] = [cluster.node('A'), cluster.node('B')];
  const acked = new Map<string, string>();
  const stopAt = Date.now() + WRITE_MS;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; Date.now() < stopAt; i++) acked.set(`k-${w}-${i}`, (await A.put(`k-${w}-${i}`, i)).hlc);
    }),
  );
  const jobs = await counterValue(A, 'replicationJobs', { peer: 'B' });
  // The comparison is made; the rest (B's check, closing the nodes) needs no latency.
  proxy.setDelay(0);
  await waitForConvergence([A, B], [...acked.keys()], { expectedHlc: acked, message: `B to hold every write of A (${label})` });
  await cluster.closeAll();
  proxy.setDelay(ONE_WAY_MS);
  return { jobs, writes: acked.size };
}

describe('OutboxRelay', () => {
  describe("when the node's Redis answers 20 ms late per round trip", () => {
    it('should widen the batching window: fewer, fuller jobs, and every write delivered', async () => {
      // relay pass = XRANGE + addBulk + XDEL ≈ 3 round trips ≈ 60 ms
      //   fixed window (maxBatchWindowMs 0): 25 ms + pass ──► a job about every 85 ms
      //   adaptive (default): 4 × pass, at most 200 ms ──► a job about every 260 ms
      const server = await h.privateServer();
      const proxy = await LatencyProxy.start({ host: '127.0.0.1', port: server.port }, ONE_WAY_MS);
      h.defer(() => proxy.close());
      const fixed = await run('window-fixed', proxy, { maxBatchWindowMs: 0 });
      const adaptive = await run('window-adaptive', proxy, {});
      const keysPerJob = (r: { jobs: number; writes: number }) => r.writes / Math.max(1, r.jobs);
      expect(fixed.writes, 'the fixed run wrote a meaningful load').toBeGreaterThan(100);
      expect(adaptive.writes, 'the adaptive run wrote a meaningful load').toBeGreaterThan(100);
      expect(adaptive.jobs, `jobs for B over ${WRITE_MS} ms: adaptive ${adaptive.jobs} vs fixed ${fixed.jobs}`).toBeLessThan(fixed.jobs * 0.6);
      expect(keysPerJob(adaptive), 'keys per job').toBeGreaterThan(keysPerJob(fixed) * 1.5);
    });
  });
});
