/**
 * The digest of one node's records: a fixed-shape hash tree over the key hash, pure
 * arithmetic only (no I/O, no clock).
 *
 * Shape. Every key falls in one of `L = 16^depth` leaves by a hash of the key alone, so a
 * key sits in the same leaf on every replica. Above the leaves is a tree of fanout 16
 * (16 → 256 → 4096 → 65536 for the default depth 4) up to one root. This is the fixed grid
 * of Riak's tictac AAE ("tictac trees": a fixed segment count, so trees of two replicas are
 * comparable node by node) and the fixed-depth Merkle tree of Cassandra's repair (depth
 * 15, 32K leaves), rather than a tree over the sorted key space.
 *
 * Hashes. Each record contributes `recordHash(key, storedText)`, a 40-bit integer; a leaf
 * is the *sum* of its records' hashes and an inner node the sum of its children (tictac
 * uses XOR for the same reason: order-free and incremental). A sum can be updated with one
 * `HINCRBY node (new − old)` per level inside the write's own MULTI, without reading the
 * tree, which is what makes the upkeep cheap. With 40-bit hashes a node's sum stays below
 * 2^63 for up to 2^23 (8.4 million) records per node, the documented limit; a chance
 * collision of two different leaf sums has probability about 2^-40 per compared node.
 */
/** Bits of a record hash. Sums of up to 2^23 of them fit a Redis 64-bit integer. */
export const RECORD_HASH_BITS = 40;
/** Children per inner node. */
export const FANOUT = 16;

/** The tree's dimensions; replicas can only compare digests of the same shape. */
export interface DigestShape {
  /** Number of leaves, a power of 16. */
  readonly leaves: number;
  /** Levels below the root: the leaves are at level `depth`, the root at level 0. */
  readonly depth: number;
}

/** The shape with `leaves` leaves; throws `RangeError` unless it is a power of 16 between 16 and 16^6. */
export function digestShape(leaves: number): DigestShape {
  let depth = 0;
  for (let n = 1; n < leaves; n *= FANOUT) depth += 1;
  if (!Number.isSafeInteger(leaves) || leaves !== FANOUT ** depth || depth < 1 || depth > 6) {
    throw new RangeError(`digest leaves must be a power of 16 between 16 and 16777216, got ${String(leaves)}`);
  }
  return { leaves, depth };
}

/** 32-bit FNV-1a of the key's UTF-8 bytes: cheap, and identical on every replica. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  // ASCII keys (the common case) hash their code units, which are their UTF-8 bytes, with
  // no Buffer allocated; anything else takes the exact UTF-8 encoding.
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) break;
    h ^= c;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  if (i === text.length) return h >>> 0;
  h = 0x811c9dc5;
  const bytes = Buffer.from(text, 'utf8');
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The leaf a key belongs to (the same on every replica of the same shape). */
export function leafOf(key: string, shape: DigestShape): number {
  // A final avalanche so the low bits (the leaf index) depend on every byte.
  let h = fnv1a(key);
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x45d9f3b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h % shape.leaves;
}

/**
 * Version of the digest format: the record hash and the layout. Nodes compare digests only
 * when both keep the same format and shape (`dig:meta` field `format`, see
 * {@link formatTag}); a node that finds its own digest in another format rebuilds it.
 * Format 1 hashed records with SHA-1 into level-2 buckets; format 2 uses {@link recordHash}
 * below and level-3 buckets ({@link bucketOf}).
 */
export const DIGEST_FORMAT = 2;

/** The `dig:meta` `format` value of a digest of `shape`: `<format>/<leaves>`. */
export function formatTag(shape: DigestShape): string {
  return `${DIGEST_FORMAT}/${shape.leaves}`;
}

/** The leaf count of a `format` tag, or `undefined` when it is not this node's format. */
export function leavesOfTag(tag: string | null | undefined): number | undefined {
  const match = /^(\d+)\/(\d+)$/.exec(tag ?? '');
  return match && Number(match[1]) === DIGEST_FORMAT ? Number(match[2]) : undefined;
}

/**
 * The 40-bit hash of one stored record, over the key, a NUL and the exact text stored in
 * Redis. Replicas that converged hold byte-identical records (canonical encoding), so
 * equal records hash equal; any other difference (value, tombstone, expiry, version
 * vector, a hand-edited byte) changes the hash. Never 0, so a record always counts.
 *
 * Why not SHA-1 (format 1): it is computed twice per written key (old and new record) on
 * the write path, and measured at ~7 µs a call it was the largest Node CPU cost of digest
 * upkeep. Nothing here needs a cryptographic hash (a peer that can write our Redis can
 * forge anything anyway); it needs a well-mixed, deterministic one. This is cyrb53's
 * scheme (two 32-bit multiply-xor lanes with a final avalanche, public domain) over the
 * UTF-16 code units of the string, pure integer arithmetic with `Math.imul`, so every
 * node computes the same value whatever its platform; 40 bits are kept: all 32 of lane 1
 * and the low 8 of lane 2.
 */
export function recordHash(key: string, stored: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  // The separator: NUL, so ("ab", "c") and ("a", "bc") differ.
  h1 = Math.imul(h1, 2654435761);
  h2 = Math.imul(h2, 1597334677);
  for (let i = 0; i < stored.length; i++) {
    const c = stored.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const value = (h2 & 0xff) * 2 ** 32 + (h1 >>> 0);
  return value === 0 ? 1 : value;
}

/** Index of the tree node at `level` (0 = root) on the path from `leaf` up to the root. */
export function ancestorAt(leaf: number, level: number, shape: DigestShape): number {
  return Math.floor(leaf / FANOUT ** (shape.depth - level));
}

/** Field naming a tree node: `level.index` (the root is `0.0`; leaves are `depth.leaf`). */
export function nodeField(level: number, index: number): string {
  return `${level}.${index}`;
}

/**
 * Leaf entries are stored in buckets, one Redis hash per tree node at level 3 (4096 of them
 * for the default shape, 16 leaves each), field `<leaf>|<key>`: a fold writes one hash
 * per bucket touched rather than one per leaf (Redis commands, not bytes, are what upkeep
 * costs), while a reader gets exactly one leaf's entries with `HSCAN bucket MATCH <leaf>|*`.
 * HSCAN walks the whole bucket, so the bucket is kept small: format 1 used level 2 (256
 * buckets of ~3,900 entries at 10^6 keys, ~1 ms of Redis per leaf read); at level 3 a
 * bucket holds ~16 leaves (~250 entries at 10^6 keys) and a fold step of ~20,000 keys
 * still writes at most 4096 hashes.
 */
export function bucketOf(leaf: number, shape: DigestShape): number {
  return ancestorAt(leaf, Math.min(3, shape.depth), shape);
}

/** The bucket field of `key` in `leaf`. */
export function entryField(leaf: number, key: string): string {
  return `${leaf}|${key}`;
}

/** The user key of a bucket field. */
export function keyOfEntryField(field: string): string {
  return field.slice(field.indexOf('|') + 1);
}

/** The fields of the 16 children of node `index` at `level`. */
export function childFields(level: number, index: number): string[] {
  return Array.from({ length: FANOUT }, (_, i) => nodeField(level + 1, index * FANOUT + i));
}

/** One key's change of hash: `before`/`after` undefined when the record was / is absent. */
export interface HashChange {
  readonly key: string;
  readonly before: number | undefined;
  readonly after: number | undefined;
}

/** What a batch of changes does to a digest: leaf entries to set or remove, node sums to add to. */
export interface DigestUpdate {
  /** Per leaf: key → new hash, or `null` to remove the key from the leaf. */
  readonly leaves: Map<number, Map<string, number | null>>;
  /** Tree node field → increment (non-zero only), every level from the root to the leaves. */
  readonly increments: Map<string, number>;
}

/**
 * Folds a batch of changes into the leaf writes and tree increments that apply it. Changes
 * of one batch to nodes they share are summed, so a batch of n keys costs one increment per
 * distinct tree node, not n × levels.
 */
export function planUpdate(changes: Iterable<HashChange>, shape: DigestShape): DigestUpdate {
  const leaves = new Map<number, Map<string, number | null>>();
  const increments = new Map<string, number>();
  for (const { key, before, after } of changes) {
    if (before === after) continue;
    const leaf = leafOf(key, shape);
    let entries = leaves.get(leaf);
    if (!entries) leaves.set(leaf, (entries = new Map()));
    entries.set(key, after ?? null);
    const delta = (after ?? 0) - (before ?? 0);
    for (let level = 0; level <= shape.depth; level++) {
      const field = nodeField(level, ancestorAt(leaf, level, shape));
      increments.set(field, (increments.get(field) ?? 0) + delta);
    }
  }
  for (const [field, delta] of increments) if (delta === 0) increments.delete(field);
  return { leaves, increments };
}

/**
 * A node sum as Redis returns it (decimal text; absent means 0). Sums are compared as
 * text, never as JS numbers: they exceed 2^53, where doubles would round small
 * differences away.
 */
export type Sum = string | null | undefined;

function sumText(raw: Sum): string {
  return raw === null || raw === undefined || raw === '' ? '0' : raw;
}

/** True when two node sums are equal. */
export function sameSum(a: Sum, b: Sum): boolean {
  return sumText(a) === sumText(b);
}

/** Indexes (0..n-1) at which two lists of node sums differ. */
export function differingChildren(local: ReadonlyArray<Sum>, remote: ReadonlyArray<Sum>): number[] {
  const out: number[] = [];
  const n = Math.max(local.length, remote.length);
  for (let i = 0; i < n; i++) if (!sameSum(local[i], remote[i])) out.push(i);
  return out;
}

/** Keys whose hash differs between two copies of one leaf, including keys only one side holds. */
export function differingKeys(local: ReadonlyMap<string, number>, remote: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  for (const [key, hash] of local) if (remote.get(key) !== hash) out.push(key);
  for (const key of remote.keys()) if (!local.has(key)) out.push(key);
  return out;
}

/** A leaf as HGETALL returns it (key → decimal hash), as numbers. */
export function parseLeaf(raw: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, text] of Object.entries(raw)) out.set(key, Number(text));
  return out;
}
