/**
 * `npm run bench` — every scenario of the benchmark issue against its baseline on a private
 * redis-server; prints progress and a table, writes bench/results/latest.json.
 *
 *   npm run bench                 full run (the numbers for the report)
 *   npm run bench -- --quick      under a minute (CI smoke: must complete and converge)
 *   npm run bench -- --only=local-write,memory --out=/tmp/r.json
 *
 * Exits 1 when a scenario failed (e.g. did not converge); unmet targets are reported, not failures.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Profile } from './lib/context.js';
import { runBench } from './lib/runner.js';
import { SCENARIOS } from './scenarios/index.js';

const USAGE = `usage: npm run bench -- [--quick] [--only=id,id] [--out=file.json]
scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profile: Profile = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
  const outFile = values.out ?? fileURLToPath(new URL('./results/latest.json', import.meta.url));
  const outcome = await runBench({
    profile,
    scenarios: SCENARIOS,
    ...(values.only ? { only: values.only.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    outFile,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  console.log(`\neventual-cache benchmark (${profile}; ratio = ours / baseline)\n`);
  console.log(outcome.table);
  if (outcome.failed) console.error('\nFAILED: at least one scenario did not complete or did not converge (see above).');
  return outcome.failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
