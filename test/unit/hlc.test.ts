import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CLOCK_OPTIONS, HybridLogicalClock } from '../../src/clock/hlc.js';
import { compareTimestamps, formatTimestamp, MAX_LOGICAL, MAX_WALL_MS, type Timestamp } from '../../src/clock/timestamp.js';
import { InvalidOptionsError } from '../../src/errors/index.js';
import { FakeClock, scriptedClock, T0 } from './support/fake-clock.js';

const ts = (wallMs: number, logical: number, nodeId = 'R'): Timestamp => ({ wallMs, logical, nodeId });
const wallAndCounter = (t: Timestamp): [number, number] => [t.wallMs, t.logical];

function expectIncreasing(stamps: readonly Timestamp[]): void {
  for (let i = 1; i < stamps.length; i++) {
    const [prev, next] = [stamps[i - 1] as Timestamp, stamps[i] as Timestamp];
    if (compareTimestamps(prev, next) >= 0) {
      throw new Error(`timestamp #${i} ${formatTimestamp(next)} is not after #${i - 1} ${formatTimestamp(prev)}`);
    }
  }
}

describe('HybridLogicalClock', () => {
  describe('constructor', () => {
    it.each(['', 'a b', 'A|B', 'A:1', 'A/B', 'x'.repeat(65), 'ключ'])('should reject the node id %j', (id) => {
      expect(() => new HybridLogicalClock(id)).toThrow(InvalidOptionsError);
    });

    it.each([
      ['clockOffsetMs = NaN', { clockOffsetMs: Number.NaN }, 'clockOffsetMs'],
      ['clockOffsetMs = Infinity', { clockOffsetMs: Number.POSITIVE_INFINITY }, 'clockOffsetMs'],
      ['maxDriftMs = 0', { maxDriftMs: 0 }, 'maxDriftMs'],
      ['maxDriftMs = -1', { maxDriftMs: -1 }, 'maxDriftMs'],
      ['maxDriftMs = NaN', { maxDriftMs: Number.NaN }, 'maxDriftMs'],
    ])('should reject %s naming the field', (_label, options, field) => {
      expect(() => new HybridLogicalClock('A', options)).toThrow(expect.objectContaining({ name: 'InvalidOptionsError', field }));
    });

    it('should default to the real clock and a 60 s drift bound', () => {
      const clock = new HybridLogicalClock('A');
      expect(DEFAULT_CLOCK_OPTIONS.maxDriftMs).toBe(60_000);
      expect(clock.maxDriftMs).toBe(60_000);
      const before = Date.now();
      const pt = clock.physicalNow();
      expect(pt).toBeGreaterThanOrEqual(before);
      expect(pt).toBeLessThanOrEqual(Date.now());
    });
  });

  describe('.physicalNow', () => {
    describe('when clockOffsetMs is set', () => {
      it('should shift every reading by the offset, in whole milliseconds', () => {
        const wall = new FakeClock(T0 + 0.75);
        expect(new HybridLogicalClock('A', { now: wall.now, clockOffsetMs: -2000 }).physicalNow()).toBe(T0 - 2000);
        expect(new HybridLogicalClock('A', { now: wall.now, clockOffsetMs: 1500 }).physicalNow()).toBe(T0 + 1500);
      });

      it('should issue timestamps on the shifted clock', () => {
        const wall = new FakeClock();
        const behind = new HybridLogicalClock('B', { now: wall.now, clockOffsetMs: -2000 });
        expect(behind.now()).toEqual(ts(T0 - 2000, 0, 'B'));
      });
    });
  });

  describe('.now (Kulkarni send rule)', () => {
    describe('when the wall clock moved forward', () => {
      it('should take the wall time and reset the counter', () => {
        const wall = new FakeClock();
        const clock = new HybridLogicalClock('A', { now: wall.now });
        expect(clock.now()).toEqual(ts(T0, 0, 'A'));
        wall.advance(5);
        expect(clock.now()).toEqual(ts(T0 + 5, 0, 'A'));
      });
    });

    describe('when the wall clock stands still', () => {
      it('should keep the wall time and count up', () => {
        const clock = new HybridLogicalClock('A', { now: new FakeClock().now });
        const stamps = [clock.now(), clock.now(), clock.now()];
        expect(stamps.map(wallAndCounter)).toEqual([
          [T0, 0],
          [T0, 1],
          [T0, 2],
        ]);
        expect(clock.last).toEqual(stamps[2]);
      });
    });

    describe('when the wall clock goes backwards', () => {
      it('should keep the largest wall time seen and count up', () => {
        const wall = new FakeClock();
        const clock = new HybridLogicalClock('A', { now: wall.now });
        clock.now();
        wall.set(T0 - 3000);
        expect(wallAndCounter(clock.now())).toEqual([T0, 1]);
        wall.set(T0 + 1);
        expect(wallAndCounter(clock.now())).toEqual([T0 + 1, 0]);
      });
    });

    it('should be strictly increasing whatever the wall clock does (property)', () => {
      const readings = fc.array(fc.oneof(fc.integer({ min: T0 - 10_000, max: T0 + 10_000 }), fc.constant(T0)), { minLength: 1, maxLength: 200 });
      fc.assert(
        fc.property(readings, (pts) => {
          const clock = new HybridLogicalClock('A', { now: scriptedClock(pts) });
          expectIncreasing(pts.map(() => clock.now()));
        }),
        { numRuns: 500 },
      );
    });

    describe('when the counter reaches MAX_LOGICAL while the wall clock stands still', () => {
      it('should roll over to the next millisecond with counter 0', () => {
        const clock = new HybridLogicalClock('A', { now: new FakeClock().now });
        let last = clock.now();
        for (let i = 0; i < MAX_LOGICAL; i++) last = clock.now();
        expect(wallAndCounter(last)).toEqual([T0, MAX_LOGICAL]);
        const rolled = clock.now();
        expect(wallAndCounter(rolled)).toEqual([T0 + 1, 0]);
        expect(formatTimestamp(rolled) > formatTimestamp(last)).toBe(true);
      });
    });

    describe('when the wall clock is beyond year 9999', () => {
      it('should throw a RangeError instead of issuing a timestamp that sorts wrongly', () => {
        const clock = new HybridLogicalClock('A', { now: () => MAX_WALL_MS + 1 });
        expect(() => clock.now()).toThrow(RangeError);
      });
    });
  });

  describe('.observe (Kulkarni receive rule)', () => {
    // Each case: local (l, c), physical pt, remote (m.l, m.c) -> local (l', c').
    it.each([
      ['pt is largest', [T0, 4], T0 + 10, [T0 + 5, 7], [T0 + 10, 0]],
      ['remote is largest', [T0, 4], T0, [T0 + 5, 7], [T0 + 5, 8]],
      ['local is largest', [T0 + 5, 4], T0, [T0 + 1, 7], [T0 + 5, 5]],
      ['local and remote tie, local counter larger', [T0 + 5, 9], T0, [T0 + 5, 7], [T0 + 5, 10]],
      ['local and remote tie, remote counter larger', [T0 + 5, 4], T0, [T0 + 5, 7], [T0 + 5, 8]],
      ['all three tie', [T0, 4], T0, [T0, 7], [T0, 8]],
    ] as const)('should apply the rule when %s', (_case, [l, c], pt, [ml, mc], expected) => {
      const wall = new FakeClock(l);
      const clock = new HybridLogicalClock('A', { now: wall.now });
      clock.observe(ts(l, c - 1)); // brings a fresh clock to the state (l, c)
      expect(wallAndCounter(clock.last)).toEqual([l, c]);
      wall.set(pt);
      const result = clock.observe(ts(ml, mc));
      expect(result).toEqual({ drifted: false, aheadMs: ml - pt });
      expect(wallAndCounter(clock.last)).toEqual(expected);
    });

    it('should make the next local timestamp greater than the remote one (property)', () => {
      const arb = fc.record({
        localMs: fc.integer({ min: T0 - 5000, max: T0 + 5000 }),
        remote: fc.record({ wallMs: fc.integer({ min: T0 - 5000, max: T0 + 5000 }), logical: fc.integer({ min: 0, max: MAX_LOGICAL }), nodeId: fc.constantFrom('A', 'B', '0') }),
        localEvents: fc.integer({ min: 0, max: 5 }),
      });
      fc.assert(
        fc.property(arb, ({ localMs, remote, localEvents }) => {
          const clock = new HybridLogicalClock('A', { now: () => localMs });
          for (let i = 0; i < localEvents; i++) clock.now();
          const before = clock.last;
          expect(clock.observe(remote).drifted).toBe(false);
          const next = clock.now();
          expect(compareTimestamps(next, remote)).toBe(1);
          expect(compareTimestamps(next, before)).toBe(1);
          expect(formatTimestamp(next) > formatTimestamp(remote)).toBe(true);
        }),
        { numRuns: 1000 },
      );
    });

    describe('when the remote counter is MAX_LOGICAL', () => {
      it('should roll over to the next millisecond', () => {
        const clock = new HybridLogicalClock('A', { now: () => T0 });
        clock.observe(ts(T0, MAX_LOGICAL));
        expect(wallAndCounter(clock.last)).toEqual([T0 + 1, 0]);
        expect(compareTimestamps(clock.now(), ts(T0, MAX_LOGICAL, 'Z'))).toBe(1);
      });
    });

    describe('when the remote timestamp is more than maxDriftMs ahead', () => {
      it('should report the drift and leave the clock unchanged', () => {
        const wall = new FakeClock();
        const clock = new HybridLogicalClock('A', { now: wall.now, maxDriftMs: 1000 });
        clock.now();
        const before = clock.last;
        expect(clock.observe(ts(T0 + 1001, 3))).toEqual({ drifted: true, aheadMs: 1001 });
        expect(clock.last).toEqual(before);
        expect(clock.now()).toEqual(ts(T0, 1, 'A'));
      });
    });

    describe('when the remote timestamp is exactly maxDriftMs ahead', () => {
      it('should adopt it', () => {
        const clock = new HybridLogicalClock('A', { now: () => T0, maxDriftMs: 1000 });
        expect(clock.observe(ts(T0 + 1000, 3))).toEqual({ drifted: false, aheadMs: 1000 });
        expect(wallAndCounter(clock.last)).toEqual([T0 + 1000, 4]);
      });
    });

    it('should never pull the clock more than maxDriftMs ahead of the physical clock (property)', () => {
      const arb = fc.record({
        maxDriftMs: fc.integer({ min: 1, max: 10_000 }),
        events: fc.array(fc.record({ advanceMs: fc.integer({ min: -50, max: 50 }), remoteAheadMs: fc.integer({ min: -20_000, max: 20_000 }), logical: fc.integer({ min: 0, max: 5 }) }), { maxLength: 50 }),
      });
      fc.assert(
        fc.property(arb, ({ maxDriftMs, events }) => {
          const wall = new FakeClock();
          const clock = new HybridLogicalClock('A', { now: wall.now, maxDriftMs });
          let maxPt = wall.ms;
          for (const e of events) {
            wall.advance(e.advanceMs);
            maxPt = Math.max(maxPt, wall.ms);
            const before = clock.last;
            const { drifted } = clock.observe(ts(wall.ms + e.remoteAheadMs, e.logical));
            expect(drifted).toBe(e.remoteAheadMs > maxDriftMs);
            if (drifted) expect(clock.last).toEqual(before);
            expect(clock.last.wallMs).toBeLessThanOrEqual(maxPt + maxDriftMs);
          }
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('.after', () => {
    describe('when seen is within maxDriftMs', () => {
      it('should adopt seen and return a timestamp just after it', () => {
        // B's wall clock is 2 s behind the writer of `seen`; B still writes after it.
        const clock = new HybridLogicalClock('B', { now: () => T0 - 2000 });
        const seen = ts(T0, 3, 'A');
        const next = clock.after(seen);
        expect(next).toEqual(ts(T0, 5, 'B'));
        expect(clock.last).toEqual(next);
        expect(compareTimestamps(clock.now(), next)).toBe(1);
      });
    });

    describe('when seen is beyond maxDriftMs', () => {
      it('should return the successor of seen and leave the clock where it was', () => {
        const clock = new HybridLogicalClock('B', { now: () => T0, maxDriftMs: 1000 });
        const seen = ts(T0 + 5000, 3, 'A');
        expect(clock.after(seen)).toEqual(ts(T0 + 5000, 4, 'B'));
        expect(clock.last).toEqual(ts(T0, 0, 'B'));
      });

      it('should roll the successor into the next millisecond when seen has counter MAX_LOGICAL', () => {
        const clock = new HybridLogicalClock('B', { now: () => T0, maxDriftMs: 1000 });
        expect(clock.after(ts(T0 + 5000, MAX_LOGICAL, 'A'))).toEqual(ts(T0 + 5001, 0, 'B'));
      });
    });

    it('should be strictly greater than seen and than the clock, within and beyond drift (property)', () => {
      const arb = fc.record({
        maxDriftMs: fc.constantFrom(1, 100, 60_000),
        ptMs: fc.integer({ min: T0 - 1000, max: T0 + 1000 }),
        seen: fc.record({
          wallMs: fc.oneof(fc.integer({ min: T0 - 100_000, max: T0 + 100_000 }), fc.integer({ min: T0 - 2, max: T0 + 2 })),
          logical: fc.oneof(fc.integer({ min: 0, max: MAX_LOGICAL }), fc.constant(MAX_LOGICAL)),
          nodeId: fc.constantFrom('A', 'B', 'C', '0', 'z'),
        }),
        earlierEvents: fc.integer({ min: 0, max: 3 }),
      });
      fc.assert(
        fc.property(arb, ({ maxDriftMs, ptMs, seen, earlierEvents }) => {
          const clock = new HybridLogicalClock('B', { now: () => ptMs, maxDriftMs });
          for (let i = 0; i < earlierEvents; i++) clock.now();
          const before = clock.last;
          const next = clock.after(seen);
          expect(next.nodeId).toBe('B');
          expect(compareTimestamps(next, seen)).toBe(1);
          expect(compareTimestamps(next, before)).toBe(1);
          expect(formatTimestamp(next) > formatTimestamp(seen)).toBe(true);
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('.restore', () => {
    describe('when the node restarts with its wall clock stepped back', () => {
      it('should keep issuing timestamps after the persisted high-water mark', () => {
        // before restart: wall T0,      issues T0/000000, T0/000001   (hwm = T0 persisted)
        // after restart:  wall T0 - 60s, restore(T0) -> next stamps still > T0/000001
        const wall = new FakeClock();
        const first = new HybridLogicalClock('A', { now: wall.now });
        const issued = [first.now(), first.now()];
        const hwm = Math.max(...issued.map((t) => t.wallMs));

        wall.set(T0 - 60_000);
        const restarted = new HybridLogicalClock('A', { now: wall.now });
        restarted.restore(hwm);
        issued.push(restarted.now(), restarted.now());
        wall.advance(30_000);
        issued.push(restarted.now());
        expectIncreasing(issued);
      });

      it('should go backwards without restore (the hazard restore removes)', () => {
        const wall = new FakeClock();
        const before = new HybridLogicalClock('A', { now: wall.now }).now();
        wall.set(T0 - 60_000);
        const naive = new HybridLogicalClock('A', { now: wall.now }).now();
        expect(compareTimestamps(naive, before)).toBe(-1);
      });
    });

    describe('when the high-water mark is behind the clock', () => {
      it('should not move the clock back', () => {
        const clock = new HybridLogicalClock('A', { now: () => T0 });
        clock.now();
        clock.now();
        clock.restore(T0 - 10_000);
        expect(clock.last).toEqual(ts(T0, 1, 'A'));
      });
    });

    it('should order every later timestamp after any timestamp at the high-water mark (property)', () => {
      const arb = fc.record({ hwm: fc.integer({ min: T0 - 100_000, max: T0 + 100_000 }), pts: fc.array(fc.integer({ min: T0 - 200_000, max: T0 + 200_000 }), { minLength: 1, maxLength: 20 }) });
      fc.assert(
        fc.property(arb, ({ hwm, pts }) => {
          const clock = new HybridLogicalClock('A', { now: scriptedClock(pts) });
          clock.restore(hwm);
          const stamps = pts.map(() => clock.now());
          expectIncreasing([ts(hwm, MAX_LOGICAL, 'zzz'), ...stamps]);
        }),
        { numRuns: 500 },
      );
    });
  });
});
