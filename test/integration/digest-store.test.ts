/**
 * The Redis digest of one store on real Redis, below the node: the fold (in its thread and
 * in-process), the reads a peer makes, and a digest changed behind the folder's back.
 * Every check compares with a {@link MemoryDigest} built from the records themselves.
 */
import { Redis } from 'ioredis';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { HybridLogicalClock } from '../../src/clock/hlc.js';
import { BUCKET_LEAVES, digestShape, leafOf, recordHash } from '../../src/digest/digest.js';
import { MemoryDigest } from '../../src/digest/memory-digest.js';
import { readEntryHashes, RedisDigest } from '../../src/store/digest-store.js';
import { KeyBuilder } from '../../src/store/keys.js';
import { RecordStore } from '../../src/store/record-store.js';
import { useRedisHarness } from '../support/harness.js';

const h = useRedisHarness();
const SHAPE = digestShape(4096);

// Every fold thread the process starts, so a test can stop one as a crash would: the real
// `Worker`, only remembered on the way.
const threads = vi.hoisted(() => [] as Worker[]);
vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:worker_threads')>();
  class TrackedWorker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      super(...args);
      threads.push(this);
    }
  }
  return { ...actual, Worker: TrackedWorker };
});

/** Stops every fold thread at once, and resolves once each has exited. */
async function killFoldThreads(): Promise<number> {
  const live = threads.splice(0);
  await Promise.all(live.map((t) => t.terminate()));
  return live.length;
}

async function openStore(url: string, prefix: string, digestFoldThread: boolean): Promise<RecordStore> {
  const store = new RecordStore(url, new KeyBuilder(prefix, 'A'), new HybridLogicalClock('A'), { digestLeaves: SHAPE.leaves, digestFoldThread });
  await store.connect();
  h.defer(() => store.close());
  return store;
}

/** The digest the records of `keys` in `store` call for. */
async function modelOf(store: RecordStore, keys: readonly string[]): Promise<MemoryDigest> {
  const model = new MemoryDigest(SHAPE);
  for (const key of keys) {
    const raw = await store.redis.get(store.keys.record(key));
    if (raw !== null) model.set(key, recordHash(key, raw));
  }
  return model;
}

async function expectDigestOf(store: RecordStore, keys: readonly string[]): Promise<void> {
  const model = await modelOf(store, keys);
  const digest = new RedisDigest(store.redis, store.keys, SHAPE);
  const levels = [0, 1, 2, 3];
  for (const level of levels) {
    const indexes = Array.from({ length: 16 ** level }, (_, i) => i);
    expect(await digest.sums(level, indexes), `level ${level}`).toEqual(await model.sums(level, indexes));
  }
  const leaves = Array.from({ length: SHAPE.leaves }, (_, i) => i);
  expect(await digest.leaves(leaves)).toEqual(await model.leaves(leaves));
  expect(await readEntryHashes(store.redis, store.keys, SHAPE, keys)).toEqual(await model.hashes(keys));
}

describe('RedisDigest and its folder', () => {
  for (const thread of [true, false]) {
    describe(thread ? 'when folding in the fold thread' : 'when folding on the event loop', () => {
      it('should hold exactly the digest of the records after writes, overwrites and deletes', async () => {
        const store = await openStore(h.redis.url(0), h.prefix('dig-store'), thread);
        const keys = Array.from({ length: 400 }, (_, i) => `k-${i}`);
        for (const [i, key] of keys.entries()) await store.write({ kind: 'put', key, valueJson: String(i) });
        await Promise.all(keys.slice(0, 100).map((key) => store.write({ kind: 'put', key, valueJson: '"again"' })));
        await Promise.all(keys.slice(100, 150).map((key) => store.write({ kind: 'delete', key })));
        expect(await store.folder?.fold()).toBeGreaterThan(0);
        expect(await store.redis.llen(store.keys.digestLog())).toBe(0);
        await expectDigestOf(store, keys);
      });
    });
  }

  it("should read each leaf's entries alone, several leaves of a bucket in one scan, every leaf tag included", async () => {
    // One bucket's 64 leaves, each holding keys; reads of single leaves, of sets of leaves
    // (tags `-` and `_` too, which a MATCH character class must escape or keep), of all.
    const store = await openStore(h.redis.url(0), h.prefix('dig-leaves'), false);
    const keys: string[] = [];
    for (let i = 0; keys.length < 3 * BUCKET_LEAVES * 2 && i < 1_000_000; i++) {
      if (leafOf(`x-${i}`, SHAPE) < BUCKET_LEAVES) keys.push(`x-${i}`);
    }
    for (const key of keys) await store.write({ kind: 'put', key, valueJson: '1' });
    await store.folder?.fold();
    const model = await modelOf(store, keys);
    const digest = new RedisDigest(store.redis, store.keys, SHAPE);
    for (const leaves of [[0], [62], [63], [61, 62, 63], [0, 45, 62, 63], Array.from({ length: BUCKET_LEAVES }, (_, i) => i)]) {
      expect(await digest.leaves(leaves), `leaves ${leaves.join(',')}`).toEqual(await model.leaves(leaves));
    }
  });

  it('should reload its trees when the digest changed behind it, and rebuild from the records', async () => {
    // t0  r-0..24 written, folded ─► t1 the digest is deleted by hand (as FLUSHDB would)
    // t2  r-0..9 overwritten, r-25..49 written, folded: the folder finds no stamp, reloads (an
    //     empty tree), forgets the entries it remembered, and never writes its stale tree back
    // t3  a rebuild from the records makes it whole again
    const prefix = h.prefix('dig-reload');
    const store = await openStore(h.redis.url(0), prefix, true);
    const keys = Array.from({ length: 50 }, (_, i) => `r-${i}`);
    for (const key of keys.slice(0, 25)) await store.write({ kind: 'put', key, valueJson: '1' });
    await store.folder?.fold();
    const admin = new Redis(h.redis.url(0));
    h.defer(() => admin.quit());
    const digestKeys = await admin.keys(`${prefix}:A:dig:*`);
    expect(digestKeys.length).toBeGreaterThan(0);
    await admin.del(...digestKeys);
    const after = [...keys.slice(0, 10), ...keys.slice(25)];
    for (const key of after) await store.write({ kind: 'put', key, valueJson: '2' });
    await store.folder?.fold();
    await expectDigestOf(store, after); // only what was folded after the loss: no stale sums
    const { rebuildDigest } = await import('../../src/store/digest-store.js');
    expect(await rebuildDigest(store.digestRedis, store.keys, store.folder!)).toBe(keys.length);
    await expectDigestOf(store, keys);
  });

  it('should fail the fold in flight when its thread dies, and fold everything in a new thread on the next request', async () => {
    // t0  k-0..199 written and folded in the thread
    // t1  k-100..299 written; a fold starts and every fold thread is killed under it:
    //     that fold rejects, and the log (one MULTI per fold) stays whole or folded, never half
    // t2  the next fold starts a new thread, which reopens the folder (trees from Redis)
    //     and folds what is left: the digest is exact, as if nothing had happened
    const store = await openStore(h.redis.url(0), h.prefix('dig-death'), true);
    const keys = Array.from({ length: 300 }, (_, i) => `k-${i}`);
    await Promise.all(keys.slice(0, 200).map((key) => store.write({ kind: 'put', key, valueJson: '1' })));
    expect(await store.folder?.fold()).toBeGreaterThan(0);
    await Promise.all(keys.slice(100).map((key) => store.write({ kind: 'put', key, valueJson: '2' })));
    // Its outcome is taken at once: the rejection comes while the threads are stopped.
    const inFlight = (store.folder?.fold() as Promise<number>).then(
      (folded) => `folded ${folded}`,
      (error: Error) => error.message,
    );
    expect(await killFoldThreads()).toBeGreaterThan(0);
    expect(await inFlight).toMatch(/fold thread exited/);
    await store.folder?.fold();
    expect(threads.length, 'a new thread took over').toBe(1);
    expect(await store.redis.llen(store.keys.digestLog())).toBe(0);
    await expectDigestOf(store, keys);
  });
});
