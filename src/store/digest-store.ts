/**
 * The Redis side of the digest (`src/digest/`): upkeep inside each write's MULTI, and read
 * access for anti-entropy rounds.
 *
 * Layout, all under `${prefix}:${nodeId}:dig:` (the pattern a peer may read; on a cluster
 * every key but `dig:meta` exists once per partition, under the partition's hash tag):
 * - `dig:meta`: hash with `format` (`<format version>/<leaves>`, see `formatTag`),
 *   `heartbeatAt` (ms, last round here) and `seen:<peer>` (the peer's heartbeat as last
 *   read from it). A node of another format reads the digest as keeping none of its
 *   format, so two formats never compare sums of different hashes.
 * - `dig:tree`: string, every tree node's sum as 4 bytes little-endian in level order
 *   (see `cellOf`): a peer reads the 16 children of a node with one 64-byte GETRANGE.
 * - `dig:bucket:<n>`: hash, field `<leaf tag><user key>` → the record's hash, 4 bytes
 *   (see `bucketOf`, `entryField`).
 * - `dig:log`: list of changes not yet folded into the buckets and the tree.
 * - `dig:stamp`: the last fold's token (see `digest-fold.ts`).
 * - `dig:gone:<key>`: a collected tombstone, kept for `tombstoneRetentionMs` (PX).
 *
 * Upkeep costs one command per transaction: the MULTI that commits records appends their
 * new hashes to `dig:log` (atomically with the data, no Lua), and the node's anti-entropy
 * loop folds the log into the buckets and the tree (`digest-fold.ts`).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { wallMsOf } from '../clock/timestamp.js';
import { BUCKET_LEAVES, bucketOf, CELL_BYTES, cellOf, entryField, FANOUT, formatTag, keyOfEntryField, leafOf, leafOfEntryField, leafPattern, leavesOfTag, recordHash, type DigestShape } from '../digest/digest.js';
import type { DigestSource } from '../digest/diff.js';
import { decodeCells, decodeHash, encodeHash, HashTree } from '../digest/tree.js';
import { encodeRecord, type CacheRecord } from '../record/record.js';
import { logKeys, queueLogEntry, type Folder } from './digest-fold.js';
import type { KeyBuilder } from './keys.js';
import { partitionsOfLeafRange } from './layout.js';
import { groupBy } from './group-by.js';
import { scanAll, unlinkAll } from './slot-reads.js';

/** What {@link queueRecordWrites} needs to know about the store. */
export interface RecordWriteContext {
  readonly keys: KeyBuilder;
  /** How long a tombstone or expired record stays before it may be collected (ms). */
  readonly tombstoneRetentionMs: number;
  /** Whether the digest is kept (its log appended to). */
  readonly digest: boolean;
}

/**
 * Queues the SETs of `records` plus their digest log entry and collection index entries.
 * `keysJson` is the JSON array of the records' keys when the caller has it already (the
 * outbox entry of a local write carries the same string).
 *
 * Records have no Redis expiry: a tombstone, or a record past its TTL, is removed only by
 * the tombstone collector once retention passed *and* every peer acknowledged it (see
 * `src/anti-entropy/collector.ts`); until then the collection index says when it becomes
 * due.
 */
export function queueRecordWrites(multi: ChainableCommander, ctx: RecordWriteContext, records: readonly CacheRecord[], keysJson?: string): void {
  if (records.length === 0) return;
  const plain: string[] = [];
  const due: Array<string | number> = [];
  for (const record of records) {
    plain.push(ctx.keys.record(record.key), encodeRecord(record));
    if (record.deleted) due.push(wallMsOf(record.hlc) + ctx.tombstoneRetentionMs, record.key);
    else if (record.expiresAt !== undefined) due.push(record.expiresAt + ctx.tombstoneRetentionMs, record.key);
  }
  multi.mset(...plain);
  // One transaction's records share a partition (one slot on a cluster), as its index and log do.
  const partition = ctx.keys.partition((records[0] as CacheRecord).key);
  if (due.length > 0) multi.zadd(ctx.keys.collectIndex(partition), ...due);
  if (ctx.digest) queueLogEntry(multi, ctx.keys, partition, keysJson ?? JSON.stringify(records.map((r) => r.key)));
}

/**
 * A node's digest read over a connection to its Redis (its own, or a peer's), counting the
 * bytes of every reply so rounds can report what they cost.
 */
export class RedisDigest implements DigestSource {
  private readonly redis: Redis;
  private readonly keys: KeyBuilder;
  private readonly shape: DigestShape;
  /** Reply bytes read so far (cells, entries, records). */
  bytesRead = 0;

  constructor(redis: Redis, keys: KeyBuilder, shape: DigestShape) {
    this.redis = redis;
    this.keys = keys;
    this.shape = shape;
  }

  /** The leaf count of the node's digest (`undefined` when it keeps none of this format). */
  async shapeLeaves(): Promise<number | undefined> {
    const raw = await this.redis.hget(this.keys.digestMeta, 'format');
    this.bytesRead += raw?.length ?? 0;
    return leavesOfTag(raw);
  }

  /**
   * Node sums, one GETRANGE per run of consecutive nodes (the 16 children of a node are
   * one run of 64 bytes). Each partition keeps its share of every node its keys fall
   * under, so a node's sum is the sum of the shares of the partitions it spans: one for
   * every node below the top two levels (default shape), all of them for the root.
   */
  async sums(level: number, indexes: readonly number[]): Promise<number[]> {
    const out = new Array<number>(indexes.length).fill(0);
    const span = FANOUT ** (this.shape.depth - level);
    const reads: Array<Promise<void>> = [];
    for (let at = 0; at < indexes.length; ) {
      let end = at + 1;
      while (end < indexes.length && indexes[end] === (indexes[end - 1] as number) + 1) end += 1;
      const first = indexes[at] as number;
      const count = end - at;
      const start = cellOf(level, first) * CELL_BYTES;
      const into = at;
      for (const p of partitionsOfLeafRange(first * span, count * span, this.shape, this.keys.partitions)) {
        reads.push(
          this.redis.getrangeBuffer(this.keys.digestTree(p), start, start + count * CELL_BYTES - 1).then((bytes) => {
            this.bytesRead += bytes.length;
            decodeCells(bytes).forEach((cell, i) => (out[into + i] = ((out[into + i] as number) + cell) >>> 0));
          }),
        );
      }
      at = end;
    }
    await Promise.all(reads);
    return out;
  }

  /** Leaves' entries, one HSCAN per bucket (and partition) for all the leaves asked of it. */
  async leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>> {
    const out = new Map<number, Map<string, number>>(indexes.map((leaf) => [leaf, new Map()]));
    const byBucket = groupBy([...new Set(indexes)], bucketOf);
    await Promise.all(
      [...byBucket].map(async ([bucket, leaves]) => {
        const first = bucket * BUCKET_LEAVES;
        for (const p of partitionsOfLeafRange(first, BUCKET_LEAVES, this.shape, this.keys.partitions)) await this.scanBucket(p, bucket, leaves, out);
      }),
    );
    return indexes.map((leaf) => out.get(leaf) as Map<string, number>);
  }

  /** The entries of `leaves` in one bucket of one partition, scanned with `MATCH` (the server filters). */
  private async scanBucket(partition: number, bucket: number, leaves: readonly number[], out: Map<number, Map<string, number>>): Promise<void> {
    const key = this.keys.digestBucket(partition, bucket);
    const pattern = leafPattern(...leaves);
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscanBuffer(key, cursor, 'MATCH', pattern, 'COUNT', 10_000);
      cursor = next.toString();
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const field = (flat[i] as Buffer).toString();
        const value = flat[i + 1] as Buffer;
        this.bytesRead += (flat[i] as Buffer).length + value.length;
        const hash = decodeHash(value);
        if (hash !== undefined) out.get(leafOfEntryField(bucket, field))?.set(keyOfEntryField(field), hash);
      }
    } while (cursor !== '0');
  }

  /** Adds `bytes` read outside this class (records pulled) to the count. */
  count(bytes: number): void {
    this.bytesRead += bytes;
  }
}

/** The digest's current (folded) hash of each key; absent keys are left out. */
export async function readEntryHashes(redis: Redis, keys: KeyBuilder, shape: DigestShape, userKeys: readonly string[], onBytes?: (bytes: number) => void): Promise<Map<string, number>> {
  const located = userKeys.map((key) => {
    const leaf = leafOf(key, shape);
    return { key, field: entryField(leaf, key), bucket: keys.digestBucket(keys.partition(key), bucketOf(leaf)) };
  });
  const byBucket = groupBy(located, (entry) => entry.bucket);
  const out = new Map<string, number>();
  await Promise.all(
    [...byBucket].map(async ([bucket, list]) => {
      const values = await redis.hmgetBuffer(bucket, ...list.map((entry) => entry.field));
      list.forEach(({ key }, j) => {
        const hash = decodeHash(values[j]);
        onBytes?.(values[j]?.length ?? 0);
        if (hash !== undefined) out.set(key, hash);
      });
    }),
  );
  return out;
}

/** Removes every digest key of this node (before a rebuild from the data). */
export async function dropDigest(redis: Redis, keys: KeyBuilder): Promise<void> {
  for await (const found of scanAll(redis, keys.digestBucketPattern, 1_000)) await unlinkAll(redis, found);
  const partitions = Array.from({ length: keys.partitions }, (_, p) => p);
  await unlinkAll(redis, [keys.digestMeta, ...partitions.flatMap((p) => [keys.digestTree(p), keys.digestLog(p), keys.digestStamp(p)])]);
}

/**
 * At connect: builds the digest from the records when it is missing or has another shape
 * (first start with digests, or a digest of an older format), and drops it when upkeep is
 * off (a stale digest would mislead peers).
 */
export async function ensureDigest(redis: Redis, keys: KeyBuilder, folder: Folder | undefined): Promise<void> {
  const [format, legacy] = await redis.hmget(keys.digestMeta, 'format', 'leaves');
  if (folder && (format !== formatTag(folder.shape) || legacy !== null)) await rebuildDigest(redis, keys, folder);
  if (!folder && (format !== null || legacy !== null)) await dropDigest(redis, keys);
}

/**
 * Builds the digest from the records (the node's first start with digests, a changed
 * shape or format, or digests switched back on). Runs before the node takes writes: each
 * SCAN page's keys are logged and folded at once (the fold hashes the records, and reads
 * each key's entry first, so a key SCAN returns twice counts once). Resolves with the
 * number of keys logged.
 */
export async function rebuildDigest(redis: Redis, keys: KeyBuilder, folder: Folder): Promise<number> {
  await dropDigest(redis, keys);
  await folder.forget();
  let total = 0;
  for await (const redisKeys of scanAll(redis, keys.recordPattern(), 1_000)) {
    await logKeys(redis, keys, redisKeys.map((k) => keys.userKey(k)));
    total += redisKeys.length;
    await folder.fold();
  }
  await redis.hset(keys.digestMeta, 'format', formatTag(folder.shape));
  return total;
}

/**
 * Builds a node's digest for records written without the write path (seeding a large
 * store for benchmarks or an import): `add` queues each chunk's bucket entries on a
 * pipeline, the trees are added up here and written by `finish`.
 */
export class DigestSeeder {
  private readonly shape: DigestShape;
  private readonly keys: KeyBuilder;
  /** Per partition: its share of the tree. */
  private readonly trees = new Map<number, HashTree>();

  constructor(keys: KeyBuilder, shape: DigestShape) {
    this.keys = keys;
    this.shape = shape;
  }

  /** Queues the entries of `records` (user key and the exact stored text), new keys only. */
  add(pipeline: ChainableCommander, records: ReadonlyArray<readonly [key: string, stored: string]>): void {
    const byBucket = new Map<string, Array<string | Buffer>>();
    for (const [key, stored] of records) {
      const leaf = leafOf(key, this.shape);
      const hash = recordHash(key, stored);
      const partition = this.keys.partition(key);
      const bucket = this.keys.digestBucket(partition, bucketOf(leaf));
      const fields = byBucket.get(bucket);
      if (fields) fields.push(entryField(leaf, key), encodeHash(hash));
      else byBucket.set(bucket, [entryField(leaf, key), encodeHash(hash)]);
      let tree = this.trees.get(partition);
      if (!tree) this.trees.set(partition, (tree = new HashTree(this.shape)));
      tree.add(leaf, hash);
    }
    for (const [bucket, fields] of byBucket) pipeline.hset(bucket, ...fields);
  }

  /** Queues each partition's tree and the digest's shape. */
  finish(pipeline: ChainableCommander): void {
    for (const [partition, tree] of this.trees) pipeline.set(this.keys.digestTree(partition), tree.bytes());
    pipeline.hset(this.keys.digestMeta, 'format', formatTag(this.shape));
  }
}
