import { describe, expect, it } from 'vitest';
import { VersionVector } from '../../src/clock/version-vector.js';
import type { CacheRecord } from '../../src/record/record.js';
import { localWrite } from '../../src/record/write.js';
import { deepFreeze } from './support/arbitraries.js';
import { T0 } from './support/fake-clock.js';

const hlc = (n: number, node: string): string => `2026-11-23T21:55:09.123Z/${String(n).padStart(6, '0')}/${node}`;

describe('.localWrite', () => {
  describe('when the key is new', () => {
    it('should start the version vector at one write by this node', () => {
      const record = localWrite(undefined, { kind: 'put', key: 'k', valueJson: '"v1"' }, hlc(0, 'A'), 'A', T0);
      expect(record).toEqual({ key: 'k', hlc: hlc(0, 'A'), origin: 'A', version: { A: 1 }, written: { A: 1 }, deleted: false, valueJson: '"v1"' });
      expect(record).not.toHaveProperty('expiresAt');
    });
  });

  describe('when it overwrites a record merged from several nodes', () => {
    it('should extend everything the record had seen by one write of its own', () => {
      // A:w1 ─▶ B, C:w1 ─▶ B ; B merges both, then writes
      const existing = deepFreeze<CacheRecord>({ key: 'k', hlc: hlc(3, 'C'), origin: 'C', version: { A: 2, C: 1 }, written: { C: 1 }, deleted: false, valueJson: '1' });
      const record = localWrite(existing, { kind: 'put', key: 'k', valueJson: '2' }, hlc(4, 'B'), 'B', T0);
      expect(record.version).toEqual({ A: 2, B: 1, C: 1 });
      expect(record.written).toEqual(record.version);
      expect(VersionVector.dominates(record.version, existing.version)).toBe(true);
      expect(existing.version).toEqual({ A: 2, C: 1 });
    });
  });

  describe('when the put carries ttlMs', () => {
    it('should turn it into an absolute expiry on the writer physical clock', () => {
      const record = localWrite(undefined, { kind: 'put', key: 'k', valueJson: '1', ttlMs: 1500 }, hlc(0, 'A'), 'A', T0 - 2000);
      expect(record.expiresAt).toBe(T0 - 500);
    });
  });

  describe('when the op is a delete', () => {
    it('should leave a tombstone with no value and no expiry that dominates the record it deletes', () => {
      const existing = deepFreeze<CacheRecord>({ key: 'k', hlc: hlc(0, 'A'), origin: 'A', version: { A: 1 }, written: { A: 1 }, deleted: false, valueJson: '1', expiresAt: T0 + 10 });
      const tombstone = localWrite(existing, { kind: 'delete', key: 'k' }, hlc(1, 'A'), 'A', T0);
      expect(tombstone).toEqual({ key: 'k', hlc: hlc(1, 'A'), origin: 'A', version: { A: 2 }, written: { A: 2 }, deleted: true });
    });
  });
});
