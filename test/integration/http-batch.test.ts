/**
 * `POST /batch`: every op kind, any key (the ones a URL path cannot carry included), the
 * invalid batch that applies nothing, the op limit, auth, and the group commit.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, snapshotPrefix, startNodes, useTestRedis, waitUntil, type StartedNodes } from '../support/http-harness.js';

const TOKEN = 'batch-token';
const PATH_HOSTILE_KEYS = ['.', '..', 'a/../b', './x', '../..', '__proto__', 'constructor', '%2e%2e', 'a/./b', '/'];

useTestRedis();

let nodes: StartedNodes;
let secured: StartedNodes;
let url: string;
let transactions = 0;

beforeAll(async () => {
  nodes = await startNodes({
    label: 'batch',
    ids: ['A', 'B'],
    node: { replication: { delayMs: 10 }, limits: { maxBatchOps: 20 }, transactionHooks: { beforeExec: async () => void (transactions += 1) } },
  });
  secured = await startNodes({ label: 'batch-auth', http: { authToken: TOKEN } });
  url = (nodes.servers[0] as (typeof nodes.servers)[number]).url;
});
afterAll(async () => {
  await nodes?.close();
  await secured?.close();
});

/** Node A's records: what an applied op would change (queues and outbox move on in the background). */
async function recordsOfA(): Promise<Map<string, string>> {
  const all = await snapshotPrefix(nodes.urls[0] as string, nodes.prefix);
  return new Map([...all].filter(([k]) => k.startsWith(`${nodes.prefix}:A:rec:`)));
}

const batch = (body: unknown, target = url) => request(target).post('/batch').set('Content-Type', 'application/json').send(JSON.stringify(body));

describe('POST /batch', () => {
  it('should run put, get and delete in order, each result exactly the single-key body', async () => {
    const res = await batch({
      ops: [
        { op: 'put', key: 'k1', value: { a: 1 } },
        { op: 'get', key: 'k1' },
        { op: 'put', key: 'k2', value: null, ttlMs: 60_000 },
        { op: 'delete', key: 'k1' },
        { op: 'get', key: 'k1' },
        { op: 'get', key: 'never-written' },
      ],
    });
    expect(res.status).toBe(200);
    const results = res.body.results as Array<{ status: number; body: Record<string, unknown> }>;
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 404, 404]);
    expect(results[0]?.body).toMatchObject({ key: 'k1', value: { a: 1 }, origin: 'A' });
    expect(results[1]?.body).toEqual(results[0]?.body);
    expect(results[2]?.body).toMatchObject({ key: 'k2', value: null, expiresAt: expect.any(Number) });
    expect(results[3]?.body).toMatchObject({ key: 'k1', deleted: true, origin: 'A' });
    expect(results[4]?.body).toMatchObject({ error: { code: 'not_found' } });

    // The same bodies as the single-key endpoints give.
    const single = await request(url).get('/keys/k2');
    expect(single.body).toEqual(results[2]?.body);
    const missing = await request(url).get('/keys/never-written');
    expect(results[5]?.body).toEqual(missing.body);
  });

  it('should reach every key, the ones a URL path cannot carry included', async () => {
    const ops = PATH_HOSTILE_KEYS.map((key, i) => ({ op: 'put', key, value: i }));
    const put = await batch({ ops });
    expect(put.status).toBe(200);
    expect(put.body.results.map((r: { status: number }) => r.status)).toEqual(PATH_HOSTILE_KEYS.map(() => 200));
    const got = await batch({ ops: PATH_HOSTILE_KEYS.map((key) => ({ op: 'get', key })) });
    expect(got.body.results.map((r: { body: { key: string; value: number } }) => [r.body.key, r.body.value])).toEqual(PATH_HOSTILE_KEYS.map((k, i) => [k, i]));
    // `__proto__` is a key like any other: it does not touch the result objects' prototypes.
    expect(Object.getPrototypeOf(got.body.results[5].body)).toBe(Object.prototype);
    // And they replicate like any key.
    const b = (nodes.servers[1] as (typeof nodes.servers)[number]).url;
    await waitUntil(
      async () => (await batch({ ops: PATH_HOSTILE_KEYS.map((key) => ({ op: 'get', key })) }, b)).body.results.map((r: { status: number }) => r.status),
      (s: number[]) => s.every((x) => x === 200),
      { message: 'the dot-segment keys on B' },
    );
  });

  it('should commit the puts of one batch in one transaction', async () => {
    const before = transactions;
    const res = await batch({ ops: Array.from({ length: 20 }, (_, i) => ({ op: 'put', key: `group-${i}`, value: i })) });
    expect(res.status).toBe(200);
    expect(transactions - before).toBe(1);
  });

  describe('when the batch is invalid', () => {
    const invalid: Array<[string, unknown, string, string]> = [
      ['an unknown op', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'incr', key: 'x' }] }, 'invalid_body', 'ops.1.op'],
      ['a missing value', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'put', key: 'x' }] }, 'invalid_body', 'ops.1.value'],
      ['an empty key', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'get', key: '' }] }, 'invalid_key', 'ops.1.key'],
      ['a control character in a key', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'delete', key: 'a\u0000b' }] }, 'invalid_key', 'ops.1.key'],
      ['a key too long', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'get', key: 'k'.repeat(1025) }] }, 'invalid_key', 'ops.1.key'],
      ['a bad TTL', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'put', key: 'x', value: 1, ttlMs: -5 }] }, 'invalid_body', 'ops.1.ttlMs'],
      ['an unknown op field', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'get', key: 'x', ttl: 5 }] }, 'invalid_body', 'ops.1.ttl'],
      ['a number key', { ops: [{ op: 'put', key: 'ok', value: 1 }, { op: 'get', key: 5 }] }, 'invalid_body', 'ops.1.key'],
      ['ops not an array', { ops: { op: 'get', key: 'x' } }, 'invalid_body', 'ops'],
      ['no ops', {}, 'invalid_body', 'ops'],
      ['an unknown top-level field', { ops: [], atomic: true }, 'invalid_body', 'atomic'],
      ['too many ops', { ops: Array.from({ length: 21 }, (_, i) => ({ op: 'put', key: `many-${i}`, value: i })) }, 'invalid_body', 'ops'],
    ];
    it.each(invalid)('should answer 400 and apply nothing for %s', async (_name, body, code, field) => {
      const before = await recordsOfA();
      const res = await batch(body);
      expectError(res, 400, code);
      expect(res.body.error.field).toBe(field);
      expect(await recordsOfA()).toEqual(before);
      expect(before.has(`${nodes.prefix}:A:rec:ok`)).toBe(false);
    });

    it('should answer 400 invalid_json for a body that is not JSON, and 415 for another media type', async () => {
      expectError(await request(url).post('/batch').set('Content-Type', 'application/json').send('{"ops": ['), 400, 'invalid_json');
      expectError(await request(url).post('/batch').set('Content-Type', 'text/plain').send('{"ops": []}'), 415, 'unsupported_media_type');
    });

    it('should answer 405 for other methods', async () => {
      const res = await request(url).get('/batch');
      expectError(res, 405, 'method_not_allowed');
      expect(res.headers.allow).toBe('POST, OPTIONS');
    });
  });

  it('should take an empty batch', async () => {
    const res = await batch({ ops: [] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ results: [] });
  });

  describe('when an authToken is set', () => {
    it('should require the token, like /keys', async () => {
      const target = (secured.servers[0] as (typeof secured.servers)[number]).url;
      const body = JSON.stringify({ ops: [{ op: 'put', key: 'x', value: 1 }] });
      const before = await snapshotPrefix(secured.urls[0] as string, secured.prefix);
      expectError(await request(target).post('/batch').set('Content-Type', 'application/json').send(body), 401, 'unauthorized');
      expectError(await request(target).post('/batch').set('Content-Type', 'application/json').set('Authorization', 'Bearer wrong').send(body), 401, 'unauthorized');
      expect(await snapshotPrefix(secured.urls[0] as string, secured.prefix)).toEqual(before);
      const ok = await request(target).post('/batch').set('Content-Type', 'application/json').set('Authorization', `Bearer ${TOKEN}`).send(body);
      expect(ok.status).toBe(200);
      expect(ok.body.results[0].status).toBe(200);
    });
  });
});
