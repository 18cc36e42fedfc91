/**
 * Keys are arbitrary UTF-8 strings, one percent-encoded path segment each, decoded exactly
 * once. Whatever a key contains, it lands under this node's own `rec:` namespace in Redis.
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, httpRequest, rawRequest, startNodes, useTestRedis, type StartedNodes } from '../support/http-harness.js';

const UNUSUAL_KEYS = [
  'a:b',
  'a/b',
  '/leading/and/trailing/',
  '*',
  'a*b?c[d]e\\f',
  '{x}',
  '{user}:profile',
  'with space',
  '  padded  ',
  'ünïcødé',
  '日本語のキー',
  'emoji 🎉🚀',
  'family 👨‍👩‍👧',
  'query?x=1&y=2#frag',
  '100% sure',
  '%2F is not a slash',
  'plus+sign',
  "quotes ' \"",
  '..x',
  '.hidden',
  'a/../b',
  '../../etc/passwd',
  'tab-free\u00a0nbsp',
  'מימין לשמאל',
  '\u{10ffff}',
];

const JSON_TYPE = { 'Content-Type': 'application/json' };

useTestRedis();

let nodes: StartedNodes;
let url: string;
let port: number;
let redis: Redis;

beforeAll(async () => {
  nodes = await startNodes({ label: 'keys', ids: ['A', 'B'], node: { replication: { delayMs: 20 } } });
  ({ url, port } = nodes.servers[0] as (typeof nodes.servers)[number]);
  redis = new Redis(nodes.urls[0] as string);
});
afterAll(async () => {
  redis?.disconnect();
  await nodes?.close();
});

const path = (key: string) => `/keys/${encodeURIComponent(key)}`;

describe('unusual keys', () => {
  it('should round-trip through PUT, GET and DELETE unchanged', async () => {
    for (const key of UNUSUAL_KEYS) {
      const written = await request(url).put(path(key)).set(JSON_TYPE).send(JSON.stringify({ value: { key } }));
      expect(written.status, key).toBe(200);
      expect(written.body.key, key).toBe(key);
      const read = await request(url).get(path(key));
      expect(read.status, key).toBe(200);
      expect(read.body, key).toEqual(written.body);
    }
  });

  it('should be listed under their own names and found by a prefix equal to themselves', async () => {
    const listed = new Set<string>();
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(url)
        .get('/keys')
        .query({ limit: 10, ...(cursor === null ? {} : { cursor }) });
      for (const item of res.body.items) listed.add(item.key);
      cursor = res.body.cursor;
    } while (cursor !== null);
    for (const key of UNUSUAL_KEYS) expect(listed.has(key), key).toBe(true);

    // Glob characters in a prefix are literal: "*" finds "*" only, not every key.
    for (const key of UNUSUAL_KEYS) {
      const res = await request(url).get('/keys').query({ prefix: key, limit: 1000 });
      const keys = res.body.items.map((i: { key: string }) => i.key);
      expect(keys, key).toContain(key);
      for (const k of keys) expect(k.startsWith(key), `${k} listed for prefix ${key}`).toBe(true);
    }
  });

  it('should be stored under the node\'s own record namespace, whatever they contain', async () => {
    for (const key of UNUSUAL_KEYS) {
      expect(await redis.exists(`${nodes.prefix}:A:rec:${key}`), key).toBe(1);
    }
    // A key that spells another node's namespace is still just a key of A.
    await request(url).put(path(`:B:rec:intruder`)).set(JSON_TYPE).send('{"value":1}');
    expect(await redis.exists(`${nodes.prefix}:A:rec::B:rec:intruder`)).toBe(1);
    const b = new Redis(nodes.urls[1] as string);
    try {
      expect(await b.exists(`${nodes.prefix}:B:rec:intruder`)).toBe(0);
    } finally {
      b.disconnect();
    }
  });

  it('should replicate to the peer under the same key', async () => {
    const b = (nodes.servers[1] as (typeof nodes.servers)[number]).url;
    for (const key of UNUSUAL_KEYS) {
      const deadline = Date.now() + 10_000;
      let res = await request(b).get(path(key));
      while (res.status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        res = await request(b).get(path(key));
      }
      expect(res.status, `B never received ${key}`).toBe(200);
      expect(res.body.key).toBe(key);
    }
  });

  it('should be deleted like any other key', async () => {
    for (const key of UNUSUAL_KEYS) {
      const res = await request(url).delete(path(key));
      expect(res.status, key).toBe(200);
      expect(res.body).toMatchObject({ key, deleted: true });
      expectError(await request(url).get(path(key)), 404, 'not_found');
    }
  });
});

describe('path decoding', () => {
  // Raw sockets: HTTP clients normalize dot segments and re-encode before sending.
  const send = async (method: string, target: string, body?: string) => {
    const res = await rawRequest(port, httpRequest(method, target, body === undefined ? {} : { body, headers: JSON_TYPE }));
    return { ...res, body: JSON.parse(res.body) as Record<string, unknown> & { error?: { code: string } } };
  };

  it('should decode a key exactly once', async () => {
    const res = await send('PUT', '/keys/%252F%252e%252e', '{"value":"once"}');
    expect(res.status).toBe(200);
    expect(res.body.key).toBe('%2F%2e%2e');
    expect((await send('GET', '/keys/%252F%252e%252e')).body.value).toBe('once');
    expect((await send('GET', '/keys/%2F..')).status).toBe(404);
  });

  it('should treat %2F as part of the key and a literal "/" as a different path', async () => {
    expect((await send('PUT', '/keys/dir%2Ffile', '{"value":1}')).status).toBe(200);
    const literal = await send('GET', '/keys/dir/file');
    expect(literal.status).toBe(404);
    expect(literal.body.error?.code).toBe('not_found');
  });

  it('should refuse the dot segments "." and ".." however they are spelled', async () => {
    for (const target of ['/keys/..', '/keys/.', '/keys/%2e%2e', '/keys/%2E%2E', '/keys/.%2e', '/keys/%2e']) {
      const res = await send('PUT', target, '{"value":1}');
      expect(res.status, target).toBe(400);
      expect(res.body.error?.code, target).toBe('invalid_key');
    }
  });

  it('should refuse keys that are not valid UTF-8 or contain control characters', async () => {
    for (const target of ['/keys/%ff', '/keys/%c0%af', '/keys/%ED%A0%80', '/keys/a%00b', '/keys/%0a', '/keys/%7f', '/keys/%', '/keys/%zz']) {
      const res = await send('PUT', target, '{"value":1}');
      expect(res.status, target).toBe(400);
      expect(res.body.error?.code, target).toBe('invalid_key');
    }
  });

  it('should refuse raw non-ASCII bytes in the URL', async () => {
    const res = await rawRequest(port, Buffer.concat([Buffer.from('GET /keys/'), Buffer.from('é', 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.code).toBe('bad_request');
  });
});
