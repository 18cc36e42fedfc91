/**
 * `CacheClient` (eventual-cache/client) against real nodes: every method, every key, typed
 * errors, reads retried on 503, writes not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient, ConnectionError, InvalidRequestError, pathCarries, TooLargeError, UnauthorizedError, UnavailableError } from '../../src/client/index.js';
import { startNodes, useTestRedis, waitUntil, type StartedNodes } from '../support/http-harness.js';

const TOKEN = 'client-token';

useTestRedis();

let nodes: StartedNodes;
let secured: StartedNodes;
let a: CacheClient;

beforeAll(async () => {
  [nodes, secured] = await Promise.all([
    startNodes({ label: 'client', ids: ['A', 'B'], node: { replication: { delayMs: 10 }, limits: { maxKeyBytes: 100 } } }),
    startNodes({ label: 'client-auth', http: { authToken: TOKEN } }),
  ]);
  a = new CacheClient({ baseUrl: url(0) });
});
afterAll(async () => {
  await nodes?.close();
  await secured?.close();
});

const url = (i: number) => (nodes.servers[i] as (typeof nodes.servers)[number]).url;

/** A fetch that answers 503 `times` times (as the node would), then passes through, counting calls. */
function flaky(times: number): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  return {
    calls: () => calls,
    fetch: async (input, init) => {
      calls += 1;
      if (calls <= times) {
        const body = { error: { code: 'redis_unavailable', message: "This node's Redis is unreachable" } };
        return new Response(JSON.stringify(body), { status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '0' } });
      }
      return fetch(input, init);
    },
  };
}

describe('CacheClient', () => {
  it('should put, get, delete, list and read the cluster and its conflicts', async () => {
    const put = await a.put('user:1', { name: 'Ada' }, { ttlMs: 60_000 });
    expect(put).toMatchObject({ key: 'user:1', value: { name: 'Ada' }, origin: 'A', expiresAt: expect.any(Number) });
    expect(await a.get('user:1')).toEqual(put);
    expect(await a.get('absent')).toBeUndefined();
    expect((await a.list({ prefix: 'user:' })).items.map((i) => i.key)).toEqual(['user:1']);
    expect(await a.cluster()).toMatchObject({ node: 'A', redis: 'ok', peers: [{ id: 'B' }] });
    expect(await a.conflicts(5)).toEqual({ node: 'A', items: [] });
    expect(await a.delete('user:1')).toMatchObject({ key: 'user:1', deleted: true });
    expect(await a.get('user:1')).toBeUndefined();
  });

  it('should accept every key, sending the ones a path cannot carry through /batch', async () => {
    const keys = ['.', '..', 'a/../b', './x', 'a/./b', '%2e%2e', '..%2F', '__proto__', 'plain key ✓'];
    expect(keys.filter((k) => !pathCarries(k))).toEqual(['.', '..']);
    for (const [i, key] of keys.entries()) expect(await a.put(key, i)).toMatchObject({ key, value: i });
    for (const [i, key] of keys.entries()) expect((await a.get(key))?.value).toBe(i);
    const b = new CacheClient({ baseUrl: url(1) });
    await waitUntil(() => Promise.all(keys.map((k) => b.get(k))), (got) => got.every((r, i) => r?.value === i), { message: 'every key on B' });
    expect(await a.delete('..')).toMatchObject({ key: '..', deleted: true });
    expect(await a.get('..')).toBeUndefined();
  });

  it('should run a batch, with one typed result per op', async () => {
    const results = await a.batch([
      { op: 'put', key: 'b1', value: [1] },
      { op: 'get', key: 'b1' },
      { op: 'get', key: 'nothing' },
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 404]);
    expect(results[2]?.body).toMatchObject({ error: { code: 'not_found' } });
  });

  it('should throw typed errors that mirror the API codes', async () => {
    await expect(a.put('', 1)).rejects.toSatisfy((e) => e instanceof InvalidRequestError && e.code === 'invalid_key');
    await expect(a.put('k', 1, { ttlMs: -1 })).rejects.toSatisfy((e) => e instanceof InvalidRequestError && e.code === 'invalid_body' && e.field === 'ttlMs');
    await expect(a.get('k'.repeat(101))).rejects.toSatisfy((e) => e instanceof TooLargeError && e.code === 'key_too_long');
    await expect(a.put('.', 1, { ttlMs: 0 })).rejects.toSatisfy((e) => e instanceof InvalidRequestError && e.field === 'ops.0.ttlMs');
    const target = (secured.servers[0] as (typeof secured.servers)[number]).url;
    await expect(new CacheClient({ baseUrl: target }).get('k')).rejects.toSatisfy((e) => e instanceof UnauthorizedError && e.status === 401);
    await expect(new CacheClient({ baseUrl: target, token: 'wrong' }).put('k', 1)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(await new CacheClient({ baseUrl: target, token: TOKEN }).put('k', 1)).toMatchObject({ key: 'k', value: 1 });
  });

  it('should retry a read answered 503, with backoff', async () => {
    const f = flaky(2);
    const client = new CacheClient({ baseUrl: url(0), fetch: f.fetch, retryInitialMs: 5, retryMaxMs: 20 });
    await a.put('r', 'v');
    expect((await client.get('r'))?.value).toBe('v');
    expect(f.calls()).toBe(3);
  });

  it('should give up on a read after readRetries, with the typed error', async () => {
    const f = flaky(10);
    const client = new CacheClient({ baseUrl: url(0), fetch: f.fetch, readRetries: 2, retryInitialMs: 1, retryMaxMs: 2 });
    await expect(client.list()).rejects.toSatisfy((e) => e instanceof UnavailableError && e.code === 'redis_unavailable');
    expect(f.calls()).toBe(3);
  });

  it('should not retry a write unless told to, and then only on 503', async () => {
    const once = flaky(1);
    await expect(new CacheClient({ baseUrl: url(0), fetch: once.fetch, retryInitialMs: 1 }).put('w', 1)).rejects.toBeInstanceOf(UnavailableError);
    expect(once.calls()).toBe(1);
    const retrying = flaky(1);
    expect(await new CacheClient({ baseUrl: url(0), fetch: retrying.fetch, retryWrites: true, retryInitialMs: 1 }).put('w', 2)).toMatchObject({ value: 2 });
    expect(retrying.calls()).toBe(2);
  });

  it('should report a write whose connection failed as possibly applied, without retrying it', async () => {
    let calls = 0;
    const failing: typeof fetch = async () => {
      calls += 1;
      throw new TypeError('fetch failed');
    };
    const client = new CacheClient({ baseUrl: url(0), fetch: failing, retryWrites: true, retryInitialMs: 1 });
    await expect(client.put('x', 1)).rejects.toSatisfy((e) => e instanceof ConnectionError && e.mayHaveApplied);
    expect(calls).toBe(1);
  });
});
