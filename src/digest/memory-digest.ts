/**
 * A digest held in memory: the reference the Redis digest is checked against (digest
 * verification rebuilds one from the data), the fast way to seed large benchmark stores,
 * and the model in property tests. Sums are BigInt, so they are exact at any size.
 */
import { ancestorAt, leafOf, nodeField, type DigestShape, type HashChange, type Sum } from './digest.js';
import type { DigestSource } from './diff.js';

export class MemoryDigest implements DigestSource {
  readonly shape: DigestShape;
  private readonly nodeSums = new Map<string, bigint>();
  private readonly leafEntries = new Map<number, Map<string, number>>();

  constructor(shape: DigestShape) {
    this.shape = shape;
  }

  /** Applies one key's change of hash. */
  apply({ key, before, after }: HashChange): void {
    if (before === after) return;
    const leaf = leafOf(key, this.shape);
    let entries = this.leafEntries.get(leaf);
    if (!entries) this.leafEntries.set(leaf, (entries = new Map()));
    if (after === undefined) entries.delete(key);
    else entries.set(key, after);
    const delta = BigInt(after ?? 0) - BigInt(before ?? 0);
    for (let level = 0; level <= this.shape.depth; level++) {
      const field = nodeField(level, ancestorAt(leaf, level, this.shape));
      this.nodeSums.set(field, (this.nodeSums.get(field) ?? 0n) + delta);
    }
  }

  /** Sets `key`'s hash (undefined removes it). */
  set(key: string, hash: number | undefined): void {
    this.apply({ key, before: this.hashOf(key), after: hash });
  }

  /** The hash recorded for `key`, if any. */
  hashOf(key: string): number | undefined {
    return this.leafEntries.get(leafOf(key, this.shape))?.get(key);
  }

  sums(fields: readonly string[]): Promise<Sum[]> {
    return Promise.resolve(this.sumsNow(fields));
  }

  /** Synchronous {@link sums}. */
  sumsNow(fields: readonly string[]): Sum[] {
    return fields.map((f) => {
      const s = this.nodeSums.get(f);
      return s === undefined || s === 0n ? null : s.toString();
    });
  }

  leaves(indexes: readonly number[]): Promise<Array<Map<string, number>>> {
    return Promise.resolve(indexes.map((i) => new Map(this.leafEntries.get(i) ?? [])));
  }

  /** Every non-zero node sum, by field (for seeding a Redis digest in one pipeline). */
  nodes(): IterableIterator<[string, bigint]> {
    return this.nodeSums.entries();
  }

  /** Every non-empty leaf. */
  leafMaps(): IterableIterator<[number, Map<string, number>]> {
    return this.leafEntries.entries();
  }
}
