/**
 * The digest's change log and its fold: how the digest stays exact without slowing writes.
 *
 * A write or merge cannot afford a Redis command per tree level per key (measured: the
 * eager version, five HINCRBYs and an HSET per key inside the MULTI, cut local write
 * throughput at c=64 to 0.22×). So the MULTI that commits a batch appends **one** entry
 * to `dig:log`: each key with its record's old and new hash (the old record was read
 * under WATCH anyway). The log is part of the same transaction as the records, so no
 * change is lost or reordered.
 *
 * The fold (this node's anti-entropy loop, every `foldIntervalMs` and before each round)
 * applies a prefix of the log: it sets each key's bucket entry to its newest hash (absolute,
 * so setting it twice is harmless), then adds `newest − oldest` of every key up the tree
 * and trims the folded entries in **one** MULTI. A crash before that MULTI leaves the log
 * in place and the next fold repeats the same, idempotent leaf writes; a crash after it
 * has nothing left to do. Only one folder runs per node (the node's own loop; the
 * `repair` CLI folds only nodes that are not running).
 *
 * A hot key written a thousand times between folds is folded once.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { bucketOf, entryField, leafOf, nodeField, type DigestShape } from '../digest/digest.js';
import type { KeyBuilder } from './keys.js';

/** One key's change: its record's hash before and after (`null`: no record). */
export type LogChange = readonly [key: string, before: number | null, after: number | null];

/** Queues the append of `changes` as one log entry (inside the MULTI that makes them). */
export function queueLogEntry(multi: ChainableCommander, keys: KeyBuilder, changes: readonly LogChange[]): void {
  // A transaction's keys share one partition: the entry goes to that partition's log.
  if (changes.length > 0) multi.rpush(keys.digestLog(keys.partition((changes[0] as LogChange)[0])), JSON.stringify(changes));
}

/**
 * Log entries folded per step by default. A step's cost is mostly per tree node and per
 * bucket touched, and the upper levels (16 → 4096 nodes) are touched by almost every step:
 * at c=64 a 2 s fold interval holds ~2,000 entries, which steps of 200 folded with ten
 * rewrites of the same upper nodes and buckets. A step of 1,000 entries (~20,000 keys)
 * is still one HSET per bucket and one on the tree, well under a few milliseconds of Redis.
 */
export const FOLD_STEP_ENTRIES = 1_000;

/**
 * Folds up to `maxEntries` log entries per step until the log is empty; resolves with the
 * keys folded. Tree sums written by one step are remembered for the next steps of the same
 * call (the folder is the only writer of `dig:tree`, which the read-then-HSET already
 * relies on), so only nodes not seen yet in this call are read.
 */
export async function foldDigestLog(redis: Redis, keys: KeyBuilder, shape: DigestShape, maxEntries = FOLD_STEP_ENTRIES, pause?: () => Promise<void>): Promise<number> {
  let folded = 0;
  // Each partition folds its own log into its own buckets and tree share (one slot each).
  for (let partition = 0; partition < keys.partitions; partition++) folded += await foldPartition(redis, keys, partition, shape, maxEntries, pause);
  return folded;
}

async function foldPartition(redis: Redis, keys: KeyBuilder, partition: number, shape: DigestShape, maxEntries: number, pause?: () => Promise<void>): Promise<number> {
  let folded = 0;
  const known = new Map<string, bigint>();
  const log = keys.digestLog(partition);
  const tree = keys.digestTree(partition);
  for (;;) {
    const raw = await redis.lrange(log, 0, maxEntries - 1);
    if (raw.length === 0) return folded;
    // Per key: the hash before its first change in this prefix, and after its last.
    const net = new Map<string, { before: number | null; after: number | null }>();
    for (const text of raw) {
      for (const [key, before, after] of JSON.parse(text) as LogChange[]) {
        const seen = net.get(key);
        if (seen) seen.after = after;
        else net.set(key, { before, after });
      }
    }
    const byBucket = new Map<number, { set: Array<string | number>; del: string[] }>();
    // Leaf deltas as doubles while they are exact (each key adds under 2^40; a sum past
    // 2^52 moves to a BigInt), the levels above in BigInt.
    const deltas = new Map<number, number>();
    const overflow = new Map<number, bigint>();
    for (const [key, { before, after }] of net) {
      const leaf = leafOf(key, shape);
      const bucket = bucketOf(leaf, shape);
      let entry = byBucket.get(bucket);
      if (!entry) byBucket.set(bucket, (entry = { set: [], del: [] }));
      if (after === null) entry.del.push(entryField(leaf, key));
      else entry.set.push(entryField(leaf, key), after);
      const delta = (deltas.get(leaf) ?? 0) + ((after ?? 0) - (before ?? 0));
      if (Math.abs(delta) < 2 ** 52) deltas.set(leaf, delta);
      else {
        overflow.set(leaf, (overflow.get(leaf) ?? 0n) + BigInt(delta));
        deltas.set(leaf, 0);
      }
    }
    const leaves = redis.pipeline();
    for (const [bucket, { set, del }] of byBucket) {
      if (set.length > 0) leaves.hset(keys.digestBucket(partition, bucket), ...set);
      if (del.length > 0) leaves.hdel(keys.digestBucket(partition, bucket), ...del);
    }
    const sums = new Map<string, bigint>();
    let level = new Map<number, bigint>();
    for (const [leaf, delta] of deltas) {
      const exact = BigInt(delta) + (overflow.get(leaf) ?? 0n);
      if (exact !== 0n) level.set(leaf, exact);
    }
    for (let depth = shape.depth; depth >= 0; depth--) {
      const parents = new Map<number, bigint>();
      for (const [index, delta] of level) {
        sums.set(nodeField(depth, index), delta);
        if (depth > 0) {
          const parent = Math.floor(index / 16);
          parents.set(parent, (parents.get(parent) ?? 0n) + delta);
        }
      }
      level = parents;
    }
    const unknown = [...sums.keys()].filter((field) => !known.has(field));
    if (unknown.length > 0) leaves.hmget(tree, ...unknown);
    const replies = (await leaves.exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    const current = unknown.length > 0 ? (replies[replies.length - 1]?.[1] as Array<string | null>) : [];
    unknown.forEach((field, i) => known.set(field, BigInt(current[i] ?? '0')));
    const next = [...sums].map(([field, delta]) => [field, (known.get(field) as bigint) + delta] as const);
    const commit = redis.multi();
    if (next.length > 0) commit.hset(tree, ...next.flatMap(([field, sum]) => [field, sum.toString()]));
    commit.ltrim(log, raw.length, -1);
    for (const [error] of (await commit.exec()) ?? []) if (error) throw error;
    for (const [field, sum] of next) known.set(field, sum);
    folded += net.size;
    if (raw.length < maxEntries) return folded;
    await pause?.();
  }
}
