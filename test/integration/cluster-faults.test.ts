/**
 * Faults with a node's store on a real local Redis Cluster (3 masters, 3 replicas,
 * `cluster-node-timeout` 500 ms): a peer outage, hot keys, the crash between
 * acknowledgement and enqueue, anti-entropy repair of a record removed by hand, a master
 * failover under writes, and the migration of a node from a single server to a cluster.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRedisCluster } from '../../src/local-redis/local-cluster.js';
import { keysFor } from '../../src/store/keys.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { closeTestCluster, clusterClient, resolveTestCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/wait.js';

const h = useRedisHarness();
let rc: LocalRedisCluster;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../support/crash-after-ack.ts', import.meta.url));

beforeAll(async () => {
  rc = await resolveTestCluster();
});
afterAll(closeTestCluster);

const onCluster = () => ({ cluster: rc.seeds });
const FAST_AE = { intervalMs: 300, confirmDelayMs: 100, collectIntervalMs: 200, verifyIntervalMs: 400, stepPauseMs: 0, foldIntervalMs: 50 };

describe('ReplicaNode on a Redis Cluster store', () => {
  describe('when a peer is down while keys, some of them hot, are written', () => {
    it('should deliver every write once the peer is back, hot keys coalesced', async () => {
      const cluster = await h.cluster('cluster-outage', ['A', 'B'], { redis: { A: onCluster(), B: onCluster() } });
      const A = cluster.node('A');
      await cluster.stop('B');
      const keys = Array.from({ length: 200 }, (_, i) => `k:${i}`);
      await Promise.all(keys.map((k, i) => A.put(k, i)));
      let last = await A.put('hot', 0);
      for (let i = 1; i <= 300; i++) last = await A.put('hot', i);
      await cluster.start(['B']);
      const agreed = await waitForConvergence(cluster.nodes, [...keys, 'hot'], { expectedHlc: { hot: last.hlc }, timeoutMs: 20_000 });
      expect(agreed.get('hot')?.valueJson).toBe('300');
      // 300 writes of one key while its peer was away cost a handful of jobs, not 300.
      const jobs = (await Promise.all(A.queues.map((q) => q.getJobCounts('completed', 'delayed', 'waiting', 'active')))).flatMap((c) => Object.values(c));
      expect(jobs.reduce((a, b) => a + b, 0)).toBeLessThan(60);
    });
  });

  describe('when the process dies between acknowledging a write and enqueueing it', () => {
    it('should still deliver the acknowledged write after a restart', async () => {
      const cluster = await h.cluster('cluster-crash', ['A', 'B'], {
        start: ['B'],
        redis: { A: onCluster(), B: onCluster() },
        perNode: { A: { replication: { sweepIntervalMs: 600_000 } } },
      });
      const out = await new Promise<string>((resolve, reject) => {
        const env = { ...process.env, EC_NODE_OPTIONS: JSON.stringify(cluster.optionsFor('A')), EC_KEY: 'order:1', EC_VALUE: '"paid"' };
        const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr.on('data', (d: Buffer) => (text += d.toString()));
        child.on('error', reject);
        child.on('close', () => resolve(text));
      });
      const ack = /^ACK (\S+)$/m.exec(out)?.[1];
      expect(ack, out).toBeDefined();
      const keys = keysFor(cluster.prefix, 'A', onCluster());
      const admin = clusterClient(rc.seeds);
      try {
        expect(await admin.xlen(keys.outbox(keys.partition('order:1'))), "the write's outbox entry, in its partition").toBe(1);
      } finally {
        admin.disconnect();
      }
      expect(await cluster.node('B').getRecord('order:1')).toBeUndefined();
      await cluster.start(['A']);
      await waitForConvergence(cluster.nodes, ['order:1'], { expectedHlc: { 'order:1': ack as string }, timeoutMs: 15_000 });
    });
  });

  describe('when a record is removed from one node\'s cluster store by hand', () => {
    it('should be found by the periodic check and repaired from the peer', async () => {
      const cluster = await h.cluster('cluster-ae', ['A', 'B'], { redis: { A: onCluster(), B: onCluster() }, common: { antiEntropy: FAST_AE } });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const keys = Array.from({ length: 100 }, (_, i) => `doc:${i}`);
      await A.put('doc:0', { i: 0 }); // the oldest record: a copy of it is older than any other key's
      await Promise.all(keys.slice(1).map((k, i) => A.put(k, { i: i + 1 })));
      await waitForConvergence(cluster.nodes, keys, { timeoutMs: 15_000 });
      const bKeys = keysFor(cluster.prefix, 'B', onCluster());
      const admin = clusterClient(rc.seeds);
      try {
        await admin.del(bKeys.record('doc:7'));
        await admin.set(bKeys.record('doc:8'), (await admin.get(bKeys.record('doc:0'))) as string);
      } finally {
        admin.disconnect();
      }
      await waitFor(async () => {
        const [seven, eight] = [await B.get('doc:7'), await B.get('doc:8')];
        const round = (await B.status()).peers.find((p) => p.id === 'A')?.antiEntropy;
        return { done: seven !== undefined && JSON.stringify(eight?.value) === JSON.stringify({ i: 8 }), observed: { seven, eight, round } };
      }, {
        timeoutMs: 15_000,
        message: 'anti-entropy to repair the removed and the altered record',
      });
      expect((await A.status()).peers.find((p) => p.id === 'B')).toBeDefined();
    });
  });

  describe('when a cluster master fails under writes', () => {
    it('should resume writes and replication once its replica took over; with waitReplicas no acknowledged write is lost', async () => {
      // A (waitReplicas 1) and C (no wait) write on the cluster; B, on a single server, receives.
      const cluster = await h.cluster('cluster-failover', ['A', 'B', 'C'], {
        redis: { A: onCluster(), C: onCluster() },
        perNode: { A: { waitReplicas: 1, waitTimeoutMs: 500 } },
        common: { antiEntropy: FAST_AE },
      });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const run = { stop: false, n: 0 };
      const load = (node: typeof A) => {
        const acked = new Map<string, string>();
        const refused = { count: 0 };
        const writer = async () => {
          while (!run.stop) {
            const key = `${node.id}:${run.n++}`;
            try {
              acked.set(key, (await node.put(key, run.n)).hlc);
            } catch {
              refused.count += 1;
              await new Promise((r) => setTimeout(r, 10)); // a refusal comes at once: let timers run
            }
          }
        };
        return { acked, refused, done: Promise.all(Array.from({ length: 4 }, writer)) };
      };
      const [a, c] = [load(A), load(C)];
      await waitFor(() => a.acked.size >= 100 && c.acked.size >= 100, { timeoutMs: 10_000, message: 'writes before the failover' });
      const failover = await rc.killMaster(0);
      // The failed master comes back as a replica of the promoted one: until then that
      // master has no replica, and A (waitReplicas 1) refuses writes to its slots.
      await rc.restartNode(failover.killedPort);
      const [beforeA, beforeC] = [a.acked.size, c.acked.size];
      await waitFor(() => a.acked.size >= beforeA + 200 && c.acked.size >= beforeC + 200, { timeoutMs: 20_000, message: 'writes to resume after the failover' });
      run.stop = true;
      await Promise.all([a.done, c.done]);
      const lostOf = async (node: typeof A, acked: Map<string, string>) =>
        (await Promise.all([...acked].map(async ([key, hlc]) => (await node.getRecord(key))?.hlc === hlc))).filter((held) => !held).length;
      const [lostA, lostC] = [await lostOf(A, a.acked), await lostOf(C, c.acked)];
      console.info(
        `failover (promotion ${Math.round(failover.promotionMs)} ms): waitReplicas 1: ${a.acked.size} acknowledged, ${a.refused.count} refused, ${lostA} lost; ` +
          `no wait: ${c.acked.size} acknowledged, ${c.refused.count} refused, ${lostC} lost`,
      );
      expect(lostA, 'acknowledged writes lost with the failed master (waitReplicas 1)').toBe(0);
      // Replication resumed: every write the writers still hold reaches every node.
      const held = new Map([...a.acked, ...(await Promise.all([...c.acked].map(async ([k, hlc]) => [k, (await C.getRecord(k))?.hlc === hlc ? hlc : undefined] as const))).filter((e): e is [string, string] => e[1] !== undefined)]);
      await waitForConvergence([A, B, C], [...held.keys()], { expectedHlc: held, timeoutMs: 30_000, message: 'every held write on every node' });
    });
  });

  describe('when tombstones age and a record in the cluster store is unusable', () => {
    it('should collect tombstones once the peer has them, and quarantine the bad record', async () => {
      const cluster = await h.cluster('cluster-gc', ['A', 'B'], {
        redis: { A: onCluster(), B: onCluster() },
        common: { tombstoneRetentionMs: 300, antiEntropy: FAST_AE },
      });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const keys = Array.from({ length: 30 }, (_, i) => `gone:${i}`);
      await Promise.all(keys.map((k) => A.put(k, 1)));
      await waitForConvergence(cluster.nodes, keys, { timeoutMs: 10_000 });
      await Promise.all(keys.map((k) => A.delete(k)));
      const aKeys = keysFor(cluster.prefix, 'A', onCluster());
      const admin = clusterClient(rc.seeds);
      try {
        await waitFor(async () => ({ done: (await Promise.all(keys.map((k) => admin.exists(aKeys.record(k))))).every((n) => n === 0), observed: await A.status() }), {
          timeoutMs: 15_000,
          message: "A's tombstones to be collected once B acknowledged them",
        });
        for (const k of keys) expect(await B.get(k)).toBeUndefined();
        // Bytes that are no record: a read moves them aside, and the key is writable again.
        await admin.set(aKeys.record('bad'), 'not a record');
        expect(await A.get('bad')).toBeUndefined();
        await waitFor(async () => ({ done: (await A.status()).badRecords?.quarantined === 1, observed: (await A.status()).badRecords }), { timeoutMs: 5_000, message: 'the bad record to be quarantined' });
        expect((await A.badRecordList()).quarantined.map((q) => q.key)).toEqual(['bad']);
        await A.put('bad', 'good');
        await waitFor(async () => (await B.get('bad'))?.value === 'good', { timeoutMs: 10_000, message: 'the repaired key to replicate' });
      } finally {
        admin.disconnect();
      }
    });
  });
});
