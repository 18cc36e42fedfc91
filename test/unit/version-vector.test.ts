import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VersionVector } from '../../src/clock/version-vector.js';
import { pointwiseMax, smallVectorArb } from './support/arbitraries.js';

const vv = smallVectorArb;
/** Byte form of a vector: two vectors are "the same" when these strings are equal. */
const bytes = (v: VersionVector): string => JSON.stringify(VersionVector.canonical(v));
const pointwiseGe = (a: VersionVector, b: VersionVector): boolean => Object.entries(b).every(([node, n]) => (a[node] ?? 0) >= n);

describe('VersionVector', () => {
  describe('.increment', () => {
    it('should add one to the node entry, starting from zero', () => {
      expect(VersionVector.increment(VersionVector.empty(), 'A')).toEqual({ A: 1 });
      expect(VersionVector.increment({ A: 2, B: 1 }, 'B')).toEqual({ A: 2, B: 2 });
    });

    it('should not modify its argument', () => {
      const before = Object.freeze({ A: 1 });
      VersionVector.increment(before, 'A');
      expect(before).toEqual({ A: 1 });
    });

    it('should produce a vector that dominates its argument (property)', () => {
      fc.assert(
        fc.property(vv, fc.constantFrom('A', 'B', 'E', '10'), (v, node) => {
          const next = VersionVector.increment(v, node);
          expect(VersionVector.dominates(next, v)).toBe(true);
          expect(next[node]).toBe((v[node] ?? 0) + 1);
        }),
      );
    });

    describe('when the node id names an Object.prototype member', () => {
      // NODE_ID_PATTERN accepts these ids, but the vector reads `vv[node]` through the
      // prototype chain: `{}['constructor']` is the Object function, so the counter
      // becomes "function Object() {...}1", which canonical() then drops; `__proto__`
      // assignments are swallowed by the prototype setter. Such a node's writes carry an
      // empty vector and every causality decision about them is wrong.
      it.each(['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__'])('should count writes by node %j', (node) => {
        const once = VersionVector.increment(VersionVector.empty(), node);
        expect(Object.entries(once)).toEqual([[node, 1]]);
        expect(VersionVector.descends({}, once)).toBe(false);
        expect(Object.entries(VersionVector.merge({}, once))).toEqual([[node, 1]]);
      });
    });
  });

  describe('.merge', () => {
    it('should be the pointwise maximum (property)', () => {
      fc.assert(
        fc.property(vv, vv, (a, b) => {
          expect(VersionVector.merge(a, b)).toEqual(pointwiseMax(a, b));
        }),
      );
    });

    it('should be commutative, associative and idempotent byte for byte (property)', () => {
      fc.assert(
        fc.property(vv, vv, vv, (a, b, c) => {
          expect(bytes(VersionVector.merge(a, b))).toBe(bytes(VersionVector.merge(b, a)));
          expect(JSON.stringify(VersionVector.merge(a, b))).toBe(JSON.stringify(VersionVector.merge(b, a)));
          expect(JSON.stringify(VersionVector.merge(VersionVector.merge(a, b), c))).toBe(JSON.stringify(VersionVector.merge(a, VersionVector.merge(b, c))));
          expect(JSON.stringify(VersionVector.merge(a, a))).toBe(JSON.stringify(VersionVector.canonical(a)));
        }),
        { numRuns: 500 },
      );
    });

    it('should descend both inputs and be the least vector that does (property)', () => {
      fc.assert(
        fc.property(vv, vv, vv, (a, b, upper) => {
          const m = VersionVector.merge(a, b);
          expect(VersionVector.descends(m, a) && VersionVector.descends(m, b)).toBe(true);
          if (VersionVector.descends(upper, a) && VersionVector.descends(upper, b)) expect(VersionVector.descends(upper, m)).toBe(true);
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('.descends', () => {
    it('should be pointwise >= with missing entries counted as 0 (property)', () => {
      fc.assert(
        fc.property(vv, vv, (a, b) => {
          expect(VersionVector.descends(a, b)).toBe(pointwiseGe(a, b));
        }),
      );
    });

    it('should treat zero entries as missing', () => {
      expect(VersionVector.descends({}, { A: 0 })).toBe(true);
      expect(VersionVector.equals({ A: 0, B: 1 }, { B: 1 })).toBe(true);
    });

    it('should be reflexive and transitive (property)', () => {
      fc.assert(
        fc.property(vv, vv, vv, (a, b, c) => {
          expect(VersionVector.descends(a, a)).toBe(true);
          if (VersionVector.descends(a, b) && VersionVector.descends(b, c)) expect(VersionVector.descends(a, c)).toBe(true);
        }),
      );
    });
  });

  describe('.dominates / .concurrent / .compare / .equals', () => {
    it('should classify every pair in exactly one way, consistently (property)', () => {
      fc.assert(
        fc.property(vv, vv, (a, b) => {
          const ab = pointwiseGe(a, b);
          const ba = pointwiseGe(b, a);
          const expected = ab && ba ? 'equal' : ab ? 'dominates' : ba ? 'dominated' : 'concurrent';
          expect(VersionVector.compare(a, b)).toBe(expected);
          expect(VersionVector.equals(a, b)).toBe(expected === 'equal');
          expect(VersionVector.dominates(a, b)).toBe(expected === 'dominates');
          expect(VersionVector.dominates(b, a)).toBe(expected === 'dominated');
          expect(VersionVector.concurrent(a, b)).toBe(expected === 'concurrent');
          expect(VersionVector.concurrent(b, a)).toBe(VersionVector.concurrent(a, b));
          expect(VersionVector.equals(a, b)).toBe(bytes(a) === bytes(b));
        }),
        { numRuns: 1000 },
      );
    });

    it('should call two independent writes concurrent', () => {
      // A: {} --write--> {A:1}
      // B: {} --write--> {B:1}        neither saw the other
      const a = VersionVector.increment({}, 'A');
      const b = VersionVector.increment({}, 'B');
      expect(VersionVector.compare(a, b)).toBe('concurrent');
      expect(VersionVector.compare(VersionVector.increment(VersionVector.merge(a, b), 'A'), b)).toBe('dominates');
    });
  });

  describe('.canonical', () => {
    it('should drop zero entries and give equal vectors identical bytes whatever their key order (property)', () => {
      fc.assert(
        fc.property(vv, (a) => {
          const reversed = Object.fromEntries(Object.entries(a).reverse());
          const withZero = { ...a, Z: 0 };
          expect(JSON.stringify(VersionVector.canonical(reversed))).toBe(JSON.stringify(VersionVector.canonical(a)));
          expect(JSON.stringify(VersionVector.canonical(withZero))).toBe(JSON.stringify(VersionVector.canonical(a)));
          expect(Object.values(VersionVector.canonical(a)).every((n) => n > 0)).toBe(true);
          expect(VersionVector.equals(VersionVector.canonical(a), a)).toBe(true);
        }),
      );
    });

    it('should sort non-numeric node ids', () => {
      expect(Object.keys(VersionVector.canonical({ C: 1, A: 2, B: 0, 'A-': 1 }))).toEqual(['A', 'A-', 'C']);
    });
  });
});
