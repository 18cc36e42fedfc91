/**
 * Digest verification: the maintained digest checked against the records themselves.
 *
 * The digest is kept in the same MULTI as every write the node makes, so it drifts from
 * the data only when something bypasses the node: a record edited or deleted in Redis by
 * hand, a restore of only some keys, a digest key deleted, a bug. Like Riak's periodic
 * tree rebuild, this pass recomputes each record's hash and corrects the digest where it
 * disagrees; the next exchange then sees the difference and repairs the record from the
 * peers (the record with the highest HLC wins, as always).
 *
 * Three checks, after a fold of the digest log:
 * 1. records → entries: a record whose hash is not its entry's (changed or unknown);
 * 2. entries → records: an entry whose record is gone;
 * 3. entries → tree: each partition's tree is added up again from the entries read in
 *    check 2 and replaced where it differs. Only folds write entries and trees, together
 *    in one MULTI, and none runs during checks 2 and 3 (`exclusive` runs them on the
 *    node's fold chain), so the entries read are the ones the tree sums.
 * Check 1 needs no such hold: whatever it finds is checked again after a fold. So the
 * node's folds wait out only the second half of a pass, not the whole of it.
 * A key found wrong by checks 1 and 2 is logged for the fold like any written key: the
 * fold sets its entry from its record as it is then, so a write racing the check cannot
 * be undone by it.
 */
import { keyOfEntryField, leafOf, recordHash } from '../digest/digest.js';
import { decodeHash, HashTree } from '../digest/tree.js';
import { logKeys, type Folder } from '../store/digest-fold.js';
import { readEntryHashes } from '../store/digest-store.js';
import type { RecordStore } from '../store/record-store.js';
import { mgetAll, scanAll, scanPage } from '../store/slot-reads.js';

/**
 * Corrects the digest from the records; resolves with the number of keys (and trees)
 * corrected. `exclusive` runs a function while no fold of the node's runs.
 */
export async function verifyDigest(store: RecordStore, pause: () => Promise<void>, isClosing: () => boolean, exclusive: <T>(fn: () => Promise<T>) => Promise<T>): Promise<number> {
  const { digestRedis: redis, keys, folder } = store;
  if (!folder) return 0;
  await folder.fold();
  const suspects: string[] = [];
  let cursor = '0';
  do {
    const [next, redisKeys] = await scanPage(redis, cursor, keys.recordPattern(), 500);
    cursor = next;
    if (redisKeys.length === 0) continue;
    const userKeys = redisKeys.map((k) => keys.userKey(k));
    suspects.push(...(await disagreeing(store, userKeys)));
    await pause();
  } while (cursor !== '0' && !isClosing());
  if (isClosing()) return 0;
  const trees = await exclusive(() => checkEntries(store, folder, suspects, pause, isClosing));
  if (trees === undefined) return 0;
  // A suspect may only have been written after the fold above: fold again and count the
  // keys that still disagree, then log those so the fold sets them from their records.
  await folder.fold();
  const wrong: string[] = [];
  const unique = [...new Set(suspects)];
  for (let at = 0; at < unique.length; at += 500) wrong.push(...(await disagreeing(store, unique.slice(at, at + 500))));
  if (wrong.length > 0) {
    await logKeys(redis, keys, wrong);
    await folder.fold();
  }
  return trees + wrong.length;
}

/**
 * Checks 2 and 3: adds to `suspects` the entries whose record is gone, and replaces each
 * tree that is not the sum of its entries; resolves with the trees replaced (undefined
 * when the node closed meanwhile).
 */
async function checkEntries(store: RecordStore, folder: Folder, suspects: string[], pause: () => Promise<void>, isClosing: () => boolean): Promise<number | undefined> {
  const { digestRedis: redis, keys } = store;
  const shape = folder.shape;
  const trees = Array.from({ length: keys.partitions }, () => new HashTree(shape));
  const seen = new Set<string>();
  for await (const found of scanAll(redis, keys.digestBucketPattern, 500)) {
    for (const bucket of found) {
      if (isClosing()) return undefined;
      if (seen.has(bucket)) continue;
      seen.add(bucket);
      // HSCAN may return an entry twice: a map keeps each key once.
      const entries = new Map<string, number>();
      let scan = '0';
      do {
        const [next, flat] = await redis.hscanBuffer(bucket, scan, 'COUNT', 1_000);
        scan = next.toString();
        for (let i = 0; i + 1 < flat.length; i += 2) entries.set(keyOfEntryField((flat[i] as Buffer).toString()), decodeHash(flat[i + 1] as Buffer) ?? 0);
      } while (scan !== '0');
      const listed = [...entries.keys()];
      const raws = await mgetAll(redis, listed.map((k) => keys.record(k)));
      listed.forEach((key, i) => {
        if (raws[i] == null) suspects.push(key);
      });
      for (const [key, hash] of entries) (trees[keys.partition(key)] as HashTree).add(leafOf(key, shape), hash);
      await pause();
    }
  }
  let replaced = 0;
  for (const [partition, tree] of trees.entries()) if (await folder.replaceTreeIfDiffers(partition, tree.bytes())) replaced += 1;
  return replaced;
}

/** The keys whose record's hash is not the one their digest entry holds. */
async function disagreeing(store: RecordStore, userKeys: readonly string[]): Promise<string[]> {
  const { digestRedis: redis, keys, folder } = store;
  const [raws, entries] = await Promise.all([mgetAll(redis, userKeys.map((k) => keys.record(k))), readEntryHashes(redis, keys, (folder as Folder).shape, userKeys)]);
  return userKeys.filter((key, i) => {
    const raw = raws[i];
    return (raw == null ? undefined : recordHash(key, raw)) !== entries.get(key);
  });
}
