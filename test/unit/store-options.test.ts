/**
 * The record store's options: defaults, and a clear error naming the field for bad values.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_STORE_OPTIONS, resolveStoreOptions } from '../../src/store/store-options.js';
import { InvalidOptionsError } from '../../src/errors/index.js';

describe('resolveStoreOptions', () => {
  it('should fill in the defaults, a group commit beside another needing 16 writes', () => {
    const o = resolveStoreOptions();
    expect(o).toEqual(DEFAULT_STORE_OPTIONS);
    expect(o.minConcurrentBatch).toBe(16);
    expect(resolveStoreOptions({ minConcurrentBatch: 1 }).minConcurrentBatch).toBe(1);
  });

  it.each([0, -1, 1.5, Number.NaN])('should refuse minConcurrentBatch %s, naming the field', (value) => {
    const attempt = () => resolveStoreOptions({ minConcurrentBatch: value });
    expect(attempt).toThrow(InvalidOptionsError);
    expect(attempt).toThrow(/minConcurrentBatch/);
  });
});
