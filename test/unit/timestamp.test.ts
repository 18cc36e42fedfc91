import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareHlc,
  compareTimestamps,
  formatTimestamp,
  MAX_LOGICAL,
  MAX_WALL_MS,
  nodeIdOf,
  parseTimestamp,
  wallMsOf,
  type Timestamp,
} from '../../src/clock/timestamp.js';
import { InvalidInputError } from '../../src/errors/index.js';
import { timestampArb, timestampPairArb } from './support/arbitraries.js';
import { T0 } from './support/fake-clock.js';

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('.formatTimestamp', () => {
  it('should write a fixed-width ISO wall time, a six-digit counter and the node id', () => {
    expect(formatTimestamp({ wallMs: T0, logical: 42, nodeId: 'A' })).toBe('2026-11-23T21:55:09.123Z/000042/A');
    expect(formatTimestamp({ wallMs: 0, logical: 0, nodeId: 'node-1' })).toBe('1970-01-01T00:00:00.000Z/000000/node-1');
    expect(formatTimestamp({ wallMs: MAX_WALL_MS, logical: MAX_LOGICAL, nodeId: 'z' })).toBe('9999-12-31T23:59:59.999Z/999999/z');
  });

  describe('when timestamps differ only in the counter', () => {
    it('should order 9 before 10 as strings too (zero padding)', () => {
      const a = formatTimestamp({ wallMs: T0, logical: 9, nodeId: 'B' });
      const b = formatTimestamp({ wallMs: T0, logical: 10, nodeId: 'A' });
      expect(a < b).toBe(true);
    });
  });

  it('should order timestamps as strings exactly as compareTimestamps does (property)', () => {
    fc.assert(
      fc.property(timestampPairArb, ([a, b]) => {
        const fa = formatTimestamp(a);
        const fb = formatTimestamp(b);
        expect(fa < fb).toBe(compareTimestamps(a, b) < 0);
        expect(fa === fb).toBe(compareTimestamps(a, b) === 0);
        expect(sign(compareHlc(fa, fb))).toBe(sign(compareTimestamps(a, b)));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('.parseTimestamp', () => {
  it('should invert formatTimestamp (property)', () => {
    fc.assert(
      fc.property(timestampArb, (ts) => {
        const text = formatTimestamp(ts);
        expect(parseTimestamp(text)).toEqual(ts);
        expect(wallMsOf(text)).toBe(ts.wallMs);
        expect(nodeIdOf(text)).toBe(ts.nodeId);
      }),
      { numRuns: 2000 },
    );
  });

  describe('when the text is not a timestamp', () => {
    it.each([
      [''],
      ['2026-11-23T21:55:09.123Z'],
      ['2026-11-23T21:55:09.123Z/000042'],
      ['2026-11-23T21:55:09.123Z/000042/'],
      ['2026-11-23T21:55:09.123Z/42/A'],
      ['2026-11-23T21:55:09.123Z/00004x/A'],
      ['2026-11-23T21:55:09.123Z/000042/A|B'],
      ['2026-11-23T21:55:09.123Z/000042/A B'],
      ['2026-11-23T21:55:09.123+0000/000042/A'],
    ])('should throw InvalidInputError for %j', (text) => {
      expect(() => parseTimestamp(text)).toThrow(InvalidInputError);
    });
  });

  describe('when Date.parse or Number accept the text but it is not a canonical timestamp', () => {
    // The string order is the LWW order only for canonical strings: "2026-11-23 21:55..."
    // sorts before every "2026-11-23T..." string because ' ' < 'T', whatever its time, and
    // V8's Date.parse reads "not-a-date-at-all-000000" as 2000-01-01.
    it.each([
      ['not-a-date-at-all-000000/000042/A'],
      ['2026-11-23 21:55:09.123Z/000001/A'],
      ['2026-11-23T21:55:09.123Z/+00001/A'],
      ['2026-11-23T21:55:09.123Z/ 00001/A'],
      ['2026-11-23T21:55:09.123Z/0x0001/A'],
      ['2026-11-23T21:55:09.123Z/1e+003/A'],
      ['2026-02-30T21:55:09.123Z/000001/A'],
    ])('should throw InvalidInputError for %j', (text) => {
      expect(() => parseTimestamp(text)).toThrow(InvalidInputError);
    });
  });
});

describe('.compareTimestamps', () => {
  it('should order by wall time, then counter, then node id', () => {
    const ts = (wallMs: number, logical: number, nodeId: string): Timestamp => ({ wallMs, logical, nodeId });
    expect(compareTimestamps(ts(T0, 5, 'Z'), ts(T0 + 1, 0, 'A'))).toBe(-1);
    expect(compareTimestamps(ts(T0, 1, 'Z'), ts(T0, 2, 'A'))).toBe(-1);
    expect(compareTimestamps(ts(T0, 1, 'A'), ts(T0, 1, 'B'))).toBe(-1);
    expect(compareTimestamps(ts(T0, 1, 'B'), ts(T0, 1, 'A'))).toBe(1);
    expect(compareTimestamps(ts(T0, 1, 'A'), ts(T0, 1, 'A'))).toBe(0);
  });

  it('should be a total order: antisymmetric and transitive (property)', () => {
    fc.assert(
      fc.property(timestampArb, timestampArb, timestampArb, (a, b, c) => {
        expect(sign(compareTimestamps(a, b)) + sign(compareTimestamps(b, a))).toBe(0);
        if (compareTimestamps(a, b) <= 0 && compareTimestamps(b, c) <= 0) expect(compareTimestamps(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 1000 },
    );
  });
});
