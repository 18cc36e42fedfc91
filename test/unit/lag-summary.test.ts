/**
 * `lagSummary`: percentiles from cumulative histogram buckets, interpolated inside the
 * bucket like Prometheus' histogram_quantile.
 */
import { describe, expect, it } from 'vitest';
import { lagSummary } from '../../src/node/cluster-view.js';

describe('lagSummary', () => {
  it('should answer null percentiles when nothing was observed', () => {
    expect(lagSummary([0.1, 1, Infinity], [0, 0, 0])).toEqual({ p50Ms: null, p99Ms: null, samples: 0 });
  });

  it('should interpolate inside the bucket holding the rank', () => {
    // 100 samples: 50 at most 0.1 s, 100 at most 1 s.
    const s = lagSummary([0.1, 1, Infinity], [50, 100, 100]);
    expect(s.samples).toBe(100);
    expect(s.p50Ms).toBe(100);
    expect(s.p99Ms).toBeCloseTo(100 + 900 * (49 / 50), 5);
  });

  it('should report the last finite bound for ranks in the +Inf bucket', () => {
    expect(lagSummary([0.1, 1, Infinity], [0, 0, 10]).p99Ms).toBe(1000);
  });
});
