/**
 * What a scenario reports: rows of `ours` against a `baseline` measured in the same run on
 * the same Redis, with the target for the row and whether it was met.
 *
 * `ratio` is always `ours / baseline`, whatever the unit, so "higher is better" rows
 * (ops/s) have a minimum-ratio target and "lower is better" rows (bytes, µs) a maximum.
 */
import { round } from './stats.js';

/** A target from the issue, checked against a row. */
export type Target =
  /** `ours / baseline` must be at least `min` (throughput). */
  | { readonly kind: 'min-ratio'; readonly min: number }
  /** `ours / baseline` must be at most `max` (memory, cost). */
  | { readonly kind: 'max-ratio'; readonly max: number }
  /** `ours / baseline` must lie in `[min, max]` ("flat ±20%"). */
  | { readonly kind: 'ratio-between'; readonly min: number; readonly max: number }
  /** `ours` itself must be at most `max` (in the row's unit), e.g. "p99 ≤ 2 ms". */
  | { readonly kind: 'max-value'; readonly max: number }
  /** `ours` itself must be at least `min` (in the row's unit), e.g. "keeps up: ≥ 1.0×". */
  | { readonly kind: 'min-value'; readonly min: number };

/** One line of the results table and of `latest.json`. */
export interface ResultRow {
  name: string;
  /** Our measurement, or null when the scenario failed before measuring it. */
  ours: number | null;
  baseline: number | null;
  unit: string;
  ratio: number | null;
  /** The target in words (null: the issue sets none; the row is informational). */
  target: string | null;
  /** Whether the target was met (null: no target, or nothing measured). */
  met: boolean | null;
  details?: Record<string, unknown>;
  /** Set when the scenario failed (e.g. did not converge); `met` is then false. */
  error?: string;
}

export function describeTarget(target: Target, unit: string): string {
  switch (target.kind) {
    case 'min-ratio':
      return `≥ ${target.min}× baseline`;
    case 'max-ratio':
      return `≤ ${target.max}× baseline`;
    case 'ratio-between':
      return `${target.min}–${target.max}× baseline`;
    case 'max-value':
      return `≤ ${target.max} ${unit}`;
    case 'min-value':
      return `≥ ${target.min} ${unit}`;
  }
}

function isMet(target: Target, ours: number, ratio: number | null): boolean {
  switch (target.kind) {
    case 'min-ratio':
      return ratio !== null && ratio >= target.min;
    case 'max-ratio':
      return ratio !== null && ratio <= target.max;
    case 'ratio-between':
      return ratio !== null && ratio >= target.min && ratio <= target.max;
    case 'max-value':
      return ours <= target.max;
    case 'min-value':
      return ours >= target.min;
  }
}

/** Builds a row, computing the ratio and whether the target was met. */
export function row(
  name: string,
  fields: { ours: number; baseline: number | null; unit: string; target?: Target; details?: Record<string, unknown> },
): ResultRow {
  const { ours, baseline, unit, target, details } = fields;
  const ratio = baseline !== null && baseline !== 0 && Number.isFinite(baseline) ? round(ours / baseline, 3) : null;
  const out: ResultRow = {
    name,
    ours: round(ours),
    baseline: baseline === null ? null : round(baseline),
    unit,
    ratio,
    target: target ? describeTarget(target, unit) : null,
    met: target && Number.isFinite(ours) ? isMet(target, ours, ratio) : null,
  };
  if (details) out.details = details;
  return out;
}

/** The row recorded for a scenario that threw: loud in the table, `met: false`. */
export function failedRow(name: string, error: unknown): ResultRow {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { name, ours: null, baseline: null, unit: '', ratio: null, target: null, met: false, error: message };
}
