import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../../src/errors/index.js';
import { BatchWindow, batchWindowMs, WINDOW_PER_PASS } from '../../src/replication/batch-window.js';
import { resolveReplicationOptions } from '../../src/replication/options.js';

describe('the relay batching window', () => {
  const o = resolveReplicationOptions();

  it('is half the delay, at most 50 ms, while passes are quick', () => {
    expect(batchWindowMs(o, 0)).toBe(25);
    expect(batchWindowMs(o, 2)).toBe(25);
    expect(batchWindowMs({ ...o, delayMs: 400 }, 2)).toBe(50);
    expect(batchWindowMs({ ...o, delayMs: { min: 100, max: 500 } }, 1)).toBe(50);
    expect(batchWindowMs({ ...o, delayMs: 0 }, 0)).toBe(0);
  });

  it(`widens to ${WINDOW_PER_PASS}× the pass time when passes slow down, up to maxBatchWindowMs`, () => {
    expect(batchWindowMs(o, 10)).toBe(40);
    expect(batchWindowMs(o, 30)).toBe(120);
    expect(batchWindowMs(o, 80)).toBe(200);
    expect(batchWindowMs(o, 5_000)).toBe(200);
    expect(batchWindowMs({ ...o, maxBatchWindowMs: 1_000 }, 5_000)).toBe(1_000);
  });

  it('stays fixed when maxBatchWindowMs is at or below the base window', () => {
    expect(batchWindowMs({ ...o, maxBatchWindowMs: 0 }, 500)).toBe(25);
    expect(batchWindowMs({ ...o, maxBatchWindowMs: 20 }, 500)).toBe(25);
  });

  it('defaults maxBatchWindowMs to 200 and refuses a negative or fractional one', () => {
    expect(o.maxBatchWindowMs).toBe(200);
    expect(() => resolveReplicationOptions({ maxBatchWindowMs: -1 })).toThrow(InvalidOptionsError);
    expect(() => resolveReplicationOptions({ maxBatchWindowMs: 1.5 })).toThrow(/replication\.maxBatchWindowMs/);
  });

  it('should stay wide while passes follow each other, and forget a busy spell once the relay waited a whole window', () => {
    const w = new BatchWindow(o);
    expect(w.windowAt(0)).toBe(25);
    w.passed(40, 100);
    expect(w.windowAt(100), 'right after a slow pass').toBe(200);
    w.passed(340, 400);
    expect(w.windowAt(450), 'writes waiting less than a window after the pass').toBe(200);
    expect(w.windowAt(601), 'the relay waited longer than the window: not busy now').toBe(25);
    w.passed(699, 700);
    expect(w.windowAt(700), 'a quick pass keeps it at the base').toBe(25);
    w.passed(800, 900);
    expect(w.windowAt(900), 'one slow pass widens it again').toBe(Math.min(200, Math.round(4 * (0.3 * 100 + 0.7 * 1))));
  });
});
