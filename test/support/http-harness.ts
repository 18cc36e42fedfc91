/**
 * Helpers of the HTTP tests: nodes on this file's test Redis under a unique prefix, raw
 * HTTP over a socket (no client "fixes" the request first), store snapshots, and waiting
 * with a deadline.
 *
 * The Redis is the one `resolveTestRedis()` picks for every integration test: `REDIS_URL`
 * when set, else a container, else a private redis-server started for this file. It may be
 * shared: tests only touch keys under their own prefix and delete exactly those afterwards
 * (never FLUSHDB).
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, expect } from 'vitest';
import type { ReplicaNodeOptions } from '../../src/node/options.js';
import { startNodeServer, type NodeServer, type NodeServerOptions } from '../../src/http/server.js';
import { deleteKeysWithPrefix, resolveTestRedis, type TestRedis } from './redis.js';

let registered = false;
let resolved: Promise<TestRedis> | undefined;

/**
 * Registers, in the calling test file, the stop of its test Redis (a container or private
 * redis-server; a `REDIS_URL` server is left alone) after the file's last test, and
 * returns how to get that Redis (resolved once per file, on first use).
 *
 * Call it at the top of the file, before the file's own hooks: vitest runs `afterAll`
 * hooks in reverse order, so the Redis then outlives the file's own cleanup (closing its
 * nodes, deleting its keys).
 */
export function useTestRedis(): () => Promise<TestRedis> {
  registered = true;
  afterAll(async () => {
    // A Redis that failed to resolve already failed the tests that needed it.
    const redis = await resolved?.catch(() => undefined);
    await redis?.close();
  });
  return testRedis;
}

/** This file's test Redis; refused unless the file called {@link useTestRedis}, which stops it. */
async function testRedis(): Promise<TestRedis> {
  if (!registered) throw new Error('call useTestRedis() at the top of the test file, so that its Redis is stopped after the file');
  resolved ??= resolveTestRedis();
  return resolved;
}

/** A key prefix no other test uses (the engine allows `[A-Za-z0-9_.-]{1,64}`). */
export function uniquePrefix(label: string): string {
  return `http-${label}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under `prefix` in each of `urls` (SCAN + UNLINK, never FLUSHDB). */
export async function deletePrefix(urls: readonly string[], prefix: string): Promise<void> {
  for (const url of new Set(urls)) await deleteKeysWithPrefix(url, prefix);
}

async function scanAll(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/**
 * Every Redis key under `prefix` with its serialized value (DUMP, hex): equal snapshots
 * mean nothing under the prefix was added, removed or changed, records or bookkeeping.
 * The one key left out is each node's `vitals` (the cluster view's heartbeat): it is
 * rewritten every second whatever the requests do.
 */
export async function snapshotPrefix(url: string, prefix: string): Promise<Map<string, string>> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const out = new Map<string, string>();
    for (const key of await scanAll(redis, prefix)) {
      if (key.startsWith(`${prefix}:`) && /^[^:]+:vitals$/.test(key.slice(prefix.length + 1))) continue;
      const dump = await redis.dumpBuffer(key);
      if (dump) out.set(key, dump.toString('hex'));
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

export interface StartedNodes {
  readonly servers: NodeServer[];
  /** `urls[i]` is the Redis URL of `servers[i]`'s node (its own database on a Redis the tests own). */
  readonly urls: string[];
  readonly prefix: string;
  /** Closes every server (and node), then deletes the prefix's keys. */
  close(): Promise<void>;
}

export interface StartNodesOptions {
  label: string;
  /** Node ids; node `i` gets the test Redis' slot `i` (see `TestRedis.url`). @defaultValue ["A"] */
  ids?: string[];
  /** Applied to every node. */
  node?: Partial<Omit<ReplicaNodeOptions, 'id' | 'redis' | 'peers' | 'prefix'>>;
  http?: NodeServerOptions['http'];
}

/** Starts `ids` as a cluster of HTTP nodes on free ports, all under one fresh prefix. */
export async function startNodes(options: StartNodesOptions): Promise<StartedNodes> {
  const ids = options.ids ?? ['A'];
  const prefix = uniquePrefix(options.label);
  const redis = await testRedis();
  const urls = ids.map((_, i) => redis.url(i));
  const servers: NodeServer[] = [];
  const stopAll = async () => {
    await Promise.allSettled(servers.map((s) => s.close()));
    await deletePrefix(urls, prefix);
  };
  try {
    for (const [i, id] of ids.entries()) {
      servers.push(
        await startNodeServer({
          node: {
            ...options.node,
            id,
            redis: redis.url(i),
            prefix,
            peers: ids.flatMap((peer, j) => (j === i ? [] : [{ id: peer, redis: redis.url(j) }])),
          },
          port: 0,
          ...(options.http ? { http: options.http } : {}),
        }),
      );
    }
    // A node on a fresh database pulls what its peers hold in the background; a test that
    // counts on a stale read must not race that start-up resync.
    await Promise.all(servers.map((s) => s.node.resynced()));
  } catch (error) {
    await stopAll();
    throw error;
  }
  return { servers, urls, prefix, close: stopAll };
}

/** A response read off the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `request` bytes as they are on a fresh connection and reads the response until the
 * server closes it (send `Connection: close`). Nothing normalizes the path or headers.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${timeoutMs} ms to ${JSON.stringify(String(request).slice(0, 120))}`));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (error) {
        reject(error);
      }
    });
    // Not end(): a client that half-closes first may get no response at all. The request
    // says `Connection: close`, so the server closes once it answered.
    socket.write(request);
  });
}

/**
 * A connection driven by hand, like a keep-alive client's: requests one at a time, each
 * response complete once its `Content-Length` bytes arrived (every answer of the API has
 * one), the connection left open unless the server closes it.
 */
export interface RawConnection {
  /** Sends `request` and resolves with its response; rejects if the connection closes first. */
  request(request: string | Buffer, timeoutMs?: number): Promise<RawResponse>;
  /** Settles once the connection is closed, by the server or by {@link destroy}. */
  readonly closed: Promise<void>;
  destroy(): void;
}

/** Opens a {@link RawConnection}; resolves once the connection is established. */
export function openConnection(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<void>((onClose) => socket.once('close', () => onClose()));
    let received = Buffer.alloc(0);
    let pending: { what: string; done: (res: RawResponse) => void; fail: (error: Error) => void } | undefined;

    const settle = () => {
      if (!pending) return;
      const split = received.indexOf('\r\n\r\n');
      if (split < 0) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(received.subarray(0, split).toString('latin1'))?.[1];
      if (length === undefined) {
        pending.fail(new Error(`the response to ${pending.what} has no Content-Length`));
        return;
      }
      const end = split + 4 + Number(length);
      if (received.length < end) return;
      const res = parseResponse(received.subarray(0, end));
      received = received.subarray(end);
      pending.done(res);
    };
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      settle();
    });
    socket.on('close', () => pending?.fail(new Error(`the connection closed before a complete response to ${pending.what} (${received.length} bytes arrived)`)));
    socket.on('error', () => undefined);
    socket.once('error', reject);

    const request = (bytes: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> =>
      new Promise((done, fail) => {
        const what = JSON.stringify(String(bytes).slice(0, 120));
        if (pending) throw new Error(`${what} sent while another request waits for its response`);
        if (socket.destroyed) throw new Error(`the connection was closed before ${what} was sent`);
        const timer = setTimeout(() => pending?.fail(new Error(`no complete response within ${timeoutMs} ms to ${what}`)), timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          pending = undefined;
        };
        pending = {
          what,
          done: (res) => {
            finish();
            done(res);
          },
          fail: (error) => {
            finish();
            fail(error);
          },
        };
        socket.write(bytes);
      });

    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({ request, closed, destroy: () => socket.destroy() });
    });
  });
}

function parseResponse(raw: Buffer): RawResponse {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = text.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status, headers, body };
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/** Builds an HTTP/1.1 request with `Connection: close` and, when there is a body, its length. */
export function httpRequest(method: string, target: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}): Buffer {
  const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, 'utf8');
  const headers: Record<string, string> = { Host: 'localhost', Connection: 'close', ...options.headers };
  if (body !== undefined && !Object.keys(headers).some((h) => /^(content-length|transfer-encoding)$/i.test(h))) headers['Content-Length'] = String(body.length);
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body ?? Buffer.alloc(0)]);
}

/** Asserts the API's error shape, `{"error": {"code", "message"}}`, with a given status and code. */
export function expectError(res: { status: number; body: unknown; headers: Record<string, string | string[] | undefined> }, status: number, code: string): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { error: { code, message: expect.any(String) } } });
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
}

/** Polls `check` until it returns true; fails with `message` and the last observation at the deadline. */
export async function waitUntil<T>(
  observe: () => Promise<T>,
  done: (observed: T) => boolean,
  options: { message: string; timeoutMs?: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await observe();
      if (done(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${options.message}; last observed: ${JSON.stringify(last)}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
  }
}
