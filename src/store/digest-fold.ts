/**
 * The digest's change log and its fold: how the digest stays exact without slowing writes.
 *
 * A write or merge cannot afford digest work per key inside its transaction (measured: the
 * eager version, five HINCRBYs and an HSET per key inside the MULTI, cut local write
 * throughput at c=64 to 0.22×). So the MULTI that commits a batch appends **one** entry
 * to `dig:log`: the JSON list of the keys it changed, the same string the outbox entry
 * carries. The log is part of the same transaction as the records, so no change is lost.
 *
 * The fold (every `foldIntervalMs` and sooner under a heavy write load, before each
 * anti-entropy round, and after anything that changed records behind the write path: the
 * collector, quarantine, verification) brings the digest up to date with the records of
 * the logged keys. The folder keeps each partition's tree in memory (a {@link HashTree},
 * 273 KiB at the default shape) and, per step:
 *
 *   LRANGE dig:log ─► keys ─► MGET their records, HMGET their entries (per bucket)
 *   ─► hash each record; tree.add(leaf, new − old) in memory ─► one MULTI: HSET/HDEL the
 *      entries, SETRANGE the tree's changed 1 KiB chunks, LTRIM the folded entries,
 *      SET dig:stamp
 *
 * Entries are set from the records as they are when the fold reads them, not from what
 * the log says, so a fold is never wrong about a key: a write that lands after the read
 * logged its key again, and the next step sets it. The MULTI runs under a WATCH of
 * `dig:stamp`, a random token each step writes: the tree in memory is trusted only while
 * the stamp is the one this folder wrote last, so a digest changed behind its back (a
 * restore from a snapshot, a rebuild, another process) is reloaded rather than
 * overwritten. A crash before EXEC leaves the log in place and the next fold repeats the
 * step; entries, tree and trim commit together, so a step is never applied twice. A hot
 * key written a thousand times between folds is folded once.
 *
 * The folder runs in a worker thread by default (`fold-thread.ts`): the hashing, and the
 * ~1.5 µs ioredis spends decoding each element of a reply, never hold up the node's event
 * loop, whose only digest work is one RPUSH per transaction (bench scenario 10, upkeep).
 */
import { randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { bucketOf, CELL_BYTES, cellCount, entryField, leafOf, recordHash, type DigestShape } from '../digest/digest.js';
import { CHUNK_CELLS, decodeHash, encodeHash, HashTree } from '../digest/tree.js';
import type { KeyBuilder } from './keys.js';
import { groupBy } from './group-by.js';
import { Serial } from './serial.js';
import type { TransactionPlan } from './transaction.js';

/**
 * Queues the append of one log entry (inside the MULTI that changes the keys): `keysJson`
 * is the JSON array of the changed keys, all of one partition (one transaction's keys).
 */
export function queueLogEntry(multi: ChainableCommander, keys: KeyBuilder, partition: number, keysJson: string): void {
  multi.rpush(keys.digestLog(partition), keysJson);
}

/** Logs `userKeys` for the next fold, outside any transaction (one entry per partition). */
export async function logKeys(redis: Redis, keys: KeyBuilder, userKeys: readonly string[]): Promise<void> {
  const byPartition = groupBy(userKeys, (key) => keys.partition(key));
  await Promise.all([...byPartition].map(([p, list]) => redis.rpush(keys.digestLog(p), JSON.stringify(list))));
}

/**
 * Log entries folded per step by default. At c=64 an entry holds about 19 keys, so a step
 * is about 20,000 keys: one MGET, one HMGET and one HSET per bucket touched (at most
 * 1024), and the tree's changed chunks; a few milliseconds of Redis.
 */
export const FOLD_STEP_ENTRIES = 1_000;

/** Steps of one fold that may find the stamp changed before the fold gives up. */
const MAX_CONFLICTS = 3;

/** Runs an optimistic transaction over `watchKeys` (a store's `transact`). */
export type Transact = <T>(watchKeys: readonly string[], plan: (values: ReadonlyArray<string | null>) => TransactionPlan<T>) => Promise<T>;

/** What a fold is asked to do. */
export interface FoldOptions {
  /** Log entries per step. @defaultValue {@link FOLD_STEP_ENTRIES} */
  readonly maxEntries?: number;
  /** Pause between steps, so the fold yields Redis to foreground work. Unit: ms. @defaultValue 0 */
  readonly pauseMs?: number;
}

/** Folds a node's digest log, here or in a worker thread (`fold-thread.ts`). */
export interface Folder {
  readonly shape: DigestShape;
  /** Folds the whole log; resolves with the keys folded. Calls queue behind each other. */
  fold(options?: FoldOptions): Promise<number>;
  /** Forgets the trees held in memory: the next fold reloads them (after the digest was dropped). */
  forget(): Promise<void>;
  /**
   * Replaces a partition's tree with `bytes` (added up from the entries by verification)
   * when the stored one differs; resolves with whether it did.
   */
  replaceTreeIfDiffers(partition: number, bytes: Buffer): Promise<boolean>;
  close(): Promise<void>;
}

interface PartitionState {
  /** The tree as this folder last committed or loaded it; `undefined`: load it first. */
  tree: HashTree | undefined;
  /** The `dig:stamp` that goes with {@link tree}. */
  stamp: string | null;
  /**
   * Entries this folder wrote or read since it loaded the tree (key → hash, 0: none), so a
   * key folded again needs no HMGET: reading an entry back costs more than hashing its
   * record. Cleared with the tree; at most its share of {@link KNOWN_ENTRIES}, oldest dropped first.
   */
  known: Map<string, number>;
}

/** Entries a folder remembers, over all its partitions (about 70 bytes of memory each: 17 MB). */
const KNOWN_ENTRIES = 250_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The folder itself: the trees in memory and the steps that keep the Redis copy. */
export class DigestFolder implements Folder {
  readonly shape: DigestShape;
  private readonly redis: Redis;
  private readonly keys: KeyBuilder;
  private readonly transact: Transact;
  private readonly states: PartitionState[];
  private readonly chain = new Serial();

  /** `redis` reads (no WATCH); `transact` commits each step under a WATCH of the stamp. */
  constructor(redis: Redis, keys: KeyBuilder, shape: DigestShape, transact: Transact) {
    this.redis = redis;
    this.keys = keys;
    this.shape = shape;
    this.transact = transact;
    this.states = Array.from({ length: keys.partitions }, () => ({ tree: undefined, stamp: null, known: new Map() }));
  }

  fold(options: FoldOptions = {}): Promise<number> {
    const maxEntries = options.maxEntries ?? FOLD_STEP_ENTRIES;
    return this.serial(async () => {
      let folded = 0;
      // Each partition folds its own log into its own buckets and tree share (one slot each).
      for (let p = 0; p < this.keys.partitions; p++) {
        for (let conflicts = 0; ; ) {
          const step = await this.step(p, maxEntries);
          if (step === 'conflict') {
            // Only something outside this folder writes the stamp: a second folder of the
            // same node (the lease and the repair CLI's heartbeat check prevent it), or a
            // restore. Reload and retry a few times, then give up until the next fold.
            if (++conflicts > MAX_CONFLICTS) throw new Error(`the digest of node ${this.keys.nodeId} (partition ${p}) keeps changing behind its folder; is another process folding it?`);
            continue;
          }
          folded += step.keys;
          if (step.entries < maxEntries) break;
          if (options.pauseMs) await sleep(options.pauseMs);
        }
      }
      return folded;
    });
  }

  forget(): Promise<void> {
    return this.serial(async () => {
      for (const state of this.states) {
        state.tree = undefined;
        state.known.clear();
      }
    });
  }

  replaceTreeIfDiffers(partition: number, bytes: Buffer): Promise<boolean> {
    return this.serial(async () => {
      const state = this.states[partition] as PartitionState;
      await this.load(partition, state);
      const wanted = new HashTree(this.shape, bytes);
      if (Buffer.compare((state.tree as HashTree).bytes(), wanted.bytes()) === 0) return false;
      const expected = state.stamp;
      const next = randomBytes(8).toString('hex');
      state.tree = undefined;
      const stampKey = this.keys.digestStamp(partition);
      const replaced = await this.transact([stampKey], ([now]) =>
        now !== expected ? { result: false } : { result: true, write: (multi) => void multi.set(this.keys.digestTree(partition), wanted.bytes()).set(stampKey, next) },
      );
      if (replaced) {
        state.tree = wanted;
        state.stamp = next;
      }
      return replaced;
    });
  }

  async close(): Promise<void> {
    await this.chain.idle();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.chain.run(fn);
  }

  /** One step; `entries` is the log entries consumed (0 when the log is empty); `conflict` when the stamp changed. */
  private async step(partition: number, maxEntries: number): Promise<{ entries: number; keys: number } | 'conflict'> {
    const { keys, shape } = this;
    const log = keys.digestLog(partition);
    const raw = await this.redis.lrange(log, 0, maxEntries - 1);
    if (raw.length === 0) return { entries: 0, keys: 0 };
    const logged = new Set<string>();
    for (const text of raw) for (const key of JSON.parse(text) as string[]) logged.add(key);
    const userKeys = [...logged];
    const leaves = userKeys.map((key) => leafOf(key, shape));
    const fields = userKeys.map((key, i) => entryField(leaves[i] as number, key));
    const byBucket = groupBy(userKeys.map((_, i) => i), (i) => bucketOf(leaves[i] as number));
    const stampKey = keys.digestStamp(partition);
    const state = this.states[partition] as PartitionState;
    // One slot per partition, so one pipeline on a cluster too.
    const read = this.redis.pipeline().get(stampKey).mget(...userKeys.map((k) => keys.record(k)));
    const unknown: Array<[bucket: number, positions: number[]]> = [];
    for (const [bucket, list] of byBucket) {
      const missing = list.filter((i) => !state.known.has(userKeys[i] as string));
      if (missing.length === 0) continue;
      unknown.push([bucket, missing]);
      read.hmgetBuffer(keys.digestBucket(partition, bucket), ...missing.map((i) => fields[i] as string));
    }
    const replies = (await read.exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    const stamp = replies[0]?.[1] as string | null;
    // A null stamp is never trusted: nothing proves the tree is the one this folder saw.
    if (!state.tree || stamp === null || stamp !== state.stamp) {
      await this.load(partition, state);
      // The entries remembered went with the old tree: if any went unread, read them all again.
      if (unknown.reduce((n, [, positions]) => n + positions.length, 0) < userKeys.length) return 'conflict';
    }
    const tree = state.tree as HashTree;
    const records = replies[1]?.[1] as Array<string | null>;
    unknown.forEach(([, positions], u) => {
      const current = (replies[u + 2]?.[1] ?? []) as Array<Buffer | null>;
      positions.forEach((i, j) => state.known.set(userKeys[i] as string, decodeHash(current[j]) ?? 0));
    });

    const sets: Array<[bucket: number, args: Array<string | Buffer>]> = [];
    const dels: Array<[bucket: number, fields: string[]]> = [];
    const after = new Map<string, number>();
    for (const [bucket, list] of byBucket) {
      const set: Array<string | Buffer> = [];
      const del: string[] = [];
      for (const i of list) {
        const key = userKeys[i] as string;
        const record = records[i];
        const hash = record == null ? 0 : recordHash(key, record);
        const before = state.known.get(key) ?? 0;
        if (before === hash) continue;
        tree.add(leaves[i] as number, hash - before);
        after.set(key, hash);
        if (hash === 0) del.push(fields[i] as string);
        else set.push(fields[i] as string, encodeHash(hash));
      }
      if (set.length > 0) sets.push([bucket, set]);
      if (del.length > 0) dels.push([bucket, del]);
    }
    const dirty = tree.takeDirty();
    const expected = state.stamp;
    const next = randomBytes(8).toString('hex');
    let committed = false;
    try {
      committed = await this.transact([stampKey], ([now]) =>
        now !== expected
          ? { result: false }
          : {
              result: true,
              write: (multi) => {
                for (const [bucket, args] of sets) multi.hset(keys.digestBucket(partition, bucket), ...args);
                for (const [bucket, list] of dels) multi.hdel(keys.digestBucket(partition, bucket), ...list);
                queueTreeWrites(multi, keys.digestTree(partition), tree, dirty);
                multi.ltrim(log, raw.length, -1);
                multi.set(stampKey, next);
              },
            },
      );
    } finally {
      // The tree in memory holds this step's changes: without the commit it is not Redis's.
      if (!committed) {
        state.tree = undefined;
        state.known.clear();
      }
    }
    if (!committed) return 'conflict';
    state.stamp = next;
    for (const [key, hash] of after) {
      // Re-inserted at the end: the map's order is the order keys were last folded.
      state.known.delete(key);
      state.known.set(key, hash);
    }
    const cap = Math.ceil(KNOWN_ENTRIES / this.keys.partitions);
    if (state.known.size > cap) for (const key of state.known.keys()) if (state.known.delete(key) && state.known.size <= cap) break;
    return { entries: raw.length, keys: userKeys.length };
  }

  /** Reads a partition's tree and its stamp as one snapshot. */
  private async load(partition: number, state: PartitionState): Promise<void> {
    const replies = (await this.redis.multi().get(this.keys.digestStamp(partition)).getBuffer(this.keys.digestTree(partition)).exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    state.stamp = replies[0]?.[1] as string | null;
    state.tree = new HashTree(this.shape, replies[1]?.[1] as Buffer | null);
    state.known.clear();
  }
}

/** Queues the writes of a tree's changed chunks (the whole tree in one SET when most changed). */
function queueTreeWrites(multi: ChainableCommander, key: string, tree: HashTree, dirty: readonly number[]): void {
  if (dirty.length * CHUNK_CELLS * 2 > cellCount(tree.shape)) {
    multi.set(key, tree.bytes());
    return;
  }
  for (const chunk of dirty) multi.setrange(key, chunk * CHUNK_CELLS * CELL_BYTES, tree.bytes(chunk * CHUNK_CELLS, CHUNK_CELLS));
}
