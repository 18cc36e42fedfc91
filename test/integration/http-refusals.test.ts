/**
 * Early refusals reach the client, and the Host check of a node without a token.
 *
 * A client that writes its whole body before it reads (Python's http.client, curl with a
 * file, a raw socket) used to get EPIPE/ECONNRESET instead of the 413: the server answered
 * and closed with the body unread. Now the rest is read and discarded (bounded) first.
 *
 *   client: head ─ body (4 MiB) ──────────────► then read
 *   server:       413 ─► discard … discard ─► client closes ─► close
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeServer } from '../../src/http/server.js';
import { rawRequest, snapshotPrefix, startNodes, uniquePrefix, useTestRedis, type StartedNodes } from '../support/http-harness.js';

const TOKEN = 'refusal-token-0123456789';
const BODY_BYTES = 4 * 1024 * 1024;
const TRIES = 50;
const testRedis = useTestRedis();

let open: StartedNodes;
let secured: StartedNodes;
beforeAll(async () => {
  const http = { maxBodyBytes: 64 * 1024 };
  open = await startNodes({ label: 'refuse', http });
  secured = await startNodes({ label: 'refuse-auth', http: { ...http, authToken: TOKEN } });
});
afterAll(async () => {
  await open?.close();
  await secured?.close();
});

const portOf = (nodes: StartedNodes) => (nodes.servers[0] as (typeof nodes.servers)[number]).port;
const urlOf = (nodes: StartedNodes) => (nodes.servers[0] as (typeof nodes.servers)[number]).url;

/**
 * Writes `head` and then the whole body before reading anything, then reads one complete
 * response (by its Content-Length). Resolves with the status, or the socket error's code.
 */
function writeAllThenRead(port: number, head: string, bodyBytes: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let written = false;
    let settled = false;
    const settle = (result: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    const complete = () => {
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0 || !written) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (received.length >= end + 4 + length) settle(text.slice(9, 12));
    };
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      complete();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
    socket.on('close', () => settle(`closed before a complete response (${received.length} bytes)`));
    socket.setTimeout(15_000, () => settle('timeout'));
    socket.write(head);
    socket.write(Buffer.alloc(bodyBytes, 0x61), () => {
      written = true;
      complete();
    });
  });
}

function tally(results: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

const put = (path: string, headers: string) => `PUT ${path} HTTP/1.1\r\nHost: localhost\r\n${headers}Content-Length: ${BODY_BYTES}\r\n\r\n`;
const REFUSALS: Array<{ name: string; status: string; head: string; secured?: boolean }> = [
  { name: '413 (announced length over maxBodyBytes)', status: '413', head: put('/keys/a', 'Content-Type: application/json\r\n') },
  { name: '414 (key too long)', status: '414', head: put(`/keys/${'k'.repeat(2000)}`, 'Content-Type: application/json\r\n') },
  { name: '415 (not JSON)', status: '415', head: put('/keys/a', 'Content-Type: text/plain\r\n') },
  { name: '431 (headers over 16 KiB)', status: '431', head: put('/keys/a', `Content-Type: application/json\r\nX-Big: ${'x'.repeat(20_000)}\r\n`) },
  { name: '401 before the body', status: '401', head: put('/keys/a', 'Content-Type: application/json\r\n'), secured: true },
  { name: '421 (Host not allowed)', status: '421', head: put('/keys/a', 'Content-Type: application/json\r\n').replace('Host: localhost', 'Host: evil.example') },
];

describe('early refusals', () => {
  for (const refusal of REFUSALS) {
    it(`should deliver ${refusal.name} to a raw client that writes its whole ${BODY_BYTES >> 20} MiB body first, ${TRIES} times out of ${TRIES}`, async () => {
      const port = portOf(refusal.secured ? secured : open);
      const results: string[] = [];
      for (let i = 0; i < TRIES; i++) results.push(await writeAllThenRead(port, refusal.head, BODY_BYTES));
      expect(tally(results)).toEqual({ [refusal.status]: TRIES });
    }, 120_000);
  }

  const FETCHES: Array<{ name: string; status: number; path: string; headers: Record<string, string>; secured?: boolean }> = [
    { name: '413', status: 413, path: '/keys/a', headers: { 'Content-Type': 'application/json' } },
    { name: '414', status: 414, path: `/keys/${'k'.repeat(2000)}`, headers: { 'Content-Type': 'application/json' } },
    { name: '415', status: 415, path: '/keys/a', headers: { 'Content-Type': 'text/plain' } },
    { name: '431', status: 431, path: '/keys/a', headers: { 'Content-Type': 'application/json', 'X-Big': 'x'.repeat(20_000) } },
    { name: '401', status: 401, path: '/keys/a', headers: { 'Content-Type': 'application/json' }, secured: true },
  ];
  for (const f of FETCHES) {
    it(`should deliver ${f.name} to fetch with a ${BODY_BYTES >> 20} MiB body, ${TRIES} times out of ${TRIES}`, async () => {
      const url = urlOf(f.secured ? secured : open);
      const body = Buffer.alloc(BODY_BYTES, 0x61);
      const results: string[] = [];
      for (let i = 0; i < TRIES; i++) {
        try {
          const res = await fetch(`${url}${f.path}`, { method: 'PUT', headers: f.headers, body });
          const json = (await res.json()) as { error?: { code?: string } };
          results.push(`${res.status}${typeof json.error?.code === 'string' ? '' : ' (not the error shape)'}`);
        } catch (error) {
          const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
          results.push(cause?.code ?? (error as Error).message);
        }
      }
      expect(tally(results)).toEqual({ [String(f.status)]: TRIES });
    }, 120_000);
  }

  it('should leave the store unchanged by every refused request', async () => {
    const before = await snapshotPrefix(open.urls[0] as string, open.prefix);
    for (const refusal of REFUSALS.filter((r) => !r.secured)) {
      expect(await writeAllThenRead(portOf(open), refusal.head, BODY_BYTES)).toBe(refusal.status);
    }
    expect(await snapshotPrefix(open.urls[0] as string, open.prefix)).toEqual(before);
  });
});

describe('the Host check (no authToken)', () => {
  const get = (port: number, host: string) => rawRequest(port, `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  it('should refuse a rebinding page: a loopback connection with Host: evil.example', async () => {
    const res = await get(portOf(open), 'evil.example');
    expect(res.status).toBe(421);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'host_not_allowed' } });
    const write = await rawRequest(
      portOf(open),
      'PUT /keys/rebound HTTP/1.1\r\nHost: evil.example:3001\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"value":1}',
    );
    expect(write.status).toBe(421);
    expect(await open.servers[0]?.node.get('rebound')).toBeUndefined();
  });

  it('should accept loopback names, with or without a port', async () => {
    const port = portOf(open);
    for (const host of ['localhost', `localhost:${port}`, '127.0.0.1', `127.0.0.1:${port}`, '127.1.2.3', '[::1]', `[::1]:${port}`, 'LOCALHOST', 'app.localhost']) {
      expect((await get(port, host)).status, host).toBe(200);
    }
  });

  it('should accept the names in allowedHosts and nothing else', async () => {
    const redis = await testRedis();
    const prefix = uniquePrefix('hosts');
    const server = await startNodeServer({ node: { id: 'A', redis: redis.url(3), peers: [], prefix }, port: 0, http: { allowedHosts: ['Cache.Internal'] } });
    try {
      expect((await get(server.port, 'cache.internal:8080')).status).toBe(200);
      expect((await get(server.port, 'other.internal')).status).toBe(421);
    } finally {
      await server.close();
    }
  });

  it('should not check Host when a token is set (the token is the protection)', async () => {
    const res = await rawRequest(portOf(secured), `GET /cluster HTTP/1.1\r\nHost: cache.example\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(200);
  });

  it('should warn loudly when listening on a non-loopback address without a token', async () => {
    const redis = await testRedis();
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const server = await startNodeServer({ node: { id: 'A', redis: redis.url(4), peers: [], prefix: uniquePrefix('warn') }, port: 0, host: '0.0.0.0', http: { logger } });
    await server.close();
    expect(lines.join('')).toMatch(/SECURITY WARNING: listening on 0\.0\.0\.0 without an authToken/);
    lines.length = 0;
    const quiet = await startNodeServer({ node: { id: 'A', redis: redis.url(4), peers: [], prefix: uniquePrefix('warn') }, port: 0, http: { logger } });
    await quiet.close();
    expect(lines.join('')).not.toMatch(/SECURITY WARNING/);
  });
});
