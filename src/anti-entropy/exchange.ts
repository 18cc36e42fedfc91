/**
 * One anti-entropy exchange: this node compares its digest with one peer's and pulls what
 * differs into itself. Every node runs exchanges with every peer, so each pair is
 * repaired in both directions (each side pulls; a peer never writes into another's Redis).
 *
 *   compare roots ─equal─► done (a few bytes)
 *        └─differ─► descend differing children (GETRANGE 64 bytes per differing node)
 *                   ─► differing leaves
 *   wait confirmDelayMs ─► re-read those leaves' sums (4 bytes each) ─► leaves still differing
 *        └─► read their entries (HSCAN MATCH) ─► differing keys
 *   MGET the peer's records of those keys ─► pure merge in optimistic transactions
 *
 * The confirmation is Riak tictac AAE's: a difference seen only once is usually a write
 * whose replication job is still in flight; repairing it would duplicate the job's work,
 * and under steady writes would turn every round into a repair storm. It is made on the
 * leaves' sums, before any entry is read: a round that starts during a burst of writes
 * finds thousands of leaves differing, and reading their entries (a bucket's HSCAN walks
 * all of its ~1,000 entries at 10^6 keys) doubled the cost of the burst's writes (bench
 * scenario 7, 10^6 keys). By the second look the burst has replicated and nothing is read.
 */
import type { Redis } from 'ioredis';
import { DIGEST_FORMAT, type DigestShape } from '../digest/digest.js';
import { diffLeaves, differingLeaves, stillDifferingLeaves } from '../digest/diff.js';
import { decodeRecord, type CacheRecord } from '../record/record.js';
import { RedisDigest } from '../store/digest-store.js';
import type { KeyBuilder } from '../store/keys.js';
import { mgetAll } from '../store/slot-reads.js';
import type { AntiEntropyOptions } from './options.js';

/**
 * - `equal`: the digests matched (or every difference vanished before it was confirmed).
 * - `repaired`: confirmed differences were merged here and changed at least one record.
 * - `differs`: confirmed differences, but the peer held nothing newer: the peer is the one
 *   behind, and repairs itself in its own round (or holds tombstones awaiting collection).
 * - `incompatible`: the peer keeps no digest, or one of another shape.
 * - `failed`: the peer's or this node's Redis did not answer.
 */
export type RoundResult = 'equal' | 'repaired' | 'differs' | 'incompatible' | 'failed';

/** What one exchange with one peer found and did. */
export interface RoundReport {
  peer: string;
  /** When the exchange started, ms since the epoch. */
  startedAt: number;
  durationMs: number;
  result: RoundResult;
  /** Leaves whose sums differed at the first comparison. */
  differingLeaves: number;
  /** Leaves whose sums still differed when read again after `confirmDelayMs` (their entries were read). */
  confirmedLeaves: number;
  /** Keys that differed in the confirmed leaves. */
  differingKeys: number;
  /** Keys pulled from the peer: the differing keys (the same count; kept for readers of earlier reports). */
  confirmedKeys: number;
  /** Records of this node the exchange changed. */
  keysRepaired: number;
  /** Bytes read from the peer's Redis (digest and records). */
  bytesRead: number;
  error?: string;
}

/** The two sides of an exchange. */
export interface ExchangeSides {
  readonly peerId: string;
  readonly local: { readonly redis: Redis; readonly keys: KeyBuilder };
  readonly remote: { readonly redis: Redis; readonly keys: KeyBuilder };
  readonly shape: DigestShape;
}

/** Merges records pulled from the peer; resolves with how many records of this node changed. */
export type Repair = (records: CacheRecord[]) => Promise<number>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs one exchange; never throws (a failure is reported as `failed`). */
/** How an exchange is stopped early, reports progress and waits (all optional). */
export interface ExchangeHooks {
  /** True once the owner is closing: the exchange stops at the next step. */
  readonly isClosing?: () => boolean;
  readonly onProgress?: (pulled: number, confirmed: number) => void;
  /** Waits `ms`; the owner resolves it early when it closes. @defaultValue setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Brings this node's digest up to date (a fold) before the second look: what landed
   * during the wait, the in-flight replication jobs above all, must count there, or every
   * difference they cause is confirmed and pulled again.
   */
  readonly refresh?: () => Promise<void>;
}

export async function exchange(sides: ExchangeSides, options: AntiEntropyOptions, repair: Repair, hooks: ExchangeHooks = {}): Promise<RoundReport> {
  const isClosing = hooks.isClosing ?? (() => false);
  const wait = hooks.sleep ?? sleep;
  const startedAt = Date.now();
  const local = new RedisDigest(sides.local.redis, sides.local.keys, sides.shape);
  const remote = new RedisDigest(sides.remote.redis, sides.remote.keys, sides.shape);
  const report: RoundReport = {
    peer: sides.peerId,
    startedAt,
    durationMs: 0,
    result: 'equal',
    differingLeaves: 0,
    confirmedLeaves: 0,
    differingKeys: 0,
    confirmedKeys: 0,
    keysRepaired: 0,
    bytesRead: 0,
  };
  const pause = () => (options.stepPauseMs > 0 ? wait(options.stepPauseMs) : Promise.resolve());
  const diffOptions = { leavesPerStep: options.keysPerStep, pause };
  try {
    const leaves = await remote.shapeLeaves();
    if (leaves !== sides.shape.leaves) {
      report.result = 'incompatible';
      report.error = leaves === undefined ? `peer ${sides.peerId} keeps no digest of format ${DIGEST_FORMAT} (digests off, or an older version)` : `peer ${sides.peerId} keeps ${leaves} digest leaves, this node ${sides.shape.leaves}`;
      return report;
    }
    const first = await differingLeaves(local, remote, sides.shape, diffOptions);
    report.differingLeaves = first.length;
    if (first.length === 0) return report;
    if (options.confirmDelayMs > 0) await wait(options.confirmDelayMs);
    if (isClosing()) return report;
    await hooks.refresh?.();
    const still = await stillDifferingLeaves(local, remote, sides.shape, first, diffOptions);
    report.confirmedLeaves = still.length;
    if (still.length === 0) return report;
    const confirmed = await diffLeaves(local, remote, still, diffOptions);
    report.differingKeys = confirmed.length;
    report.confirmedKeys = confirmed.length;
    if (confirmed.length === 0) return report;
    for (let at = 0; at < confirmed.length && !isClosing(); at += options.keysPerStep) {
      const records = await readPeerRecords(sides.remote.redis, sides.remote.keys, confirmed.slice(at, at + options.keysPerStep), remote);
      if (records.length > 0) report.keysRepaired += await repair(records);
      hooks.onProgress?.(Math.min(at + options.keysPerStep, confirmed.length), confirmed.length);
      await pause();
    }
    report.result = report.keysRepaired > 0 ? 'repaired' : 'differs';
    return report;
  } catch (error) {
    report.result = 'failed';
    report.error = error instanceof Error ? error.message : String(error);
    return report;
  } finally {
    report.bytesRead = remote.bytesRead;
    report.durationMs = Date.now() - startedAt;
  }
}

/**
 * The peer's records of `keys`, counting the bytes. Where the peer holds no record but a
 * `dig:gone:` marker (a tombstone it collected), the marker is the record: a node restored
 * from a snapshot that still holds an older value then receives the delete.
 */
async function readPeerRecords(redis: Redis, keys: KeyBuilder, userKeys: readonly string[], counter: RedisDigest): Promise<CacheRecord[]> {
  const redisKeys = userKeys.map((k) => keys.record(k));
  const [raws, gone] = await Promise.all([mgetAll(redis, redisKeys), mgetAll(redis, userKeys.map((k) => keys.gone(k)))]);
  const out: CacheRecord[] = [];
  raws.forEach((stored, i) => {
    const raw = stored ?? gone[i];
    if (raw == null) return;
    counter.count(raw.length);
    try {
      out.push(decodeRecord(userKeys[i] as string, redisKeys[i] as string, raw));
    } catch {
      // A corrupt record on the peer is the peer's to repair (its own verification finds
      // it); merging around it keeps this exchange useful for every other key.
    }
  });
  return out;
}
