/**
 * The Redis side of the digest (`src/digest/`): upkeep inside each write's MULTI, and read
 * access for anti-entropy rounds.
 *
 * Layout, all under `${prefix}:${nodeId}:dig:` (the pattern a peer may read):
 * - `dig:meta`: hash with `leaves` (the shape) and `heartbeatAt` (ms, last round here).
 * - `dig:tree`: hash, field `level.index` → the sum of that tree node (HINCRBY).
 * - `dig:leaf:<n>`: hash, user key → record hash (small hashes are listpacks: cheap).
 * - `dig:log`: list of changes not yet folded into the leaves and the tree.
 * - `dig:gone:<key>`: a collected tombstone, kept for `tombstoneRetentionMs` (PX).
 *
 * Upkeep costs one command per transaction: the MULTI that commits records appends their
 * new hashes to `dig:log` (atomically with the data, no Lua), and the node's anti-entropy
 * loop folds the log into the leaves and the tree (`digest-log.ts`).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { ancestorAt, leafOf, nodeField, planUpdate, recordHash, type DigestShape, type HashChange, type Sum } from '../digest/digest.js';
import type { DigestSource } from '../digest/diff.js';
import type { MemoryDigest } from '../digest/memory-digest.js';
import { wallMsOf } from '../clock/timestamp.js';
import { encodeRecord, type CacheRecord } from '../record/record.js';
import { queueLogEntry, type LogChange } from './digest-log.js';
import type { KeyBuilder } from './keys.js';

/** What {@link queueRecordWrites} needs to know about the store. */
export interface RecordWriteContext {
  readonly keys: KeyBuilder;
  /** How long a tombstone or expired record stays before it may be collected (ms). */
  readonly tombstoneRetentionMs: number;
  /** The digest's shape, or `undefined` when digest upkeep is switched off. */
  readonly shape: DigestShape | undefined;
}

/**
 * Queues the SETs of `records` plus their digest upkeep and collection index entries.
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
    if (record.deleted) due.push(writtenAt(record) + ctx.tombstoneRetentionMs, record.key);
    else if (record.expiresAt !== undefined) due.push(record.expiresAt + ctx.tombstoneRetentionMs, record.key);
    if (ctx.shape) {
      const old = previous(record.key);
      changes.push([record.key, old == null ? null : recordHash(record.key, old), recordHash(record.key, value)]);
    }
  }
  if (plain.length > 0) multi.mset(...plain);
  if (due.length > 0) multi.zadd(ctx.keys.collectIndex, ...due);
  if (ctx.shape) queueLogEntry(multi, ctx.keys, changes);
}

/** Queues the leaf writes and tree increments for `changes`. */
export function queueDigestChanges(multi: ChainableCommander, keys: KeyBuilder, shape: DigestShape, changes: Iterable<HashChange>): void {
  const update = planUpdate(changes, shape);
  for (const [leaf, entries] of update.leaves) {
    const set: Array<string | number> = [];
    const del: string[] = [];
    for (const [key, hash] of entries) {
      if (hash === null) del.push(key);
      else set.push(key, hash);
    }
    if (set.length > 0) multi.hset(keys.digestLeaf(leaf), ...set);
    if (del.length > 0) multi.hdel(keys.digestLeaf(leaf), ...del);
  }
  for (const [field, delta] of update.increments) multi.hincrby(keys.digestTree, field, delta);
}

/** Wall time of a record's write (ms), from its HLC. */
function writtenAt(record: CacheRecord): number {
  return wallMsOf(record.hlc);
}

/**
 * A node's digest read over a connection to its Redis (its own, or a peer's), counting the
 * bytes of every reply so rounds can report what they cost.
 */
export class RedisDigest implements DigestSource {
  private readonly redis: Redis;
  private readonly keys: KeyBuilder;
  /** Reply bytes read so far (keys, hashes and sums as text). */
  bytesRead = 0;

  constructor(redis: Redis, keys: KeyBuilder) {
    this.redis = redis;
    this.keys = keys;
  }

  /** The shape the node maintains (`undefined` when it keeps no digest). */
  async shapeLeaves(): Promise<number | undefined> {
    const raw = await this.redis.hget(this.keys.digestMeta, 'leaves');
    this.bytesRead += raw?.length ?? 0;
    return raw === null ? undefined : Number(raw);
  }

  async sums(fields: readonly string[]): Promise<Sum[]> {
    if (fields.length === 0) return [];
    const raws = await this.redis.hmget(this.keys.digestTree, ...fields);
    for (const r of raws) this.bytesRead += (r?.length ?? 0) + 1;
    return raws;
  }

  async leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>> {
    if (indexes.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const i of indexes) pipeline.hgetall(this.keys.digestLeaf(i));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, raw]) => {
      if (error) throw error;
      const out = new Map<string, number>();
      for (const [key, text] of Object.entries(raw as Record<string, string>)) {
        out.set(key, Number(text));
        this.bytesRead += Buffer.byteLength(key) + text.length + 2;
      }
      return out;
    });
  }

  /** Adds `bytes` read outside this class (records pulled) to the count. */
  count(bytes: number): void {
    this.bytesRead += bytes;
  }
}

/** Writes a whole in-memory digest (seeding a store built without the write path). */
export async function writeDigest(redis: Redis, keys: KeyBuilder, digest: MemoryDigest, chunk = 1_000): Promise<void> {
  let pipeline = redis.pipeline();
  let queued = 0;
  const flush = async () => {
    if (queued > 0) await pipeline.exec();
    pipeline = redis.pipeline();
    queued = 0;
  };
  for (const [leaf, entries] of digest.leafMaps()) {
    if (entries.size === 0) continue;
    pipeline.hset(keys.digestLeaf(leaf), ...[...entries].flat());
    if (++queued >= chunk) await flush();
  }
  const nodes = [...digest.nodes()].filter(([, sum]) => sum !== 0n).flatMap(([field, sum]) => [field, sum.toString()]);
  for (let at = 0; at < nodes.length; at += 2 * chunk) pipeline.hset(keys.digestTree, ...nodes.slice(at, at + 2 * chunk));
  pipeline.hset(keys.digestMeta, 'leaves', digest.shape.leaves);
  queued += 1;
  await flush();
}

/** Removes every digest key of this node (before a rebuild from the data). */
export async function dropDigest(redis: Redis, keys: KeyBuilder): Promise<void> {
  let cursor = '0';
  const pattern = `${keys.digestTree.slice(0, -'tree'.length)}leaf:*`;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    cursor = next;
    if (found.length > 0) await redis.unlink(...found);
  } while (cursor !== '0');
  await redis.unlink(keys.digestTree, keys.digestMeta, keys.digestLog);
}

/**
 * Builds the digest from the records (the node's first start with digests, a changed
 * shape, or digests switched back on). Runs before the node takes writes. SCAN may return
 * a key twice, so each page reads the leaf entries it would overwrite and adds only the
 * difference. Resolves with the number of records hashed.
 */
export async function rebuildDigest(redis: Redis, keys: KeyBuilder, shape: DigestShape, onProgress?: (records: number) => void): Promise<number> {
  await dropDigest(redis, keys);
  let cursor = '0';
  let total = 0;
  do {
    const [next, redisKeys] = await redis.scan(cursor, 'MATCH', keys.recordPattern(), 'COUNT', 1_000);
    cursor = next;
    if (redisKeys.length === 0) continue;
    const raws = await redis.mget(...redisKeys);
    const userKeys = redisKeys.map((k) => keys.userKey(k));
    const existing = await leafEntriesOf(redis, keys, shape, userKeys);
    const changes: HashChange[] = [];
    userKeys.forEach((key, i) => {
      const raw = raws[i];
      if (raw == null) return;
      changes.push({ key, before: existing.get(key), after: recordHash(key, raw) });
    });
    const multi = redis.multi();
    queueDigestChanges(multi, keys, shape, changes);
    await multi.exec();
    total += changes.length;
    onProgress?.(total);
  } while (cursor !== '0');
  await redis.hset(keys.digestMeta, 'leaves', shape.leaves);
  return total;
}

/** The digest's current hash of each key (absent keys are left out). */
export async function leafEntriesOf(redis: Redis, keys: KeyBuilder, shape: DigestShape, userKeys: readonly string[]): Promise<Map<string, number>> {
  const byLeaf = new Map<number, string[]>();
  for (const key of userKeys) {
    const leaf = leafOf(key, shape);
    const list = byLeaf.get(leaf);
    if (list) list.push(key);
    else byLeaf.set(leaf, [key]);
  }
  const pipeline = redis.pipeline();
  const order = [...byLeaf];
  for (const [leaf, list] of order) pipeline.hmget(keys.digestLeaf(leaf), ...list);
  const replies = (await pipeline.exec()) ?? [];
  const out = new Map<string, number>();
  order.forEach(([, list], i) => {
    const values = (replies[i]?.[1] ?? []) as Array<string | null>;
    list.forEach((key, j) => {
      const v = values[j];
      if (v != null) out.set(key, Number(v));
    });
  });
  return out;
}

/**
 * Builds a node's digest for records written without the write path (seeding a large
 * store for benchmarks or an import): `add` queues each chunk's leaf entries on a
 * pipeline, the tree sums are added up here (exactly, as BigInt) and written by `finish`.
 */
export class DigestSeeder {
  private readonly shape: DigestShape;
  private readonly keys: KeyBuilder;
  private readonly leafSums = new Map<number, bigint>();

  constructor(keys: KeyBuilder, shape: DigestShape) {
    this.keys = keys;
    this.shape = shape;
  }

  /** Queues the leaf entries of `records` (user key and the exact stored text), new keys only. */
  add(pipeline: ChainableCommander, records: ReadonlyArray<readonly [key: string, stored: string]>): void {
    const byLeaf = new Map<number, Array<string | number>>();
    for (const [key, stored] of records) {
      const leaf = leafOf(key, this.shape);
      const hash = recordHash(key, stored);
      const fields = byLeaf.get(leaf);
      if (fields) fields.push(key, hash);
      else byLeaf.set(leaf, [key, hash]);
      this.leafSums.set(leaf, (this.leafSums.get(leaf) ?? 0n) + BigInt(hash));
    }
    for (const [leaf, fields] of byLeaf) pipeline.hset(this.keys.digestLeaf(leaf), ...fields);
  }

  /** Queues every tree node's sum and the digest's shape. */
  finish(pipeline: ChainableCommander): void {
    const sums = new Map<string, bigint>();
    for (const [leaf, sum] of this.leafSums) {
      for (let level = 0; level <= this.shape.depth; level++) {
        const field = nodeField(level, ancestorAt(leaf, level, this.shape));
        sums.set(field, (sums.get(field) ?? 0n) + sum);
      }
    }
    const flat = [...sums].flatMap(([field, sum]) => [field, sum.toString()]);
    for (let at = 0; at < flat.length; at += 2_000) pipeline.hset(this.keys.digestTree, ...flat.slice(at, at + 2_000));
    pipeline.hset(this.keys.digestMeta, 'leaves', this.shape.leaves);
  }
}
