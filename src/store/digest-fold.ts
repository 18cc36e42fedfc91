/**
 * The digest's change log and its fold: how the digest stays exact without slowing writes.
 *
 * A write or merge cannot afford digest work per key inside its transaction (measured: the
 * eager version, five HINCRBYs and an HSET per key inside the MULTI, cut local write
 * throughput at c=64 to 0.22×). So the MULTI that commits a batch appends **one** entry
 * to `dig:log`: each key with its record's hash before and after (the old record was read
 * under WATCH anyway). The log is part of the same transaction as the records, so no
 * change is lost or reordered.
 *
 * The fold (every `foldIntervalMs`, and before each anti-entropy round) applies a prefix
 * of the log. The folder keeps each partition's tree in memory (a {@link HashTree},
 * 273 KiB at the default shape) and, per step:
 *
 *   LRANGE dig:log ─► per key: the hash before its first change, after its last
 *   ─► tree.add(leaf, after − before) in memory ─► one MULTI: HSET/HDEL the entries,
 *      SETRANGE the tree's changed 1 KiB chunks, LTRIM the folded entries, SET dig:stamp
 *
 * A step reads nothing per key, so it costs about 2 µs of JavaScript a key (ioredis
 * spends ~1.5 µs decoding each element of a reply: reading the entries or the records
 * back, as an earlier version did, cost 10 µs a key). The MULTI runs under a WATCH of
 * `dig:stamp`, a random token each step writes: the tree in memory is trusted only while
 * the stamp is the one this folder wrote last, so a digest changed behind its back (a
 * restore from a snapshot, a rebuild, another process) is reloaded rather than
 * overwritten. A crash before EXEC leaves the log in place and the next fold repeats the
 * step; entries, tree and trim commit together, so a step is never applied twice. A hot
 * key written a thousand times between folds is folded once. If entries and tree ever
 * disagree (a hand edit), verification rebuilds the tree from the entries.
 *
 * The folder runs in a worker thread of the node by default (`fold-thread.ts`), so its
 * parsing and command building never hold up the node's event loop.
 */
import { randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { bucketOf, CELL_BYTES, cellCount, entryField, leafOf, type DigestShape } from '../digest/digest.js';
import { CHUNK_CELLS, encodeHash, HashTree } from '../digest/tree.js';
import type { KeyBuilder } from './keys.js';
import type { TransactionPlan } from './transaction.js';

/** One key's change: its record's hash before and after (`null`: no record). */
export type LogChange = readonly [key: string, before: number | null, after: number | null];

/** Queues the append of `changes` as one log entry (inside the MULTI that makes them; one partition's keys). */
export function queueLogEntry(multi: ChainableCommander, keys: KeyBuilder, changes: readonly LogChange[]): void {
  if (changes.length > 0) multi.rpush(keys.digestLog(keys.partition((changes[0] as LogChange)[0])), JSON.stringify(changes));
}

/**
 * Log entries folded per step by default. At c=64 an entry holds about 19 keys, so a step
 * is about 20,000 keys: one HSET per bucket touched (at most 1024) and the tree's changed
 * chunks; a few milliseconds of Redis.
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
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The folder itself: the trees in memory and the steps that keep the Redis copy. */
export class DigestFolder implements Folder {
  readonly shape: DigestShape;
  private readonly redis: Redis;
  private readonly keys: KeyBuilder;
  private readonly transact: Transact;
  private readonly states: PartitionState[];
  private chain: Promise<unknown> = Promise.resolve();

  /** `redis` reads (no WATCH); `transact` commits each step under a WATCH of the stamp. */
  constructor(redis: Redis, keys: KeyBuilder, shape: DigestShape, transact: Transact) {
    this.redis = redis;
    this.keys = keys;
    this.shape = shape;
    this.transact = transact;
    this.states = Array.from({ length: keys.partitions }, () => ({ tree: undefined, stamp: null }));
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
      for (const state of this.states) state.tree = undefined;
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
    await this.chain;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** One step; `entries` is the log entries consumed (0 when the log is empty); `conflict` when the stamp changed. */
  private async step(partition: number, maxEntries: number): Promise<{ entries: number; keys: number } | 'conflict'> {
    const { keys, shape } = this;
    const log = keys.digestLog(partition);
    const raw = await this.redis.lrange(log, 0, maxEntries - 1);
    if (raw.length === 0) return { entries: 0, keys: 0 };
    // Per key: the hash before its first change in this prefix, and after its last.
    const net = new Map<string, { before: number | null; after: number | null }>();
    for (const text of raw) {
      for (const [key, before, after] of JSON.parse(text) as LogChange[]) {
        const seen = net.get(key);
        if (seen) seen.after = after;
        else net.set(key, { before, after });
      }
    }
    const stampKey = keys.digestStamp(partition);
    const state = this.states[partition] as PartitionState;
    // The transaction below checks the stamp; a tree loaded with no stamp (a digest no fold
    // has written yet) is loaded again each step until a fold stamps it.
    if (!state.tree || state.stamp === null) await this.load(partition, state);
    const tree = state.tree as HashTree;
    const sets = new Map<number, Array<string | Buffer>>();
    const dels = new Map<number, string[]>();
    for (const [key, { before, after }] of net) {
      if (before === after) continue;
      const leaf = leafOf(key, shape);
      tree.add(leaf, (after ?? 0) - (before ?? 0));
      const bucket = bucketOf(leaf);
      if (after === null) {
        const list = dels.get(bucket);
        if (list) list.push(entryField(leaf, key));
        else dels.set(bucket, [entryField(leaf, key)]);
      } else {
        const list = sets.get(bucket);
        if (list) list.push(entryField(leaf, key), encodeHash(after));
        else sets.set(bucket, [entryField(leaf, key), encodeHash(after)]);
      }
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
      if (!committed) state.tree = undefined;
    }
    if (!committed) return 'conflict';
    state.stamp = next;
    return { entries: raw.length, keys: net.size };
  }

  /** Reads a partition's tree and its stamp as one snapshot. */
  private async load(partition: number, state: PartitionState): Promise<void> {
    const replies = (await this.redis.multi().get(this.keys.digestStamp(partition)).getBuffer(this.keys.digestTree(partition)).exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    state.stamp = replies[0]?.[1] as string | null;
    state.tree = new HashTree(this.shape, replies[1]?.[1] as Buffer | null);
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
