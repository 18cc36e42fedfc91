/**
 * Unusable records, kept local to their key.
 *
 * A stored record is unusable when its bytes do not decode (its value included), or when its HLC is past the
 * record horizon (`MAX_RECORD_WALL_MS`, e.g. the format's ceiling
 * `9999-12-31T23:59:59.999Z/999999/B`, which no write could ever follow). Every path that
 * reads records decodes them one key at a time through {@link decodeStored}, so such a
 * record never fails the group commit, merge or job it falls into:
 *
 * - in this node's store it is **quarantined**: the same MULTI that writes the key (or a
 *   small transaction of its own, when it was only read) copies the raw bytes with the
 *   reason to the capped `quarantine` list and replaces or deletes the record, so the key
 *   behaves as absent and is writable again (or repaired by the next merge from a peer);
 * - in a peer's replication job it is **poisoned**: the job applies its other keys, and
 *   this one goes to the capped `poison` list with its reason and job id.
 *
 * Both are counted in the `bad` hash (shown in `/cluster`) and reported by the node.
 * Because the rule depends on the record alone, every node treats the same bytes the same
 * way, so replicas still converge.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { MAX_RECORD_WALL_MS, wallMsOf } from '../clock/timestamp.js';
import type { BadRecordReason } from '../errors/index.js';
import { decodeRecord, type CacheRecord } from '../record/record.js';
import type { KeyBuilder } from './keys.js';

/** Entries kept in each of the quarantine and poison lists. */
export const BAD_RECORD_LIST_SIZE = 1_000;
/** Raw bytes kept per listed record (longer values are cut, with their length noted). */
const RAW_BYTES_KEPT = 4_096;

/** An unusable record found under `key`. */
export interface BadRecord {
  readonly key: string;
  readonly redisKey: string;
  readonly reason: BadRecordReason;
  /** What exactly is wrong, e.g. `bad hlc` or the out-of-range HLC. */
  readonly detail: string;
  /** The stored bytes as read. */
  readonly raw: string;
}

/** An entry of the quarantine or poison list. */
export interface BadRecordEntry {
  readonly key: string;
  readonly redisKey: string;
  readonly reason: BadRecordReason;
  readonly detail: string;
  /** The stored bytes (at most 4,096 characters). */
  readonly raw: string;
  /** Length of the stored bytes. */
  readonly rawLength: number;
  /** When it was set aside, ms since the epoch. */
  readonly at: number;
  /** Poison entries: the node whose job carried the record, and the job. */
  readonly from?: string;
  readonly jobId?: string;
}

export type Decoded = { readonly record: CacheRecord; readonly bad?: undefined } | { readonly record?: undefined; readonly bad: BadRecord };

/** Decodes one stored record, returning what is wrong with it instead of throwing. */
export function decodeStored(key: string, redisKey: string, raw: string): Decoded {
  let record: CacheRecord;
  try {
    record = decodeRecord(key, redisKey, raw);
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    return { bad: { key, redisKey, reason: 'undecodable', detail: cause, raw } };
  }
  const wallMs = wallMsOf(record.hlc);
  // The shape check lets through dates that do not exist (Date.parse rolls 02-30 into
  // March); only the canonical spelling keeps string order equal to timestamp order.
  if (!Number.isFinite(wallMs) || new Date(wallMs).toISOString() !== record.hlc.slice(0, 24)) {
    return { bad: { key, redisKey, reason: 'undecodable', detail: `HLC ${record.hlc} is not canonical`, raw } };
  }
  if (record.valueJson !== undefined && !isJson(record.valueJson)) {
    return { bad: { key, redisKey, reason: 'undecodable', detail: 'the value is not JSON', raw } };
  }
  if (wallMs > MAX_RECORD_WALL_MS) {
    return { bad: { key, redisKey, reason: 'hlc-out-of-range', detail: `HLC ${record.hlc} is past the record horizon 9998-12-31T23:59:59.999Z`, raw } };
  }
  return { record };
}

/** Decodes the values of one MGET; unusable ones are left out of the map and returned in `bad`. */
export function decodeAll(keys: readonly string[], redisKeys: readonly string[], raws: ReadonlyArray<string | null | undefined>): { records: Map<string, CacheRecord>; bad: BadRecord[] } {
  const records = new Map<string, CacheRecord>();
  const bad: BadRecord[] = [];
  keys.forEach((key, i) => {
    const raw = raws[i];
    if (raw === null || raw === undefined) return;
    const decoded = decodeStored(key, redisKeys[i] as string, raw);
    if (decoded.bad) bad.push(decoded.bad);
    else records.set(key, decoded.record);
  });
  return { records, bad };
}

/**
 * Queues, inside a MULTI, the move of `bad` records to the quarantine list. The caller
 * overwrites each record in the same MULTI, or passes `remove` to delete it.
 */
export function queueQuarantine(multi: ChainableCommander, keys: KeyBuilder, bad: readonly BadRecord[], nowMs: number, remove = false): void {
  if (bad.length === 0) return;
  // One transaction's keys share a partition (and a slot on a cluster): so do these lists.
  const partition = keys.partition((bad[0] as BadRecord).key);
  multi.lpush(keys.quarantine(partition), ...bad.map((b) => JSON.stringify(entryOf(b, nowMs))));
  multi.ltrim(keys.quarantine(partition), 0, BAD_RECORD_LIST_SIZE - 1);
  multi.hincrby(keys.badRecordCounts(partition), 'quarantined', bad.length);
  if (remove) multi.del(...bad.map((b) => b.redisKey));
}

/** Records unusable records a peer's job carried in this node's poison list. */
export async function recordPoisoned(redis: Redis, keys: KeyBuilder, bad: readonly BadRecord[], from: string, jobId: string | undefined, nowMs: number): Promise<void> {
  if (bad.length === 0) return;
  const entries = bad.map((b) => JSON.stringify({ ...entryOf(b, nowMs), from, ...(jobId === undefined ? {} : { jobId }) }));
  const results = await redis
    .multi()
    .lpush(keys.poison, ...entries)
    .ltrim(keys.poison, 0, BAD_RECORD_LIST_SIZE - 1)
    .hincrby(keys.badRecordCounts(0), 'poisoned', bad.length)
    .exec();
  for (const [error] of results ?? []) if (error) throw error;
}

/** Running counts of records quarantined and poisoned at this node. */
export async function badRecordCounts(redis: Redis, keys: KeyBuilder): Promise<{ quarantined: number; poisoned: number }> {
  const rows = await Promise.all(partitionsOf(keys).map((p) => redis.hmget(keys.badRecordCounts(p), 'quarantined', 'poisoned')));
  let quarantined = 0;
  let poisoned = 0;
  for (const [q, p] of rows) {
    quarantined += Number(q ?? 0);
    poisoned += Number(p ?? 0);
  }
  return { quarantined, poisoned };
}

/** The newest `limit` entries of the quarantine and poison lists. */
export async function listBadRecords(redis: Redis, keys: KeyBuilder, limit: number): Promise<{ quarantined: BadRecordEntry[]; poisoned: BadRecordEntry[] }> {
  const end = Math.max(0, limit - 1);
  const [lists, p] = await Promise.all([Promise.all(partitionsOf(keys).map((part) => redis.lrange(keys.quarantine(part), 0, end))), redis.lrange(keys.poison, 0, end)]);
  // Each partition's list is newest first; together, newest first across partitions.
  const quarantined = lists
    .flat()
    .map((r) => JSON.parse(r) as BadRecordEntry)
    .sort((a, b) => b.at - a.at)
    .slice(0, limit);
  return { quarantined, poisoned: p.map((r) => JSON.parse(r) as BadRecordEntry) };
}

function partitionsOf(keys: KeyBuilder): number[] {
  return Array.from({ length: keys.partitions }, (_, i) => i);
}

/** Values stay JSON text through merges; one parse here keeps a broken one from failing reads later. */
function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function entryOf(b: BadRecord, nowMs: number): BadRecordEntry {
  return { key: b.key, redisKey: b.redisKey, reason: b.reason, detail: b.detail, raw: b.raw.slice(0, RAW_BYTES_KEPT), rawLength: b.raw.length, at: nowMs };
}
