/**
 * What a node does with records that came from a peer (a replication job, a resync page or
 * an anti-entropy repair): observe their timestamps on the clock, drop those that lost to a
 * tombstone collected here, merge the rest in the store, and report each outcome.
 */
import type { EventEmitter } from 'node:events';
import { dropCollected } from '../anti-entropy/collector.js';
import type { HybridLogicalClock } from '../clock/hlc.js';
import { parseTimestamp } from '../clock/timestamp.js';
import type { CacheRecord } from '../record/record.js';
import type { KeyBuilder } from '../store/keys.js';
import type { MergeReport, RecordStore } from '../store/record-store.js';
import type { NodeMetrics } from './metrics.js';
import type { ReplicaNodeEvents } from './types.js';

export interface RemoteApplyContext {
  readonly clock: HybridLogicalClock;
  readonly store: RecordStore;
  readonly keys: KeyBuilder;
  readonly metrics: NodeMetrics;
  /** The node, for its `drift`, `conflict` and `replicated` events. */
  readonly events: EventEmitter<ReplicaNodeEvents>;
  readonly tombstoneRetentionMs: number;
}

/** Merges `records` from peer `from` into this node; one report per record merged. */
export async function applyRemoteRecords(ctx: RemoteApplyContext, from: string, records: CacheRecord[]): Promise<MergeReport[]> {
  const { clock, metrics, events } = ctx;
  // Observing the batch's largest timestamp moves the clock as far as observing each
  // would; only when that one is beyond maxDriftMs are the others checked one by one.
  let newest: CacheRecord | undefined;
  for (const record of records) if (!newest || record.hlc > newest.hlc) newest = record;
  if (newest && clock.observe(parseTimestamp(newest.hlc)).drifted) {
    for (const record of records) {
      const observed = clock.observe(parseTimestamp(record.hlc));
      if (observed.drifted) {
        metrics.clockDrift.inc();
        events.emit('drift', { from, hlc: record.hlc, aheadMs: observed.aheadMs });
      }
    }
  }
  // An old record that lost to a tombstone collected here must not bring the key back.
  const live = await dropCollected(ctx.store.redis, ctx.keys, records, clock.physicalNow(), ctx.tombstoneRetentionMs);
  const reports = await ctx.store.applyRemote(live);
  const outcomes = { applied: 0, stale: 0, duplicate: 0 };
  const announce = events.listenerCount('replicated') > 0;
  for (const { incoming, result } of reports) {
    outcomes[result.outcome] += 1;
    if (result.conflict) {
      metrics.conflicts.inc();
      events.emit('conflict', { ...result.conflict, node: ctx.keys.nodeId, at: clock.physicalNow() });
    }
    if (announce) events.emit('replicated', { from, record: result.outcome === 'applied' ? result.record : incoming, outcome: result.outcome });
  }
  for (const outcome of ['applied', 'stale', 'duplicate'] as const) {
    if (outcomes[outcome] > 0) metrics.merges.inc({ outcome }, outcomes[outcome]);
  }
  return reports;
}
