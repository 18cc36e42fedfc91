/**
 * The REST API of one node against real Redis: every endpoint, and every error the
 * contract names (400 invalid JSON or schema naming the field, 404, 405, 413, 414, 415).
 * Node A has a peer B, so /cluster and the dashboard have a queue to show.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import { InvalidOptionsError } from '../../src/errors/index.js';
import { expectError, httpRequest, rawRequest, startNodes, useTestRedis, waitUntil, type StartedNodes } from '../support/http-harness.js';

const HLC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\/\d{6}\/A$/;
const JSON_TYPE = { 'Content-Type': 'application/json' };

useTestRedis();

let nodes: StartedNodes;
let url: string;
let port: number;

beforeAll(async () => {
  nodes = await startNodes({ label: 'api', ids: ['A', 'B'], node: { replication: { delayMs: 50 } } });
  ({ url, port } = nodes.servers[0] as (typeof nodes.servers)[number]);
});
afterAll(() => nodes?.close());

const api = () => request(url);
const put = (key: string, body: unknown) => api().put(`/keys/${encodeURIComponent(key)}`).set(JSON_TYPE).send(JSON.stringify(body));

describe('PUT /keys/:key', () => {
  it('should store the value and answer with the record view', async () => {
    const res = await put('user:123', { value: { name: 'Ada', age: 31 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ key: 'user:123', value: { name: 'Ada', age: 31 }, hlc: expect.stringMatching(HLC), origin: 'A', version: { A: 1 } });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('should accept any JSON value, null and falsy values included', async () => {
    const values = [null, false, 0, '', [], {}, 'text', -1.5, [1, 'two', { three: [null] }], { nested: { deeper: { deepest: true } } }];
    for (const [i, value] of values.entries()) {
      const res = await put(`any:${i}`, { value });
      expect(res.status, JSON.stringify(value)).toBe(200);
      expect(res.body.value).toEqual(value);
      expect((await api().get(`/keys/any:${i}`)).body.value).toEqual(value);
    }
  });

  it('should accept JSON media types with a +json suffix and an explicit UTF-8 charset', async () => {
    for (const type of ['application/vnd.example+json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8']) {
      const res = await api().put('/keys/typed').set('Content-Type', type).send('{"value":"ok"}');
      expect(res.status, type).toBe(200);
    }
  });

  it('should move the version and the HLC forward on every overwrite', async () => {
    const first = await put('counter', { value: 1 });
    const second = await put('counter', { value: 2 });
    expect(second.body.version).toEqual({ A: first.body.version.A + 1 });
    // The HLC string's lexicographic order is the LWW order.
    expect(second.body.hlc > first.body.hlc).toBe(true);
  });

  it('should set expiresAt from ttlMs and stop serving the key once it expired', async () => {
    const before = Date.now();
    const res = await put('short-lived', { value: 'soon gone', ttlMs: 300 });
    expect(res.status).toBe(200);
    expect(res.body.expiresAt).toBeGreaterThanOrEqual(before + 300);
    expect(res.body.expiresAt).toBeLessThanOrEqual(Date.now() + 300);
    expect((await api().get('/keys/short-lived')).status).toBe(200);
    await waitUntil(() => api().get('/keys/short-lived'), (r) => r.status === 404, { message: 'the key to expire', timeoutMs: 5_000 });
  });

  describe('when the body is not valid JSON', () => {
    it('should answer 400 invalid_json', async () => {
      for (const body of ['{bad', '{"value": 1,}', "{'value': 1}", '{"value": NaN}', '{"value": undefined}', '{"value": 1} trailing']) {
        expectError(await api().put('/keys/x').set(JSON_TYPE).send(body), 400, 'invalid_json');
      }
    });

    it('should answer 400 invalid_json for bytes that are not UTF-8', async () => {
      // Raw bytes: a client library would re-encode them.
      const body = Buffer.concat([Buffer.from('{"value":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      const res = await rawRequest(port, httpRequest('PUT', '/keys/x', { body, headers: JSON_TYPE }));
      expectError({ ...res, body: JSON.parse(res.body) }, 400, 'invalid_json');
    });
  });

  describe('when the body does not match the schema', () => {
    it('should answer 400 invalid_body naming an unknown field', async () => {
      const res = await put('x', { value: 1, ttl: 5 });
      expectError(res, 400, 'invalid_body');
      expect(res.body.error.field).toBe('ttl');
      expect(res.body.error.message).toContain('"ttl"');
    });

    it('should answer 400 invalid_body naming value when it is missing', async () => {
      for (const body of [{}, { ttlMs: 1000 }]) {
        const res = await put('x', body);
        expectError(res, 400, 'invalid_body');
        expect(res.body.error.field).toBe('value');
      }
    });

    it('should answer 400 invalid_body naming ttlMs unless it is a positive integer within maxTtlMs', async () => {
      for (const ttlMs of [0, -1, 1.5, '1000', null, true, [1000], { ms: 1 }, 9_007_199_254_740_992, 365 * 24 * 3600 * 1000 + 1]) {
        const res = await put('x', { value: 1, ttlMs });
        expectError(res, 400, 'invalid_body');
        expect(res.body.error.field, JSON.stringify(ttlMs)).toBe('ttlMs');
      }
    });

    it('should answer 400 invalid_body when the body is not an object', async () => {
      for (const body of ['[]', '[{"value":1}]', '1', '"value"', 'null', 'true', '']) {
        expectError(await api().put('/keys/x').set(JSON_TYPE).send(body), 400, 'invalid_body');
      }
    });

    it('should answer 400 invalid_body for a value nested too deeply to store', async () => {
      const deep = `{"value":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
      const res = await api().put('/keys/x').set(JSON_TYPE).send(deep);
      expectError(res, 400, 'invalid_body');
      expect(res.body.error.field).toBe('value');
    });
  });

  describe('when the content type is not JSON', () => {
    it('should answer 415 unsupported_media_type', async () => {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json']) {
        expectError(await api().put('/keys/x').set('Content-Type', type).send('{"value":1}'), 415, 'unsupported_media_type');
      }
    });

    it('should answer 415 when the body has no content type at all', async () => {
      const res = await rawRequest(port, httpRequest('PUT', '/keys/x', { body: '{"value":1}' }));
      expectError({ ...res, body: JSON.parse(res.body) }, 415, 'unsupported_media_type');
    });

    it('should answer 415 for a charset other than UTF-8', async () => {
      expectError(await api().put('/keys/x').set('Content-Type', 'application/json; charset=latin1').send('{"value":1}'), 415, 'unsupported_media_type');
    });
  });

  describe('when the request is too large', () => {
    it('should answer 413 payload_too_large for a body over maxBodyBytes', async () => {
      const res = await put('x', { value: 'x'.repeat(1024 * 1024 + 70 * 1024) });
      expectError(res, 413, 'payload_too_large');
    });

    it('should answer 413 payload_too_large naming value when its JSON exceeds maxValueBytes', async () => {
      // The body fits (maxBodyBytes = maxValueBytes + 64 KiB) but the value's JSON does not.
      const res = await put('x', { value: 'x'.repeat(1024 * 1024) });
      expectError(res, 413, 'payload_too_large');
      expect(res.body.error.field).toBe('value');
    });

    it('should store a value of exactly maxValueBytes', async () => {
      const res = await put('big', { value: 'x'.repeat(1024 * 1024 - 2) });
      expect(res.status).toBe(200);
    });

    it('should answer 414 key_too_long for a key over maxKeyBytes, before reading the body', async () => {
      expectError(await put('k'.repeat(1025), { value: 1 }), 414, 'key_too_long');
      // 342 × "€" (3 bytes each) = 1026 bytes in only 342 characters.
      expectError(await api().get(`/keys/${encodeURIComponent('€'.repeat(342))}`), 414, 'key_too_long');
      expect((await put('k'.repeat(1024), { value: 1 })).status).toBe(200);
    });
  });
});

describe('GET /keys/:key', () => {
  it('should answer with what PUT answered', async () => {
    const written = await put('read-me', { value: [1, 2, 3] });
    const read = await api().get('/keys/read-me');
    expect(read.status).toBe(200);
    expect(read.body).toEqual(written.body);
  });

  it('should answer 404 not_found for a key that was never written', async () => {
    expectError(await api().get('/keys/never-written'), 404, 'not_found');
  });

  it('should answer HEAD without a body', async () => {
    await put('head', { value: 1 });
    const res = await api().head('/keys/head');
    expect(res.status).toBe(200);
    expect(res.text ?? '').toBe('');
  });
});

describe('DELETE /keys/:key', () => {
  it('should answer with the tombstone and hide the key from GET and list', async () => {
    const written = await put('doomed', { value: 1 });
    const res = await api().delete('/keys/doomed');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ key: 'doomed', deleted: true, hlc: expect.stringMatching(HLC), origin: 'A', version: { A: 2 } });
    expect(res.body.hlc > written.body.hlc).toBe(true);
    expectError(await api().get('/keys/doomed'), 404, 'not_found');
    const listed = await api().get('/keys').query({ prefix: 'doomed' });
    expect(listed.body.items).toEqual([]);
  });

  it('should be idempotent: deleting again returns the same tombstone', async () => {
    await put('twice', { value: 1 });
    const first = await api().delete('/keys/twice');
    const second = await api().delete('/keys/twice');
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
  });
});

describe('GET /keys', () => {
  it('should page through every live key under a prefix exactly once', async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `page:${String(i).padStart(2, '0')}`);
    for (const key of keys) await put(key, { value: key });
    await put('pager:not-me', { value: 0 });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await api()
        .get('/keys')
        .query({ prefix: 'page:', limit: 7, ...(cursor === null ? {} : { cursor }) });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(7);
      seen.push(...res.body.items.map((i: { key: string }) => i.key));
      cursor = res.body.cursor;
      pages += 1;
      expect(pages, 'pagination must terminate').toBeLessThan(50);
    } while (cursor !== null);
    expect(seen.sort()).toEqual(keys);
  });

  it('should return record views and a null cursor on the last page', async () => {
    await put('only:one', { value: { x: 1 } });
    const res = await api().get('/keys?prefix=only%3A');
    expect(res.body).toEqual({
      items: [{ key: 'only:one', value: { x: 1 }, hlc: expect.stringMatching(HLC), origin: 'A', version: { A: 1 } }],
      cursor: null,
    });
  });

  it('should answer 400 invalid_query naming the parameter', async () => {
    const cases: Array<[string, string]> = [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=2.5', 'limit'],
      ['limit=1&limit=2', 'limit'],
      ['prefix=a&prefix=b', 'prefix'],
      ['cursor=abc', 'cursor'],
      ['cursor=-1', 'cursor'],
      ['cursor=99999999999999999999', 'cursor'],
      ['order=desc', 'order'],
    ];
    for (const [query, field] of cases) {
      const res = await api().get(`/keys?${query}`);
      expectError(res, 400, 'invalid_query');
      expect(res.body.error.field, query).toBe(field);
    }
  });
});

describe('GET /health', () => {
  it('should answer 200 with the node id', async () => {
    const res = await api().get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', node: 'A' });
  });
});

describe('GET /cluster', () => {
  it('should describe the node, its peers and each peer\'s backlog', async () => {
    const res = await api().get('/cluster');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      node: 'A',
      redis: 'ok',
      outbox: expect.any(Number),
      badRecords: { quarantined: 0, poisoned: 0 },
      peers: [
        {
          id: 'B',
          backlog: { waiting: expect.any(Number), delayed: expect.any(Number), active: expect.any(Number), failed: expect.any(Number) },
          oldestPendingMs: expect.any(Number),
          retries: expect.any(Number),
          antiEntropy: expect.objectContaining({ keysRepaired: expect.any(Number), tombstonesPending: expect.any(Number) }),
        },
      ],
      warnings: [],
    });
  });
});

describe('GET /conflicts', () => {
  it('should answer with the node id and its conflict log', async () => {
    const res = await api().get('/conflicts?limit=5');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ node: 'A', items: expect.any(Array) });
  });

  it('should answer 400 invalid_query for a bad limit', async () => {
    for (const query of ['limit=0', 'limit=-3', 'limit=x', 'since=1']) expectError(await api().get(`/conflicts?${query}`), 400, 'invalid_query');
  });
});

describe('GET /metrics', () => {
  it('should expose the node\'s counters and the process metrics as Prometheus text', async () => {
    const scrape = async () => (await api().get('/metrics')).text;
    const writes = (text: string) => Number(/^eventual_cache_writes_total\{node="A"\} (\d+)$/m.exec(text)?.[1]);
    const before = await scrape();
    await put('metered', { value: 1 });
    const after = await scrape();
    expect(writes(after)).toBe(writes(before) + 1);
    expect(after).toContain('# TYPE eventual_cache_replication_lag_seconds histogram');
    expect(after).toMatch(/^eventual_cache_replication_backlog\{peer="B",state="delayed",node="A"\} \d+$/m);
    expect(after).toMatch(/^process_cpu_user_seconds_total \d/m);
    const res = await api().get('/metrics');
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('/admin/queues', () => {
  it('should serve the Bull dashboard for the node\'s replication queues', async () => {
    const page = await api().get('/admin/queues');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<title>eventual-cache A</title>');
    const queues = await api().get('/admin/queues/api/queues');
    expect(queues.status).toBe(200);
    expect(queues.body.queues.map((q: { name: string }) => q.name)).toEqual(['to-B']);
  });

  it('should be read-only without a token', async () => {
    const res = await api().put('/admin/queues/api/queues/to-B/pause');
    expect(res.status).toBe(405);
    const queue = nodes.servers[0]?.node.queues[0];
    expect(await queue?.isPaused()).toBe(false);
  });

  it('should not exist when dashboard is false', async () => {
    const app = createApp((nodes.servers[0] as (typeof nodes.servers)[number]).node, { dashboard: false });
    expectError(await request(app).get('/admin/queues'), 404, 'not_found');
  });
});

describe('unknown routes and methods', () => {
  it('should answer 404 not_found for a path no endpoint serves', async () => {
    for (const path of ['/nope', '/keys/a/b', '/KEYS/x', '/health/x', '/admin']) expectError(await api().get(path), 404, 'not_found');
    const res = await api().get('/keys/a/b');
    expect(res.body.error.message).toContain('%2F');
  });

  it('should lead a browser from / to the cluster view, and answer 404 without the page', async () => {
    const res = await api().get('/');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/ui/');
    const app = createApp((nodes.servers[0] as (typeof nodes.servers)[number]).node, { ui: false });
    expectError(await request(app).get('/'), 404, 'not_found');
    expectError(await request(app).get('/ui/'), 404, 'not_found');
  });

  it('should answer 405 method_not_allowed with Allow for a method the endpoint lacks', async () => {
    const cases: Array<[string, string, string]> = [
      ['post', '/keys/x', 'GET, HEAD, PUT, DELETE, OPTIONS'],
      ['patch', '/keys/x', 'GET, HEAD, PUT, DELETE, OPTIONS'],
      ['post', '/keys', 'GET, HEAD, OPTIONS'],
      ['delete', '/keys', 'GET, HEAD, OPTIONS'],
      ['put', '/health', 'GET, HEAD, OPTIONS'],
      ['post', '/cluster', 'GET, HEAD, OPTIONS'],
      ['delete', '/conflicts', 'GET, HEAD, OPTIONS'],
      ['post', '/metrics', 'GET, HEAD, OPTIONS'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await (api() as unknown as Record<string, (p: string) => request.Test>)[method]!(path);
      expectError(res, 405, 'method_not_allowed');
      expect(res.headers.allow, `${method} ${path}`).toBe(allow);
    }
  });

  it('should answer OPTIONS with 204 and Allow', async () => {
    const res = await api().options('/keys/x');
    expect(res.status).toBe(204);
    expect(res.headers.allow).toBe('GET, HEAD, PUT, DELETE, OPTIONS');
  });

  it('should answer 400 invalid_key for PUT or DELETE on /keys/ with an empty key', async () => {
    expectError(await api().put('/keys/').set(JSON_TYPE).send('{"value":1}'), 400, 'invalid_key');
    expectError(await api().delete('/keys/'), 400, 'invalid_key');
  });
});

describe('createApp', () => {
  it('should reject invalid options naming the field', () => {
    const node = (nodes.servers[0] as (typeof nodes.servers)[number]).node;
    const field = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidOptionsError);
        return (error as InvalidOptionsError).field;
      }
      return 'no error';
    };
    expect(field(() => createApp(node, { authToken: '' }))).toBe('authToken');
    expect(field(() => createApp(node, { authToken: 'has space' }))).toBe('authToken');
    expect(field(() => createApp(node, { maxBodyBytes: 0 }))).toBe('maxBodyBytes');
    expect(field(() => createApp(node, { maxBodyBytes: 1.5 }))).toBe('maxBodyBytes');
  });
});
