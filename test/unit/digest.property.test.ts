/**
 * The digest's arithmetic and the exchange's diff, on in-memory digests (no Redis).
 *
 * Main property: two stores that share a history and then diverge at random (changed,
 * added and removed keys on either side) are equal after one exchange in each direction —
 * A pulls what differs from B, then B from A — and equal to the merge of the two.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatTimestamp } from '../../src/clock/timestamp.js';
import { cellCount, cellOf, DIGEST_FORMAT, digestShape, differingKeys, entryField, formatTag, keyOfEntryField, leafOf, leafPattern, leavesOfTag, recordHash, type DigestShape } from '../../src/digest/digest.js';
import { diffLeaves, differingLeaves, stillDifferingLeaves, type DigestSource } from '../../src/digest/diff.js';
import { MemoryDigest } from '../../src/digest/memory-digest.js';
import { decodeCells, decodeHash, encodeHash, HashTree } from '../../src/digest/tree.js';
import { merge } from '../../src/record/merge.js';
import { encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { timestampArb } from './support/arbitraries.js';

/** Format 3's record hashes of three fixed records: any change of the hash is a change of format. */
const FORMAT_3_HASHES = [1085876701, 1813453635, 2921679399];

const keyArb = fc.oneof(fc.constantFrom('a', 'b', 'user:1', 'x/y', ''), fc.string({ minLength: 1, maxLength: 12 }));

const recordArb = (key: string): fc.Arbitrary<CacheRecord> =>
  fc.record({ ts: timestampArb, deleted: fc.boolean(), value: fc.integer(), n: fc.integer({ min: 1, max: 5 }), ttl: fc.option(fc.nat(), { nil: undefined }) }).map(({ ts, deleted, value, n, ttl }) => {
    const version = { [ts.nodeId]: n };
    const r: CacheRecord = { key, hlc: formatTimestamp(ts), origin: ts.nodeId, version, written: version, deleted, ...(deleted ? {} : { valueJson: String(value) }), ...(ttl === undefined ? {} : { expiresAt: ttl }) };
    return r;
  });

const storeArb = fc.uniqueArray(keyArb, { maxLength: 40 }).chain((keys) =>
  fc.tuple(...keys.map((k) => recordArb(k))).map((records) => new Map(records.map((r) => [r.key, r]))),
);

function digestOf(store: Map<string, CacheRecord>, shape: DigestShape): MemoryDigest {
  const d = new MemoryDigest(shape);
  for (const r of store.values()) d.set(r.key, recordHash(r.key, encodeRecord(r)));
  return d;
}

/** The differing leaves of two digests, and the differing keys in them (one look). */
async function diffDigests(local: DigestSource, remote: DigestSource, shape: DigestShape, options: { leavesPerStep: number }) {
  const leaves = await differingLeaves(local, remote, shape, options);
  return { leaves, keys: await diffLeaves(local, remote, leaves, options) };
}

/**
 * One direction of an exchange, in the exchange's steps (differing leaves, the second look
 * at their sums, their entries): `into` pulls every differing key `from` holds, through
 * the pure merge.
 */
async function pull(into: Map<string, CacheRecord>, intoDigest: MemoryDigest, from: Map<string, CacheRecord>, fromDigest: MemoryDigest, shape: DigestShape) {
  const options = { leavesPerStep: 3 };
  const first = await differingLeaves(intoDigest, fromDigest, shape, options);
  const confirmed = await stillDifferingLeaves(intoDigest, fromDigest, shape, first, options);
  expect(confirmed, 'nothing changed between the looks: every differing leaf is confirmed').toEqual(first);
  const diff = { leaves: confirmed, keys: await diffLeaves(intoDigest, fromDigest, confirmed, options) };
  for (const key of diff.keys) {
    const incoming = from.get(key);
    if (!incoming) continue;
    const result = merge(into.get(key), incoming);
    into.set(key, result.record);
    intoDigest.set(key, recordHash(key, encodeRecord(result.record)));
  }
  return diff;
}

describe('digest', () => {
  describe('digestShape', () => {
    it('should accept powers of 16 and reject anything else', () => {
      expect(digestShape(16)).toEqual({ leaves: 16, depth: 1 });
      expect(digestShape(65_536)).toEqual({ leaves: 65_536, depth: 4 });
      expect(digestShape(16 ** 5)).toEqual({ leaves: 16 ** 5, depth: 5 });
      for (const bad of [0, 1, 15, 32, 100, 16 ** 6, 16 ** 7, 1.5]) expect(() => digestShape(bad)).toThrow(RangeError);
    });
  });

  describe('recordHash', () => {
    it('should be a non-zero 32-bit integer that changes with any byte of the record', () => {
      fc.assert(
        fc.property(keyArb, fc.string(), fc.string(), (key, a, b) => {
          const h = recordHash(key, a);
          expect(Number.isSafeInteger(h) && h > 0 && h < 2 ** 32).toBe(true);
          if (a !== b) expect(recordHash(key, b)).not.toBe(h); // collisions are ~2^-32
        }),
      );
    });
  });

  describe('recordHash (digest format 3)', () => {
    it('should give the same values on every node: the format is fixed, a change needs a new DIGEST_FORMAT', () => {
      expect(DIGEST_FORMAT).toBe(3);
      expect([recordHash('k', '{"a":1}'), recordHash('', ''), recordHash('ключ', 'värde')]).toEqual(FORMAT_3_HASHES);
    });
  });

  describe('entryField', () => {
    it("should tag the key with its leaf's hex digit, which only that leaf's pattern matches", () => {
      fc.assert(
        fc.property(keyArb, fc.integer({ min: 0, max: 65_535 }), (key, leaf) => {
          const field = entryField(leaf, key);
          expect(keyOfEntryField(field)).toBe(key);
          expect(field[0]).toBe(leafPattern(leaf)[0]);
          expect(leafPattern(leaf)).toMatch(/^[0-9a-zA-Z_-]\*$/);
          // The 64 leaves of a bucket have 64 different tags.
          expect(new Set(Array.from({ length: 64 }, (_, i) => leafPattern(leaf - (leaf % 64) + i))).size).toBe(64);
        }),
      );
    });
  });

  describe('leafOf', () => {
    it('should place a key by the FNV-1a of its UTF-8 bytes, ASCII or not', () => {
      const reference = (key: string, leaves: number) => {
        let h = 0x811c9dc5;
        for (const b of Buffer.from(key, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
        h = (h ^ (h >>> 16)) >>> 0;
        h = Math.imul(h, 0x45d9f3b) >>> 0;
        return ((h ^ (h >>> 16)) >>> 0) % leaves;
      };
      const shape = digestShape(65536);
      fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })), (key) => {
          expect(leafOf(key, shape)).toBe(reference(key, shape.leaves));
        }),
      );
    });
  });

  describe('formatTag', () => {
    it('should name the format and the shape, and read back only this format', () => {
      const shape = digestShape(4096);
      expect(formatTag(shape)).toBe(`${DIGEST_FORMAT}/4096`);
      expect(leavesOfTag(formatTag(shape))).toBe(4096);
      for (const other of [null, undefined, '', '4096', `${DIGEST_FORMAT - 1}/4096`, `${DIGEST_FORMAT}/x`]) expect(leavesOfTag(other)).toBeUndefined();
    });
  });

  describe('HashTree', () => {
    it('should hold, after any sequence of changes, the sums mod 2^32 of the hashes present, in every node', () => {
      const shape = digestShape(256);
      fc.assert(
        fc.property(fc.array(fc.tuple(keyArb, fc.option(fc.integer({ min: 1, max: 2 ** 32 - 1 }), { nil: undefined })), { maxLength: 40 }), (sets) => {
          const model = new MemoryDigest(shape);
          for (const [key, hash] of sets) model.set(key, hash);
          // Recomputed from scratch, exactly (BigInt), then reduced.
          const present = new Map<string, number>();
          for (const [key, hash] of sets) {
            if (hash === undefined) present.delete(key);
            else present.set(key, hash);
          }
          const exact = new Map<number, bigint>();
          for (const [key, hash] of present) {
            for (let level = 0, leaf = leafOf(key, shape); level <= shape.depth; level++) {
              const cell = cellOf(level, Math.floor(leaf / 16 ** (shape.depth - level)));
              exact.set(cell, (exact.get(cell) ?? 0n) + BigInt(hash));
            }
          }
          const expected = Array.from({ length: cellCount(shape) }, (_, cell) => Number((exact.get(cell) ?? 0n) % 2n ** 32n));
          expect([...model.tree.cells]).toEqual(expected);
          expect([...decodeCells(model.tree.bytes())]).toEqual(expected);
        }),
      );
    });

    it('should mark the chunks it changed, and load back from its bytes', () => {
      const shape = digestShape(65_536);
      const tree = new HashTree(shape);
      tree.add(65_535, 7);
      expect(tree.takeDirty()).toEqual([0, 1, 17, 273]); // root and level 1, level 2, level 3, the leaf
      expect(tree.takeDirty()).toEqual([]);
      tree.add(0, -7);
      const copy = new HashTree(shape, tree.bytes());
      expect(copy.cells).toEqual(tree.cells);
      expect(copy.sum(0, 0)).toBe(0);
      expect(copy.sum(4, 0)).toBe(2 ** 32 - 7);
      expect(new HashTree(shape, tree.bytes(0, 1)).sum(4, 65_535)).toBe(0); // short bytes: the rest is 0
    });

    it('should store a record hash in 4 bytes', () => {
      fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (h) => {
        expect(decodeHash(encodeHash(h))).toBe(h);
      }));
      expect(decodeHash(Buffer.from('abc'))).toBeUndefined();
      expect(decodeHash(null)).toBeUndefined();
    });
  });

  describe('differingKeys', () => {
    it('should list keys with different hashes and keys on one side only', () => {
      const a = new Map([['x', 1], ['y', 2], ['z', 3]]);
      const b = new Map([['x', 1], ['y', 5], ['w', 4]]);
      expect(differingKeys(a, b).sort()).toEqual(['w', 'y', 'z']);
    });
  });

  describe('when two random stores diverged', () => {
    it('should make them equal, and equal to their merge, after one exchange each way', async () => {
      await fc.assert(
        fc.asyncProperty(storeArb, storeArb, storeArb, fc.constantFrom(16, 256, 4096), async (base, changesA, changesB, leaves) => {
          const shape = digestShape(leaves);
          const a = new Map([...base, ...changesA]);
          const b = new Map([...base, ...changesB]);
          for (const k of [...changesB.keys()].slice(0, 3)) a.delete(k);
          const expected = new Map<string, string>();
          for (const key of new Set([...a.keys(), ...b.keys()])) {
            const ra = a.get(key);
            const rb = b.get(key);
            const merged = ra && rb ? merge(ra, rb).record : (ra ?? rb) as CacheRecord;
            expected.set(key, encodeRecord(merged));
          }
          const da = digestOf(a, shape);
          const db = digestOf(b, shape);
          await pull(a, da, b, db, shape);
          await pull(b, db, a, da, shape);
          const enc = (m: Map<string, CacheRecord>) => new Map([...m].map(([k, r]) => [k, encodeRecord(r)]));
          expect(enc(a)).toEqual(expected);
          expect(enc(b)).toEqual(expected);
          expect(await da.sums(0, [0])).toEqual(await db.sums(0, [0]));
          expect((await diffDigests(da, db, shape, { leavesPerStep: 8 })).keys).toEqual([]);
        }),
        { numRuns: 200 },
      );
    });

    it('should read only the differing leaves', async () => {
      const shape = digestShape(4096);
      const a = new MemoryDigest(shape);
      const b = new MemoryDigest(shape);
      for (let i = 0; i < 5_000; i++) {
        a.set(`k${i}`, i + 1);
        b.set(`k${i}`, i + 1);
      }
      b.set('k42', 7);
      const diff = await diffDigests(a, b, shape, { leavesPerStep: 16 });
      expect(diff.keys).toEqual(['k42']);
      expect(diff.leaves).toEqual([leafOf('k42', shape)]);
    });

    it('should list every differing key of a leaf that differs in more keys than a call takes arguments', async () => {
      const shape = digestShape(16);
      const a = new MemoryDigest(shape);
      const b = new MemoryDigest(shape);
      let held = 0;
      for (let i = 0; held < 250_000; i++) {
        const key = `k${i}`;
        if (leafOf(key, shape) === 0) a.set(key, ++held);
      }
      const diff = await diffDigests(a, b, shape, { leavesPerStep: 16 });
      expect(diff.keys).toHaveLength(250_000);
    });

    it('should confirm only the leaves that still differ at the second look', async () => {
      // Keys of distinct leaves: one differs for good, one catches up between the looks (a
      // replication job that was in flight), one only exists on one side.
      const shape = digestShape(4096);
      const a = new MemoryDigest(shape);
      const b = new MemoryDigest(shape);
      const keys: string[] = [];
      const used = new Set<number>();
      for (let i = 0; keys.length < 4; i++) {
        const leaf = leafOf(`k${i}`, shape);
        if (used.has(leaf)) continue;
        used.add(leaf);
        keys.push(`k${i}`);
      }
      const [same, changed, inFlight, onlyA] = keys as [string, string, string, string];
      a.set(same, 1);
      b.set(same, 1);
      a.set(changed, 2);
      b.set(changed, 5);
      a.set(inFlight, 3);
      a.set(onlyA, 4);
      const options = { leavesPerStep: 1 };
      const first = await differingLeaves(a, b, shape, options);
      expect(first).toEqual([changed, inFlight, onlyA].map((k) => leafOf(k, shape)).sort((x, y) => x - y));
      b.set(inFlight, 3);
      const still = await stillDifferingLeaves(a, b, shape, first, options);
      expect(still).toEqual([changed, onlyA].map((k) => leafOf(k, shape)).sort((x, y) => x - y));
      expect((await diffLeaves(a, b, still, options)).sort()).toEqual([changed, onlyA].sort());
    });
  });
});
