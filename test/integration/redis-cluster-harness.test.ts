/**
 * The Redis Cluster harness itself (src/local-redis/local-cluster.ts), on real
 * `redis-server --cluster-enabled yes` processes: what it starts, how it counts keys and
 * commands per master, a failover and a rejoin, and that it leaves nothing behind. The
 * tests run in order on one cluster; the failover test restarts what it killed.
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_SLOTS, type LocalRedisCluster } from '../../src/local-redis/local-cluster.js';
import { slotCount } from '../../src/local-redis/cluster-topology.js';
import { accepts } from '../../src/local-redis/local-redis.js';
import { adminClient } from '../support/redis.js';
import { closeTestCluster, clusterClient, resolveTestCluster, uniquePrefix } from '../support/redis-cluster.js';

const KEYS = 3_000;

let cluster: LocalRedisCluster;
let client: Cluster;
let startMs = 0;

beforeAll(async () => {
  const started = performance.now();
  cluster = await resolveTestCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 500 });
  startMs = performance.now() - started;
  // No auto-pipelining: in ioredis 6 a Cluster's auto-pipelined batch that meets a MOVED
  // after a failover fails whole (every command rejects with the MOVED) instead of being
  // redirected; plain commands follow the redirect.
  client = clusterClient(cluster.seeds);
});

afterAll(async () => {
  client?.disconnect();
  await closeTestCluster();
});

/** `count` keys under `prefix`, written at once through the cluster client. */
async function writeKeys(prefix: string, count: number, value: string): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}:k${i}`);
  await Promise.all(keys.map((k) => client.set(k, value)));
  return keys;
}

describe('LocalRedisCluster', () => {
  describe('.start', () => {
    it('should start 3 masters with one in-sync replica each, serving all 16384 slots, on ports whose bus port stays below 32768', async () => {
      const nodes = await cluster.nodes();
      const masters = nodes.filter((n) => n.role === 'master');
      const replicas = nodes.filter((n) => n.role === 'replica');
      expect(masters).toHaveLength(3);
      expect(replicas).toHaveLength(3);
      expect(masters.reduce((n, m) => n + slotCount(m.slots), 0)).toBe(CLUSTER_SLOTS);
      expect(new Set(replicas.map((r) => r.masterPort))).toEqual(new Set(masters.map((m) => m.port)));
      expect(cluster.seeds).toEqual(cluster.ports.map((p) => `redis://127.0.0.1:${p}`));
      for (const port of cluster.ports) expect(port + 10_000).toBeLessThan(32_768);
      expect(cluster.target).toEqual({ cluster: cluster.seeds });
      // Redis makes a master wait 2 s after its start before it reports cluster_state:ok.
      console.info(`LocalRedisCluster.start took ${Math.round(startMs)} ms`);
      expect(startMs).toBeLessThan(15_000);
    });
  });

  describe('.keysPerMaster and .commandsPerMaster', () => {
    it('should count the keys and the commands of each master, spread evenly over the slots', async () => {
      const prefix = uniquePrefix('spread');
      await cluster.resetStats();
      const keys = await writeKeys(prefix, KEYS, 'v');
      expect(await client.get(keys[1234] as string)).toBe('v');

      const perMaster = await cluster.keysPerMaster(`${prefix}:*`);
      const counts = [...perMaster.values()];
      expect([...perMaster.keys()].sort()).toEqual((await cluster.masters()).map((m) => m.port).sort());
      expect(counts.reduce((a, b) => a + b, 0)).toBe(KEYS);
      expect(Math.max(...counts) / Math.min(...counts)).toBeLessThanOrEqual(1.25);

      // Each SET ran on the master of its key's slot, and only there.
      const commands = await cluster.commandsPerMaster();
      for (const [port, n] of perMaster) expect(commands.get(port), `master ${port}`).toBeGreaterThanOrEqual(n);
      const total = [...commands.values()].reduce((a, b) => a + b, 0);
      expect(total).toBeLessThan(KEYS + 50);
      expect(await cluster.keysPerMaster(`${uniquePrefix('none')}:*`)).toEqual(new Map([...perMaster.keys()].map((p) => [p, 0])));
    });
  });

  describe('.killMaster and .restartNode', () => {
    it("should promote the killed master's replica, take writes to its slots again, and let the old master rejoin as a replica", async () => {
      // t0  write 300 keys; note which live on master M0 (the lowest slots)
      // t1  SIGKILL M0 ✗   its replica R0 is promoted (cluster-node-timeout 500 ms)
      // t2  write M0's keys again through the cluster client: they land on R0
      // t3  restart M0: it rejoins as a replica of R0
      const prefix = uniquePrefix('failover');
      const keys = await writeKeys(prefix, 300, 'before');
      const [victim] = await cluster.masters();
      if (!victim) throw new Error('no master');
      const replicaOfVictim = (await cluster.nodes()).find((n) => n.role === 'replica' && n.masterPort === victim.port);
      const direct = await adminClient(`redis://127.0.0.1:${victim.port}`);
      const [, victimKeys] = await direct.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
      direct.disconnect();
      expect(victimKeys.length).toBeGreaterThan(50);

      const failover = await cluster.killMaster(0);
      expect(failover.killedPort).toBe(victim.port);
      expect(failover.newMasterPort).toBe(replicaOfVictim?.port);
      console.info(`failover of ${failover.killedPort} to ${failover.newMasterPort} took ${Math.round(failover.promotionMs)} ms`);
      const masters = await cluster.masters();
      expect(masters.map((m) => m.port)).not.toContain(victim.port);
      expect(masters.map((m) => m.port)).toContain(failover.newMasterPort);
      expect(await accepts(victim.port)).toBe(false);

      await Promise.all(victimKeys.map((k) => client.set(k, 'after')));
      expect(await client.mget(victimKeys.slice(0, 1))).toEqual(['after']);
      for (const k of victimKeys) expect(await client.get(k)).toBe('after');
      expect((await cluster.keysPerMaster(`${prefix}:*`)).get(failover.newMasterPort)).toBe(victimKeys.length);
      expect(keys.length).toBe(300);

      await cluster.restartNode(victim.port);
      const rejoined = (await cluster.nodes()).find((n) => n.port === victim.port);
      expect(rejoined).toMatchObject({ role: 'replica', masterPort: failover.newMasterPort, running: true, failing: false });
      expect((await cluster.masters()).length).toBe(3);
    });

    it('should refuse to kill a master that does not exist', async () => {
      await expect(cluster.killMaster(3)).rejects.toThrow(RangeError);
    });
  });

  describe('.destroy', () => {
    it('should stop every node and be idempotent', async () => {
      const ports = cluster.ports;
      await Promise.all([cluster.destroy(), cluster.destroy()]);
      for (const port of ports) expect(await accepts(port), `port ${port}`).toBe(false);
    });
  });
});
