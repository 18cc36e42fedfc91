/**
 * Anti-entropy seen from outside: `POST /admin/anti-entropy` (behind the token), the
 * per-peer section of `/cluster`, the metrics, and `eventual-cache repair --config FILE`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/cli.js';
import { expectError, startNodes, useTestRedis, type StartedNodes } from '../support/http-harness.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'ae-secret-token';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

useTestRedis();

let nodes: StartedNodes;
let urls: { A: string; B: string };

beforeAll(async () => {
  nodes = await startNodes({
    label: 'http-ae',
    ids: ['A', 'B'],
    node: { digestLeaves: 256, replication: { delayMs: 20 }, antiEntropy: { intervalMs: 600_000, confirmDelayMs: 100, foldIntervalMs: 20 } },
    http: { authToken: TOKEN },
  });
  const [A, B] = nodes.servers.map((s) => s.url) as [string, string];
  urls = { A, B };
});
afterAll(() => nodes?.close());

describe('POST /admin/anti-entropy', () => {
  it('should need the token', async () => {
    expectError(await request(urls.A).post('/admin/anti-entropy'), 401, 'unauthorized');
  });

  it('should answer 405 to other methods', async () => {
    expectError(await request(urls.A).get('/admin/anti-entropy').set(AUTH), 405, 'method_not_allowed');
  });

  it('should run a round now, repair a record removed behind the node, and show it in /cluster and /metrics', async () => {
    const [A, B] = nodes.servers.map((s) => s.node) as [typeof nodes.servers[0]['node'], typeof nodes.servers[0]['node']];
    await A.put('http-ae-1', 'one');
    await A.flushOutbox();
    for (let i = 0; i < 200 && !(await B.get('http-ae-1')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await B.get('http-ae-1')).toBeDefined();

    // Remove B's copy behind the node's back: no job will ever carry the key again. B's
    // merge must be folded first (a fold reads the record as it is, deletion included).
    const redisB = new Redis(nodes.urls[1] as string);
    await waitFor(async () => (await redisB.llen(B.keys.digestLog())) === 0, { timeoutMs: 10_000, message: 'B to fold its merge into its digest' });
    const raw = await redisB.get(B.keys.record('http-ae-1'));
    expect(raw).not.toBeNull();
    await redisB.del(B.keys.record('http-ae-1'));
    await redisB.quit();

    // Without verification the digest still says "equal"; the round finds nothing.
    const equal = await request(urls.B).post('/admin/anti-entropy').set(AUTH);
    expect(equal.status).toBe(200);
    expect(equal.body.node).toBe('B');
    expect(equal.body.rounds).toHaveLength(1);
    expect(equal.body.rounds[0]).toMatchObject({ peer: 'A', result: 'equal' });

    // Verification (periodic in production, called directly here) brings B's digest in
    // line with its data; the next round then sees the difference and pulls the record.
    const { verifyDigest } = await import('../../src/anti-entropy/verify.js');
    const store = (B as unknown as { store: Parameters<typeof verifyDigest>[0] }).store;
    expect(await verifyDigest(store, async () => undefined, () => false, (fn) => fn())).toBe(1);

    const repaired = await request(urls.B).post('/admin/anti-entropy').set(AUTH);
    expect(repaired.body.rounds[0]).toMatchObject({ peer: 'A', result: 'repaired', keysRepaired: 1, confirmedKeys: 1 });
    expect((await B.get('http-ae-1'))?.value).toBe('one');

    const cluster = await request(urls.B).get('/cluster').set(AUTH);
    expect(cluster.body.peers[0].antiEntropy).toMatchObject({ result: 'repaired', keysRepaired: 1, tombstonesPending: 0 });
    expect(typeof cluster.body.peers[0].antiEntropy.lastRoundAt).toBe('number');

    const metrics = await request(urls.B).get('/metrics');
    expect(metrics.text).toMatch(/eventual_cache_anti_entropy_rounds_total\{peer="A",result="repaired",node="B"\} 1/);
    expect(metrics.text).toMatch(/eventual_cache_anti_entropy_keys_repaired_total\{peer="A",node="B"\} 1/);
    expect(metrics.text).toContain('eventual_cache_tombstones_pending{peer="A",node="B"} 0');
  });
});

describe('eventual-cache repair --config FILE', () => {
  it('should run one round for every pair and print what it repaired', async () => {
    const [A, B] = nodes.servers.map((s) => s.node) as [typeof nodes.servers[0]['node'], typeof nodes.servers[0]['node']];
    await B.put('cli-ae-1', 'from B');
    await B.flushOutbox();
    for (let i = 0; i < 200 && !(await A.get('cli-ae-1')); i++) await new Promise((r) => setTimeout(r, 20));
    // B's digest must hold the write before the CLI compares (B folds its own log; its
    // log is trimmed in the same MULTI that updates the tree, so an empty log means folded).
    const redisB = new Redis(nodes.urls[1] as string);
    await waitFor(async () => (await redisB.llen(B.keys.digestLog())) === 0, { timeoutMs: 10_000, message: "B to fold its write into its digest" });
    await redisB.quit();
    const redisA = new Redis(nodes.urls[0] as string);
    await waitFor(async () => (await redisA.llen(A.keys.digestLog())) === 0, { timeoutMs: 10_000, message: 'A to fold its merge into its digest' });
    await redisA.del(A.keys.record('cli-ae-1'));
    await redisA.quit();
    const { verifyDigest } = await import('../../src/anti-entropy/verify.js');
    const store = (A as unknown as { store: Parameters<typeof verifyDigest>[0] }).store;
    await verifyDigest(store, async () => undefined, () => false, (fn) => fn());

    const dir = mkdtempSync(join(tmpdir(), 'ec-repair-'));
    try {
      const file = join(dir, 'cluster.json');
      writeFileSync(
        file,
        JSON.stringify({
          prefix: nodes.prefix,
          nodes: [
            { id: 'A', port: 0, redis: nodes.urls[0] },
            { id: 'B', port: 0, redis: nodes.urls[1] },
          ],
          antiEntropy: { leaves: 256, confirmDelayMs: 50 },
        }),
      );
      let text = '';
      const io: CliIo = { env: {}, out: (t) => (text += t), err: (t) => (text += t) };
      expect(await runCli(['repair', '--config', file], io)).toBe(0);
      expect(text).toContain('A ← B: comparing digests');
      expect(text).toMatch(/A ← B: repaired: 1 differing keys, 1 repaired/);
      expect(text).toMatch(/B ← A: (equal|differs)/);
      expect(text).toContain('repaired 1 keys over 2 pairs');
      expect((await A.get('cli-ae-1'))?.value).toBe('from B');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
