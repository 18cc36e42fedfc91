import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatTimestamp } from '../../src/clock/timestamp.js';
import { merge } from '../../src/record/merge.js';
import { encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { localWrite } from '../../src/record/write.js';
import { deepFreeze, pointwiseMax, smallVectorArb } from './support/arbitraries.js';
import { seededRandom, shuffled, T0 } from './support/fake-clock.js';

const at = (ms: number, logical: number, node: string): string => formatTimestamp({ wallMs: T0 + ms, logical, nodeId: node });
const bytes = (r: CacheRecord): string => encodeRecord(r);
const fold = (records: readonly CacheRecord[]): CacheRecord => records.reduce<CacheRecord | undefined>((acc, r) => merge(acc, r).record, undefined) as CacheRecord;

// ---------------------------------------------------------------------------------------
// Generators: a few distinct writes to one key, and records that carry one of them with a
// version vector that may have merged more. A correct cluster never gives two different
// payloads the same HLC; the "forged" variant does, to show the merge stays a join anyway.

interface Payload {
  readonly deleted: boolean;
  readonly valueJson?: string;
  readonly expiresAt?: number;
}
interface Write extends Payload {
  readonly hlc: string;
  readonly origin: string;
  readonly written: Record<string, number>;
}

const payloadArb: fc.Arbitrary<Payload> = fc
  .record({ deleted: fc.boolean(), value: fc.integer({ min: 0, max: 3 }), expiresAt: fc.option(fc.integer({ min: T0, max: T0 + 2 }), { nil: undefined }) })
  .map(({ deleted, value, expiresAt }) => {
    const base: Payload = deleted ? { deleted } : { deleted, valueJson: JSON.stringify({ v: value }) };
    return expiresAt === undefined ? base : { ...base, expiresAt };
  });

const writesArb: fc.Arbitrary<Write[]> = fc
  .uniqueArray(
    fc.record({ ms: fc.integer({ min: 0, max: 2 }), logical: fc.integer({ min: 0, max: 2 }), node: fc.constantFrom('A', 'B', 'C', '10', '9') }),
    { minLength: 1, maxLength: 5, selector: (t) => at(t.ms, t.logical, t.node) },
  )
  .chain((stamps) =>
    fc.tuple(...stamps.map((t) => fc.tuple(payloadArb, smallVectorArb, fc.integer({ min: 1, max: 3 })).map(([payload, rest, dot]): Write => ({ ...payload, hlc: at(t.ms, t.logical, t.node), origin: t.node, written: pointwiseMax(rest, { [t.node]: dot }) })))),
  );

function recordArb(writes: readonly Write[], forged: boolean): fc.Arbitrary<CacheRecord> {
  return fc.record({ i: fc.nat(writes.length - 1), extra: smallVectorArb, payload: payloadArb }).map(({ i, extra, payload }) => {
    const { hlc, origin, written, ...own } = writes[i] as Write;
    const body = forged ? payload : own;
    return deepFreeze<CacheRecord>({ key: 'k', hlc, origin, version: pointwiseMax(written, extra), written, ...body });
  });
}

const triple = (forged: boolean) => writesArb.chain((w) => fc.tuple(recordArb(w, forged), recordArb(w, forged), recordArb(w, forged)));
const many = writesArb.chain((w) => fc.tuple(fc.array(recordArb(w, false), { minLength: 1, maxLength: 8 }), fc.integer()));

describe('.merge', () => {
  describe('as an algebra (byte level, encodeRecord)', () => {
    it('should be commutative (property)', () => {
      fc.assert(
        fc.property(triple(false), ([a, b]) => {
          expect(bytes(merge(a, b).record)).toBe(bytes(merge(b, a).record));
        }),
        { numRuns: 2000 },
      );
    });

    it('should be associative (property)', () => {
      fc.assert(
        fc.property(triple(false), ([a, b, c]) => {
          expect(bytes(merge(merge(a, b).record, c).record)).toBe(bytes(merge(a, merge(b, c).record).record));
        }),
        { numRuns: 2000 },
      );
    });

    it('should be idempotent, and a redelivery should change nothing (property)', () => {
      fc.assert(
        fc.property(triple(false), ([a, b]) => {
          const self = merge(a, a);
          expect(bytes(self.record)).toBe(bytes(a));
          expect(self).toMatchObject({ outcome: 'duplicate', changed: false });
          const once = merge(a, b).record;
          const again = merge(once, b);
          expect(bytes(again.record)).toBe(bytes(once));
          expect(again.changed).toBe(false);
          expect(again.conflict).toBeUndefined();
        }),
        { numRuns: 2000 },
      );
    });

    it('should fold any delivery order of the same records to the same bytes (property)', () => {
      fc.assert(
        fc.property(many, ([records, seed]) => {
          const random = seededRandom(seed);
          const withDuplicates = records.flatMap((r) => (random() < 0.3 ? [r, r] : [r]));
          expect(bytes(fold(shuffled(withDuplicates, random)))).toBe(bytes(fold(records)));
        }),
        { numRuns: 1000 },
      );
    });

    it('should keep the payload of the larger HLC and the pointwise max of the versions (property)', () => {
      fc.assert(
        fc.property(triple(false), ([a, b]) => {
          const winner = b.hlc > a.hlc ? b : a;
          const expected: CacheRecord = { ...winner, version: pointwiseMax(a.version, b.version) };
          expect(bytes(merge(a, b).record)).toBe(bytes(expected));
          expect(merge(a, b).record.key).toBe(a.key);
        }),
        { numRuns: 1000 },
      );
    });

    describe('when two records carry the same HLC with different payloads', () => {
      it('should still be commutative and associative (property)', () => {
        fc.assert(
          fc.property(triple(true), ([a, b, c]) => {
            expect(bytes(merge(a, b).record)).toBe(bytes(merge(b, a).record));
            expect(bytes(merge(merge(a, b).record, c).record)).toBe(bytes(merge(a, merge(b, c).record).record));
          }),
          { numRuns: 2000 },
        );
      });
    });
  });

  describe('outcome', () => {
    it('should be applied, stale or duplicate by HLC order, and changed exactly when the bytes change (property)', () => {
      fc.assert(
        fc.property(triple(false), ([local, incoming]) => {
          const result = merge(local, incoming);
          const expected = incoming.hlc > local.hlc ? 'applied' : incoming.hlc < local.hlc ? 'stale' : 'duplicate';
          expect(result.outcome).toBe(expected);
          expect(result.changed).toBe(bytes(result.record) !== bytes(local));
        }),
        { numRuns: 2000 },
      );
    });

    describe('when there is no local record', () => {
      it('should apply the incoming record as it is', () => {
        const incoming = localWrite(undefined, { kind: 'put', key: 'k', valueJson: '1' }, at(0, 0, 'A'), 'A', T0);
        expect(merge(undefined, incoming)).toEqual({ outcome: 'applied', record: incoming, changed: true });
      });
    });

    describe('when the incoming write is older but carries a larger version', () => {
      it('should keep the local value, take the merged version and report changed', () => {
        const local = deepFreeze<CacheRecord>({ key: 'k', hlc: at(10, 0, 'B'), origin: 'B', version: { B: 1 }, written: { B: 1 }, deleted: true });
        const incoming = deepFreeze<CacheRecord>({ key: 'k', hlc: at(0, 0, 'A'), origin: 'A', version: { A: 1, C: 4 }, written: { A: 1 }, deleted: false, valueJson: '"old"' });
        const result = merge(local, incoming);
        expect(result.outcome).toBe('stale');
        expect(result.changed).toBe(true);
        expect(result.record).toEqual({ ...local, version: { A: 1, B: 1, C: 4 } });
      });
    });

    describe('when the same write arrives with a larger version', () => {
      it('should be a duplicate that still records the larger version', () => {
        const local = deepFreeze<CacheRecord>({ key: 'k', hlc: at(0, 0, 'A'), origin: 'A', version: { A: 1 }, written: { A: 1 }, deleted: false, valueJson: '1' });
        const result = merge(local, { ...local, version: { A: 1, B: 1 } });
        expect(result).toMatchObject({ outcome: 'duplicate', changed: true, record: { version: { A: 1, B: 1 } } });
      });
    });
  });

  describe('conflicts', () => {
    const x = localWrite(undefined, { kind: 'put', key: 'k', valueJson: '"x"' }, at(0, 0, 'A'), 'A', T0);
    const y = localWrite(undefined, { kind: 'put', key: 'k', valueJson: '"y"' }, at(5, 0, 'B'), 'B', T0 + 5);
    const yWins = { key: 'k', winner: { hlc: y.hlc, origin: 'B' }, loser: { hlc: x.hlc, origin: 'A' } };

    describe('when two writes were concurrent', () => {
      // A: put x @0 ────────────┐
      // B: put y @5 ──────────┐ │   (neither saw the other; y has the larger HLC)
      //   on A: merge(x, y) ◀─┘ │   applied, conflict y beats x
      //   on B: merge(y, x) ◀───┘   stale,   conflict y beats x
      it('should report the same conflict on both sides', () => {
        expect(merge(x, y)).toMatchObject({ outcome: 'applied', conflict: yWins });
        expect(merge(y, x)).toMatchObject({ outcome: 'stale', conflict: yWins });
      });
    });

    describe('when the later write saw the earlier one', () => {
      // A: put x @0 ──▶ B
      // B:               put z @5 over x  ──▶ A: applied, no conflict
      it('should not report a conflict in either order', () => {
        const z = localWrite(x, { kind: 'put', key: 'k', valueJson: '"z"' }, at(5, 0, 'B'), 'B', T0 + 5);
        expect(merge(x, z).conflict).toBeUndefined();
        expect(merge(z, x).conflict).toBeUndefined();
        expect(merge(z, x).outcome).toBe('stale');
      });

      it('should not report successive writes by one node', () => {
        const x2 = localWrite(x, { kind: 'put', key: 'k', valueJson: '"x2"' }, at(1, 0, 'A'), 'A', T0 + 1);
        expect(merge(x, x2)).toMatchObject({ outcome: 'applied' });
        expect(merge(x, x2).conflict).toBeUndefined();
        expect(merge(x2, x).conflict).toBeUndefined();
      });
    });

    describe('when the winner arrives already merged with the loser', () => {
      // A: put x @0 ──────────────▶ C (C holds x)
      // B: put y @5; receives x (stale) -> y' = y with version {A:1,B:1}
      //   on C: merge(x, y') -> applied; y itself never saw x: conflict y beats x
      it('should still report the conflict', () => {
        const yMerged = merge(y, x).record;
        expect(yMerged.version).toEqual({ A: 1, B: 1 });
        expect(merge(x, yMerged)).toMatchObject({ outcome: 'applied', conflict: yWins });
      });
    });

    describe('when the loser is delivered again', () => {
      // C: holds x ◀── y (conflict reported) ◀── x again ◀── y again ◀── y' (merged on B)
      it('should report the conflict once', () => {
        const conflicts: unknown[] = [];
        let held: CacheRecord = x;
        for (const incoming of [y, x, y, merge(y, x).record, x]) {
          const result = merge(held, incoming);
          if (result.conflict) conflicts.push(result.conflict);
          held = result.record;
        }
        expect(conflicts).toEqual([yWins]);
      });

      // C: holds y ◀── x (stale, conflict reported) ◀── x again ◀── x again
      it('should report a losing incoming write once', () => {
        const conflicts: unknown[] = [];
        let held: CacheRecord = y;
        for (const incoming of [x, x, x]) {
          const result = merge(held, incoming);
          if (result.conflict) conflicts.push(result.conflict);
          held = result.record;
        }
        expect(conflicts).toEqual([yWins]);
      });
    });

    describe('when three writes were concurrent', () => {
      // A: x @0   B: y @5   C: w @9     all independent
      // D receives x, y, w: two conflicts (y beats x, w beats y), x is not reported again
      it('should report each lost write once', () => {
        const w = localWrite(undefined, { kind: 'delete', key: 'k' }, at(9, 0, 'C'), 'C', T0 + 9);
        const first = merge(x, y);
        const second = merge(first.record, w);
        const third = merge(second.record, x);
        expect([first.conflict?.loser.hlc, second.conflict?.loser.hlc, third.conflict]).toEqual([x.hlc, y.hlc, undefined]);
        expect(second.conflict?.winner.hlc).toBe(w.hlc);
      });
    });
  });
});
