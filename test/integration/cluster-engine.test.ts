/**
 * The engine on a real local Redis Cluster (3 masters, 3 replicas): a node's store on a
 * cluster, mixed with a node on a single server, through the core scenarios.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRedisCluster } from '../../src/local-redis/local-cluster.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';
import { closeTestCluster, resolveTestCluster } from '../support/redis-cluster.js';

const h = useRedisHarness();
let rc: LocalRedisCluster;

beforeAll(async () => {
  rc = await resolveTestCluster();
});
afterAll(closeTestCluster);

const onCluster = () => ({ cluster: rc.seeds });

describe('ReplicaNode on a Redis Cluster store', () => {
  describe('when nodes on a cluster and on a single server replicate to each other', () => {
    it('should converge, with every node of the cluster spreading its keys over every master', async () => {
      const cluster = await h.cluster('cluster-seed', ['A', 'B', 'C'], { redis: { A: onCluster(), B: onCluster() } });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const keys = Array.from({ length: 600 }, (_, i) => `user:${i}`);
      for (let at = 0; at < keys.length; at += 50) await Promise.all(keys.slice(at, at + 50).map((k, i) => [A, B, C][i % 3]?.put(k, { n: at + i })));
      await waitForConvergence(cluster.nodes, keys, { timeoutMs: 20_000, message: 'every write to reach every node' });

      for (const id of ['A', 'B']) {
        const perMaster = [...(await rc.keysPerMaster(`${cluster.prefix}:${id}:{*}:rec:*`)).values()];
        expect(perMaster, `${id}'s records on every master`).toHaveLength(3);
        expect(perMaster.reduce((a, b) => a + b, 0)).toBe(keys.length);
        expect(Math.max(...perMaster) / Math.min(...perMaster), `${id}'s spread over the masters: ${perMaster.join(', ')}`).toBeLessThanOrEqual(1.25);
      }
      // Concurrent writes on the cluster node and the single-server node: LWW everywhere.
      await A.put('hot', 1);
      const last = await C.put('hot', 2);
      await waitForConvergence(cluster.nodes, ['hot'], { expectedHlc: { hot: last.hlc }, timeoutMs: 10_000 });
      await B.delete('user:1');
      await waitForConvergence(cluster.nodes, ['user:1'], { timeoutMs: 10_000 });
      expect(await C.get('user:1')).toBeUndefined();
    });
  });

  describe('when the deployment cuts cluster stores into as many partitions as masters (clusterPartitions: 3)', () => {
    it('should converge with one slot of each node on every master, and warn of a peer that uses another count', async () => {
      const cluster = await h.cluster('cluster-p3', ['A', 'B', 'C'], { redis: { A: onCluster(), B: onCluster() }, common: { clusterPartitions: 3 } });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      expect(A.keys.partitions).toBe(3);
      const keys = Array.from({ length: 300 }, (_, i) => `p3:${i}`);
      await Promise.all(keys.map((k, i) => [A, B, C][i % 3]?.put(k, { i })));
      await waitForConvergence(cluster.nodes, keys, { timeoutMs: 20_000, message: 'every write to reach every node' });
      for (const id of ['A', 'B']) {
        const perMaster = [...(await rc.keysPerMaster(`${cluster.prefix}:${id}:{*}:rec:*`)).values()];
        expect(perMaster, `${id}'s records on every master`).toHaveLength(3);
        expect(Math.max(...perMaster) / Math.min(...perMaster), `${id}'s spread: ${perMaster.join(', ')}`).toBeLessThanOrEqual(1.25);
      }

      // D joins with the default 12: A, B and D would read each other's keys under other names.
      const mixed = await h.cluster('cluster-pmix', ['A', 'D'], { redis: { A: onCluster(), D: onCluster() }, perNode: { A: { clusterPartitions: 3 } } });
      const nodeA = mixed.node('A');
      await waitFor(async () => ({ done: (await nodeA.checkPeers()).length > 0, observed: await nodeA.checkPeers() }), { message: 'A to notice that D uses another partition count', timeoutMs: 10_000 });
      expect((await nodeA.checkPeers())[0]).toMatch(/^D runs with clusterPartitions 12, A with 3/);
    });
  });

  describe('when a node on a cluster store writes at its maximum rate, spread out and then on one partition', () => {
    it('should keep its outbox drained and deliver every acknowledged write', async () => {
      // A (cluster store, 3 partitions): 8 closed-loop writers for 1.5 s over every
      // partition, then 1 s on keys of partition 0 only (one commit in flight for it, the
      // rest queued behind it); B (single server) must hold the last acknowledged HLC of
      // every key, and A's outbox must be empty, within D + 5 s of the last acknowledgement.
      const cluster = await h.cluster('cluster-max-rate', ['A', 'B'], { redis: { A: onCluster() }, common: { clusterPartitions: 3, replication: { delayMs: 50 } } });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const acked = new Map<string, string>();
      const writeFor = async (ms: number, keyOf: (writer: number, i: number) => string) => {
        const stopAt = Date.now() + ms;
        await Promise.all(
          Array.from({ length: 8 }, async (_, w) => {
            for (let i = 0; Date.now() < stopAt; i++) {
              const key = keyOf(w, i);
              acked.set(key, (await A.put(key, { w, i })).hlc);
            }
          }),
        );
      };
      await writeFor(1_500, (w, i) => `spread-${w}-${i % 300}`);
      const spread = acked.size;
      const onePartition = Array.from({ length: 20_000 }, (_, i) => `one-${i}`).filter((k) => A.keys.partition(k) === 0);
      await writeFor(1_000, (w, i) => onePartition[(w * 997 + i) % onePartition.length] as string);
      expect(spread, 'the spread phase wrote a meaningful load').toBeGreaterThan(300);
      expect(acked.size - spread, 'the one-partition phase wrote a meaningful load').toBeGreaterThan(200);
      const lastAck = Date.now();
      await waitForConvergence([A, B], [...acked.keys()], { expectedHlc: acked, timeoutMs: 5_050, message: 'B to hold every acknowledged write of A' });
      await waitFor(async () => ({ done: (await A.status()).outbox === 0, observed: await A.status() }), { timeoutMs: Math.max(100, lastAck + 5_050 - Date.now()), message: "A's outbox to be empty" });
    });
  });

  describe('when a node moves from a single server to a Redis Cluster store', () => {
    it('should fill the new, empty cluster store from its peers and replicate from there', async () => {
      // The documented migration: drain the node (its backlog 0), stop every node, point the
      // node and its peers' config at the cluster, start again. The node finds an empty
      // store (a wiped database) and pulls every record, tombstones included, from its peers.
      const before = await h.cluster('migrate', ['A', 'B', 'C']);
      const C0 = before.node('C');
      const keys = Array.from({ length: 100 }, (_, i) => `item:${i}`);
      await Promise.all(keys.map((k, i) => C0.put(k, { i })));
      await Promise.all(keys.slice(0, 10).map((k) => C0.delete(k)));
      await waitForConvergence(before.nodes, keys, { timeoutMs: 15_000 });
      await C0.flushOutbox();
      await before.closeAll();

      const after = await h.cluster('migrate', ['A', 'B', 'C'], { prefix: before.prefix, redis: { C: onCluster() } });
      const C = after.node('C');
      const agreed = await waitForConvergence(after.nodes, keys, { timeoutMs: 20_000, message: 'the migrated node to hold every record again' });
      expect([...agreed.values()].filter((r) => r.deleted)).toHaveLength(10);
      const fresh = await C.put('after-move', true);
      await waitForConvergence(after.nodes, ['after-move'], { expectedHlc: { 'after-move': fresh.hlc }, timeoutMs: 10_000 });
      const onMasters = [...(await rc.keysPerMaster(`${after.prefix}:C:{*}:rec:*`)).values()];
      expect(onMasters.reduce((a, b) => a + b, 0)).toBe(keys.length + 1);
    });
  });
});
