/**
 * The Redis side of the digest (`src/digest/`): upkeep inside each write's MULTI, and read
 * access for anti-entropy rounds.
 *
 * Layout, all under `${prefix}:${nodeId}:dig:` (the pattern a peer may read):
 * - `dig:meta`: hash with `format` (`<format version>/<leaves>`, see `formatTag`),
 *   `heartbeatAt` (ms, last round here) and `seen:<peer>` (the peer's heartbeat as last
 *   read from it). Format 1 digests had a `leaves` field instead: a format-2 node reads
 *   such a peer as keeping no digest of its format, and a format-1 node reads a format-2
 *   peer as keeping none, so the two never compare sums of different hashes.
 * - `dig:tree`: hash, field `level.index` → the sum of that tree node.
 * - `dig:bucket:<n>`: hash, field `<leaf>|<user key>` → record hash (see `bucketOf`).
 * - `dig:log`: list of changes not yet folded into the buckets and the tree.
 * - `dig:gone:<key>`: a collected tombstone, kept for `tombstoneRetentionMs` (PX).
 *
 * Upkeep costs one command per transaction: the MULTI that commits records appends their
 * old and new hashes to `dig:log` (atomically with the data, no Lua), and the node's
 * anti-entropy loop folds the log into the buckets and the tree (`digest-log.ts`).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { wallMsOf } from '../clock/timestamp.js';
import { ancestorAt, bucketOf, entryField, FANOUT, formatTag, keyOfEntryField, leafOf, leavesOfTag, nodeField, recordHash, type DigestShape, type Sum } from '../digest/digest.js';
import type { DigestSource } from '../digest/diff.js';
import { encodeRecord, type CacheRecord } from '../record/record.js';
import { foldDigestLog, queueLogEntry, type LogChange } from './digest-log.js';
import type { KeyBuilder } from './keys.js';
import { partitionsOfLeafRange } from './layout.js';
import { mgetAll, scanAll, unlinkAll } from './slot-reads.js';

/** What {@link queueRecordWrites} needs to know about the store. */
export interface RecordWriteContext {
  readonly keys: KeyBuilder;
  /** How long a tombstone or expired record stays before it may be collected (ms). */
  readonly tombstoneRetentionMs: number;
  /** The digest's shape, or `undefined` when digest upkeep is switched off. */
  readonly shape: DigestShape | undefined;
}

/**
 * Queues the SETs of `records` plus their digest log entry and collection index entries.
 *
 * Records have no Redis expiry: a tombstone, or a record past its TTL, is removed only by
 * the tombstone collector once retention passed *and* every peer acknowledged it (see
 * `src/anti-entropy/collector.ts`); until then the collection index says when it becomes
 * due. `previous(key)` is the stored text the transaction read under WATCH (`null` if none).
 */
export function queueRecordWrites(
  multi: ChainableCommander,
  ctx: RecordWriteContext,
  records: Iterable<CacheRecord>,
  previous: (key: string) => string | null | undefined,
): void {
  const plain: string[] = [];
  const due: Array<string | number> = [];
  const changes: LogChange[] = [];
  for (const record of records) {
    const value = encodeRecord(record);
    plain.push(ctx.keys.record(record.key), value);
    if (record.deleted) due.push(wallMsOf(record.hlc) + ctx.tombstoneRetentionMs, record.key);
    else if (record.expiresAt !== undefined) due.push(record.expiresAt + ctx.tombstoneRetentionMs, record.key);
    if (ctx.shape) {
      const old = previous(record.key);
      changes.push([record.key, old == null ? null : recordHash(record.key, old), recordHash(record.key, value)]);
    }
  }
  if (plain.length === 0) return;
  multi.mset(...plain);
  // One transaction's records share a partition (one slot on a cluster), as its index does.
  if (due.length > 0) multi.zadd(ctx.keys.collectIndex(ctx.keys.partition(due[1] as string)), ...due);
  if (ctx.shape) queueLogEntry(multi, ctx.keys, changes);
}

/**
 * A node's digest read over a connection to its Redis (its own, or a peer's), counting the
 * bytes of every reply so rounds can report what they cost.
 */
export class RedisDigest implements DigestSource {
  private readonly redis: Redis;
  private readonly keys: KeyBuilder;
  private readonly shape: DigestShape;
  /** Reply bytes read so far (keys, hashes and sums as text). */
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
   * Tree node sums. Each partition keeps its share of every node its keys fall under, so
   * a node's sum is the sum of the shares of the partitions it spans: one for every node
   * below the top two levels (default shape), all of them for the root.
   */
  async sums(fields: readonly string[]): Promise<Sum[]> {
    if (fields.length === 0) return [];
    if (this.keys.partitions === 1) {
      const raws = await this.redis.hmget(this.keys.digestTree(0), ...fields);
      for (const r of raws) this.bytesRead += (r?.length ?? 0) + 1;
      return raws;
    }
    const byPartition = new Map<number, number[]>();
    fields.forEach((field, i) => {
      for (const p of partitionsOfNode(field, this.shape, this.keys.partitions)) byPartition.set(p, [...(byPartition.get(p) ?? []), i]);
    });
    const totals = new Array<bigint | null>(fields.length).fill(null);
    await Promise.all(
      [...byPartition].map(async ([p, positions]) => {
        const raws = await this.redis.hmget(this.keys.digestTree(p), ...positions.map((i) => fields[i] as string));
        raws.forEach((r, j) => {
          this.bytesRead += (r?.length ?? 0) + 1;
          const at = positions[j] as number;
          if (r != null) totals[at] = (totals[at] ?? 0n) + BigInt(r);
        });
      }),
    );
    // An empty share and an absent one both add nothing; a node all shares lack reads as absent.
    return totals.map((t) => (t === null || t === 0n ? null : t.toString()));
  }

  async leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>> {
    return Promise.all(indexes.map((leaf) => this.leaf(leaf)));
  }

  /** One leaf's entries: its bucket (in each partition it spans) scanned with `MATCH <leaf>|*` (the server filters). */
  private async leaf(leaf: number): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const p of partitionsOfLeafRange(leaf, 1, this.shape, this.keys.partitions)) await this.scanBucket(this.keys.digestBucket(p, bucketOf(leaf, this.shape)), leaf, out);
    return out;
  }

  private async scanBucket(bucket: string, leaf: number, out: Map<string, number>): Promise<void> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(bucket, cursor, 'MATCH', `${leaf}|*`, 'COUNT', 10_000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const field = flat[i] as string;
        const text = flat[i + 1] as string;
        out.set(keyOfEntryField(field), Number(text));
        this.bytesRead += Buffer.byteLength(field) + text.length + 2;
      }
    } while (cursor !== '0');
  }

  /** Adds `bytes` read outside this class (records pulled) to the count. */
  count(bytes: number): void {
    this.bytesRead += bytes;
  }
}

/** Removes every digest key of this node (before a rebuild from the data). */
export async function dropDigest(redis: Redis, keys: KeyBuilder): Promise<void> {
  for await (const found of scanAll(redis, keys.digestBucketPattern, 1_000)) await unlinkAll(redis, found);
  const partitions = Array.from({ length: keys.partitions }, (_, p) => p);
  await unlinkAll(redis, [keys.digestMeta, ...partitions.flatMap((p) => [keys.digestTree(p), keys.digestLog(p)])]);
}

/**
 * At connect: builds the digest from the records when it is missing or has another shape
 * (first start with digests, or a digest of an older format), and drops it when upkeep is off (a stale digest would
 * mislead peers).
 */
export async function ensureDigest(redis: Redis, keys: KeyBuilder, shape: DigestShape | undefined): Promise<void> {
  const [format, legacy] = await redis.hmget(keys.digestMeta, 'format', 'leaves');
  if (shape && (format !== formatTag(shape) || legacy !== null)) await rebuildDigest(redis, keys, shape);
  if (!shape && (format !== null || legacy !== null)) await dropDigest(redis, keys);
}

/**
 * Builds the digest from the records (the node's first start with digests, a changed
 * shape, or digests switched back on). Runs before the node takes writes. SCAN may return
 * a key twice, so each page is logged against the entries already folded and folded at
 * once. Resolves with the number of records hashed.
 */
export async function rebuildDigest(redis: Redis, keys: KeyBuilder, shape: DigestShape): Promise<number> {
  await dropDigest(redis, keys);
  let total = 0;
  for await (const redisKeys of scanAll(redis, keys.recordPattern(), 1_000)) {
    const raws = await mgetAll(redis, redisKeys);
    const userKeys = redisKeys.map((k) => keys.userKey(k));
    const existing = await leafEntriesOf(redis, keys, shape, userKeys);
    const changes = new Map<number, LogChange[]>();
    userKeys.forEach((key, i) => {
      const raw = raws[i];
      if (raw == null) return;
      const p = keys.partition(key);
      changes.set(p, [...(changes.get(p) ?? []), [key, existing.get(key) ?? null, recordHash(key, raw)]]);
      total += 1;
    });
    // One log entry per partition (one slot each on a cluster).
    await Promise.all(
      [...changes.values()].map(async (list) => {
        const multi = redis.multi();
        queueLogEntry(multi, keys, list);
        await multi.exec();
      }),
    );
    await foldDigestLog(redis, keys, shape);
  }
  await redis.hset(keys.digestMeta, 'format', formatTag(shape));
  return total;
}

/** The digest's current (folded) hash of each key; absent keys are left out. */
export async function leafEntriesOf(redis: Redis, keys: KeyBuilder, shape: DigestShape, userKeys: readonly string[]): Promise<Map<string, number>> {
  const byBucket = new Map<string, string[]>();
  for (const key of userKeys) {
    const bucket = keys.digestBucket(keys.partition(key), bucketOf(leafOf(key, shape), shape));
    const list = byBucket.get(bucket);
    if (list) list.push(key);
    else byBucket.set(bucket, [key]);
  }
  const out = new Map<string, number>();
  await Promise.all(
    [...byBucket].map(async ([bucket, list]) => {
      const values = await redis.hmget(bucket, ...list.map((k) => entryField(leafOf(k, shape), k)));
      list.forEach((key, j) => {
        const v = values[j];
        if (v != null) out.set(key, Number(v));
      });
    }),
  );
  return out;
}

/** The partitions holding a share of tree node `level.index`. */
function partitionsOfNode(field: string, shape: DigestShape, partitions: number): number[] {
  const [level, index] = field.split('.').map(Number) as [number, number];
  const span = FANOUT ** (shape.depth - level);
  return partitionsOfLeafRange(index * span, span, shape, partitions);
}

/**
 * Builds a node's digest for records written without the write path (seeding a large
 * store for benchmarks or an import): `add` queues each chunk's bucket entries on a
 * pipeline, the tree sums are added up here (exactly, as BigInt) and written by `finish`.
 */
export class DigestSeeder {
  private readonly shape: DigestShape;
  private readonly keys: KeyBuilder;
  /** Per partition: its leaves' sums. */
  private readonly leafSums = new Map<number, Map<number, bigint>>();

  constructor(keys: KeyBuilder, shape: DigestShape) {
    this.keys = keys;
    this.shape = shape;
  }

  /** Queues the entries of `records` (user key and the exact stored text), new keys only. */
  add(pipeline: ChainableCommander, records: ReadonlyArray<readonly [key: string, stored: string]>): void {
    const byBucket = new Map<string, Array<string | number>>();
    for (const [key, stored] of records) {
      const leaf = leafOf(key, this.shape);
      const hash = recordHash(key, stored);
      const partition = this.keys.partition(key);
      const bucket = this.keys.digestBucket(partition, bucketOf(leaf, this.shape));
      const fields = byBucket.get(bucket);
      if (fields) fields.push(entryField(leaf, key), hash);
      else byBucket.set(bucket, [entryField(leaf, key), hash]);
      let sums = this.leafSums.get(partition);
      if (!sums) this.leafSums.set(partition, (sums = new Map()));
      sums.set(leaf, (sums.get(leaf) ?? 0n) + BigInt(hash));
    }
    for (const [bucket, fields] of byBucket) pipeline.hset(bucket, ...fields);
  }

  /** Queues every tree node's sum (each partition's share) and the digest's shape. */
  finish(pipeline: ChainableCommander): void {
    for (const [partition, leafSums] of this.leafSums) {
      const sums = new Map<string, bigint>();
      for (const [leaf, sum] of leafSums) {
        for (let level = 0; level <= this.shape.depth; level++) {
          const field = nodeField(level, ancestorAt(leaf, level, this.shape));
          sums.set(field, (sums.get(field) ?? 0n) + sum);
        }
      }
      const flat = [...sums].flatMap(([field, sum]) => [field, sum.toString()]);
      for (let at = 0; at < flat.length; at += 2_000) pipeline.hset(this.keys.digestTree(partition), ...flat.slice(at, at + 2_000));
    }
    pipeline.hset(this.keys.digestMeta, 'format', formatTag(this.shape));
  }
}
