/**
 * Reading records from any node's namespace, one key at a time: an unusable record is
 * handed to `onBad` instead of failing the read of its neighbours (see `quarantine.ts`).
 */
import type { Redis } from 'ioredis';
import type { CacheRecord } from '../record/record.js';
import type { KeyBuilder } from './keys.js';
import { decodeAll, type BadRecord } from './quarantine.js';
import { mgetAll, scanPage } from './slot-reads.js';

/**
 * Reads records of `keys` from any node's namespace (`keyBuilder` names the node). Peer
 * workers use it on the origin's Redis to fetch the current record of each replicated key.
 * Unusable records are left out and handed to `onBad`, one key at a time.
 */
export async function readRecords(redis: Redis, keyBuilder: KeyBuilder, keys: readonly string[], onBad: (bad: BadRecord) => void): Promise<CacheRecord[]> {
  if (keys.length === 0) return [];
  const redisKeys = keys.map((k) => keyBuilder.record(k));
  const { records, bad } = decodeAll(keys, redisKeys, await mgetAll(redis, redisKeys));
  bad.forEach(onBad);
  return [...records.values()];
}

/** One SCAN page of a node's records (tombstones and expired records included). */
export async function scanRecords(
  redis: Redis,
  keyBuilder: KeyBuilder,
  keyPrefix: string,
  cursor: string,
  count: number,
  onBad: (bad: BadRecord) => void,
): Promise<{ records: CacheRecord[]; cursor: string }> {
  const [next, found] = await scanPage(redis, cursor, keyBuilder.recordPattern(keyPrefix), count);
  // With partitions the pattern's tag is a wildcard: keep the keys that really start with the prefix.
  const redisKeys = keyPrefix === '' || keyBuilder.partitions === 1 ? found : found.filter((k) => keyBuilder.userKey(k).startsWith(keyPrefix));
  if (redisKeys.length === 0) return { records: [], cursor: next };
  const { records, bad } = decodeAll(redisKeys.map((k) => keyBuilder.userKey(k)), redisKeys, await mgetAll(redis, redisKeys));
  bad.forEach(onBad);
  return { records: [...records.values()], cursor: next };
}
