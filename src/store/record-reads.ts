/**
 * Reading records from any node's namespace, one key at a time: an unusable record is
 * handed to `onBad` instead of failing the read of its neighbours (see `quarantine.ts`).
 */
import type { Redis } from 'ioredis';
import type { CacheRecord } from '../record/record.js';
import type { KeyBuilder } from './keys.js';
import { decodeAll, type BadRecord } from './quarantine.js';

/**
 * Reads records of `keys` from any node's namespace (`keyBuilder` names the node). Peer
 * workers use it on the origin's Redis to fetch the current record of each replicated key.
 * Unusable records are left out and handed to `onBad`, one key at a time.
 */
export async function readRecords(redis: Redis, keyBuilder: KeyBuilder, keys: readonly string[], onBad: (bad: BadRecord) => void): Promise<CacheRecord[]> {
  if (keys.length === 0) return [];
  const redisKeys = keys.map((k) => keyBuilder.record(k));
  const { records, bad } = decodeAll(keys, redisKeys, await redis.mget(...redisKeys));
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
  const [next, redisKeys] = await redis.scan(cursor, 'MATCH', keyBuilder.recordPattern(keyPrefix), 'COUNT', count);
  if (redisKeys.length === 0) return { records: [], cursor: next };
  const { records, bad } = decodeAll(redisKeys.map((k) => keyBuilder.userKey(k)), redisKeys, await redis.mget(...redisKeys));
  bad.forEach(onBad);
  return { records: [...records.values()], cursor: next };
}
