/**
 * `eventual-cache demo` end to end, and what the CLI does when it finds no Redis: start a
 * private redis-server if it can, else exit 1 with a message saying how to get Redis.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo.js';
import { freePort } from '../../src/local-redis/local-redis.js';
import { adminClient, resolveTestRedis, uniquePrefix, type TestRedis } from '../support/redis.js';
import { runCli, tempDir } from '../support/cli-process.js';

const tmp = tempDir('demo');
let redis: TestRedis;

beforeAll(async () => {
  redis = await resolveTestRedis();
});

afterAll(async () => {
  await redis.close();
  tmp.remove();
});

/** Keys left under `${prefix}-demo-…` (the demo's throw-away namespaces). */
async function leftovers(url: string, prefix: string): Promise<string[]> {
  const client = await adminClient(url);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}-demo-*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  } finally {
    client.disconnect();
  }
}

describe('eventual-cache demo', () => {
  it('should keep the cluster up with --keep, its page served, until a signal, then clean up', async () => {
    const prefix = uniquePrefix('keep');
    const config = tmp.write('keep.json', { nodes: ['A', 'B'].map((id, i) => ({ id, port: 0, redis: redis.url(i) })), replication: { delayMs: 20 }, prefix });
    const run = runCli(['demo', '--keep', '--config', config]);
    try {
      const [, page] = (await run.waitForOutput(/The cluster stays up: watch and drive it at (http:\/\/\S+\/ui\/)/, 30_000)) as RegExpMatchArray;
      const res = await fetch(page as string);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('cluster view');
      run.child.kill('SIGINT');
      expect(await run.exited(30_000)).toBe(130);
      for (const url of redis.urls(2)) expect(await leftovers(url, prefix)).toEqual([]);
    } finally {
      run.kill();
    }
  });

  it('should replay the 7 steps over HTTP, show stale reads and the LWW conflict, report convergence and clean up', async () => {
    const prefix = uniquePrefix('demo');
    const config = tmp.write('demo.json', {
      nodes: ['A', 'B', 'C'].map((id, i) => ({ id, port: 3001 + i, redis: redis.url(i) })),
      // Fixed and longer than the demo's 50 ms gap, so the two writes are really concurrent.
      replication: { delayMs: 150 },
      prefix,
    });
    const run = runCli(['demo', '--config', config]);
    expect(await run.exited(30_000)).toBe(0);
    const out = run.stdout();

    expect(out).toMatch(/replication delay 150 ms/);
    expect(out).toMatch(/^Cluster view: http:\/\/127\.0\.0\.1:\d+\/ui\/$/m);
    for (const step of ['1. Write user:123', '2. Immediately read', '3. Wait for replication', '4. Read after', '5. Concurrent writes', '6. Wait for conflict', '7. Final state']) {
      expect(out).toContain(step);
    }
    // Step 2: B and C have not seen the write yet (the delay is 150 ms, the reads take a few).
    expect(out).toMatch(/Node B: None \(404\)\s+\(stale: not replicated yet\)/);
    expect(out).toMatch(/Node C: None \(404\)\s+\(stale: not replicated yet\)/);
    expect(out).toMatch(/All nodes hold the write \d+ ms after it was acknowledged/);
    expect(out).toMatch(/neither dominates -> concurrent/);
    // Step 6: the later write (B's, age 32) wins; the nodes say so from GET /conflicts.
    expect(out).toMatch(/Node A: CONFLICT kept B's \{"name":"Alice","age":32\}/);
    const finals = out.slice(out.indexOf('7. Final state'));
    expect(finals.match(/\{"name":"Alice","age":32\}/g)?.length).toBeGreaterThanOrEqual(3);
    expect(out).toMatch(/All nodes converged!/);
    // Every line of the timeline carries its millisecond offset.
    expect(out.split('\n').filter((l) => /^\[\+\s*\d+ ms\]/.test(l)).length).toBeGreaterThanOrEqual(20);
    // Free ports were used (the configured 3001-3003 may be taken), and nothing is left in Redis.
    expect(out).not.toMatch(/127\.0\.0\.1:300[123]\b/);
    for (const url of redis.urls(3)) expect(await leftovers(url, prefix)).toEqual([]);
  });

  it('should start a private redis-server and say so when nothing answers at REDIS_URL', async () => {
    const closed = await freePort();
    const run = runCli(['demo'], { REDIS_URL: `redis://:hunter2@127.0.0.1:${closed}`, EVENTUAL_CACHE_DELAY_MS: '60' });
    expect(await run.exited(30_000)).toBe(0);
    expect(run.stderr()).toMatch(/No Redis answered at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+.*started a private redis-server on port \d+/);
    expect(run.stderr() + run.stdout()).not.toContain('hunter2');
    expect(run.stdout()).toMatch(/All nodes converged!/);
  });
});

describe('when no Redis answers and redis-server is not on the PATH', () => {
  it('should exit 1 with a message that tells the user how to get Redis', async () => {
    const closed = await freePort();
    const emptyPath = tempDir('nopath');
    try {
      const run = runCli(['cluster'], { REDIS_URL: `redis://127.0.0.1:${closed}`, PATH: emptyPath.dir });
      expect(await run.exited(20_000)).toBe(1);
      const err = run.stderr();
      expect(err).toContain(`No Redis answered at redis://127.0.0.1:${closed}`);
      expect(err).toContain('redis-server is not on the PATH');
      expect(err).toMatch(/apt-get install -y redis-server/);
      expect(err).toMatch(/set REDIS_URL/);
    } finally {
      emptyPath.remove();
    }
  });
});

/** A node that stores writes but never replicates them: the cluster can never converge. */
async function isolatedNode(id: string): Promise<{ url: string; server: Server }> {
  const records = new Map<string, unknown>();
  let counter = 0;
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/health') return send(200, { status: 'ok', node: id });
    if (path === '/conflicts') return send(200, { node: id, items: [] });
    const key = path.slice('/keys/'.length);
    if (req.method === 'PUT') {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        counter += 1;
        const record = { key, value: (JSON.parse(body) as { value: unknown }).value, hlc: `${new Date().toISOString()}/000000/${id}`, origin: id, version: { [id]: counter } };
        records.set(key, record);
        send(200, record);
      });
      return;
    }
    return records.has(key) ? send(200, records.get(key)) : send(404, { error: { code: 'not_found', message: 'absent' } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('runDemo', () => {
  describe('when the nodes never converge', () => {
    it('should stop at the deadline, say which node holds what, and report converged: false', async () => {
      const nodes = await Promise.all(['A', 'B', 'C'].map(isolatedNode));
      const lines: string[] = [];
      try {
        const result = await runDemo({
          targets: nodes.map((n, i) => ({ id: ['A', 'B', 'C'][i] as string, url: n.url })),
          timeoutMs: 200,
          print: (line) => lines.push(line),
        });
        expect(result.converged).toBe(false);
        const text = lines.join('\n');
        expect(text).toMatch(/FAILED: not converged after 200 ms: A: \{"name":"Alice","age":30\} version \{"A":1\}; B: None \(404\)/);
        expect(text).not.toContain('All nodes converged');
      } finally {
        for (const n of nodes) n.server.close();
      }
    });
  });
});
