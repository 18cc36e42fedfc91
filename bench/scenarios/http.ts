/**
 * 5. HTTP: `PUT /keys/:key` through the node's Express app against a bare Express 5 JSON
 * handler that stores nothing, with autocannon (programmatic API), the same connections,
 * duration, keys and 100-byte body on both sides. Each server runs in its own process so
 * it does not share an event loop with the load generator; a warm-up run precedes each
 * measured run. Any non-2xx answer or socket error fails the scenario.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon, { type Result } from 'autocannon';
import type { BenchContext } from '../lib/context.js';
import { withTimeout } from '../lib/deadline.js';
import { valueOfBytes } from '../lib/payload.js';
import { resetServer } from '../lib/redis-stats.js';
import { row } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { median, round } from '../lib/stats.js';

export interface Target {
  port: number;
  stop(): Promise<{ writes: number }>;
}

const TARGET = fileURLToPath(new URL('../lib/http-target.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Forks `lib/http-target.ts` with `args` (extra Node flags such as `--cpu-prof` go in `execArgv`) and waits until it listens. */
export async function startTarget(args: string[], execArgv: string[] = []): Promise<Target> {
  const child: ChildProcess = fork(TARGET, args, { execArgv: ['--import', TSX, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: Array<(m: Record<string, unknown>) => void> = [];
  child.on('message', (m) => messages.shift()?.(m as Record<string, unknown>));
  const next = (ms: number, what: string) =>
    withTimeout(
      new Promise<Record<string, unknown>>((resolve, reject) => {
        messages.push(resolve);
        child.once('exit', (code) => reject(new Error(`HTTP target (${args[0]}) exited with code ${code} while ${what}`)));
      }),
      ms,
      `HTTP target (${args[0]}) ${what}`,
    );
  try {
    const ready = await next(30_000, 'starting');
    if (typeof ready.error === 'string') throw new Error(`HTTP target (${args[0]}) failed to start: ${ready.error}`);
    return {
      port: Number(ready.port),
      stop: async () => {
        child.send({ stop: true });
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try {
          const stopped = await next(20_000, 'stopping');
          // Let it exit by itself (a --cpu-prof profile is written on exit).
          await withTimeout(exited, 10_000, `HTTP target (${args[0]}) exiting`).catch(() => undefined);
          return { writes: Number(stopped.writes ?? 0) };
        } finally {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

/** `PUT /keys/key-<n>` with a 100-byte JSON value for `durationSec`; throws on any non-2xx answer or socket error. */
export async function load(ctx: BenchContext, port: number, durationSec: number, title: string): Promise<Result> {
  const { connections } = ctx.sizes.http;
  const body = JSON.stringify({ value: valueOfBytes(0, 100) });
  let seq = 0;
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: durationSec,
    timeout: 10,
    title,
    requests: [
      {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body,
        setupRequest: (request) => ({ ...request, path: `/keys/key-${seq++ % 10_000}` }),
      },
    ],
  });
  const result = await withTimeout(Promise.resolve(instance), (durationSec + 30) * 1000, `autocannon ${title}`).catch((error: unknown) => {
    instance.stop();
    throw error;
  });
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${title}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts — the run does not measure what it claims`);
  }
  return result;
}

async function measure(ctx: BenchContext, args: string[], title: string): Promise<{ result: Result; writes: number }> {
  const target = await startTarget(args);
  try {
    await load(ctx, target.port, ctx.sizes.http.warmupSec, `${title} warm-up`);
    const result = await load(ctx, target.port, ctx.sizes.http.durationSec, title);
    const { writes } = await target.stop();
    return { result, writes };
  } catch (error) {
    await target.stop().catch(() => undefined);
    throw error;
  }
}

export const httpScenario: Scenario = {
  id: 'http',
  title: '5. HTTP',
  async run(ctx) {
    const { connections, durationSec } = ctx.sizes.http;
    const bares: Result[] = [];
    const ourRuns: Array<{ result: Result; writes: number }> = [];
    const rate = (r: Result) => r['2xx'] / r.duration;
    for (let r = 1; r <= ctx.sizes.rounds; r++) {
      const tag = ctx.sizes.rounds > 1 ? ` (round ${r}/${ctx.sizes.rounds})` : '';
      await resetServer(ctx.admin);
      ctx.log(`bare Express 5 JSON handler${tag}: ${connections} connections, ${durationSec} s`);
      const bare = (await measure(ctx, ['bare'], 'bare Express')).result;
      ctx.log(`bare${tag}: ${Math.round(rate(bare))} req/s, p99 ${bare.latency.p99} ms; now the node's PUT /keys/:key`);
      const ours = await measure(ctx, ['node', ctx.server.url(1), ctx.server.url(2), ctx.server.url(3)], 'node PUT');
      ctx.log(`node${tag}: ${Math.round(rate(ours.result))} req/s, p99 ${ours.result.latency.p99} ms`);
      // Every 2xx (warm-up and measured run) must be a write the node committed.
      if (ours.writes < ours.result['2xx']) throw new Error(`the node counted ${ours.writes} writes for ${ours.result['2xx']} successful PUTs`);
      bares.push(bare);
      ourRuns.push(ours);
    }
    const summary = (r: Result) => ({
      requests: r['2xx'],
      reqPerSec: round(rate(r)),
      durationSec: r.duration,
      latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: round(r.latency.mean) },
    });
    const ours = ourRuns.map((o) => o.result);
    return [
      row('HTTP PUT /keys/:key: throughput', {
        ours: median(ours.map(rate)),
        baseline: median(bares.map(rate)),
        unit: 'req/s',
        target: { kind: 'min-ratio', min: 0.6 },
        details: {
          connections,
          durationSec,
          bodyBytes: JSON.stringify({ value: valueOfBytes(0, 100) }).length,
          setup: 'each server in its own process; autocannon in the bench process; ours: createApp(node, {}) on node n1 with peers n2, n3 declared',
          rounds: ctx.sizes.rounds,
          perRound: ourRuns.map((o, i) => ({ ours: { ...summary(o.result), nodeWrites: o.writes }, baseline: summary(bares[i] as Result) })),
        },
      }),
      row('HTTP PUT /keys/:key: p99 latency', { ours: median(ours.map((r) => r.latency.p99)), baseline: median(bares.map((r) => r.latency.p99)), unit: 'ms' }),
    ];
  },
};
