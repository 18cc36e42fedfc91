/**
 * The results table printed at the end of a run.
 */
import type { ResultRow } from './result.js';

function formatNumber(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return v === null ? '—' : String(v);
  const abs = Math.abs(v);
  if (abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** A fixed-width text table, one line per row; failed rows show their error underneath. */
export function renderTable(rows: readonly ResultRow[]): string {
  const header = ['scenario', 'ours', 'baseline', 'unit', 'ratio', 'target', 'met'];
  const cells = rows.map((r) => [
    r.name,
    formatNumber(r.ours),
    formatNumber(r.baseline),
    r.unit,
    r.ratio === null ? '—' : `${formatNumber(r.ratio)}×`,
    r.target ?? '—',
    r.error ? 'FAILED' : r.met === null ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const numeric = new Set([1, 2, 4]);
  const line = (c: string[]) => c.map((v, i) => (numeric.has(i) ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  rows.forEach((r, i) => {
    out.push(line(cells[i] as string[]));
    if (r.error) out.push(`    ↳ ${r.error}`);
  });
  return out.join('\n');
}
