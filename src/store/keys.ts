/**
 * The one place that builds Redis keys: `${prefix}:${nodeId}:${kind}[:${key}]`.
 *
 * Every key a node touches starts with its own `${prefix}:${nodeId}:`, so two nodes may
 * share one Redis database without seeing each other's data, and a user key (any string,
 * including `:`, `*`, `{}` or `/`) only ever appears after the fixed `rec:` part: it can
 * never name another node's key or one of the node's own bookkeeping keys.
 */
export class KeyBuilder {
  readonly prefix: string;
  readonly nodeId: string;
  private readonly recordPrefix: string;

  constructor(prefix: string, nodeId: string) {
    this.prefix = prefix;
    this.nodeId = nodeId;
    this.recordPrefix = `${prefix}:${nodeId}:rec:`;
  }

  /** Redis key of a user key's record (a string holding the encoded record). */
  record(key: string): string {
    return this.recordPrefix + key;
  }

  /** The user key back from a record's Redis key. */
  userKey(redisKey: string): string {
    return redisKey.slice(this.recordPrefix.length);
  }

  /** SCAN pattern matching the records whose user key starts with `keyPrefix` (glob-escaped). */
  recordPattern(keyPrefix = ''): string {
    return `${escapeGlob(this.recordPrefix + keyPrefix)}*`;
  }

  /** The peer list this node runs with, for its peers' consistency check (see `node/peer-check.ts`). */
  get peers(): string {
    return `${this.prefix}:${this.nodeId}:peers`;
  }

  /** The node-id lease: which process runs this node (see `store/lease.ts`). */
  get lease(): string {
    return `${this.prefix}:${this.nodeId}:lease`;
  }

  /** Stream of committed writes not yet handed to BullMQ (the crash-safe outbox). */
  get outbox(): string {
    return `${this.prefix}:${this.nodeId}:outbox`;
  }

  /** Sorted set holding the clock's persisted high-water mark. */
  get clock(): string {
    return `${this.prefix}:${this.nodeId}:clock`;
  }

  /** Marker written at a node's first start; its absence means a new or wiped database. */
  get meta(): string {
    return `${this.prefix}:${this.nodeId}:meta`;
  }

  /** Capped list of recent LWW conflicts, newest first. */
  get conflicts(): string {
    return `${this.prefix}:${this.nodeId}:conflicts`;
  }

  /** Capped list of unusable records moved out of this node's store, newest first. */
  get quarantine(): string {
    return `${this.prefix}:${this.nodeId}:quarantine`;
  }

  /** Capped list of unusable records that peers' replication jobs carried here, newest first. */
  get poison(): string {
    return `${this.prefix}:${this.nodeId}:poison`;
  }

  /** Hash of running counts of unusable records: `quarantined`, `poisoned`. */
  get badRecordCounts(): string {
    return `${this.prefix}:${this.nodeId}:bad`;
  }

  /**
   * Pattern of every key a peer reads for anti-entropy and tombstone collection (besides
   * the records): `${prefix}:${nodeId}:dig:*`. Read-only for peers.
   */
  get digestPattern(): string {
    return `${escapeGlob(`${this.prefix}:${this.nodeId}:dig:`)}*`;
  }

  /** Hash with the digest's shape (`leaves`) and this node's anti-entropy heartbeat. */
  get digestMeta(): string {
    return `${this.prefix}:${this.nodeId}:dig:meta`;
  }

  /** Hash of the digest tree's node sums, field `level.index` (see `src/digest/`). */
  get digestTree(): string {
    return `${this.prefix}:${this.nodeId}:dig:tree`;
  }

  /** List of digest changes not yet folded into the leaves and the tree (see `digest-log.ts`). */
  get digestLog(): string {
    return `${this.prefix}:${this.nodeId}:dig:log`;
  }

  /** Hash of one digest bucket: `<leaf>|<user key>` → record hash (see `bucketOf`). */
  digestBucket(bucket: number): string {
    return `${this.prefix}:${this.nodeId}:dig:bucket:${bucket}`;
  }

  /**
   * A tombstone (or expired record) this node collected, kept for a while so that peers
   * see it was acknowledged, and so that a peer restored from an older snapshot still
   * receives the delete.
   */
  gone(key: string): string {
    return `${this.prefix}:${this.nodeId}:dig:gone:${key}`;
  }

  /** Sorted set of keys holding a tombstone or a TTL record, scored by when they may be collected (ms). */
  get collectIndex(): string {
    return `${this.prefix}:${this.nodeId}:gc`;
  }

  /** JSON of the node's vitals for the cluster view page, refreshed every heartbeat (expires when the node stops). */
  get vitals(): string {
    return `${this.prefix}:${this.nodeId}:vitals`;
  }

  /** BullMQ prefix for this node's replication queues (one queue per destination peer). */
  get queuePrefix(): string {
    return `${this.prefix}:${this.nodeId}:q`;
  }
}

/** Queue (on the origin's Redis) that carries the origin's writes to `peerId`. */
export function replicationQueueName(peerId: string): string {
  return `to-${peerId}`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
