/**
 * The one place that builds Redis keys: `${prefix}:${nodeId}:${kind}[:${key}]`.
 *
 * Every key a node touches starts with its own `${prefix}:${nodeId}:`, so two nodes may
 * share one Redis database without seeing each other's data, and a user key (any string,
 * including `:`, `*`, `{}` or `/`) only ever appears after the fixed `rec:` part: it can
 * never name another node's key or one of the node's own bookkeeping keys.
 */
import { isClusterTarget, type RedisTarget } from './connections.js';
import { CLUSTER_PARTITIONS, CLUSTER_QUEUE_SHARDS, partitionOf, sliceTag } from './layout.js';

/**
 * The key names of node `nodeId` whose store is `target`: one partition on a single
 * server, `clusterPartitions` on a Redis Cluster (see `layout.ts`). Every node derives
 * its peers' names the same way, from their configured targets and the partition count
 * all nodes share.
 */
export function keysFor(prefix: string, nodeId: string, target: RedisTarget, clusterPartitions = CLUSTER_PARTITIONS): KeyBuilder {
  return new KeyBuilder(prefix, nodeId, isClusterTarget(target) ? clusterPartitions : 1);
}

export class KeyBuilder {
  readonly prefix: string;
  readonly nodeId: string;
  /** Partitions of the node's keyspace: 1 on a standalone server, more on a cluster (see `layout.ts`). */
  readonly partitions: number;
  /** `${prefix}:${nodeId}:` */
  private readonly base: string;
  /** Per partition: what follows `base` in each of its keys (`''`, or `{tag}:`). */
  private readonly tagParts: string[];

  constructor(prefix: string, nodeId: string, partitions = 1) {
    if (!Number.isSafeInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${String(partitions)}`);
    this.prefix = prefix;
    this.nodeId = nodeId;
    this.partitions = partitions;
    this.base = `${prefix}:${nodeId}:`;
    this.tagParts = Array.from({ length: partitions }, (_, p) => (partitions === 1 ? '' : `{${sliceTag(`${prefix}:${nodeId}`, p, partitions)}}:`));
  }

  /** The partition of a user key. */
  partition(key: string): number {
    return partitionOf(key, this.partitions);
  }

  private in(partition: number, kind: string): string {
    return this.base + (this.tagParts[partition] as string) + kind;
  }

  /** Redis key of a user key's record (a string holding the encoded record). */
  record(key: string): string {
    return `${this.in(this.partition(key), 'rec:')}${key}`;
  }

  /** The user key back from a record's Redis key. */
  userKey(redisKey: string): string {
    if (this.partitions === 1) return redisKey.slice(this.base.length + 'rec:'.length);
    return redisKey.slice(redisKey.indexOf('}:rec:', this.base.length) + '}:rec:'.length);
  }

  /**
   * SCAN pattern matching the records whose user key starts with `keyPrefix` (glob-escaped).
   * With partitions the tag is a wildcard, so callers keep only keys whose
   * {@link userKey} really starts with `keyPrefix` (a user key may itself contain `}:rec:`).
   */
  recordPattern(keyPrefix = ''): string {
    const tag = this.partitions === 1 ? '' : '{*}:';
    return `${escapeGlob(this.base)}${tag}rec:${escapeGlob(keyPrefix)}*`;
  }

  /** The peer list this node runs with, for its peers' consistency check (see `node/peer-check.ts`). */
  get peers(): string {
    return `${this.base}peers`;
  }

  /** The node-id lease: which process runs this node (see `store/lease.ts`). */
  get lease(): string {
    return `${this.base}lease`;
  }

  /** Stream of a partition's committed writes not yet handed to BullMQ (the crash-safe outbox). */
  outbox(partition = 0): string {
    return this.in(partition, 'outbox');
  }

  /** Sorted set holding the clock's persisted high-water mark (one per partition; the clock restores the highest). */
  clock(partition = 0): string {
    return this.in(partition, 'clock');
  }

  /** Marker written at a node's first start; its absence means a new or wiped database. */
  get meta(): string {
    return `${this.base}meta`;
  }

  /** Capped list of a partition's recent LWW conflicts, newest first. */
  conflicts(partition = 0): string {
    return this.in(partition, 'conflicts');
  }

  /** Capped list of a partition's unusable records moved out of this node's store, newest first. */
  quarantine(partition = 0): string {
    return this.in(partition, 'quarantine');
  }

  /** Capped list of unusable records that peers' replication jobs carried here, newest first. */
  get poison(): string {
    return this.in(0, 'poison');
  }

  /** Hash of a partition's running counts of unusable records: `quarantined`, `poisoned` (partition 0 counts the poisoned). */
  badRecordCounts(partition = 0): string {
    return this.in(partition, 'bad');
  }

  /**
   * Pattern of every key a peer reads for anti-entropy and tombstone collection (besides
   * the records): `${prefix}:${nodeId}:dig:*` (with partitions, also `…:{tag}:dig:*`). Read-only for peers.
   */
  get digestPattern(): string {
    return `${escapeGlob(`${this.base}`)}${this.partitions === 1 ? '' : '*'}dig:*`;
  }

  /** Hash with the digest's shape (`format`) and this node's anti-entropy heartbeat. */
  get digestMeta(): string {
    return `${this.base}dig:meta`;
  }

  /** String of a partition's share of the digest tree: every node's sum as 4 bytes, in level order (see `src/digest/tree.ts`). */
  digestTree(partition = 0): string {
    return this.in(partition, 'dig:tree');
  }

  /** The token of a partition's last digest fold: the tree in the node's memory is Redis's while it matches (see `digest-fold.ts`). */
  digestStamp(partition = 0): string {
    return this.in(partition, 'dig:stamp');
  }

  /** List of a partition's digest changes not yet folded into its leaves and tree (see `digest-log.ts`). */
  digestLog(partition = 0): string {
    return this.in(partition, 'dig:log');
  }

  /** Hash of one digest bucket of a partition: `<leaf tag><user key>` → record hash (see `bucketOf`). */
  digestBucket(partition: number, bucket: number): string {
    return this.in(partition, `dig:bucket:${bucket}`);
  }

  /** SCAN pattern of every digest bucket of every partition. */
  get digestBucketPattern(): string {
    return `${escapeGlob(this.base)}${this.partitions === 1 ? '' : '{*}:'}dig:bucket:*`;
  }

  /**
   * A tombstone (or expired record) this node collected, kept for a while so that peers
   * see it was acknowledged, and so that a peer restored from an older snapshot still
   * receives the delete.
   */
  gone(key: string): string {
    return `${this.in(this.partition(key), 'dig:gone:')}${key}`;
  }

  /** Sorted set of a partition's keys holding a tombstone or a TTL record, scored by when they may be collected (ms). */
  collectIndex(partition = 0): string {
    return this.in(partition, 'gc');
  }

  /** JSON of the node's vitals for the cluster view page, refreshed every heartbeat (expires when the node stops). */
  get vitals(): string {
    return `${this.base}vitals`;
  }

  /** Replication queues per destination peer: 1 on a standalone server, more on a cluster. */
  get queueShards(): number {
    return this.partitions === 1 ? 1 : CLUSTER_QUEUE_SHARDS;
  }

  /**
   * BullMQ prefix of this node's replication queues of one shard (one queue per
   * destination peer). On a cluster each shard's prefix carries its own hash tag, so all
   * keys of one BullMQ queue share a slot (BullMQ requires it) and the shards spread.
   */
  queuePrefix(shard = 0): string {
    if (this.partitions === 1) return `${this.base}q`;
    return `${this.base}{${sliceTag(`${this.prefix}:${this.nodeId}:q`, shard, this.queueShards)}}:q`;
  }
}

/**
 * Queue (on the origin's Redis) that carries the origin's writes to `peerId`: `to-<peer>`,
 * and `to-<peer>.<shard>` for the further shards of a cluster store.
 */
export function replicationQueueName(peerId: string, shard = 0): string {
  return shard === 0 ? `to-${peerId}` : `to-${peerId}.${shard}`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
