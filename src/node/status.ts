/**
 * What a node reports about its replication links (`ReplicaNode.status()`, `GET /cluster`).
 */
import type { Queue } from 'bullmq';
import type { ReplicationJobData } from '../replication/outbox-relay.js';
import type { PeerAntiEntropyStatus } from '../anti-entropy/anti-entropy.js';
import type { ReceiverStatus } from '../replication/peer-receiver.js';
import { RedisUnavailableError } from '../errors/index.js';
import { maskCredentials } from '../store/credentials.js';
import { badRecordCounts } from '../store/quarantine.js';
import type { RecordStore } from '../store/record-store.js';

/** One peer as seen from this node. */
export interface PeerStatus {
  id: string;
  /** Jobs in this node's queue for the peer, by state; `null` while this node's Redis is unreachable. */
  backlog: BacklogCounts | null;
  /** Age in ms of the oldest write not yet applied by the peer (0 when none). */
  oldestPendingMs: number;
  /** Failed attempts to apply the peer's jobs here since start (each was retried). */
  retries: number;
  lastError?: string;
  lastErrorAt?: number;
  /** The last anti-entropy exchange with the peer, and tombstones waiting for its acknowledgement. */
  antiEntropy?: PeerAntiEntropyStatus;
}

export interface BacklogCounts {
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
}

export interface ClusterStatus {
  node: string;
  /** Whether this node's own Redis answered. */
  redis: 'ok' | 'unreachable';
  /** Committed writes not yet turned into replication jobs; `null` while Redis is unreachable. */
  outbox: number | null;
  /**
   * Unusable records found since the database was created: `quarantined` were moved out of
   * this node's store, `poisoned` were skipped in peers' jobs; `null` while Redis is unreachable.
   */
  badRecords: { quarantined: number; poisoned: number } | null;
  peers: PeerStatus[];
  /** Configuration problems found with the peers, e.g. "B does not list A as a peer" (see `node/peer-check.ts`). */
  warnings: string[];
}

/**
 * Job counts of one replication queue and, when `withOldest`, the commit time of its
 * oldest unfinished job (`Infinity` when none).
 */
export async function queueBacklog(queues: ReadonlyArray<Queue<ReplicationJobData>>, withOldest = true): Promise<{ counts: BacklogCounts; oldestCommittedAt: number }> {
  const counts: BacklogCounts = { waiting: 0, delayed: 0, active: 0, failed: 0 };
  let oldestCommittedAt = Infinity;
  // A cluster store has several queue shards per peer: their backlogs add up.
  for (const queue of queues) {
    const c = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized');
    counts.waiting += (c.waiting ?? 0) + (c.prioritized ?? 0);
    counts.delayed += c.delayed ?? 0;
    counts.active += c.active ?? 0;
    counts.failed += c.failed ?? 0;
    if (!withOldest) continue;
    // Only states that hold jobs are asked for their oldest: an idle queue costs one call.
    const held = { wait: (c.waiting ?? 0) + (c.prioritized ?? 0), delayed: c.delayed ?? 0, active: c.active ?? 0, failed: c.failed ?? 0 };
    for (const state of ['wait', 'delayed', 'active', 'failed'] as const) {
      if (held[state] === 0) continue;
      const [job] = await queue.getJobs([state], 0, 0, true);
      if (job) oldestCommittedAt = Math.min(oldestCommittedAt, job.data.committedAt);
    }
  }
  return { counts, oldestCommittedAt };
}

/** A receiver's status for /cluster: a driver's error text may quote a URL with its credentials. */
export function maskedLink(status: ReceiverStatus | undefined): ReceiverStatus {
  if (!status) return { retries: 0 };
  return status.lastError === undefined ? status : { ...status, lastError: maskCredentials(status.lastError) };
}

/** What {@link nodeStatus} reads. */
export interface StatusSource {
  readonly nodeId: string;
  readonly store: RecordStore;
  readonly peers: readonly { readonly id: string }[];
  readonly queue: (peer: string) => ReadonlyArray<Queue<ReplicationJobData>> | undefined;
  readonly receiver: (peer: string) => ReceiverStatus | undefined;
  readonly antiEntropy: (peer: string) => PeerAntiEntropyStatus | undefined;
  readonly warnings: () => string[];
}

/**
 * Replication backlog and health per peer. When this node's own Redis is unreachable the
 * backlog (which lives there) is `null`, but what the receivers saw is still reported.
 */
export async function nodeStatus(src: StatusSource): Promise<ClusterStatus> {
  const { store } = src;
  const now = Date.now();
  let outbox: { length: number; oldest: number | undefined } | undefined;
  let bad: ClusterStatus['badRecords'] = null;
  try {
    const [first] = await store.outbox.read(1);
    outbox = { length: await store.outbox.length(), oldest: first?.committedAt };
    bad = await store.guard(() => badRecordCounts(store.redis, store.keys));
  } catch (error) {
    if (!(error instanceof RedisUnavailableError)) throw error;
  }
  const peers = await Promise.all(
    src.peers.map(async ({ id }): Promise<PeerStatus> => {
      const queue = src.queue(id);
      const backlog = outbox && queue ? await queueBacklog(queue).catch(() => undefined) : undefined;
      const oldest = Math.min(outbox?.oldest ?? Infinity, backlog?.oldestCommittedAt ?? Infinity);
      const antiEntropy = src.antiEntropy(id);
      return {
        id,
        backlog: backlog ? backlog.counts : null,
        oldestPendingMs: Number.isFinite(oldest) ? Math.max(0, now - oldest) : 0,
        ...maskedLink(src.receiver(id)),
        ...(antiEntropy ? { antiEntropy } : {}),
      };
    }),
  );
  return { node: src.nodeId, redis: outbox ? 'ok' : 'unreachable', outbox: outbox ? outbox.length : null, badRecords: bad, peers, warnings: src.warnings() };
}
