/**
 * A benchmark scenario: one numbered item of the benchmark issue, with its baseline.
 */
import type { BenchContext } from './context.js';
import type { ResultRow } from './result.js';

export interface Scenario {
  /** Used by `--only`, e.g. `local-write`. */
  readonly id: string;
  /** Shown in progress lines, e.g. `1. Local write`. */
  readonly title: string;
  /**
   * Measures and returns its rows. Throws when the run cannot be trusted (did not
   * converge, a node reported an error); the runner records a failed row and continues.
   */
  run(ctx: BenchContext): Promise<ResultRow[]>;
}
