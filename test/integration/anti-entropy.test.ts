/**
 * Anti-entropy and safe tombstone collection on real Redis: replicas that drifted apart
 * (hand edits, a node away for longer than the tombstone retention, a database restored
 * from an older snapshot) find and repair the difference, and deleted or expired keys
 * never come back.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { ReplicaNode } from '../../src/node/replica-node.js';
import { encodeRecord } from '../../src/record/record.js';
import { digestShape, leafOf, recordHash } from '../../src/digest/digest.js';
import { MemoryDigest } from '../../src/digest/memory-digest.js';
import { HashTree } from '../../src/digest/tree.js';
import { RedisDigest } from '../../src/store/digest-store.js';
import { waitForConvergence, type NodeOverrides } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { waitFor } from '../support/wait.js';

const h = useRedisHarness();

/** Small digests and short intervals, so rounds, confirmations and collection happen within a test. */
const FAST: NodeOverrides = {
  digestLeaves: 256,
  tombstoneRetentionMs: 500,
  antiEntropy: { intervalMs: 250, confirmDelayMs: 150, collectIntervalMs: 150, verifyIntervalMs: 400, stepPauseMs: 0, foldIntervalMs: 50 },
};

function direct(h2: { defer(fn: () => unknown): void }, url: string): Redis {
  const redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  h2.defer(() => redis.quit().catch(() => undefined));
  return redis;
}

/** Starts a round on `node` and resolves once it has begun (its heartbeat moved), with the round's promise. */
async function roundUnderWay(node: ReplicaNode, redis: Redis): Promise<{ round: ReturnType<ReplicaNode['antiEntropyRound']> }> {
  const beat = await redis.hget(node.keys.digestMeta, 'heartbeatAt');
  const round = node.antiEntropyRound();
  await waitFor(async () => (await redis.hget(node.keys.digestMeta, 'heartbeatAt')) !== beat, { timeoutMs: 2_000, intervalMs: 5, message: `${node.id}'s round to start` });
  return { round };
}

async function pendingFor(node: ReplicaNode, peer: string): Promise<number> {
  const status = await node.status();
  return status.peers.find((p) => p.id === peer)?.antiEntropy?.tombstonesPending ?? -1;
}

async function repairedOn(node: ReplicaNode): Promise<number> {
  const metric = await node.metrics.registry.getSingleMetric('eventual_cache_anti_entropy_keys_repaired_total')?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

const keysOf = (n: number, label: string) => Array.from({ length: n }, (_, i) => `${label}-${i}`);

describe('anti-entropy', () => {
  describe('when a record is removed or altered directly in one Redis', () => {
    it('should find it with the periodic check and repair it from the peers', async () => {
      // t0  A: k-0..9 ──► converge on A, B, C
      // t1  by hand in B's Redis: DEL k-1; k-2 := an older version (lower HLC, other value)
      //     (the node does not see either change; its digest still says "equal")
      // t2  verification rebuilds B's hashes ─► B's digest differs ─► exchange repairs k-1, k-2
      const cluster = await h.cluster('ae-hand', ['A', 'B', 'C'], { common: FAST });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const keys = keysOf(10, 'k');
      for (const key of keys) await A.put(key, { key });
      await waitForConvergence(cluster.nodes, keys, { message: 'the writes to replicate' });

      const redisB = direct(h, String(cluster.redisOf('B')));
      // B's merges of k-0..9 must be folded first: a fold reads the records as they are,
      // so a pending one would take the hand edits into the digest by itself.
      await waitFor(async () => (await redisB.llen(B.keys.digestLog())) === 0, { message: "B to fold its merges into its digest" });
      await redisB.del(B.keys.record('k-1'));
      const original = (await A.getRecord('k-2'))!;
      const older = { ...original, hlc: original.hlc.replace(/^(\d{4})/, '2001'), valueJson: '"hand-edited"' };
      await redisB.set(B.keys.record('k-2'), encodeRecord(older));

      await waitForConvergence(cluster.nodes, keys, { message: 'anti-entropy to repair the hand-edited records on B', timeoutMs: 15_000 });
      expect((await B.metrics.registry.getSingleMetric('eventual_cache_digest_fixes_total')?.get())?.values[0]?.value).toBeGreaterThanOrEqual(2);
      expect(await repairedOn(B)).toBeGreaterThanOrEqual(2);
      expect((await B.get('k-2'))?.value).toEqual({ key: 'k-2' });
      expect(await B.get('k-1')).toBeDefined();
    });
  });

  describe('when a node is away for longer than the tombstone retention', () => {
    it('should keep the deleted keys deleted on every node and collect the tombstones only after it is back', async () => {
      // t0  A: del-0..19 ──► converge on A, B, C
      // t1  C stopped ✗
      // t2  A deletes all 20; B has them at once; retention (500 ms) passes
      //     A and B keep the 20 tombstones: C has not acknowledged them (pending for C: 20)
      // t3  C restarted: its to-C jobs deliver the tombstones; C acknowledges
      // t4  every node: the 20 keys read as absent, then the tombstones are collected everywhere
      const cluster = await h.cluster('ae-outage', ['A', 'B', 'C'], { common: FAST });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const keys = keysOf(20, 'del');
      for (const key of keys) await A.put(key, { key });
      await waitForConvergence(cluster.nodes, keys, { message: 'the writes to replicate' });

      await cluster.stop('C');
      for (const key of keys) await A.delete(key);
      await waitFor(async () => ({ done: (await pendingFor(A, 'C')) === 20 && (await pendingFor(B, 'C')) === 20, observed: [await pendingFor(A, 'C'), await pendingFor(B, 'C')] }), {
        message: 'A and B to report 20 tombstones waiting for C',
        timeoutMs: 10_000,
      });
      for (const key of keys) expect((await A.getRecord(key))?.deleted).toBe(true);
      expect(await pendingFor(A, 'B')).toBe(0);

      await cluster.start(['C']);
      const C = cluster.node('C');
      await waitFor(async () => (await Promise.all(keys.map((k) => C.get(k)))).every((r) => r === undefined), { message: 'C to drop the deleted keys', timeoutMs: 10_000 });
      await waitFor(
        async () => {
          const left = await Promise.all(cluster.nodes.flatMap((n) => keys.map((k) => n.getRecord(k))));
          return { done: left.every((r) => r === undefined), observed: left.filter(Boolean).length };
        },
        { message: 'every node to collect the 20 tombstones', timeoutMs: 15_000 },
      );
      // Several more rounds: nothing comes back.
      await A.antiEntropyRound();
      await C.antiEntropyRound();
      for (const node of cluster.nodes) for (const key of keys) expect(await node.get(key)).toBeUndefined();
    });

    it('should not resurrect a key whose newer write expired while the node was away', async () => {
      // t0  A: ttl-k = v1 (no TTL) ──► converge
      // t1  C stopped ✗ (C holds v1)
      // t2  A: ttl-k = v2 with ttlMs 200; v2 expires; retention passes; A keeps it for C
      // t3  C restarted ──► gets v2 (expired), acknowledges ──► v2 collected everywhere
      //     at no time does any node serve v1 again
      const cluster = await h.cluster('ae-ttl', ['A', 'B', 'C'], { common: FAST });
      const A = cluster.node('A');
      await A.put('ttl-k', 'v1');
      await waitForConvergence(cluster.nodes, ['ttl-k'], { message: 'v1 to replicate' });
      await cluster.stop('C');
      const v2 = await A.put('ttl-k', 'v2', { ttlMs: 200 });
      await waitFor(async () => (await pendingFor(A, 'C')) === 1, { message: 'the expired v2 to wait for C', timeoutMs: 10_000 });
      expect(await A.get('ttl-k')).toBeUndefined();

      await cluster.start(['C']);
      const C = cluster.node('C');
      await waitFor(async () => (await C.getRecord('ttl-k'))?.hlc === v2.hlc || (await C.getRecord('ttl-k')) === undefined, { message: 'C to receive the expired v2', timeoutMs: 10_000 });
      await waitFor(async () => (await Promise.all(cluster.nodes.map((n) => n.getRecord('ttl-k')))).every((r) => r === undefined), {
        message: 'the expired record to be collected on every node',
        timeoutMs: 15_000,
      });
      await A.antiEntropyRound();
      for (const node of cluster.nodes) expect(await node.get('ttl-k')).toBeUndefined();
    });
  });

  describe("when a node's Redis is restored from an older snapshot while the node runs", () => {
    it('should converge again within a few intervals, deleted keys included', async () => {
      // t0  A: snap-0..49 ──► converge;  B's Redis: SAVE (the snapshot)
      // t1  A overwrites snap-0..39 and deletes snap-40..49 ──► converge
      // t2  B's redis-server stopped and started from the snapshot (B's start marker is in it,
      //     so no "wiped database" resync); node B keeps running
      // t3  anti-entropy: B pulls the 40 newer values and the 10 tombstones
      const server = await h.privateServer({ persistence: 'none' });
      const cluster = await h.cluster('ae-snapshot', ['A', 'B'], { redis: { B: server.url(1) }, common: FAST });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const keys = keysOf(50, 'snap');
      for (const key of keys) await A.put(key, { v: 1 });
      await waitForConvergence(cluster.nodes, keys, { message: 'the first values to replicate' });
      const admin = direct(h, server.url(1));
      await admin.save();
      await admin.quit();
      for (const key of keys.slice(0, 40)) await A.put(key, { v: 2 });
      for (const key of keys.slice(40)) await A.delete(key);
      await waitForConvergence(cluster.nodes, keys.slice(0, 40), { message: 'the second values to replicate' });
      await waitFor(async () => (await Promise.all(keys.slice(40).map((k) => B.get(k)))).every((r) => r === undefined), { message: 'the deletes to replicate' });

      const repairedBefore = await repairedOn(B);
      await B.antiEntropyRound(); // a heartbeat after the snapshot, so the restore is detectable
      await server.stop();
      await server.resume();
      await waitForConvergence(cluster.nodes, keys.slice(0, 40), { message: 'B to converge after the restore', timeoutMs: 20_000 });
      // The deleted keys: tombstones (or, once collected everywhere, nothing) on both nodes.
      await waitFor(async () => (await Promise.all(keys.slice(40).map(async (k) => (await B.getRecord(k))?.deleted ?? (await A.getRecord(k)) === undefined))).every(Boolean), {
        message: 'B to drop the restored values of the deleted keys',
        timeoutMs: 20_000,
      });
      // The snapshot really was older: anti-entropy (not the queues) changed all 50 records back.
      expect((await repairedOn(B)) - repairedBefore).toBeGreaterThanOrEqual(50);
      // …and B noticed that its Redis went back in time (reported, not silent).
      await waitFor(() => ({ done: cluster.errors.some((e) => e.node === 'B' && /its Redis holds an older state/.test(e.error.message)), observed: cluster.errors.map((e) => e.error.message) }), {
        message: 'B to report the restore',
        timeoutMs: 10_000,
      });
      for (const key of keys.slice(40)) expect(await B.get(key)).toBeUndefined();
      for (const key of keys.slice(0, 40)) expect((await B.get(key))?.value).toEqual({ v: 2 });
    });
  });

  describe('when repairs run during live writes', () => {
    it('should leave the highest-HLC write everywhere and lose no acknowledged write', async () => {
      // A and B write 20 keys concurrently for a while; meanwhile records are deleted by
      // hand from C's Redis, and rounds run every 250 ms on every node. At the end every
      // node holds, for each key, the acknowledged write with the highest HLC.
      const cluster = await h.cluster('ae-live', ['A', 'B', 'C'], { common: FAST });
      const [A, B, C] = [cluster.node('A'), cluster.node('B'), cluster.node('C')];
      const keys = keysOf(20, 'live');
      const best = new Map<string, string>();
      const redisC = direct(h, String(cluster.redisOf('C')));
      const until = Date.now() + 1_500;
      let i = 0;
      while (Date.now() < until) {
        const key = keys[i % keys.length] as string;
        const writer = i % 2 === 0 ? A : B;
        const rec = await writer.put(key, { i, by: writer.id });
        if ((best.get(key) ?? '') < rec.hlc) best.set(key, rec.hlc);
        if (i % 25 === 0) await redisC.del(C.keys.record(keys[(i * 7) % keys.length] as string));
        i += 1;
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await waitForConvergence(cluster.nodes, keys, { message: 'replication and anti-entropy to converge', timeoutMs: 20_000 });
      for (const key of keys) {
        for (const node of cluster.nodes) expect((await node.getRecord(key))?.hlc, `${node.id} ${key}`).toBe(best.get(key));
      }
    });
  });

  describe('the digest kept through the log and its fold', () => {
    it('should equal the digest computed from the records, after random writes, deletes and merges', async () => {
      const cluster = await h.cluster('ae-fold', ['A', 'B'], { common: { ...FAST, digestLeaves: 4096, tombstoneRetentionMs: 600_000 } });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      const random = (() => {
        let x = 42;
        return () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
      })();
      const keys = keysOf(300, 'f');
      const written = new Set<string>();
      await Promise.all(
        Array.from({ length: 900 }, async (_, i) => {
          const node = random() < 0.5 ? A : B;
          const key = keys[Math.floor(random() * keys.length)] as string;
          written.add(key);
          if (random() < 0.2) await node.delete(key);
          else await node.put(key, { i }, random() < 0.1 ? { ttlMs: 60_000 } : {});
        }),
      );
      await waitForConvergence(cluster.nodes, [...written], { message: 'the writes to converge', timeoutMs: 15_000 });
      await A.antiEntropyRound();
      const redisA = direct(h, String(cluster.redisOf('A')));
      const shape = digestShape(4096);
      const model = new MemoryDigest(shape);
      for (const key of keys) {
        const raw = await redisA.get(A.keys.record(key));
        if (raw !== null) model.set(key, recordHash(key, raw));
      }
      // The whole tree, byte for byte, as the write path, the merges and the fold kept it.
      expect(new HashTree(shape, await redisA.getBuffer(A.keys.digestTree())).cells).toEqual(model.tree.cells);
      const digest = new RedisDigest(redisA, A.keys, shape);
      const leaves = [...new Set(keys.map((k) => leafOf(k, shape)))];
      expect(await digest.leaves(leaves)).toEqual(await model.leaves(leaves));
    });
  });

  describe('when a peer starts after the node (its digest not set up at the first round)', () => {
    it('should look again within seconds, not at the next 30 s interval', async () => {
      // A starts alone: its start round finds no digest in B's empty database ──► incompatible
      // B starts ──► A's next round (2 s later, in A's first minute) ──► equal
      const cluster = await h.cluster('ae-late-peer', ['A', 'B'], { start: ['A'], common: { antiEntropy: { intervalMs: 30_000 } } });
      const A = cluster.node('A');
      await waitFor(async () => (await A.status()).peers[0]?.antiEntropy?.result === 'incompatible', { timeoutMs: 5_000, message: "A's start round to find B without a digest" });
      await cluster.start(['B']);
      await waitFor(async () => ({ done: (await A.status()).peers[0]?.antiEntropy?.result === 'equal', observed: (await A.status()).peers[0]?.antiEntropy }), {
        timeoutMs: 8_000,
        message: "A's rounds with B to find B's digest once B runs",
      });
    });
  });

  describe('.antiEntropyRound', () => {
    it('should report an equal round for equal replicas, reading only a few bytes', async () => {
      const cluster = await h.cluster('ae-equal', ['A', 'B'], { common: { ...FAST, antiEntropy: { ...FAST.antiEntropy, intervalMs: 60_000 } } });
      const A = cluster.node('A');
      const keys = keysOf(30, 'eq');
      for (const key of keys) await A.put(key, key);
      await waitForConvergence(cluster.nodes, keys, { message: 'the writes to replicate' });
      // The first round may still see B's last writes unfolded (its digest lags by up to one
      // fold): they vanish when confirmed, so nothing is repaired either way.
      const [settling] = await A.antiEntropyRound();
      expect(settling).toMatchObject({ peer: 'B', result: 'equal', keysRepaired: 0 });
      const [report] = await A.antiEntropyRound();
      expect(report).toMatchObject({ peer: 'B', result: 'equal', differingKeys: 0, keysRepaired: 0 });
      expect(report!.bytesRead).toBeLessThan(100);
      const status = await A.status();
      expect(status.peers[0]?.antiEntropy).toMatchObject({ result: 'equal', keysRepaired: 0 });
    });

    it('should read no entries for the differences that replication removes before the second look', async () => {
      // A: 500 puts ──► jobs for B due in 2 s
      // B's round at once: ~470 leaves differ (B lacks the writes) ──► wait 3 s (confirmDelayMs)
      //   meanwhile the jobs land ──► B folds, second look at those leaves' sums: equal
      //   ──► no leaf's entries read (a burst at 10^6 keys made such reads a bucket scan each)
      const options: NodeOverrides = { digestLeaves: 4096, replication: { delayMs: 2_000 }, antiEntropy: { intervalMs: 60_000, confirmDelayMs: 3_000, stepPauseMs: 0, foldIntervalMs: 50 } };
      const cluster = await h.cluster('ae-in-flight', ['A', 'B'], { common: options });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      await B.antiEntropyRound(); // the start round, out of the way
      const keys = keysOf(500, 'burst');
      await Promise.all(keys.map((k) => A.put(k, k)));
      // A folds its writes into its digest within about 50 ms, long before the jobs are due.
      const redisA = direct(h, String(cluster.redisOf('A')));
      await waitFor(async () => (await redisA.llen(A.keys.digestLog())) === 0, { timeoutMs: 800, intervalMs: 10, message: "A's digest to hold the writes" });
      const [report] = await B.antiEntropyRound();
      expect(report!.differingLeaves, 'the first look saw the writes in flight').toBeGreaterThan(300);
      expect(report).toMatchObject({ peer: 'A', result: 'equal', confirmedLeaves: 0, differingKeys: 0, keysRepaired: 0 });
      await waitForConvergence(cluster.nodes, keys, { message: 'the burst to replicate' });
    });

    it('should not hold up a fold while it waits for its second look', async () => {
      // B writes (its jobs due in 10 s); A's round sees the differences and waits 3 s
      // (confirmDelayMs); meanwhile A writes and asks for a fold: it must not wait for the round.
      const options: NodeOverrides = { replication: { delayMs: 10_000 }, antiEntropy: { intervalMs: 60_000, confirmDelayMs: 3_000, stepPauseMs: 0, foldIntervalMs: 60_000 } };
      const cluster = await h.cluster('ae-fold-free', ['A', 'B'], { common: options });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      await A.antiEntropyRound(); // the start round, out of the way
      await Promise.all(keysOf(50, 'b').map((k) => B.put(k, k)));
      await B.foldDigest();
      const redisA = direct(h, String(cluster.redisOf('A')));
      const { round } = await roundUnderWay(A, redisA);
      await A.put('during-the-round', 1);
      const asked = Date.now();
      await A.foldDigest();
      expect(Date.now() - asked, 'the fold ran beside the waiting round').toBeLessThan(1_500);
      // Folded by this call or by the round's own fold just before it: either way, now.
      expect(await redisA.llen(A.keys.digestLog()), "A's digest log after the fold").toBe(0);
      const [report] = await round;
      expect(report).toMatchObject({ peer: 'B', result: 'repaired', keysRepaired: 50 });
    });

    it('should not hold up a fold during the first half of a verification pass (records against entries)', async () => {
      // A holds 1,500 records; its round verifies (verifyIntervalMs 1), pausing 300 ms after
      // each page of 500 records: the first half alone takes 0.9 s. A fold asked meanwhile
      // must not wait for the pass (the second half, checking buckets, would take minutes).
      const options: NodeOverrides = { antiEntropy: { intervalMs: 60_000, verifyIntervalMs: 1, stepPauseMs: 300, foldIntervalMs: 60_000 } };
      const cluster = await h.cluster('ae-verify-fold', ['A', 'B'], { common: options });
      const A = cluster.node('A');
      await A.antiEntropyRound(); // the start round, out of the way
      await Promise.all(keysOf(1_500, 'v').map((k) => A.put(k, k)));
      await A.foldDigest();
      const redisA = direct(h, String(cluster.redisOf('A')));
      const { round } = await roundUnderWay(A, redisA);
      round.catch(() => undefined); // cut short when the node closes
      await A.put('during-the-pass', 1);
      const asked = Date.now();
      const folded = await Promise.race([A.foldDigest().then(() => 'folded'), new Promise((r) => setTimeout(() => r('still waiting'), 2_000))]);
      expect(folded, 'the fold ran beside the verification pass').toBe('folded');
      expect(Date.now() - asked).toBeLessThan(2_000);
      expect(await redisA.llen(A.keys.digestLog()), "A's digest log after the fold").toBe(0);
    });
  });
});
