/**
 * 5b. HTTP batch: writes per second through `POST /batch` with 100 puts per request,
 * against single `PUT /keys/:key` requests, both on the node's Express app (its own
 * process, peers declared but not running, as in scenario 5), same connections, duration,
 * key space and 100-byte values, in the same run. The puts of a batch share one group
 * commit, so the batch should be much cheaper per write. Target: ≥ 5×.
 */
import autocannon, { type Request, type Result } from 'autocannon';
import type { BenchContext } from '../lib/context.js';
import { withTimeout } from '../lib/deadline.js';
import { valueOfBytes } from '../lib/payload.js';
import { resetServer } from '../lib/redis-stats.js';
import { row } from '../lib/result.js';
import type { Scenario } from '../lib/scenario.js';
import { median, round } from '../lib/stats.js';
import { startTarget } from './http.js';

/** Puts per `POST /batch` request. */
export const PUTS_PER_BATCH = 100;
const KEY_SPACE = 10_000;

type Mode = 'single' | 'batch';

async function load(ctx: BenchContext, port: number, durationSec: number, mode: Mode, title: string): Promise<Result> {
  const { connections } = ctx.sizes.http;
  const value = valueOfBytes(0, 100);
  const single = JSON.stringify({ value });
  let seq = 0;
  const request: Request =
    mode === 'single'
      ? { method: 'PUT', headers: { 'content-type': 'application/json' }, body: single, setupRequest: (r: Request) => ({ ...r, path: `/keys/key-${seq++ % KEY_SPACE}` }) }
      : {
          method: 'POST',
          path: '/batch',
          headers: { 'content-type': 'application/json' },
          setupRequest: (r: Request) => {
            const ops = Array.from({ length: PUTS_PER_BATCH }, () => ({ op: 'put', key: `key-${seq++ % KEY_SPACE}`, value }));
            return { ...r, body: JSON.stringify({ ops }) };
          },
        };
  const instance = autocannon({ url: `http://127.0.0.1:${port}`, connections, duration: durationSec, timeout: 10, title, requests: [request] });
  const result = await withTimeout(Promise.resolve(instance), (durationSec + 30) * 1000, `autocannon ${title}`).catch((error: unknown) => {
    instance.stop();
    throw error;
  });
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${title}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts — the run does not measure what it claims`);
  }
  return result;
}

async function measure(ctx: BenchContext, mode: Mode): Promise<{ writesPerSec: number; result: Result; nodeWrites: number }> {
  const target = await startTarget(['node', ctx.server.url(1), ctx.server.url(2), ctx.server.url(3)]);
  try {
    await load(ctx, target.port, ctx.sizes.http.warmupSec, mode, `${mode} warm-up`);
    const result = await load(ctx, target.port, ctx.sizes.http.durationSec, mode, mode);
    const { writes } = await target.stop();
    const perRequest = mode === 'batch' ? PUTS_PER_BATCH : 1;
    // Every 2xx (warm-up and measured run) must be writes the node committed.
    if (writes < result['2xx'] * perRequest) throw new Error(`the node counted ${writes} writes for ${result['2xx'] * perRequest} acknowledged puts`);
    return { writesPerSec: (result['2xx'] * perRequest) / result.duration, result, nodeWrites: writes };
  } catch (error) {
    await target.stop().catch(() => undefined);
    throw error;
  }
}

export const httpBatchScenario: Scenario = {
  id: 'http-batch',
  title: '5b. HTTP batch',
  async run(ctx) {
    const { connections, durationSec } = ctx.sizes.http;
    const singles: number[] = [];
    const batches: number[] = [];
    const perRound: unknown[] = [];
    for (let r = 1; r <= ctx.sizes.rounds; r++) {
      const tag = ctx.sizes.rounds > 1 ? ` (round ${r}/${ctx.sizes.rounds})` : '';
      await resetServer(ctx.admin);
      ctx.log(`single PUT /keys/:key${tag}: ${connections} connections, ${durationSec} s`);
      const single = await measure(ctx, 'single');
      await resetServer(ctx.admin);
      ctx.log(`single${tag}: ${Math.round(single.writesPerSec)} writes/s; now POST /batch with ${PUTS_PER_BATCH} puts`);
      const batch = await measure(ctx, 'batch');
      ctx.log(`batch${tag}: ${Math.round(batch.writesPerSec)} writes/s (${Math.round(batch.result['2xx'] / batch.result.duration)} req/s)`);
      singles.push(single.writesPerSec);
      batches.push(batch.writesPerSec);
      perRound.push({
        single: { writesPerSec: round(single.writesPerSec), p99Ms: single.result.latency.p99, nodeWrites: single.nodeWrites },
        batch: { writesPerSec: round(batch.writesPerSec), reqPerSec: round(batch.result['2xx'] / batch.result.duration), p99Ms: batch.result.latency.p99, nodeWrites: batch.nodeWrites },
      });
    }
    return [
      row(`HTTP POST /batch (${PUTS_PER_BATCH} puts) vs single PUTs: writes/s`, {
        ours: median(batches),
        baseline: median(singles),
        unit: 'writes/s',
        target: { kind: 'min-ratio', min: 5 },
        details: { connections, durationSec, putsPerBatch: PUTS_PER_BATCH, valueBytes: 100, rounds: ctx.sizes.rounds, perRound },
      }),
    ];
  },
};
