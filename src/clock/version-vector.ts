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

export const VersionVector = {
  /** The empty vector: nothing seen. */
  empty(): VersionVector {
    return {};
  },

  /** A copy of `vv` with `nodeId`'s counter one higher: the vector of a new write by `nodeId`. */
  increment(vv: VersionVector, nodeId: string): VersionVector {
    return VersionVector.canonical({ ...vv, [nodeId]: (vv[nodeId] ?? 0) + 1 });
  },

  /** True when `a` has seen every write `b` has (pointwise `a >= b`); a vector descends itself. */
  descends(a: VersionVector, b: VersionVector): boolean {
    for (const node in b) {
      if ((a[node] ?? 0) < (b[node] ?? 0)) return false;
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
    const out: Record<string, number> = { ...a };
    for (const node in b) {
      const n = b[node] ?? 0;
      if (n > (out[node] ?? 0)) out[node] = n;
    }
    return VersionVector.canonical(out);
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
    const out: Record<string, number> = {};
    for (const node of Object.keys(vv).sort()) {
      const n = vv[node] ?? 0;
      if (n > 0) out[node] = n;
    }
    return out;
  },
};
