/**
 * The digest format marker on real Redis: a node that finds its digest in an older format
 * (SHA-1 record hashes, `dig:meta` field `leaves`) rebuilds it from the records at start,
 * and a peer still keeping such a digest is reported incompatible rather than compared.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { digestShape, formatTag, leafOf, nodeField, recordHash } from '../../src/digest/digest.js';
import { MemoryDigest } from '../../src/digest/memory-digest.js';
import { RedisDigest } from '../../src/store/digest-store.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';

const h = useRedisHarness();
const OPTIONS = { digestLeaves: 256, antiEntropy: { intervalMs: 60_000, confirmDelayMs: 0, stepPauseMs: 0, foldIntervalMs: 50 } };

function direct(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  h.defer(() => redis.quit().catch(() => undefined));
  return redis;
}

describe('digest format', () => {
  describe('when a node starts on a digest of format 1', () => {
    it('should rebuild it from the records, and a peer should refuse to compare with it before that', async () => {
      // t0  A, B hold k-0..k-19 (converged)
      // t1  A stopped; its dig:meta rewritten as format 1 ─► B's round: incompatible
      // t2  A started ─► A rebuilds: format 2, sums equal the records' ─► B's round: equal
      const cluster = await h.cluster('dig-format', ['A', 'B'], { common: OPTIONS });
      const keys = Array.from({ length: 20 }, (_, i) => `k-${i}`);
      for (const key of keys) await cluster.node('A').put(key, key);
      await waitForConvergence(cluster.nodes, keys, { message: 'the writes to replicate' });
      await cluster.stop('A');
      const redisA = direct(String(cluster.redisOf('A')));
      const metaA = `${cluster.prefix}:A:dig:meta`;
      const treeA = `${cluster.prefix}:A:dig:tree`;
      await redisA.hdel(metaA, 'format');
      await redisA.hset(metaA, 'leaves', 256);
      await redisA.hset(treeA, nodeField(0, 0), '12345');

      const [refused] = await cluster.node('B').antiEntropyRound();
      expect(refused).toMatchObject({ peer: 'A', result: 'incompatible', keysRepaired: 0 });
      expect(refused!.error).toMatch(/format 2/);

      await cluster.start(['A']);
      expect(await redisA.hget(metaA, 'leaves')).toBeNull();
      expect(await redisA.hget(metaA, 'format')).toBe(formatTag(digestShape(256)));
      const shape = digestShape(256);
      const model = new MemoryDigest(shape);
      for (const key of keys) model.set(key, recordHash(key, (await redisA.get(`${cluster.prefix}:A:rec:${key}`)) ?? ''));
      const fields = [nodeField(0, 0), ...Array.from({ length: 16 }, (_, i) => nodeField(1, i))];
      expect(await redisA.hmget(treeA, ...fields)).toEqual(model.sumsNow(fields).map((v) => v ?? null));
      const leaves = [...new Set(keys.map((k) => leafOf(k, shape)))];
      expect(await new RedisDigest(redisA, cluster.node('A').keys, shape).leaves(leaves)).toEqual(await model.leaves(leaves));
      const [report] = await cluster.node('B').antiEntropyRound();
      expect(report).toMatchObject({ peer: 'A', result: 'equal', keysRepaired: 0 });
    });
  });
});
