/**
 * How a node's keys are laid out over Redis Cluster hash slots (pure: no I/O).
 *
 * Redis Cluster runs a MULTI/EXEC, a WATCH or an MSET only when all its keys hash to one
 * slot. So a node's keyspace is split into `partitions` by key hash, and every key of a
 * partition (records, outbox, digest log and tree, collection index, clock mark, conflict
 * and quarantine lists) carries the partition's hash tag, `{…}`: a group commit, a merge or
 * a fold touches one partition and therefore one slot.
 *
 * - A standalone server has one partition and no tag, so its key names are the ones a
 *   node has always used.
 * - A cluster store has {@link CLUSTER_PARTITIONS} partitions. One tag per node would put a
 *   whole node in one slot, on one master; 12 tags spread it. Each tag is chosen so its
 *   slot falls in the partition's own twelfth of the slot space, cut where
 *   `redis-cli --cluster create` cuts the slot ranges of its masters (`lround(i × 16384 /
 *   n)`), so 2, 3, 4, 6 or 12 masters hold equal numbers of partitions (3 masters: 4 each).
 * - Why 12 by default and not more: a group commit, a merge and a fold cover one
 *   partition, so more partitions mean smaller transactions. Measured (bench scenario 11):
 *   Redis commands per replicated write 80.6 with 64 partitions, 49.2 with 12 (quick), and
 *   cost per replicated write about half with 3 partitions than with 12 on a 3-master
 *   cluster. `clusterPartitions` sets the count: the number of masters (or a multiple)
 *   makes the cheapest writes that still spread evenly; 12 spreads evenly over 2, 3, 4, 6
 *   or 12 masters. A node then spreads over at most that many masters; several nodes on
 *   one cluster have different tags, so the cluster as a whole spreads further.
 * - A key's partition is a contiguous range of the digest's leaves (for the default
 *   65,536 leaves), so every digest tree node below the top two levels lies in one
 *   partition, and comparing digests costs few extra reads (see `digest-store.ts`).
 *
 * The partition count follows from the target alone (standalone or cluster), so every
 * node computes its peers' key names from their configuration, with nothing to look up.
 */
import { leafOf, type DigestShape } from '../digest/digest.js';

/** Redis Cluster's slot count. */
export const CLUSTER_SLOTS = 16_384;
/** Partitions of a node whose store is a Redis Cluster, unless `clusterPartitions` says otherwise. */
export const CLUSTER_PARTITIONS = 12;
/** Most partitions a cluster store may be cut into. */
export const MAX_CLUSTER_PARTITIONS = 256;
/** Replication queues per destination peer on a cluster store, each with its own tag. */
export const CLUSTER_QUEUE_SHARDS = 3;

/** The leaf grid partitions are cut from: 16^4 leaves (the digest's default shape). */
const PARTITION_GRID: DigestShape = { leaves: 65_536, depth: 4 };

/** CRC16/XMODEM, Redis Cluster's key hash (the reference `crc16.c` of the cluster spec). */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of a Redis key, honouring a `{hash tag}` as Redis does. */
export function keySlot(redisKey: string): number {
  let hashed = redisKey;
  const open = redisKey.indexOf('{');
  if (open >= 0) {
    const close = redisKey.indexOf('}', open + 1);
    if (close > open + 1) hashed = redisKey.slice(open + 1, close);
  }
  return crc16(Buffer.from(hashed, 'utf8')) % CLUSTER_SLOTS;
}

/** The partition of a user key among `count` (0 when there is one). */
export function partitionOf(key: string, count: number): number {
  if (count === 1) return 0;
  return Math.floor((leafOf(key, PARTITION_GRID) * count) / PARTITION_GRID.leaves);
}

/**
 * The partitions holding entries of the `count` digest leaves from `first` (a tree node's
 * leaves) of `shape`: a contiguous range when the shape is at least as fine as the
 * partition grid (one partition for a single leaf), every partition otherwise.
 */
export function partitionsOfLeafRange(first: number, count: number, shape: DigestShape, partitions: number): number[] {
  if (partitions === 1) return [0];
  if (shape.leaves < PARTITION_GRID.leaves || count >= PARTITION_GRID.leaves) return range(partitions);
  const lo = first % PARTITION_GRID.leaves;
  const hi = lo + count - 1;
  const a = Math.floor((lo * partitions) / PARTITION_GRID.leaves);
  const b = Math.floor((hi * partitions) / PARTITION_GRID.leaves);
  return range(b - a + 1).map((i) => a + i);
}

/**
 * The hash tag of slice `index` of `count` for `name` (a partition, or a queue shard): the
 * first `name.index.n` whose slot lies in the slice's share of the slot space. Found by a
 * search of about `count` CRCs, the same on every node.
 */
export function sliceTag(name: string, index: number, count: number): string {
  // Rounded as redis-cli rounds its masters' first slots, so slices never straddle them.
  const lo = Math.round((index * CLUSTER_SLOTS) / count);
  const hi = Math.round(((index + 1) * CLUSTER_SLOTS) / count);
  for (let n = 0; ; n++) {
    const tag = `${name}.${index}.${n}`;
    const slot = crc16(Buffer.from(tag, 'utf8')) % CLUSTER_SLOTS;
    if (slot >= lo && slot < hi) return tag;
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
