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
}

export interface DiffOptions {
  /** Most leaves read from each side per call to `leaves` (bounds one step's size). */
  readonly leavesPerStep: number;
  /** Called between steps, e.g. to yield to foreground work. */
  readonly pause?: () => Promise<void>;
}

/** The leaves whose sums differ, found by descending from the root through differing nodes only (no entries read). */
export async function differingLeaves(local: DigestSource, remote: DigestSource, shape: DigestShape, options: DiffOptions): Promise<number[]> {
  const [[l], [r]] = await Promise.all([local.sums(0, [0]), remote.sums(0, [0])]);
  if (l === r) return [];
  let differing = [0];
  for (let level = 0; level < shape.depth; level++) {
    const children = differing.flatMap((index) => Array.from({ length: FANOUT }, (_, i) => index * FANOUT + i));
    const [ls, rs] = await Promise.all([local.sums(level + 1, children), remote.sums(level + 1, children)]);
    differing = differingChildren(ls, rs).map((i) => children[i] as number);
    if (differing.length === 0) return [];
    await options.pause?.();
  }
  return differing;
}

/**
 * The leaves among `suspects` (sorted) whose sums still differ: 4 bytes a leaf from each
 * side, read again, rather than their entries. A leaf that differed only while a write's
 * replication job was in flight is equal again by now, and is never read whole.
 */
export async function stillDifferingLeaves(local: DigestSource, remote: DigestSource, shape: DigestShape, suspects: readonly number[], options: DiffOptions): Promise<number[]> {
  const out: number[] = [];
  // Sibling leaves are contiguous cells, so a step of them is a few range reads.
  const step = Math.max(options.leavesPerStep, FANOUT) * FANOUT;
  for (let at = 0; at < suspects.length; at += step) {
    const leaves = suspects.slice(at, at + step);
    const [ls, rs] = await Promise.all([local.sums(shape.depth, leaves), remote.sums(shape.depth, leaves)]);
    differingChildren(ls, rs).forEach((i) => out.push(leaves[i] as number));
    if (at + step < suspects.length) await options.pause?.();
  }
  return out;
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
