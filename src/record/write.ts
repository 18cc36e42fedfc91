/**
 * The pure local write: the record a node stores when its user writes or deletes a key.
 */
import { VersionVector } from '../clock/version-vector.js';
import type { CacheRecord } from './record.js';

/** A user's write as the store receives it. */
export type WriteOp =
  | { readonly kind: 'put'; readonly key: string; readonly valueJson: string; readonly ttlMs?: number }
  | { readonly kind: 'delete'; readonly key: string };

/**
 * The record for `op` written on `nodeId` at `hlc`, over `existing`.
 *
 * Its version vector is everything `existing` had seen plus one write by this node, so it
 * dominates what it replaces; the caller supplies an `hlc` greater than `existing.hlc`
 * (`HybridLogicalClock.after`), so HLC order agrees. A TTL becomes an absolute `expiresAt`
 * on the origin's clock, which then replicates unchanged with the record.
 */
export function localWrite(
  existing: CacheRecord | undefined,
  op: WriteOp,
  hlc: string,
  nodeId: string,
  physicalNowMs: number,
): CacheRecord {
  const version = VersionVector.increment(existing?.version ?? VersionVector.empty(), nodeId);
  if (op.kind === 'delete') return { key: op.key, hlc, origin: nodeId, version, written: version, deleted: true };
  const record: CacheRecord = { key: op.key, hlc, origin: nodeId, version, written: version, deleted: false, valueJson: op.valueJson };
  return op.ttlMs === undefined ? record : { ...record, expiresAt: physicalNowMs + op.ttlMs };
}
