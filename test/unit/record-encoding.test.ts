import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptRecordError, EventualCacheError } from '../../src/errors/index.js';
import { decodeRecord, encodeRecord, isLive, sameRecord, toView, writtenAtMs, type CacheRecord } from '../../src/record/record.js';
import { recordArb } from './support/arbitraries.js';
import { T0 } from './support/fake-clock.js';

const HLC = '2026-11-23T21:55:09.123Z/000042/A';
const REDIS_KEY = 'ec:A:rec:user:123';

const sample: CacheRecord = {
  key: 'user:123',
  hlc: HLC,
  origin: 'A',
  version: { A: 3, B: 1 },
  written: { A: 3, B: 1 },
  deleted: false,
  valueJson: '{"name":"Ann","age":31}',
  expiresAt: T0 + 60_000,
};

const decode = (raw: string): CacheRecord => decodeRecord('user:123', REDIS_KEY, raw);

describe('.encodeRecord', () => {
  it('should write the documented layout, leaving `written` empty when it equals `version`', () => {
    expect(encodeRecord(sample)).toBe(`1|${HLC}|A:3,B:1||${T0 + 60_000}|v|{"name":"Ann","age":31}`);
    expect(encodeRecord({ ...sample, written: { A: 3 } })).toBe(`1|${HLC}|A:3,B:1|A:3|${T0 + 60_000}|v|{"name":"Ann","age":31}`);
  });

  it('should encode a tombstone without a value', () => {
    const { valueJson: _value, expiresAt: _exp, ...rest } = sample;
    expect(encodeRecord({ ...rest, deleted: true })).toBe(`1|${HLC}|A:3,B:1|||d|`);
  });

  it('should give identical bytes for equal records whatever the vectors key order (property)', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const reorder = (v: Readonly<Record<string, number>>): Record<string, number> => Object.fromEntries(Object.entries(v).reverse());
        const shuffledCopy: CacheRecord = { ...record, version: reorder(record.version), written: reorder(record.written) };
        expect(encodeRecord(shuffledCopy)).toBe(encodeRecord(record));
        expect(sameRecord(shuffledCopy, record)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('should give different bytes for records that differ in any replicated field', () => {
    const variants: CacheRecord[] = [
      { ...sample, hlc: '2026-11-23T21:55:09.123Z/000043/A' },
      { ...sample, version: { A: 3, B: 2 } },
      { ...sample, written: { A: 3 } },
      { ...sample, expiresAt: T0 + 60_001 },
      { ...sample, valueJson: '{"name":"Ann","age":32}' },
      { ...sample, deleted: true },
    ];
    for (const variant of variants) expect(sameRecord(variant, sample)).toBe(false);
  });
});

describe('.decodeRecord', () => {
  it('should invert encodeRecord for any valid record (property)', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        const raw = encodeRecord(record);
        const back = decodeRecord(record.key, `ec:A:rec:${record.key}`, raw);
        expect(back).toEqual(record);
        expect(encodeRecord(back)).toBe(raw);
        if (!record.deleted) expect(toView(back).value).toEqual(JSON.parse(record.valueJson as string));
      }),
      { numRuns: 2000 },
    );
  });

  it('should take the key and origin from the arguments and the HLC, not from the bytes', () => {
    const back = decodeRecord('ключ \u{1F511}', 'ec:A:rec:ключ \u{1F511}', encodeRecord(sample));
    expect(back.key).toBe('ключ \u{1F511}');
    expect(back.origin).toBe('A');
  });

  describe('when the bytes are not a record', () => {
    const good = encodeRecord(sample);
    it.each([
      ['an empty string', ''],
      ['a plain string value', 'hello'],
      ['a JSON document', '{"hlc":"x"}'],
      ['an unknown format version', good.replace(/^1\|/, '2|')],
      ['too few fields', `1|${HLC}|A:1||`],
      ['an HLC that is not a date', `1|yesterday|A:1|||v|1`],
      ['a zero counter', `1|${HLC}|A:0|||v|1`],
      ['a negative counter', `1|${HLC}|A:-1|||v|1`],
      ['a fractional counter', `1|${HLC}|A:1.5|||v|1`],
      ['a counter that is not a number', `1|${HLC}|A:x|||v|1`],
      ['a vector entry without node', `1|${HLC}|:1|||v|1`],
      ['a vector entry without counter', `1|${HLC}|A|||v|1`],
      ['a bad written vector', `1|${HLC}|A:1|A:0||v|1`],
      ['an expiry that is not a number', `1|${HLC}|A:1||soon|v|1`],
      ['a fractional expiry', `1|${HLC}|A:1||1.5|v|1`],
      ['an expiry beyond the safe integers', `1|${HLC}|A:1||1e400|v|1`],
      ['an unknown flag', `1|${HLC}|A:1|||x|1`],
    ])('should throw CorruptRecordError for %s', (_label, raw) => {
      let error: unknown;
      try {
        decode(raw);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CorruptRecordError);
      expect(error).toBeInstanceOf(EventualCacheError);
      expect(error).toMatchObject({ name: 'CorruptRecordError', redisKey: REDIS_KEY });
      expect((error as Error).cause).toBeDefined();
      expect((error as Error).message).toContain(REDIS_KEY);
    });
  });

  describe('when the HLC field is not a complete canonical timestamp', () => {
    // decodeRecord only checks Date.parse on the first 24 characters of the HLC. These
    // decode "successfully" with origin "" or garbage, and the next local write on the key
    // then fails in parseTimestamp with an InvalidInputError (a user-input error class)
    // instead of the CorruptRecordError that tells the operator what is wrong.
    it.each([
      ['no counter and no node', `1|2026-11-23T21:55:09.123Z|A:1|||v|1`],
      ['an empty node id', `1|2026-11-23T21:55:09.123Z/000001/|A:1|||v|1`],
      ['an HLC counter that is not a number', `1|2026-11-23T21:55:09.123Z/abcdef/A|A:1|||v|1`],
      ['text Date.parse happens to accept', `1|not-a-date-at-all-000000/000001/A|A:1|||v|1`],
    ])('should throw CorruptRecordError for %s', (_label, raw) => {
      expect(() => decode(raw)).toThrow(CorruptRecordError);
    });
  });
});

describe('.isLive', () => {
  it('should treat tombstones as absent', () => {
    expect(isLive({ ...sample, deleted: true }, T0)).toBe(false);
  });

  describe('when the record has an expiry', () => {
    it('should be live strictly before expiresAt and absent from expiresAt on', () => {
      expect(isLive(sample, T0 + 59_999)).toBe(true);
      expect(isLive(sample, T0 + 60_000)).toBe(false);
      expect(isLive(sample, T0 + 600_000)).toBe(false);
    });
  });

  it('should keep records without expiry live forever', () => {
    const { expiresAt: _exp, ...noTtl } = sample;
    expect(isLive(noTtl, Number.MAX_SAFE_INTEGER)).toBe(true);
  });
});

describe('.toView', () => {
  it('should parse the value and keep the timestamps', () => {
    expect(toView(sample)).toEqual({
      key: 'user:123',
      value: { name: 'Ann', age: 31 },
      hlc: HLC,
      origin: 'A',
      version: { A: 3, B: 1 },
      expiresAt: T0 + 60_000,
    });
  });

  it('should leave expiresAt out when the record has none', () => {
    const { expiresAt: _exp, ...noTtl } = sample;
    expect(toView(noTtl)).not.toHaveProperty('expiresAt');
  });
});

describe('.writtenAtMs', () => {
  it('should be the wall time of the HLC', () => {
    expect(writtenAtMs(sample)).toBe(T0);
  });
});
