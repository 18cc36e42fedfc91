/**
 * The benchmark harness end to end: every scenario of `npm run bench`, with the tiny
 * `smoke` sizes, on its own private redis-server. It asserts only that the run completes
 * and that every replicated run verified identical replicas; it asserts no timing (this
 * 2-core machine is shared, and the numbers belong in the report, not in a test).
 */
import { describe, expect, it } from 'vitest';
import { runBench, type ReportRow } from '../../bench/lib/runner.js';
import { SCENARIOS } from '../../bench/scenarios/index.js';
import { LocalRedisServer } from '../../src/local-redis/local-redis.js';

/** Every numeric `verifiedIdenticalRecords` found anywhere in a row's details, by scenario id. */
function verifiedRecords(rows: readonly ReportRow[]): Map<string, number[]> {
  const found = new Map<string, number[]>();
  const visit = (scenario: string, value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    for (const [k, v] of Object.entries(value)) {
      if (k === 'verifiedIdenticalRecords' && typeof v === 'number') found.set(scenario, [...(found.get(scenario) ?? []), v]);
      else visit(scenario, v);
    }
  };
  for (const row of rows) visit(row.scenario, row.details);
  return found;
}

// The benchmark always starts its own redis-server (never the shared one); without the
// binary there is nothing to run it on.
describe.skipIf(!LocalRedisServer.isAvailable())('npm run bench (smoke profile)', () => {
  describe('when every scenario runs', () => {
    it('should complete, report every scenario and verify convergence of every replicated run', async () => {
      const progress: string[] = [];
      const outcome = await runBench({ profile: 'smoke', scenarios: SCENARIOS, outFile: null, log: (line) => progress.push(line) });
      const rows = outcome.report.scenarios;

      const failures = rows.filter((r) => r.error !== undefined).map((r) => `${r.name}: ${r.error}`);
      expect(failures, progress.join('\n')).toEqual([]);
      expect(outcome.failed).toBe(false);
      expect(new Set(rows.map((r) => r.scenario))).toEqual(new Set(SCENARIOS.map((s) => s.id)));
      for (const r of rows) expect(Number.isFinite(r.ours), `${r.name} has no measurement`).toBe(true);

      // Issue 2's coalescing comparison: 5 rows per workload (hot and spread keys), each measured on both sides.
      const coalescing = rows.filter((r) => r.scenario === 'hot-keys' && r.name.startsWith('diag: coalescing'));
      expect(coalescing.map((r) => r.name)).toHaveLength(10);
      for (const r of coalescing) expect(Number.isFinite(r.baseline), `${r.name} has no dedup measurement`).toBe(true);

      const verified = verifiedRecords(rows);
      for (const id of ['replicated-throughput', 'convergence-lag', 'hot-keys', 'memory', 'scale', 'cluster-store']) {
        const counts = verified.get(id) ?? [];
        expect(counts.length, `${id} reported no verified convergence`).toBeGreaterThan(0);
        for (const n of counts) expect(n, `${id} verified an empty state`).toBeGreaterThan(0);
      }
    }, 150_000);
  });
});
