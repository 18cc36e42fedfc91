/**
 * Finding the keys in which two digests differ, descending only into differing branches.
 *
 * Equal replicas cost one comparison of the roots. Otherwise each level reads the 16
 * children of every node that differed at the level above, and at the bottom the leaves
 * that differ are read whole (key → hash) and compared key by key. The work is therefore
 * proportional to the number of differing leaves times the tree depth, not to the store:
 * the property that Merkle-tree repair (Cassandra) and tictac AAE (Riak) are built on.
 *
 * The sources are abstract (a Redis digest, or an in-memory one in tests), so the walk
 * itself holds no I/O of its own and is property-tested against in-memory digests.
 */
import { childFields, differingChildren, differingKeys, FANOUT, nodeField, sameSum, type DigestShape, type Sum } from './digest.js';

/** Read access to one digest. */
export interface DigestSource {
  /** Node sums for `fields` (see `nodeField`), in order; absent nodes as `null`. */
  sums(fields: readonly string[]): Promise<Sum[]>;
  /** The key → hash entries of each leaf, in order. */
  leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>>;
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
  const root = [nodeField(0, 0)];
  const [[l], [r]] = await Promise.all([local.sums(root), remote.sums(root)]);
  if (sameSum(l, r)) return { keys: [], leaves: [] };
  let differing = [0];
  for (let level = 0; level < shape.depth; level++) {
    const fields = differing.flatMap((index) => childFields(level, index));
    const [ls, rs] = await Promise.all([local.sums(fields), remote.sums(fields)]);
    differing = differingChildren(ls, rs).map((i) => (differing[Math.floor(i / FANOUT)] as number) * FANOUT + (i % FANOUT));
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
    step.forEach((_, i) => keys.push(...differingKeys(ls[i] ?? new Map(), rs[i] ?? new Map())));
    if (at + options.leavesPerStep < leaves.length) await options.pause?.();
  }
  return keys;
}
