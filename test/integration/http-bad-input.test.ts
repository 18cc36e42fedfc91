/**
 * The bad-input sweep: hundreds of generated malformed requests, sent as raw bytes so no
 * client library tidies them up first. Every one must get a 4xx in the API's error shape,
 * the server must stay up, and the store must be byte-for-byte unchanged afterwards (every
 * Redis key under the nodes' prefix, records and bookkeeping, compared with DUMP).
 *
 * Requests whose path decodes to a legitimate key (`..%2F..%2Fhealth` is the key
 * `../../health`, `%252e%252e` the key `%2e%2e`) are sent as GETs here: they are not
 * malformed, and http-keys.test.ts shows they are stored as those literal keys.
 */
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  httpRequest,
  rawRequest,
  snapshotPrefix,
  startNodes,
  useTestRedis,
  type RawResponse,
  type StartedNodes,
} from '../support/http-harness.js';

const TOKEN = 'sweep-token-0123456789';
const LIMITS = { maxKeyBytes: 256, maxValueBytes: 4096, maxTtlMs: 86_400_000 };
const MAX_BODY_BYTES = 8192;
const JSON_TYPE = { 'Content-Type': 'application/json' };
const VALID_BODY = '{"value":{"a":[1,2,{"b":"c"}],"d":null},"ttlMs":60000}';

interface Case {
  name: string;
  bytes: Buffer;
  /** Expected status and code when the case pins them; otherwise any 4xx in the error shape. */
  status?: number;
  code?: string;
  /** Which server: the open one or the one with a token. @defaultValue "open" */
  target?: 'open' | 'auth';
}

function generateCases(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, method: string, target: string, options: Parameters<typeof httpRequest>[2] = {}, status?: number, code?: string) =>
    cases.push({ name, bytes: httpRequest(method, target, options), ...(status === undefined ? {} : { status }), ...(code === undefined ? {} : { code }) });
  const putJson = (name: string, body: string | Buffer, status?: number, code?: string, target = '/keys/victim') =>
    add(name, 'PUT', target, { body, headers: JSON_TYPE }, status, code);
  const raw = (name: string, bytes: string | Buffer, status?: number, code?: string) =>
    cases.push({ name, bytes: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'), ...(status === undefined ? {} : { status }), ...(code === undefined ? {} : { code }) });

  // A. Broken JSON: every truncation of a valid body, and hand-made syntax errors.
  for (let i = 1; i < VALID_BODY.length; i++) putJson(`truncated at ${i}`, VALID_BODY.slice(0, i), 400, 'invalid_json');
  const syntax = [
    "{'value':1}", '{value:1}', '{"value":1,}', '{"value":[1,2,]}', '{"value":01}', '{"value":1.}', '{"value":.5}', '{"value":+1}',
    '{"value":0x10}', '{"value":NaN}', '{"value":Infinity}', '{"value":-Infinity}', '{"value":undefined}', '{"value":"unterminated}',
    '{"value":"bad \\x escape"}', '{"value":"\\u12"}', '{"value":"tab\tinside"}', '{"value":"newline\ninside"}', '{"value":1}/*comment*/',
    '//comment\n{"value":1}', '{"value":1}{"value":2}', '{"value":1} x', '[', ']', '{"value":tru}', '{"value":nul}', '{"value":"a" "b"}',
    '{"value" 1}', '{"value":1 "ttlMs":2}', '{,}', '{"value":1', '"unterminated', '   ', '\u0000', '{"value":\u0001}',
  ];
  for (const body of syntax) putJson(`syntax ${JSON.stringify(body)}`, body, 400);
  for (const bytes of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
    putJson(`invalid UTF-8 ${bytes.join(',')}`, Buffer.concat([Buffer.from('{"value":"'), Buffer.from(bytes), Buffer.from('"}')]), 400, 'invalid_json');
  }

  // B. Wrong types and shapes.
  const ttls = ['0', '-1', '-1000', '-0.5', '1.5', '0.1', '1e-7', '"1000"', '""', '"1e3"', 'null', 'true', 'false', '[]', '[1000]', '{}',
    '{"ms":1}', '1e300', '9007199254740993', String(LIMITS.maxTtlMs + 1), '1e400', '-0', '"NaN"', '"Infinity"'];
  for (const ttl of ttls) putJson(`ttlMs ${ttl}`, `{"value":1,"ttlMs":${ttl}}`, 400, 'invalid_body');
  const shapes = ['{}', '{"ttlMs":1000}', '{"Value":1}', '{"value ":1}', '{"VALUE":1}', '{"val":1}', '{"value":1,"ttl":5}', '{"value":1,"extra":null}',
    '{"value":1,"__proto__":{"x":1}}', '{"value":1,"constructor":{"prototype":{}}}', '{"value":1,"ttlMs":1000,"key":"other"}', '{"value":1,"key":"../x"}',
    '[]', '[{"value":1}]', '1', '"str"', 'null', 'true', 'false', '0', '""', ''];
  for (const body of shapes) putJson(`shape ${JSON.stringify(body)}`, body, 400, 'invalid_body');

  // C. Too large: bodies over maxBodyBytes (however they arrive), values over maxValueBytes.
  putJson('body over the limit', `{"value":"${'x'.repeat(MAX_BODY_BYTES + 100)}"}`, 413, 'payload_too_large');
  add('chunked body over the limit', 'PUT', '/keys/victim', { body: chunked(`{"value":"${'x'.repeat(MAX_BODY_BYTES * 2)}"}`), headers: { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' } }, 413, 'payload_too_large');
  add('Content-Length over the limit', 'PUT', '/keys/victim', { body: VALID_BODY, headers: { ...JSON_TYPE, 'Content-Length': '20000' } }, 413, 'payload_too_large');
  add('absurd Content-Length', 'PUT', '/keys/victim', { body: VALID_BODY, headers: { ...JSON_TYPE, 'Content-Length': '99999999999' } }, 413, 'payload_too_large');
  putJson('value over maxValueBytes', `{"value":"${'x'.repeat(LIMITS.maxValueBytes)}"}`, 413, 'payload_too_large');
  putJson('array value over maxValueBytes', `{"value":[${Array.from({ length: 1500 }, (_, i) => i).join(',')}]}`, 413, 'payload_too_large');
  putJson('deep value over maxValueBytes', `{"value":${'['.repeat(2500)}${']'.repeat(2500)}}`, 413, 'payload_too_large');
  add('gzip bomb', 'PUT', '/keys/victim', { body: gzipSync(`{"value":"${'0'.repeat(1_000_000)}"}`), headers: { ...JSON_TYPE, 'Content-Encoding': 'gzip' } }, 413, 'payload_too_large');
  add('gzip that is not gzip', 'PUT', '/keys/victim', { body: VALID_BODY, headers: { ...JSON_TYPE, 'Content-Encoding': 'gzip' } });
  add('unknown Content-Encoding', 'PUT', '/keys/victim', { body: VALID_BODY, headers: { ...JSON_TYPE, 'Content-Encoding': 'compress' } }, 415, 'unsupported_media_type');

  // D. Not JSON by Content-Type.
  const types = ['text/plain', 'text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/xml',
    'application/octet-stream', 'image/png', 'application/javascript', 'text/json', 'application/jsonp', 'application/json5', 'json', 'application',
    '*/*', 'application/*', 'APPLICATION/XML', 'application/json; charset=latin1', 'application/json; charset=iso-8859-1',
    'application/json; charset=utf-16', 'application/json; charset=ascii', 'application/json; charset="windows-1252"'];
  for (const type of types) add(`Content-Type ${type}`, 'PUT', '/keys/victim', { body: VALID_BODY, headers: { 'Content-Type': type } }, 415, 'unsupported_media_type');
  add('no Content-Type', 'PUT', '/keys/victim', { body: VALID_BODY }, 415, 'unsupported_media_type');

  // E. Keys with control characters, lone surrogates, invalid UTF-8 and broken escapes.
  for (let c = 0; c <= 0x20; c++) if (c < 0x20) putJson(`control %${hex(c)} in key`, VALID_BODY, 400, 'invalid_key', `/keys/a%${hex(c)}b`);
  putJson('DEL in key', VALID_BODY, 400, 'invalid_key', '/keys/a%7Fb');
  const badEscapes = ['%ED%A0%80', '%ED%AF%BF', '%ED%B0%80', '%ED%BF%BF', 'a%ED%A0%80b', '%ED%A0%BD%ED%B8%80', '%ff', '%fe', '%c0%af', '%c0%80', '%e0%80%af',
    '%80', '%bf', '%c3', '%e2%82', '%f0%9f%98', '%f8%88%80%80%80', '%f4%90%80%80', '%fc%80%80%80%80%af', '%', '%%', '%g1', '%1', 'a%zz', '%u0041', '%2'];
  for (const key of badEscapes) putJson(`key ${key}`, VALID_BODY, 400, 'invalid_key', `/keys/${key}`);
  for (const c of [0x00, 0x01, 0x08, 0x09, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f]) {
    raw(`raw byte ${hex(c)} in URL`, `GET /keys/a${String.fromCharCode(c)}b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 400);
  }
  for (const text of ['é', '日本', '🎉']) {
    raw(`raw UTF-8 ${text} in URL`, Buffer.concat([Buffer.from('GET /keys/'), Buffer.from(text), Buffer.from(' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')]), 400);
  }
  raw('raw 0xff in URL', Buffer.concat([Buffer.from('GET /keys/'), Buffer.from([0xff]), Buffer.from(' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')]), 400);

  // F. Path tricks.
  for (const target of ['/keys/..', '/keys/.', '/keys/%2e%2e', '/keys/%2E%2e', '/keys/.%2e', '/keys/%2e.', '/keys/%2e', '/keys/%2E']) {
    putJson(`dot segment ${target}`, VALID_BODY, 400, 'invalid_key', target);
  }
  for (const target of ['/keys/../keys/x', '/keys/../../etc/passwd', '/keys/./x', '/keys//x', '//keys/x', '/keys/x/y', '/keys/x/../y', '/./keys/x',
    '/%6Beys/x', '/KEYS/x', '/Keys/x', '/keys%2Fx', '/keys%2fx', '/admin/queues/../../keys/x', '/health/../keys/x', '/keys/x%2F/y', '*']) {
    putJson(`path ${target}`, VALID_BODY, 404, 'not_found', target);
  }
  putJson('backslash path', VALID_BODY, undefined, undefined, '/keys\\x');
  putJson('unparseable absolute-form target', VALID_BODY, 400, 'bad_request', 'http://[/keys/x');
  for (const target of ['/keys/..%2F..%2Fhealth', '/keys/%252e%252e%252Fvictim', '/keys/%252F', '/keys/%25', '/keys/x%3Bjsessionid=1', '/keys/x;y', '/keys/%2e%2e%2fvictim',
    '/keys/victim%00', '/keys/VICTIM', '/keys/victim%20', '/keys/%20victim']) {
    add(`GET ${target}`, 'GET', target, {}, target.includes('%00') ? 400 : 404);
  }

  // G. Overlong keys and request heads.
  for (const key of ['k'.repeat(257), 'k'.repeat(300), 'k'.repeat(1000), 'k'.repeat(5000), '€'.repeat(86), '😀'.repeat(65)]) {
    putJson(`key of ${Buffer.byteLength(key)} bytes`, VALID_BODY, 414, 'key_too_long', `/keys/${encodeURIComponent(key)}`);
    add(`GET key of ${Buffer.byteLength(key)} bytes`, 'GET', `/keys/${encodeURIComponent(key)}`, {}, 414, 'key_too_long');
  }
  add('URL over 16 KiB', 'GET', `/keys/${'k'.repeat(20_000)}`, {}, 431, 'headers_too_large');
  add('headers over 16 KiB', 'GET', '/keys/victim', { headers: { 'X-Big': 'a'.repeat(20_000) } }, 431, 'headers_too_large');

  // H. Methods and routes that do not exist.
  const methods: Array<[string, string, number]> = [
    ['POST', '/keys/victim', 405], ['PATCH', '/keys/victim', 405], ['POST', '/keys', 405], ['PUT', '/keys', 405], ['DELETE', '/keys', 405],
    ['PUT', '/keys/', 400], ['DELETE', '/keys/', 400], ['PUT', '/health', 405], ['DELETE', '/health', 405], ['POST', '/cluster', 405],
    ['PUT', '/conflicts', 405], ['POST', '/metrics', 405], ['PUT', '/', 404], ['DELETE', '/', 404], ['PUT', '/unknown', 404],
    ['PROPFIND', '/keys/victim', 405], ['MKCOL', '/keys/victim', 405], ['COPY', '/keys/victim', 405], ['LOCK', '/keys/victim', 405],
  ];
  for (const [method, target, status] of methods) add(`${method} ${target}`, method, target, { body: VALID_BODY, headers: JSON_TYPE }, status);
  raw('unknown method', 'FROB /keys/victim HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', 400);
  raw('lowercase method', 'put /keys/victim HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 11\r\n\r\n{"value":1}', 400);

  // I. Query strings.
  for (const query of ['limit=0', 'limit=-1', 'limit=abc', 'limit=1001', 'limit=1.5', 'limit=1e3', 'limit=%00', 'limit=%20', 'limit=&limit=', 'limit[]=1',
    'cursor=abc', 'cursor=-1', 'cursor=1.2.3', 'cursor=99999999999999999999999', 'cursor=0x10', 'cursor=%ff', 'cursor=18446744073709551616',
    'prefix=a&prefix=b', `prefix=${'p'.repeat(300)}`, 'unknown=1', 'LIMIT=5', 'limit=5&cursor=1&extra']) {
    add(`GET /keys?${query}`, 'GET', `/keys?${query}`, {}, 400, 'invalid_query');
  }
  for (const query of ['limit=0', 'limit=abc', 'limit=5000', 'x=1', 'limit=1&limit=2']) add(`GET /conflicts?${query}`, 'GET', `/conflicts?${query}`, {}, 400, 'invalid_query');

  // J. Not HTTP, or ambiguous HTTP (request smuggling shapes).
  const head = 'PUT /keys/victim HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n';
  raw('garbage request line', 'HELLO\r\n\r\n', 400);
  raw('no HTTP version', 'GET /keys/victim\r\nConnection: close\r\n\r\n', 400);
  raw('PUT without HTTP version', 'PUT /keys/victim\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"value":1}', 400);
  raw('Content-Length and Transfer-Encoding', `${head}Content-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400);
  raw('negative Content-Length', `${head}Content-Length: -1\r\n\r\n{"value":1}`, 400);
  raw('non-numeric Content-Length', `${head}Content-Length: abc\r\n\r\n{"value":1}`, 400);
  raw('two different Content-Lengths', `${head}Content-Length: 11\r\nContent-Length: 12\r\n\r\n{"value":1} `, 400);
  raw('bad chunk size', `${head}Transfer-Encoding: chunked\r\n\r\nzz\r\n{"value":1}\r\n0\r\n\r\n`, 400);
  raw('header without colon', 'GET /keys/victim HTTP/1.1\r\nHost x\r\nConnection: close\r\n\r\n', 400);
  raw('space before colon', 'GET /keys/victim HTTP/1.1\r\nHost : x\r\nConnection: close\r\n\r\n', 400);
  raw('NUL in header value', 'GET /keys/victim HTTP/1.1\r\nHost: x\u0000y\r\nConnection: close\r\n\r\n', 400);
  raw('obsolete line folding', `${head}Content-Length: 11\r\nX-Folded: a\r\n b\r\n\r\n{"value":1}`, 400);
  // Smuggling: a body that one reading takes as a second request (a write to "smuggled").
  const smuggled = 'PUT /keys/smuggled HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"value":1}';
  raw('CL.TE: Content-Length then chunked, smuggled request', `${head}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`, 400);
  raw('TE.CL: chunked then Content-Length, smuggled request', `${head}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(smuggled.length).toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`, 400);
  raw('Transfer-Encoding with a space before the colon', `${head}Content-Length: 11\r\nTransfer-Encoding : chunked\r\n\r\n{"value":1}`, 400);
  raw('Transfer-Encoding: chunked, identity', `${head}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400);
  raw('Transfer-Encoding: xchunked', `${head}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400);
  raw('two Transfer-Encoding headers', `${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`, 400);
  raw('duplicate equal Content-Lengths, smuggled request', `${head}Content-Length: 11\r\nContent-Length: 11\r\n\r\n{"value":1}${smuggled}`, 400);
  raw('Content-Length list "11, 11"', `${head}Content-Length: 11, 11\r\n\r\n{"value":1}`, 400);
  raw('Content-Length with a plus sign', `${head}Content-Length: +11\r\n\r\n{"value":1}`, 400);
  raw('bare LF line endings', `PUT /keys/victim HTTP/1.1\nHost: localhost\nContent-Type: application/json\nContent-Length: 11\n\n{"value":1}`, 400);
  raw('chunk size overflow', `${head}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{"value":1}\r\n0\r\n\r\n`, 400);
  // Header floods: one huge header, thousands of small ones, a huge request line.
  raw('one 64 KiB header', `${head}X-Flood: ${'a'.repeat(64 * 1024)}\r\nContent-Length: 11\r\n\r\n{"value":1}`, 431, 'headers_too_large');
  raw('4000 small headers', `${head}${Array.from({ length: 4000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}Content-Length: 11\r\n\r\n{"value":1}`, 431, 'headers_too_large');
  raw('64 KiB request line', `GET /keys/${'k'.repeat(64 * 1024)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 431, 'headers_too_large');

  // K. Credentials on the server with a token: nothing gets through without the exact token.
  const basicOf = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const auths: Array<string | undefined> = [undefined, 'Bearer', 'Bearer ', 'Bearer wrong', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`,
    `Bearer ${TOKEN} extra`, `Bearer ${TOKEN.toUpperCase()}`, basicOf('user', TOKEN), 'Basic garbage!', `Token ${TOKEN}`, `Bearer ${'a'.repeat(8000)}`, TOKEN];
  for (const auth of auths) {
    const headers: Record<string, string> = auth === undefined ? {} : { Authorization: auth };
    const label = auth === undefined ? 'none' : JSON.stringify(auth.slice(0, 40));
    cases.push({ name: `auth ${label} PUT`, bytes: httpRequest('PUT', '/keys/victim', { body: VALID_BODY, headers: { ...JSON_TYPE, ...headers } }), status: 401, code: 'unauthorized', target: 'auth' });
    cases.push({ name: `auth ${label} DELETE`, bytes: httpRequest('DELETE', '/keys/victim', { headers }), status: 401, code: 'unauthorized', target: 'auth' });
    cases.push({ name: `auth ${label} list`, bytes: httpRequest('GET', '/keys', { headers }), status: 401, code: 'unauthorized', target: 'auth' });
    // Basic credentials with the token are the dashboard's way in, so that one case is left out there.
    if (auth !== basicOf('user', TOKEN)) {
      cases.push({ name: `auth ${label} dashboard pause`, bytes: httpRequest('PUT', '/admin/queues/api/queues/to-B/pause', { headers }), status: 401, code: 'unauthorized', target: 'auth' });
    }
  }
  return cases;
}

function hex(c: number): string {
  return c.toString(16).padStart(2, '0').toUpperCase();
}

function chunked(body: string): string {
  const parts: string[] = [];
  for (let i = 0; i < body.length; i += 1000) {
    const chunk = body.slice(i, i + 1000);
    parts.push(`${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`);
  }
  return `${parts.join('')}0\r\n\r\n`;
}

/** What is wrong with `res` as the answer to `c`, or undefined when it is right. */
function verdict(c: Case, res: RawResponse): string | undefined {
  if (res.status < 400 || res.status > 499) return `status ${res.status}`;
  if (c.status !== undefined && res.status !== c.status) return `status ${res.status}, expected ${c.status}`;
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) return `content-type ${res.headers['content-type']}`;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(res.body);
  } catch {
    return `body is not JSON: ${res.body.slice(0, 100)}`;
  }
  if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') return `not the error shape: ${res.body.slice(0, 200)}`;
  if (c.code !== undefined && body.error.code !== c.code) return `code ${body.error.code}, expected ${c.code} (${body.error.message})`;
  return undefined;
}

useTestRedis();

let open: StartedNodes;
let secured: StartedNodes;

/** Records both servers hold before the sweep: the sweep must leave every byte of them alone. */
async function seed(nodes: StartedNodes, headers: Record<string, string>): Promise<void> {
  const url = (nodes.servers[0] as (typeof nodes.servers)[number]).url;
  const h = { ...JSON_TYPE, ...headers };
  for (const key of ['victim', 'a:b', 'a/b', '*', '{x}', 'with space', 'ünïcødé', 'emoji 🎉', '..x', '%2e%2e']) {
    const res = await fetch(`${url}/keys/${encodeURIComponent(key)}`, { method: 'PUT', headers: h, body: JSON.stringify({ value: { key } }) });
    expect(res.status, key).toBe(200);
  }
  await fetch(`${url}/keys/with-ttl`, { method: 'PUT', headers: h, body: '{"value":1,"ttlMs":3600000}' });
  await fetch(`${url}/keys/tombstone`, { method: 'PUT', headers: h, body: '{"value":1}' });
  await fetch(`${url}/keys/tombstone`, { method: 'DELETE', headers: h });
}

beforeAll(async () => {
  // No anti-entropy rounds (their heartbeats write to the store); the digest is still kept.
  const node = { limits: LIMITS, replication: { delayMs: 10 }, antiEntropy: { enabled: false, foldIntervalMs: 50 } };
  open = await startNodes({ label: 'sweep', ids: ['A', 'B'], node, http: { maxBodyBytes: MAX_BODY_BYTES } });
  secured = await startNodes({ label: 'sweep-auth', ids: ['A', 'B'], node, http: { maxBodyBytes: MAX_BODY_BYTES, authToken: TOKEN } });
  await seed(open, {});
  await seed(secured, { Authorization: `Bearer ${TOKEN}` });
  // Let the seed replicate to B, so the snapshots below are taken at rest.
  for (const nodes of [open, secured]) {
    const A = (nodes.servers[0] as (typeof nodes.servers)[number]).node;
    await A.flushOutbox();
    const deadline = Date.now() + 10_000;
    while ((await A.status()).peers.some((p) => !p.backlog || p.backlog.delayed + p.backlog.waiting + p.backlog.active > 0)) {
      if (Date.now() > deadline) throw new Error('the seed did not replicate to B within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    // …and the digest log to be folded on both nodes (a background write of its own).
    for (const [i, server] of nodes.servers.entries()) {
      const redis = new Redis(nodes.urls[i] as string, { maxRetriesPerRequest: 1 });
      try {
        while ((await redis.llen(server.node.keys.digestLog())) > 0) {
          if (Date.now() > deadline) throw new Error('the digest log was not folded within 10 s');
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        redis.disconnect();
      }
    }
  }
});
afterAll(async () => {
  await open?.close();
  await secured?.close();
});

describe('the bad-input sweep', () => {
  it('should answer every malformed request with a 4xx error, stay up and leave the store unchanged', async () => {
    const cases = generateCases();
    expect(cases.length).toBeGreaterThanOrEqual(300);
    const stores = [
      { url: open.urls[0] as string, prefix: open.prefix },
      { url: open.urls[1] as string, prefix: open.prefix },
      { url: secured.urls[0] as string, prefix: secured.prefix },
      { url: secured.urls[1] as string, prefix: secured.prefix },
    ];
    const before = await Promise.all(stores.map((s) => snapshotPrefix(s.url, s.prefix)));
    expect(before[0]?.size).toBeGreaterThan(10);

    const ports = { open: (open.servers[0] as (typeof open.servers)[number]).port, auth: (secured.servers[0] as (typeof secured.servers)[number]).port };
    const failures: string[] = [];
    const BATCH = 16;
    for (let i = 0; i < cases.length; i += BATCH) {
      await Promise.all(
        cases.slice(i, i + BATCH).map(async (c) => {
          try {
            const problem = verdict(c, await rawRequest(ports[c.target ?? 'open'], c.bytes));
            if (problem) failures.push(`${c.name}: ${problem}`);
          } catch (error) {
            failures.push(`${c.name}: ${(error as Error).message}`);
          }
        }),
      );
    }
    expect(failures, `${failures.length} of ${cases.length} requests were not answered with a 4xx error`).toEqual([]);

    for (const nodes of [open, secured]) {
      const res = await fetch(`${(nodes.servers[0] as (typeof nodes.servers)[number]).url}/health`);
      expect(res.status).toBe(200);
    }
    const after = await Promise.all(stores.map((s) => snapshotPrefix(s.url, s.prefix)));
    for (const [i, snapshot] of after.entries()) expect(snapshot, `store ${i}`).toEqual(before[i]);

    // And the server still does its job.
    const url = (open.servers[0] as (typeof open.servers)[number]).url;
    const ok = await fetch(`${url}/keys/after-sweep`, { method: 'PUT', headers: JSON_TYPE, body: '{"value":"fine"}' });
    expect(ok.status).toBe(200);
    // The comparison above can fail: one accepted write shows in the snapshot.
    expect(await snapshotPrefix(stores[0]!.url, open.prefix)).not.toEqual(before[0]);
  }, 120_000);
});
