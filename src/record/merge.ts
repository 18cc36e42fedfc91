/**
 * The pure merge: what a replica holding `local` does with an `incoming` record.
 *
 * Rule: the value (or tombstone, with its expiry) of the record with the larger HLC wins,
 * and the version vector becomes the pointwise maximum of both. Both halves are joins of a
 * semilattice (max over a total order; pointwise max), so `merge` is commutative,
 * associative and idempotent, and replicas that have merged the same set of records hold
 * byte-identical records whatever the order or duplication of delivery.
 *
 * Version vectors classify what happened. Because every local write gets an HLC greater
 * than that of the record it overwrites (see `HybridLogicalClock.after`), "incoming
 * dominates" always coincides with "incoming has the larger HLC", and the value is never
 * chosen by the vectors themselves (a vector restarted after its tombstone was purged
 * could otherwise let an old write beat a newer one).
 *
 * A conflict is a write that lost to one that never saw it: the winner's own vector
 * (`written`) does not contain the loser's dot `(origin, written[origin])`. Checking the
 * write vectors rather than the merged ones keeps conflicts visible on every replica even
 * when the winner arrives already merged with the loser. A losing incoming write that this
 * replica had already merged (its dot is in `local.version`) is not reported twice.
 */
import { compareHlc } from '../clock/timestamp.js';
import { VersionVector } from '../clock/version-vector.js';
import type { CacheRecord } from './record.js';

/**
 * - `applied`: the incoming write is newer and replaced the local value.
 * - `stale`: the local value is newer; at most the version vector changed.
 * - `duplicate`: the same write was already here.
 */
export type MergeOutcome = 'applied' | 'stale' | 'duplicate';

export interface Conflict {
  readonly key: string;
  /** The surviving write. */
  readonly winner: { readonly hlc: string; readonly origin: string };
  /** The concurrent write Last-Write-Wins discarded. */
  readonly loser: { readonly hlc: string; readonly origin: string };
}

export interface MergeResult {
  readonly outcome: MergeOutcome;
  /** The record the replica must hold afterwards. */
  readonly record: CacheRecord;
  /** False when `record` is byte-identical to `local`, so nothing needs writing. */
  readonly changed: boolean;
  /** Set when the two writes were concurrent (neither version vector descends the other). */
  readonly conflict?: Conflict;
}

export function merge(local: CacheRecord | undefined, incoming: CacheRecord): MergeResult {
  if (local === undefined) return { outcome: 'applied', record: incoming, changed: true };

  const version = VersionVector.merge(local.version, incoming.version);
  const order = compareHlc(incoming.hlc, local.hlc) || tieBreak(incoming, local);
  const winner = order > 0 ? incoming : local;
  const loser = order > 0 ? local : incoming;
  const record: CacheRecord = { ...winner, key: local.key, version };
  const changed = winner !== local || !VersionVector.equals(version, local.version);
  if (incoming.hlc === local.hlc) return { outcome: 'duplicate', record, changed };

  const outcome: MergeOutcome = order > 0 ? 'applied' : 'stale';
  const loserDot = dotOf(loser);
  const concurrent = !VersionVector.descends(winner.written, loserDot);
  const alreadyMerged = outcome === 'stale' && VersionVector.descends(local.version, loserDot);
  if (!concurrent || alreadyMerged) return { outcome, record, changed };
  return {
    outcome,
    record,
    changed,
    conflict: {
      key: local.key,
      winner: { hlc: winner.hlc, origin: winner.origin },
      loser: { hlc: loser.hlc, origin: loser.origin },
    },
  };
}

/** The write's own position in its origin's sequence of writes to the key. */
function dotOf(record: CacheRecord): VersionVector {
  return Object.fromEntries([[record.origin, Object.hasOwn(record.written, record.origin) ? (record.written[record.origin] as number) : 0]]) as VersionVector;
}

/**
 * Two different payloads under one HLC cannot come from a correct node (timestamps are
 * unique per key), but the merge must stay commutative even then: compare the payloads.
 */
function tieBreak(a: CacheRecord, b: CacheRecord): number {
  const pa = `${a.deleted ? 'd' : 'v'}${a.expiresAt ?? ''}|${a.valueJson ?? ''}`;
  const pb = `${b.deleted ? 'd' : 'v'}${b.expiresAt ?? ''}|${b.valueJson ?? ''}`;
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}
