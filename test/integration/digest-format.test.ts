/**
 * The digest format marker on real Redis: a node that finds its digest in an older format
 * (format 1's `dig:meta` field `leaves`, or format 2's tag) rebuilds it from the records at
 * start, and a peer still keeping such a digest is reported incompatible rather than compared.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { digestShape, formatTag, leafOf, recordHash } from '../../src/digest/digest.js';
import { MemoryDigest } from '../../src/digest/memory-digest.js';
import { HashTree } from '../../src/digest/tree.js';
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
  // Format 1 marked its digest with a `leaves` field; format 2 with `format: 2/<leaves>`, and
  // kept the tree as a hash of decimal sums, buckets of `<leaf>|<key>` fields and a log of
  // [key, before, after] entries: none of it may survive into, or be read as, format 3.
  const older = {
    'format 1': async (redis: Redis, prefix: string) => {
      await redis.hdel(`${prefix}:A:dig:meta`, 'format');
      await redis.hset(`${prefix}:A:dig:meta`, 'leaves', 256);
      await redis.del(`${prefix}:A:dig:tree`);
      await redis.hset(`${prefix}:A:dig:tree`, '0.0', '12345');
    },
    'format 2': async (redis: Redis, prefix: string) => {
      await redis.hset(`${prefix}:A:dig:meta`, 'format', '2/256');
      await redis.del(`${prefix}:A:dig:tree`);
      await redis.hset(`${prefix}:A:dig:tree`, '0.0', '12345', '1.0', '12345');
      await redis.hset(`${prefix}:A:dig:bucket:3`, '3|k-1', '987654321');
      await redis.rpush(`${prefix}:A:dig:log`, JSON.stringify([['k-2', 1, 2]]));
    },
  };

  for (const [name, downgrade] of Object.entries(older)) {
    describe(`when a node starts on a digest of ${name}`, () => {
      it('should rebuild it from the records, and a peer should refuse to compare with it before that', async () => {
        // t0  A, B hold k-0..k-19 (converged)
        // t1  A stopped; its digest rewritten in the older format ─► B's round: incompatible
        // t2  A started ─► A rebuilds: format 3, sums equal the records' ─► B's round: equal
        const cluster = await h.cluster('dig-format', ['A', 'B'], { common: OPTIONS });
        const keys = Array.from({ length: 20 }, (_, i) => `k-${i}`);
        for (const key of keys) await cluster.node('A').put(key, key);
        await waitForConvergence(cluster.nodes, keys, { message: 'the writes to replicate' });
        await cluster.stop('A');
        const redisA = direct(String(cluster.redisOf('A')));
        const metaA = `${cluster.prefix}:A:dig:meta`;
        await downgrade(redisA, cluster.prefix);

        const [refused] = await cluster.node('B').antiEntropyRound();
        expect(refused).toMatchObject({ peer: 'A', result: 'incompatible', keysRepaired: 0 });
        expect(refused!.error).toMatch(/format 3/);

        await cluster.start(['A']);
        expect(await redisA.hget(metaA, 'leaves')).toBeNull();
        expect(await redisA.hget(metaA, 'format')).toBe(formatTag(digestShape(256)));
        const shape = digestShape(256);
        const model = new MemoryDigest(shape);
        for (const key of keys) model.set(key, recordHash(key, (await redisA.get(`${cluster.prefix}:A:rec:${key}`)) ?? ''));
        expect(new HashTree(shape, await redisA.getBuffer(`${cluster.prefix}:A:dig:tree`)).cells).toEqual(model.tree.cells);
        const leaves = [...new Set(keys.map((k) => leafOf(k, shape)))];
        expect(await new RedisDigest(redisA, cluster.node('A').keys, shape).leaves(leaves)).toEqual(await model.leaves(leaves));
        const [report] = await cluster.node('B').antiEntropyRound();
        expect(report).toMatchObject({ peer: 'A', result: 'equal', keysRepaired: 0 });
      });
    });
  }
});
