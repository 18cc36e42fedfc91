/**
 * `eventual-cache node` and `eventual-cache cluster` as real processes on real Redis,
 * configured the two ways users do: a config file, and environment variables only (as
 * docker-compose.yml does). They are driven over HTTP and stopped with signals.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeysWithPrefix, resolveTestRedis, uniquePrefix, type TestRedis } from '../support/redis.js';
import { listeningUrl, runCli, tempDir, type CliRun } from '../support/cli-process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'cli-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const tmp = tempDir('node');
const runs: CliRun[] = [];
let redis: TestRedis;
const prefixes: string[] = [];

beforeAll(async () => {
  redis = await resolveTestRedis();
});

afterEach(() => {
  for (const run of runs.splice(0)) run.kill();
});

afterAll(async () => {
  for (const prefix of prefixes) await Promise.all(redis.urls(3).map((u) => deleteKeysWithPrefix(u, prefix)));
  await redis.close();
  tmp.remove();
});

function start(args: string[], env: Record<string, string | undefined> = {}): CliRun {
  const run = runCli(args, { LOG_LEVEL: 'info', ...env });
  runs.push(run);
  return run;
}

async function put(url: string, key: string, value: unknown): Promise<Response> {
  return fetch(`${url}/keys/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ value }),
  });
}

async function valueOn(url: string, key: string): Promise<unknown> {
  const res = await fetch(`${url}/keys/${encodeURIComponent(key)}`, { headers: auth });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET ${key} on ${url}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { value: unknown }).value;
}

/** A three-node cluster definition on the test Redis, one database per node, free ports. */
function clusterFile(label: string, extra: Record<string, unknown> = {}): { path: string; prefix: string; nodes: string } {
  const prefix = uniquePrefix(label);
  prefixes.push(prefix);
  const ids = ['A', 'B', 'C'];
  const path = tmp.write(`${label}.json`, {
    nodes: ids.map((id, i) => ({ id, port: 0, redis: redis.url(i) })),
    replication: { delayMs: 20 },
    prefix,
    authToken: TOKEN,
    ...extra,
  });
  return { path, prefix, nodes: ids.map((id, i) => `${id}:0=${redis.url(i)}`).join(',') };
}

describe('eventual-cache node', () => {
  it('should serve each node over HTTP and replicate a write to the others (config file and env-only nodes)', async () => {
    const { path, prefix, nodes } = clusterFile('node-http');
    const a = start(['node', '--id', 'A', '--config', path]);
    const b = start(['node', '--config', path], { EVENTUAL_CACHE_NODE_ID: 'B' });
    // C is configured like a container: environment variables only.
    const c = start(['node'], {
      EVENTUAL_CACHE_NODE_ID: 'C',
      EVENTUAL_CACHE_NODES: nodes,
      EVENTUAL_CACHE_PREFIX: prefix,
      EVENTUAL_CACHE_DELAY_MS: '20',
      EVENTUAL_CACHE_TOKEN: TOKEN,
    });
    const [urlA, urlB, urlC] = await Promise.all([listeningUrl(a, 'A'), listeningUrl(b, 'B'), listeningUrl(c, 'C')]);

    expect((await fetch(`${urlA}/health`)).status).toBe(200);
    expect((await fetch(`${urlA}/keys/x`)).status).toBe(401);
    const written = await put(urlA, 'user:123', { name: 'Alice', age: 30 });
    expect(written.status).toBe(200);
    await waitFor(
      async () => {
        const seen = await Promise.all([valueOn(urlB, 'user:123'), valueOn(urlC, 'user:123')]);
        return { done: seen.every((v) => JSON.stringify(v) === '{"name":"Alice","age":30}'), observed: seen };
      },
      { message: "B and C to hold A's write", timeoutMs: 10_000 },
    );
    // The token never appears in the logs.
    for (const run of [a, b, c]) expect(run.stdout() + run.stderr()).not.toContain(TOKEN);
  });

  it('should exit 0 on SIGTERM, finishing in-flight writes, and lose no acknowledged write', async () => {
    //   A: PUT k0..kN (concurrent) ──SIGTERM──► close: finish in-flight, hand outbox to queues, exit 0
    //   B:                        ... keeps consuming A's queue from A's Redis ──► holds every acked key
    const { path } = clusterFile('node-sigterm', { replication: { delayMs: 100 } });
    const a = start(['node', '--id', 'A', '--config', path]);
    const b = start(['node', '--id', 'B', '--config', path]);
    const [urlA, urlB] = await Promise.all([listeningUrl(a, 'A'), listeningUrl(b, 'B')]);

    const acknowledged: string[] = [];
    let refused = 0;
    const writes = Array.from({ length: 150 }, async (_, i) => {
      try {
        const res = await put(urlA, `k${i}`, i);
        if (res.status === 200) acknowledged.push(`k${i}`);
        else refused += 1;
      } catch {
        refused += 1; // connection refused or closed after the server stopped accepting: not acknowledged
      }
    });
    // Signal once the first writes are acknowledged, while the rest are in flight.
    await waitFor(() => acknowledged.length >= 10, { message: 'the first writes to be acknowledged', intervalMs: 1 });
    a.child.kill('SIGTERM');
    await Promise.all(writes);

    expect(await a.exited(30_000)).toBe(0);
    expect(a.stdout()).toMatch(/shutdown complete/);
    expect(acknowledged.length + refused).toBe(150);
    expect(acknowledged.length).toBeGreaterThanOrEqual(10);
    await waitFor(
      async () => {
        const missing = [];
        for (const key of acknowledged) if ((await valueOn(urlB, key)) !== Number(key.slice(1))) missing.push(key);
        return { done: missing.length === 0, observed: { missing: missing.length, of: acknowledged.length, sample: missing.slice(0, 5) } };
      },
      { message: "B to hold every write A acknowledged before it stopped", timeoutMs: 15_000, intervalMs: 100 },
    );

    b.child.kill('SIGINT');
    expect(await b.exited(30_000)).toBe(0);
  });
});

describe('eventual-cache cluster', () => {
  it('should run every node of the config in one process, host `demo --url`, and stop on SIGINT with exit 0', async () => {
    const { path } = clusterFile('cluster', { replication: { delayMs: 150 } });
    const run = start(['cluster', '--config', path]);
    const [urlA, urlB, urlC] = await Promise.all([listeningUrl(run, 'A'), listeningUrl(run, 'B'), listeningUrl(run, 'C')]);
    await run.waitForOutput(/3 nodes ready/);
    expect((await put(urlC, 'from-c', 'hello')).status).toBe(200);
    await waitFor(async () => (await valueOn(urlA, 'from-c')) === 'hello', { message: "A to hold C's write" });

    // The demo against running nodes (as with docker compose), the token from the environment.
    const demo = runCli(['demo', '--url', `${urlA},${urlB}`, '--url', urlC], { EVENTUAL_CACHE_TOKEN: TOKEN });
    runs.push(demo);
    expect(await demo.exited(30_000)).toBe(0);
    expect(demo.stdout()).toMatch(/Node A\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(demo.stdout()).toMatch(/All nodes converged!/);

    run.child.kill('SIGINT');
    expect(await run.exited(30_000)).toBe(0);
    const logs = run.logs();
    expect(logs.some((l) => l.msg === 'shutdown complete')).toBe(true);
    // Redis URLs are logged, but never with a password, and the token never.
    expect(run.stdout()).not.toContain(TOKEN);
  });
});
