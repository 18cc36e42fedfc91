/**
 * Safe tombstone collection.
 *
 * A tombstone, or a record past its TTL, is physically removed only when
 * 1. `tombstoneRetentionMs` passed since the delete (or since the expiry), and
 * 2. every configured peer acknowledged it: the peer's own record of the key has the same
 *    or a newer HLC, or the peer already collected it (its `dig:gone:` marker has).
 *
 * The acknowledgement is read by this node from the peer's Redis (records and `dig:*`
 * keys, both read-only for peers), so a peer never writes into this node's Redis. A peer
 * that is unreachable acknowledges nothing: its tombstones wait, counted per peer. This is
 * what Cassandra's `gc_grace_seconds` only approximates with time: here the grace ends
 * when the peers have the delete, not when a timer says they probably do.
 *
 * A collected tombstone leaves a marker (`dig:gone:<key>`, the tombstone itself) for
 * another `tombstoneRetentionMs`: peers that still hold the tombstone see it was
 * acknowledged, an older record arriving meanwhile is dropped instead of resurrecting the
 * key ({@link dropCollected}), and a peer restored from a snapshot pulls the delete back.
 */
import type { Redis } from 'ioredis';
import { compareHlc, wallMsOf } from '../clock/timestamp.js';
import { decodeRecord, type CacheRecord } from '../record/record.js';
import { queueLogEntry } from '../store/digest-fold.js';
import type { KeyBuilder } from '../store/keys.js';
import type { RecordStore } from '../store/record-store.js';
import { mgetAll } from '../store/slot-reads.js';

/** A peer as the collector sees it: a connection to its Redis and its key names. */
export interface CollectorPeer {
  readonly id: string;
  readonly redis: Redis;
  readonly keys: KeyBuilder;
}

export interface CollectReport {
  /** Tombstones and expired records removed by this pass. */
  collected: number;
  /** Due tombstones (retention passed) that each peer has not acknowledged yet. */
  pending: Record<string, number>;
}

/** When a tombstone or TTL record may be collected (ms), or `undefined` for a live record without TTL. */
export function collectableAt(record: CacheRecord, retentionMs: number): number | undefined {
  if (record.deleted) return wallMsOf(record.hlc) + retentionMs;
  if (record.expiresAt !== undefined) return record.expiresAt + retentionMs;
  return undefined;
}

/** One collection pass over at most `maxKeys` due entries of the collection index. */
export async function collectTombstones(store: RecordStore, peers: readonly CollectorPeer[], nowMs: number, batch = 500, maxKeys = 10_000): Promise<CollectReport> {
  const report: CollectReport = { collected: 0, pending: Object.fromEntries(peers.map((p) => [p.id, 0])) };
  // Each partition has its own index (one slot each on a cluster); the budget is shared.
  for (const partition of store.partitionList()) {
    const budget = Math.ceil(maxKeys / store.keys.partitions);
    await collectPartition(store, peers, nowMs, partition, batch, budget, report);
  }
  return report;
}

async function collectPartition(store: RecordStore, peers: readonly CollectorPeer[], nowMs: number, partition: number, batch: number, maxKeys: number, report: CollectReport): Promise<void> {
  const keys = store.keys;
  const index = keys.collectIndex(partition);
  const retentionMs = store.options.tombstoneRetentionMs;
  let offset = 0;
  while (offset < maxKeys) {
    const due = await store.redis.zrangebyscore(index, '-inf', nowMs, 'LIMIT', offset, batch);
    if (due.length === 0) break;
    const raws = await store.redis.mget(...due.map((k) => keys.record(k)));
    const candidates = new Map<string, { raw: string; record: CacheRecord }>();
    const reindex: Array<string | number> = [];
    const forget: string[] = [];
    due.forEach((key, i) => {
      const raw = raws[i];
      if (raw == null) return void forget.push(key);
      let record: CacheRecord;
      try {
        record = decodeRecord(key, keys.record(key), raw);
      } catch {
        return void offset++; // left for verification and repair; never collected blind
      }
      const at = collectableAt(record, retentionMs);
      if (at === undefined) forget.push(key);
      else if (at > nowMs) reindex.push(at, key);
      else candidates.set(key, { raw, record });
    });
    if (forget.length > 0) await store.redis.zrem(index, ...forget);
    if (reindex.length > 0) await store.redis.zadd(index, ...reindex);
    const acked = new Map<string, number>();
    for (const peer of peers) {
      const have = await acknowledgedBy(peer, [...candidates.values()].map((c) => c.record));
      for (const key of candidates.keys()) {
        if (have.has(key)) acked.set(key, (acked.get(key) ?? 0) + 1);
        else report.pending[peer.id] = (report.pending[peer.id] ?? 0) + 1;
      }
    }
    const ready = [...candidates].filter(([key]) => (acked.get(key) ?? 0) === peers.length);
    offset += candidates.size - ready.length;
    if (ready.length > 0) report.collected += await removeCollected(store, ready.map(([key, c]) => ({ key, raw: c.raw })));
    if (due.length < batch) break;
  }
}

/** Keys whose record the peer holds at the same or a newer HLC, or has collected. Empty while the peer is unreachable. */
async function acknowledgedBy(peer: CollectorPeer, records: readonly CacheRecord[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (records.length === 0) return out;
  try {
    const [theirs, gone] = await Promise.all([
      mgetAll(peer.redis, records.map((r) => peer.keys.record(r.key))),
      mgetAll(peer.redis, records.map((r) => peer.keys.gone(r.key))),
    ]);
    records.forEach((record, i) => {
      for (const raw of [theirs[i], gone[i]]) {
        if (raw == null) continue;
        const hlc = raw.split('|', 3)[1];
        if (hlc !== undefined && compareHlc(hlc, record.hlc) >= 0) out.add(record.key);
      }
    });
  } catch {
    // Unreachable: nothing acknowledged this pass, the tombstones wait.
  }
  return out;
}

/** Deletes records that are still exactly `raw`, leaving `dig:gone:` markers; resolves with how many. */
async function removeCollected(store: RecordStore, entries: ReadonlyArray<{ key: string; raw: string }>): Promise<number> {
  const keys = store.keys;
  const retentionMs = store.options.tombstoneRetentionMs;
  return store.transact(
    entries.map((e) => keys.record(e.key)),
    (values) => {
      const still = entries.filter((e, i) => values[i] === e.raw);
      if (still.length === 0) return { result: 0 };
      return {
        result: still.length,
        write: (multi) => {
          multi.del(...still.map((e) => keys.record(e.key)));
          multi.zrem(keys.collectIndex(keys.partition((still[0] as { key: string }).key)), ...still.map((e) => e.key));
          for (const e of still) multi.set(keys.gone(e.key), e.raw, 'PX', retentionMs);
          if (store.digest) queueLogEntry(multi, keys, keys.partition((still[0] as { key: string }).key), JSON.stringify(still.map((e) => e.key)));
        },
      };
    },
  );
}

/**
 * Drops incoming records that lose to a tombstone this node already collected, so that an
 * old write arriving after collection (a peer restored from a snapshot, say) does not
 * bring the key back. Only records older than the retention can be in that position, so
 * fresh records cost nothing.
 */
export async function dropCollected(redis: Redis, keys: KeyBuilder, records: CacheRecord[], nowMs: number, retentionMs: number): Promise<CacheRecord[]> {
  const old = records.filter((r) => wallMsOf(r.hlc) < nowMs - retentionMs);
  if (old.length === 0) return records;
  const [locals, gone] = await Promise.all([mgetAll(redis, old.map((r) => keys.record(r.key))), mgetAll(redis, old.map((r) => keys.gone(r.key)))]);
  const drop = new Set<CacheRecord>();
  old.forEach((record, i) => {
    const marker = gone[i];
    if (locals[i] != null || marker == null) return;
    const hlc = marker.split('|', 3)[1];
    if (hlc !== undefined && compareHlc(record.hlc, hlc) <= 0) drop.add(record);
  });
  return drop.size === 0 ? records : records.filter((r) => !drop.has(r));
}
