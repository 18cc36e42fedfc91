/**
 * Version vectors, with Riak's vocabulary (basho/riak_core `vclock.erl`).
 *
 * A vector maps node id -> number of writes that node made to the key (as far as this
 * replica has seen). `a` descends `b` when `a` has seen everything `b` has; two vectors
 * where neither descends the other are concurrent: their writes happened without either
 * writer knowing of the other, which is exactly when Last-Write-Wins has to throw one away.
 */

/** Node id -> counter. Missing entries count as 0. Treated as immutable. */
export type VersionVector = Readonly<Record<string, number>>;

/** How two vectors relate. */
export type Causality = 'equal' | 'dominates' | 'dominated' | 'concurrent';

/** An entry, or 0; own properties only, so ids like `constructor` read as plain entries. */
function at(vv: VersionVector, node: string): number {
  return Object.hasOwn(vv, node) ? (vv[node] as number) : 0;
}

/** Builds a vector from entries with own properties (assignment of `__proto__` would not be one). */
function fromEntries(entries: Iterable<readonly [string, number]>): VersionVector {
  return Object.fromEntries(entries) as VersionVector;
}

export const VersionVector = {
  /** The empty vector: nothing seen. */
  empty(): VersionVector {
    return {};
  },

  /** A copy of `vv` with `nodeId`'s counter one higher: the vector of a new write by `nodeId`. */
  increment(vv: VersionVector, nodeId: string): VersionVector {
    return VersionVector.canonical(fromEntries([...Object.entries(vv), [nodeId, at(vv, nodeId) + 1]]));
  },

  /** True when `a` has seen every write `b` has (pointwise `a >= b`); a vector descends itself. */
  descends(a: VersionVector, b: VersionVector): boolean {
    for (const node of Object.keys(b)) {
      if (at(a, node) < at(b, node)) return false;
    }
    return true;
  },

  /** True when `a` descends `b` and has seen at least one write `b` has not. */
  dominates(a: VersionVector, b: VersionVector): boolean {
    return VersionVector.descends(a, b) && !VersionVector.descends(b, a);
  },

  /** True when neither vector descends the other. */
  concurrent(a: VersionVector, b: VersionVector): boolean {
    return !VersionVector.descends(a, b) && !VersionVector.descends(b, a);
  },

  /** Pointwise maximum: everything either side has seen. Commutative, associative, idempotent. */
  merge(a: VersionVector, b: VersionVector): VersionVector {
    const out = new Map(Object.entries(a));
    for (const node of Object.keys(b)) {
      const n = at(b, node);
      if (n > (out.get(node) ?? 0)) out.set(node, n);
    }
    return VersionVector.canonical(fromEntries(out));
  },

  /** Relation of `a` to `b`. */
  compare(a: VersionVector, b: VersionVector): Causality {
    const ab = VersionVector.descends(a, b);
    const ba = VersionVector.descends(b, a);
    if (ab && ba) return 'equal';
    if (ab) return 'dominates';
    if (ba) return 'dominated';
    return 'concurrent';
  },

  equals(a: VersionVector, b: VersionVector): boolean {
    return VersionVector.descends(a, b) && VersionVector.descends(b, a);
  },

  /**
   * The same vector with keys sorted and zero entries dropped, so equal vectors serialize
   * to identical bytes on every replica.
   */
  canonical(vv: VersionVector): VersionVector {
    return fromEntries(
      Object.keys(vv)
        .sort()
        .map((node) => [node, at(vv, node)] as const)
        .filter(([, n]) => n > 0),
    );
  },
};
