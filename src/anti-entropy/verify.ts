/**
 * Digest verification: the maintained digest checked against the records themselves.
 *
 * The digest is kept in the same MULTI as every write the node makes, so it drifts from
 * the data only when something bypasses the node: a record edited or deleted in Redis by
 * hand, a restore of only some keys, a bug. Like Riak's periodic tree rebuild, this pass
 * recomputes each record's hash and corrects the digest where it disagrees; the next
 * exchange then sees the difference and repairs the record from the peers (the record
 * with the highest HLC wins, as always).
 *
 * Two sweeps: records → digest (changed or unknown records), digest → records (entries
 * whose record is gone). It runs right after a fold of the digest log. Each correction is
 * a log entry appended under the store's in-process key lock, so no write or merge of that
 * key slips between reading the record and logging its hash.
 */
import { bucketOf, entryField, keyOfEntryField, leafOf, recordHash, type DigestShape } from '../digest/digest.js';
import { foldDigestLog, queueLogEntry } from '../store/digest-log.js';
import { leafEntriesOf } from '../store/digest-store.js';
import type { RecordStore } from '../store/record-store.js';
import { mgetAll, scanAll, scanPage } from '../store/slot-reads.js';

/** Corrects the digest from the records; resolves with the number of entries corrected. */
export async function verifyDigest(store: RecordStore, shape: DigestShape, pause: () => Promise<void>, isClosing: () => boolean): Promise<number> {
  const { digestRedis: redis, keys } = store;
  let fixes = 0;
  let cursor = '0';
  do {
    const [next, redisKeys] = await scanPage(redis, cursor, keys.recordPattern(), 500);
    cursor = next;
    if (redisKeys.length === 0) continue;
    const userKeys = redisKeys.map((k) => keys.userKey(k));
    const [raws, entries] = await Promise.all([mgetAll(redis, redisKeys), leafEntriesOf(redis, keys, shape, userKeys)]);
    const suspects = userKeys.filter((key, i) => {
      const raw = raws[i];
      return (raw == null ? undefined : recordHash(key, raw)) !== entries.get(key);
    });
    fixes += await fix(store, shape, suspects);
    await pause();
  } while (cursor !== '0' && !isClosing());
  // The buckets that exist (of every partition), each walked with HSCAN.
  for await (const buckets of scanAll(redis, keys.digestBucketPattern, 500)) {
    for (const bucket of buckets) {
      if (isClosing()) return fixes;
      let scan = '0';
      do {
        const [next, flat] = await redis.hscan(bucket, scan, 'COUNT', 1_000);
        scan = next;
        const listed = flat.filter((_, i) => i % 2 === 0).map(keyOfEntryField);
        if (listed.length === 0) continue;
        const raws = await mgetAll(redis, listed.map((k) => keys.record(k)));
        fixes += await fix(store, shape, listed.filter((_, i) => raws[i] == null));
        await pause();
      } while (scan !== '0');
    }
  }
  return fixes;
}

/** Re-reads each suspect under its key lock and corrects its digest entry if it is still wrong. */
async function fix(store: RecordStore, shape: DigestShape, suspects: readonly string[]): Promise<number> {
  let fixes = 0;
  for (const key of suspects) {
    const redisKey = store.keys.record(key);
    fixes += await store.withKeyLocks([redisKey], async () => {
      // Fold first: with the key locked, no new entry for it can appear, so afterwards its
      // leaf entry is exactly what the log says, and the correction chains onto it.
      await foldDigestLog(store.digestRedis, store.keys, shape);
      const [raw, entry] = await Promise.all([store.digestRedis.get(redisKey), store.digestRedis.hget(store.keys.digestBucket(store.keys.partition(key), bucketOf(leafOf(key, shape), shape)), entryField(leafOf(key, shape), key))]);
      const actual = raw === null ? undefined : recordHash(key, raw);
      const recorded = entry === null ? undefined : Number(entry);
      if (actual === recorded) return 0;
      const multi = store.digestRedis.multi();
      queueLogEntry(multi, store.keys, [[key, recorded ?? null, actual ?? null]]);
      await multi.exec();
      return 1;
    });
  }
  return fixes;
}
