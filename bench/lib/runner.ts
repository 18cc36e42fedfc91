/**
 * Runs the scenarios against one private redis-server and writes the report.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import { collectEnvironment, SIZES, type BenchContext, type Environment, type Profile } from './context.js';
import { BenchTimeoutError, withTimeout } from './deadline.js';
import { failedRow, type ResultRow } from './result.js';
import type { Scenario } from './scenario.js';
import { renderTable } from './table.js';

export interface BenchOptions {
  profile: Profile;
  scenarios: readonly Scenario[];
  /** Scenario ids to run (all when omitted). */
  only?: readonly string[];
  /** Where to write the JSON report; `null` writes nothing. */
  outFile: string | null;
  /** Progress lines (the CLI prints them to stderr). */
  log: (line: string) => void;
}

export interface ReportRow extends ResultRow {
  /** Id of the scenario that produced the row. */
  scenario: string;
}

export interface BenchReport {
  environment: Environment & { options: Record<string, unknown>; quick: boolean; profile: Profile; durationMs: number };
  scenarios: ReportRow[];
}

export interface BenchOutcome {
  report: BenchReport;
  /** True when any scenario threw (did not converge, timed out, a node failed). */
  failed: boolean;
  table: string;
}

export async function runBench(options: BenchOptions): Promise<BenchOutcome> {
  const sizes = SIZES[options.profile];
  const selected = options.only && options.only.length > 0 ? options.scenarios.filter((s) => options.only?.includes(s.id)) : options.scenarios;
  if (options.only && selected.length !== options.only.length) {
    const known = options.scenarios.map((s) => s.id).join(', ');
    throw new Error(`unknown scenario in --only=${options.only.join(',')}; known: ${known}`);
  }
  const started = performance.now();
  const stamp = () => `[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s]`;
  options.log(`${stamp()} starting a private redis-server (profile ${options.profile})`);
  const server = await LocalRedisServer.start();
  const admin = new Redis(server.url(0), { maxRetriesPerRequest: 1 });
  const rows: ReportRow[] = [];
  let failed = false;
  try {
    const environment = await collectEnvironment(admin);
    options.log(`${stamp()} redis ${environment.redis} on port ${server.port}, node ${environment.node}, ${environment.cpus} CPUs, load ${environment.loadAverage.join(' ')}`);
    let abandoned: string | undefined;
    for (const scenario of selected) {
      if (abandoned) {
        rows.push({ ...failedRow(scenario.title, new Error(`not run: ${abandoned}`)), scenario: scenario.id });
        continue;
      }
      const ctx: BenchContext = { profile: options.profile, sizes, server, admin, log: (m) => options.log(`${stamp()} ${scenario.title} › ${m}`) };
      options.log(`${stamp()} ${scenario.title}`);
      try {
        const produced = await withTimeout(scenario.run(ctx), sizes.scenarioTimeoutMs, scenario.title);
        for (const r of produced) rows.push({ ...r, scenario: scenario.id });
        for (const r of produced) options.log(`${stamp()} ${scenario.title} › ${summaryLine(r)}`);
      } catch (error) {
        failed = true;
        rows.push({ ...failedRow(scenario.title, error), scenario: scenario.id });
        options.log(`${stamp()} ${scenario.title} › FAILED: ${error instanceof Error ? error.message : String(error)}`);
        // A timed-out scenario may still hold nodes on the server; later ones would measure noise.
        if (error instanceof BenchTimeoutError && error.message.startsWith(scenario.title)) abandoned = `${scenario.title} timed out`;
      }
    }
    const report: BenchReport = {
      environment: {
        ...environment,
        options: { profile: options.profile, only: options.only ?? null, sizes },
        quick: options.profile !== 'full',
        profile: options.profile,
        durationMs: Math.round(performance.now() - started),
      },
      scenarios: rows,
    };
    if (options.outFile) {
      mkdirSync(dirname(options.outFile), { recursive: true });
      writeFileSync(options.outFile, `${JSON.stringify(report, null, 2)}\n`);
      options.log(`${stamp()} wrote ${options.outFile}`);
    }
    return { report, failed, table: renderTable(rows) };
  } finally {
    admin.disconnect();
    await server.destroy();
  }
}

function summaryLine(r: ResultRow): string {
  const n = (v: number | null) => (v === null ? '—' : String(v));
  const verdict = r.met === null ? '' : r.met ? ' (target met)' : ` (target ${r.target} NOT met)`;
  return `${r.name}: ours ${n(r.ours)} ${r.unit}, baseline ${n(r.baseline)}${r.ratio === null ? '' : `, ratio ${r.ratio}`}${verdict}`;
}
