/**
 * A digest held in memory: the model in property tests and the reference the Redis digest
 * is checked against (the same {@link HashTree} arithmetic, and entries in plain maps).
 */
import { leafOf, type DigestShape } from './digest.js';
import type { DigestSource } from './diff.js';
import { HashTree } from './tree.js';

/** One key's change of hash: `before`/`after` undefined when the record was / is absent. */
export interface HashChange {
  readonly key: string;
  readonly before: number | undefined;
  readonly after: number | undefined;
}

export class MemoryDigest implements DigestSource {
  readonly shape: DigestShape;
  readonly tree: HashTree;
  private readonly leafEntries = new Map<number, Map<string, number>>();

  constructor(shape: DigestShape) {
    this.shape = shape;
    this.tree = new HashTree(shape);
  }

  /** Applies one key's change of hash. */
  apply({ key, before, after }: HashChange): void {
    if (before === after) return;
    const leaf = leafOf(key, this.shape);
    let entries = this.leafEntries.get(leaf);
    if (!entries) this.leafEntries.set(leaf, (entries = new Map()));
    if (after === undefined) entries.delete(key);
    else entries.set(key, after);
    this.tree.add(leaf, (after ?? 0) - (before ?? 0));
  }

  /** Sets `key`'s hash (undefined removes it). */
  set(key: string, hash: number | undefined): void {
    this.apply({ key, before: this.hashOf(key), after: hash });
  }

  /** The hash recorded for `key`, if any. */
  hashOf(key: string): number | undefined {
    return this.leafEntries.get(leafOf(key, this.shape))?.get(key);
  }

  sums(level: number, indexes: readonly number[]): Promise<number[]> {
    return Promise.resolve(indexes.map((i) => this.tree.sum(level, i)));
  }

  leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>> {
    return Promise.resolve(indexes.map((i) => new Map(this.leafEntries.get(i) ?? [])));
  }

  hashes(keys: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const key of keys) {
      const hash = this.hashOf(key);
      if (hash !== undefined) out.set(key, hash);
    }
    return Promise.resolve(out);
  }
}
