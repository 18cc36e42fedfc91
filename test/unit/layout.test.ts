/**
 * The cluster key layout's arithmetic (no Redis): hash slots as Redis computes them,
 * partition tags in their own slices, and the partitions a digest tree node spans.
 */
import { describe, expect, it } from 'vitest';
import { digestShape, leafOf } from '../../src/digest/digest.js';
import { keysFor } from '../../src/store/keys.js';
import { CLUSTER_PARTITIONS, CLUSTER_SLOTS, keySlot, partitionOf, partitionsOfLeafRange, sliceTag } from '../../src/store/layout.js';

describe('keySlot', () => {
  it('should match Redis Cluster for known keys and honour the first hash tag', () => {
    // Values as Redis 7.0's `CLUSTER KEYSLOT` gives them (CRC16/XMODEM mod 16384).
    expect(keySlot('123456789')).toBe(0x31c3 % CLUSTER_SLOTS);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(3443);
    expect(keySlot('foo{}{bar}')).toBe(8363); // an empty first tag: the whole key is hashed
    expect(keySlot('foo{{bar}}zap')).toBe(4015); // the tag is `{bar`
  });
});

describe('sliceTag', () => {
  it('should put each of 12 partition tags in its own slice, cut where redis-cli cuts 3 masters', () => {
    const slots = Array.from({ length: CLUSTER_PARTITIONS }, (_, p) => keySlot(`{${sliceTag('ec:A', p, CLUSTER_PARTITIONS)}}`));
    const masters = slots.map((slot) => (slot < 5461 ? 0 : slot < 10923 ? 1 : 2));
    expect([0, 1, 2].map((m) => masters.filter((x) => x === m).length)).toEqual([4, 4, 4]);
  });
});

describe('sliceTag with as many partitions as masters', () => {
  it('should put each partition on its own master for 2, 3, 4 and 6 masters', () => {
    for (const masters of [2, 3, 4, 6]) {
      // redis-cli --cluster create gives master i the slots from lround(i × 16384 / n).
      const firsts = Array.from({ length: masters }, (_, i) => Math.round((i * CLUSTER_SLOTS) / masters));
      const owner = (slot: number) => firsts.filter((first) => first <= slot).length - 1;
      const keys = keysFor('ec', 'A', { cluster: ['redis://127.0.0.1:7000'] }, masters);
      expect(keys.partitions).toBe(masters);
      const owners = Array.from({ length: masters }, (_, p) => owner(keySlot(keys.outbox(p))));
      expect(owners, `${masters} masters`).toEqual(Array.from({ length: masters }, (_, i) => i));
    }
  });
});

describe('KeyBuilder on a cluster', () => {
  it('should keep every key of one partition in one slot, and give back the user key', () => {
    const keys = keysFor('ec', 'A', { cluster: ['redis://127.0.0.1:7000'] });
    for (const key of ['a', 'user:1', 'x}:rec:y', '{odd}', 'ü']) {
      const p = keys.partition(key);
      const slot = keySlot(keys.record(key));
      for (const other of [keys.outbox(p), keys.digestLog(p), keys.digestTree(p), keys.collectIndex(p), keys.clock(p), keys.gone(key)]) expect(keySlot(other)).toBe(slot);
      expect(keys.userKey(keys.record(key))).toBe(key);
    }
  });

  it('should keep the key names of a single server', () => {
    const keys = keysFor('ec', 'A', 'redis://127.0.0.1:6379/1');
    expect([keys.record('k'), keys.outbox(), keys.digestTree(), keys.queuePrefix()]).toEqual(['ec:A:rec:k', 'ec:A:outbox', 'ec:A:dig:tree', 'ec:A:q']);
  });
});

describe('partitionsOfLeafRange', () => {
  it('should name the one partition of each leaf of the default shape, and all for coarser shapes', () => {
    const shape = digestShape(65_536);
    for (const key of ['a', 'b', 'user:42', 'z']) expect(partitionsOfLeafRange(leafOf(key, shape), 1, shape, 12)).toEqual([partitionOf(key, 12)]);
    expect(partitionsOfLeafRange(0, 65_536, shape, 12)).toHaveLength(12);
    expect(partitionsOfLeafRange(0, 1, digestShape(4_096), 12)).toHaveLength(12);
  });
});
