import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvalidInputError } from '../../src/errors/index.js';
import { formatListCursor, parseListCursor } from '../../src/node/input.js';

describe('list cursors', () => {
  it('should start at SCAN cursor 0 with no key to resume after', () => {
    expect(parseListCursor(undefined)).toEqual(['0', undefined]);
    expect(parseListCursor('')).toEqual(['0', undefined]);
    expect(parseListCursor('17')).toEqual(['17', undefined]);
  });

  it('should resume after exactly the key it was made with, whatever the key (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), (scan, key) => {
        expect(parseListCursor(formatListCursor(String(scan), key))).toEqual([String(scan), key]);
      }),
    );
  });

  it('should reject what it did not make', () => {
    for (const bad of ['abc', '-1', '1.2.3', '0x10', '1.a+b', '18446744073709551616']) {
      expect(() => parseListCursor(bad), bad).toThrow(InvalidInputError);
    }
  });
});
