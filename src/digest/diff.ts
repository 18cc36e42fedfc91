/**
 * Finding the keys in which two digests differ, descending only into differing branches.
 *
 * Equal replicas cost one comparison of the roots. Otherwise each level reads the 16
 * children of every node that differed at the level above (64 contiguous bytes each), and
 * at the bottom the leaves that differ are read whole (key → hash) and compared key by
 * key. The work is therefore proportional to the number of differing leaves times the
 * tree depth, not to the store: the property that Merkle-tree repair (Cassandra) and
 * tictac AAE (Riak) are built on.
 *
 * The sources are abstract (a Redis digest, or an in-memory one in tests), so the walk
 * itself holds no I/O of its own and is property-tested against in-memory digests.
 */
import { differingChildren, differingKeys, FANOUT, type DigestShape } from './digest.js';

/** Read access to one digest. */
export interface DigestSource {
  /** Sums of the nodes `indexes` at `level` (0 = root), in order; absent nodes as 0. */
  sums(level: number, indexes: readonly number[]): Promise<number[]>;
  /** The key → hash entries of each leaf, in order. */
  leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>>;
  /** The hashes recorded for `keys`; keys the digest does not hold are left out. */
  hashes(keys: readonly string[]): Promise<Map<string, number>>;
}

export interface DiffOptions {
  /** Most leaves read from each side per call to `leaves` (bounds one step's size). */
  readonly leavesPerStep: number;
  /** Called between steps, e.g. to yield to foreground work. */
  readonly pause?: () => Promise<void>;
}

export interface DigestDiff {
  /** Keys whose records differ (present on one side only, or with different hashes). */
  readonly keys: string[];
  /** Leaves whose sums differed. */
  readonly leaves: number[];
}

/** The differing keys of two digests of the same shape. */
export async function diffDigests(local: DigestSource, remote: DigestSource, shape: DigestShape, options: DiffOptions): Promise<DigestDiff> {
  const [[l], [r]] = await Promise.all([local.sums(0, [0]), remote.sums(0, [0])]);
  if (l === r) return { keys: [], leaves: [] };
  let differing = [0];
  for (let level = 0; level < shape.depth; level++) {
    const children = differing.flatMap((index) => Array.from({ length: FANOUT }, (_, i) => index * FANOUT + i));
    const [ls, rs] = await Promise.all([local.sums(level + 1, children), remote.sums(level + 1, children)]);
    differing = differingChildren(ls, rs).map((i) => children[i] as number);
    if (differing.length === 0) return { keys: [], leaves: [] };
    await options.pause?.();
  }
  return { keys: await diffLeaves(local, remote, differing, options), leaves: differing };
}

/** The differing keys of the given leaves, read in steps of `leavesPerStep`. */
export async function diffLeaves(local: DigestSource, remote: DigestSource, leaves: readonly number[], options: DiffOptions): Promise<string[]> {
  const keys: string[] = [];
  for (let at = 0; at < leaves.length; at += options.leavesPerStep) {
    const step = leaves.slice(at, at + options.leavesPerStep);
    const [ls, rs] = await Promise.all([local.leaves(step), remote.leaves(step)]);
    // One key at a time: a leaf of a small tree over a large store can differ in more keys
    // than a spread call takes as arguments.
    step.forEach((_, i) => {
      for (const key of differingKeys(ls[i] ?? new Map(), rs[i] ?? new Map())) keys.push(key);
    });
    if (at + options.leavesPerStep < leaves.length) await options.pause?.();
  }
  return keys;
}

/**
 * The keys among `suspects` that still differ: each side's current hash of just those
 * keys, read again (a few bytes a key, rather than their whole leaves).
 */
export async function stillDiffering(local: DigestSource, remote: DigestSource, suspects: readonly string[], options: DiffOptions): Promise<string[]> {
  const out: string[] = [];
  for (let at = 0; at < suspects.length; at += options.leavesPerStep) {
    const step = suspects.slice(at, at + options.leavesPerStep);
    const [ls, rs] = await Promise.all([local.hashes(step), remote.hashes(step)]);
    for (const key of step) if (ls.get(key) !== rs.get(key)) out.push(key);
    if (at + options.leavesPerStep < suspects.length) await options.pause?.();
  }
  return out;
}
