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
 * Hashes. Each record contributes `recordHash(key, storedText)`, a 32-bit integer; a leaf
 * is the *sum* of its records' hashes modulo 2^32 and an inner node the sum of its
 * children (tictac uses XOR for the same reason: order-free and incremental). A change of
 * one record adds `new − old` to every node on its leaf's path, so the tree is kept up to
 * date without ever being recomputed. Every node is one unsigned 32-bit cell, and the
 * tree is one array of cells in level order (see {@link cellOf}): the 16 children of a
 * node are 64 contiguous bytes, which is what a peer reads to descend one level. A chance
 * collision of two different sums has probability 2^-32 per compared node, as in tictac.
 */
/** Children per inner node. */
export const FANOUT = 16;
/** Bytes of one tree cell (an unsigned 32-bit sum) and of one stored record hash. */
export const CELL_BYTES = 4;

/** The tree's dimensions; replicas can only compare digests of the same shape. */
export interface DigestShape {
  /** Number of leaves, a power of 16. */
  readonly leaves: number;
  /** Levels below the root: the leaves are at level `depth`, the root at level 0. */
  readonly depth: number;
}

/** Most leaves a digest may have: 16^5 (a tree of 4.5 MB, kept in memory by the node). */
export const MAX_DIGEST_LEAVES = 16 ** 5;

/** The shape with `leaves` leaves; throws `RangeError` unless it is a power of 16 between 16 and 16^5. */
export function digestShape(leaves: number): DigestShape {
  let depth = 0;
  for (let n = 1; n < leaves; n *= FANOUT) depth += 1;
  if (!Number.isSafeInteger(leaves) || leaves !== FANOUT ** depth || depth < 1 || leaves > MAX_DIGEST_LEAVES) {
    throw new RangeError(`digest leaves must be a power of 16 between 16 and ${MAX_DIGEST_LEAVES}, got ${String(leaves)}`);
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
 * Format 1 hashed records with SHA-1; format 2 kept 40-bit hashes and decimal sums in
 * Redis hashes; format 3 keeps 32-bit hashes, the tree as one string of cells, and
 * entries keyed by a one-character leaf tag and the key ({@link entryField}).
 */
export const DIGEST_FORMAT = 3;

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
 * The 32-bit hash of one stored record, over the key, a NUL and the exact text stored in
 * Redis. Replicas that converged hold byte-identical records (canonical encoding), so
 * equal records hash equal; any other difference (value, tombstone, expiry, version
 * vector, a hand-edited byte) changes the hash. Never 0, so a record always counts.
 *
 * Nothing here needs a cryptographic hash (a peer that can write our Redis can forge
 * anything anyway); it needs a well-mixed, deterministic one that is cheap on the write
 * path. This is cyrb53's scheme (two 32-bit multiply-xor lanes with a final avalanche,
 * public domain) over the UTF-16 code units of the string, pure integer arithmetic with
 * `Math.imul`, so every node computes the same value whatever its platform; the 32 bits
 * of lane 1 are kept.
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
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  const value = h1 >>> 0;
  return value === 0 ? 1 : value;
}

/** Index of the tree node at `level` (0 = root) on the path from `leaf` up to the root. */
export function ancestorAt(leaf: number, level: number, shape: DigestShape): number {
  return Math.floor(leaf / FANOUT ** (shape.depth - level));
}

/**
 * The position of node `index` at `level` in the tree's cell array: level by level from
 * the root, so the children of node `i` at level `l` are the 16 cells from
 * `cellOf(l + 1, 16 i)`.
 */
export function cellOf(level: number, index: number): number {
  return (FANOUT ** level - 1) / (FANOUT - 1) + index;
}

/** Cells of a whole tree of `shape` (69,905 for the default 65,536 leaves: 273 KiB). */
export function cellCount(shape: DigestShape): number {
  return cellOf(shape.depth + 1, 0);
}

/** Leaves per bucket: the entries of 64 neighbouring leaves share one Redis hash. */
export const BUCKET_LEAVES = 64;

/**
 * Record hashes are kept in buckets, one Redis hash per 64 neighbouring leaves (1024 of
 * them for the default shape), so a fold writes one hash per bucket touched rather than
 * one per leaf. Client commands, not bytes, are what upkeep costs: ioredis spends about
 * 15 µs on a command and 0.3 µs on an argument, so a fold step of 20,000 keys costs
 * 5.6 µs a key over 4096 buckets and 2.3 µs over 1024 (measured; 256 buckets gain little
 * more, and make a leaf's read scan 4× the entries). A reader gets exactly one leaf's
 * entries with `HSCAN bucket MATCH <tag>*`, where the tag is one character naming the
 * leaf within its bucket ({@link entryField}); the server filters, so only that leaf's
 * entries cross the wire (at 10^6 keys a bucket holds ~1,000 entries, a leaf ~15).
 */
export function bucketOf(leaf: number): number {
  return Math.floor(leaf / BUCKET_LEAVES);
}

/** The 64 leaf tags: letters, digits, `-` and `_`; none is special in a MATCH pattern. */
const TAGS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_';

/** The bucket field of `key` in `leaf`: the leaf's tag within its bucket, then the key. */
export function entryField(leaf: number, key: string): string {
  return TAGS[leaf % BUCKET_LEAVES] + key;
}

/**
 * The `HSCAN … MATCH` pattern of the fields of `leaves` (all of one bucket): `a*` for one
 * leaf, a character class such as `[ac\-]*` for several (`-` escaped, the only tag
 * character special inside a class), so one scan of a bucket serves all its leaves.
 */
export function leafPattern(...leaves: number[]): string {
  const tags = [...new Set(leaves.map((leaf) => TAGS[leaf % BUCKET_LEAVES] as string))];
  if (tags.length === 1) return `${tags[0] as string}*`;
  return `[${tags.map((t) => (t === '-' ? '\\-' : t)).join('')}]*`;
}

/** The leaf a bucket field belongs to, in bucket `bucket`. */
export function leafOfEntryField(bucket: number, field: string): number {
  return bucket * BUCKET_LEAVES + TAGS.indexOf(field.charAt(0));
}

/** The user key of a bucket field. */
export function keyOfEntryField(field: string): string {
  return field.slice(1);
}

/** Indexes (0..n-1) at which two lists of node sums differ. */
export function differingChildren(local: ReadonlyArray<number>, remote: ReadonlyArray<number>): number[] {
  const out: number[] = [];
  const n = Math.max(local.length, remote.length);
  for (let i = 0; i < n; i++) if ((local[i] ?? 0) !== (remote[i] ?? 0)) out.push(i);
  return out;
}

/** Keys whose hash differs between two copies of one leaf, including keys only one side holds. */
export function differingKeys(local: ReadonlyMap<string, number>, remote: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  for (const [key, hash] of local) if (remote.get(key) !== hash) out.push(key);
  for (const key of remote.keys()) if (!local.has(key)) out.push(key);
  return out;
}
