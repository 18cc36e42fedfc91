import { describe, expect, it } from 'vitest';
import { HybridLogicalClock } from '../../src/clock/hlc.js';
import { formatTimestamp, MAX_LOGICAL, MAX_RECORD_WALL_MS, parseTimestamp } from '../../src/clock/timestamp.js';
import { encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { decodeAll, decodeStored } from '../../src/store/quarantine.js';
import { T0 } from './support/fake-clock.js';

const recordAt = (hlc: string): CacheRecord => ({ key: 'k', hlc, origin: parseTimestamp(hlc).nodeId, version: { B: 1 }, written: { B: 1 }, deleted: false, valueJson: '1' });

describe('decodeStored', () => {
  it('should decode a usable record', () => {
    const record = recordAt(formatTimestamp({ wallMs: T0, logical: 0, nodeId: 'B' }));
    expect(decodeStored('k', 'ec:A:rec:k', encodeRecord(record))).toEqual({ record });
  });

  it.each([
    ['garbage', 'definitely not a record'],
    ['an unknown format', '9|2026-01-01T00:00:00.000Z/000000/B|B:1||||v|1'],
    ['a bad flag', `1|${formatTimestamp({ wallMs: T0, logical: 0, nodeId: 'B' })}|B:1|||x|1`],
    ['an HLC on a day that does not exist', '1|2026-02-30T00:00:00.000Z/000000/B|B:1||||v|1'],
    ['a value that is not JSON', '1|2026-02-03T00:00:00.000Z/000000/B|B:1||||v|{"broken'],
  ])('should report %s as undecodable, keeping the raw bytes', (_label, raw) => {
    const { bad } = decodeStored('k', 'ec:A:rec:k', raw);
    expect(bad).toMatchObject({ key: 'k', redisKey: 'ec:A:rec:k', reason: 'undecodable', raw });
  });

  it('should report an HLC at the format ceiling as out of range', () => {
    const raw = encodeRecord(recordAt('9999-12-31T23:59:59.999Z/999999/B'));
    expect(decodeStored('k', 'ec:A:rec:k', raw).bad).toMatchObject({ reason: 'hlc-out-of-range', raw });
  });

  it('should accept the horizon itself and reject one millisecond past it, whatever the local clock', () => {
    const at = recordAt(formatTimestamp({ wallMs: MAX_RECORD_WALL_MS, logical: MAX_LOGICAL, nodeId: 'B' }));
    const past = recordAt(formatTimestamp({ wallMs: MAX_RECORD_WALL_MS + 1, logical: 0, nodeId: 'B' }));
    expect(decodeStored('k', 'r', encodeRecord(at)).record).toEqual(at);
    expect(decodeStored('k', 'r', encodeRecord(past)).bad?.reason).toBe('hlc-out-of-range');
  });
});

describe('decodeAll', () => {
  it('should decode every key on its own: one bad value does not hide the others', () => {
    const good = recordAt(formatTimestamp({ wallMs: T0, logical: 0, nodeId: 'B' }));
    const { records, bad } = decodeAll(['a', 'b', 'c'], ['r:a', 'r:b', 'r:c'], [encodeRecord({ ...good, key: 'a' }), 'junk', null]);
    expect([...records.keys()]).toEqual(['a']);
    expect(bad.map((b) => b.key)).toEqual(['b']);
  });
});

describe('HybridLogicalClock.after near the record horizon', () => {
  it('should step past a far-future record and stay within the horizon', () => {
    const clock = new HybridLogicalClock('A', { now: () => T0 });
    const seen = { wallMs: MAX_RECORD_WALL_MS - 1, logical: MAX_LOGICAL, nodeId: 'B' };
    expect(clock.after(seen)).toEqual({ wallMs: MAX_RECORD_WALL_MS, logical: 0, nodeId: 'A' });
  });

  it("should stamp a write over the horizon's last step at that step, so the key stays writable", () => {
    const clock = new HybridLogicalClock('A', { now: () => T0 });
    const seen = { wallMs: MAX_RECORD_WALL_MS, logical: MAX_LOGICAL, nodeId: 'B' };
    const ts = clock.after(seen);
    expect(ts).toEqual({ wallMs: MAX_RECORD_WALL_MS, logical: MAX_LOGICAL, nodeId: 'A' });
    expect(() => formatTimestamp(ts)).not.toThrow();
    // The far-future record did not drag the clock along.
    expect(clock.now().wallMs).toBe(T0);
  });
});
