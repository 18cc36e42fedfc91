/**
 * `startNodeServer`: start-up failures, graceful and idempotent close, and the API's
 * answers while the node's Redis is down (a private redis-server we can stop) or the
 * node is closed.
 */
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionsError, NodeClosedError, RedisUnavailableError } from '../../src/errors/index.js';
import { createApp } from '../../src/http/app.js';
import { ListenError, startNodeServer, type NodeServer } from '../../src/http/server.js';
import { LocalRedisServer, freePort } from '../../src/local-redis/local-redis.js';
import { ReplicaNode } from '../../src/node/replica-node.js';
import {
  deletePrefix,
  expectError,
  httpRequest,
  openConnection,
  uniquePrefix,
  useTestRedis,
  waitUntil,
  type RawResponse,
} from '../support/http-harness.js';

const JSON_TYPE = { 'Content-Type': 'application/json' };

/**
 * Transaction hooks that park every commit between WATCH and EXEC until `release()`;
 * `inCommit` resolves when the first commit arrives there.
 */
function holdCommits() {
  let entered!: () => void;
  const inCommit = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const transactionHooks = {
    beforeExec: async () => {
      entered();
      await released;
    },
  };
  return { inCommit, release, transactionHooks };
}
const testRedis = useTestRedis();
/** Node A's Redis: a database of this file's test Redis. */
let urlA: string;

beforeAll(async () => {
  urlA = (await testRedis()).url(0);
});

/** Connections a node opened, found by the connection name the engine gives them. */
async function connectionsOf(prefix: string): Promise<number> {
  const redis = new Redis(urlA);
  try {
    const list = (await redis.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes(`name=${prefix}:`)).length;
  } finally {
    redis.disconnect();
  }
}

/** Connections the HTTP server holds. */
function connectionCount(server: NodeServer): Promise<number> {
  return new Promise((resolve, reject) => server.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

describe('startNodeServer', () => {
  it('should start a node and serve it on a free loopback port', async () => {
    const prefix = uniquePrefix('server');
    const server = await startNodeServer({ node: { id: 'A', redis: urlA, peers: [], prefix }, port: 0 });
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      expect(server.node.id).toBe('A');
      expect((await request(server.url).get('/health')).body).toEqual({ status: 'ok', node: 'A' });
    } finally {
      await server.close();
      await deletePrefix([urlA], prefix);
    }
  });

  it('should reject an invalid port before starting anything', async () => {
    for (const port of [-1, 65_536, 1.5, Number.NaN]) {
      await expect(startNodeServer({ node: { id: 'A', redis: urlA, peers: [] }, port })).rejects.toBeInstanceOf(InvalidOptionsError);
    }
  });

  it('should fail with RedisUnavailableError when the node\'s Redis does not answer', async () => {
    const nobody = await freePort();
    await expect(
      startNodeServer({ node: { id: 'A', redis: `redis://127.0.0.1:${nobody}/0`, peers: [], connectTimeoutMs: 500 }, port: 0 }),
    ).rejects.toBeInstanceOf(RedisUnavailableError);
  });

  it('should fail with ListenError when the port is taken, and close the node it started', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const prefix = uniquePrefix('taken');
    try {
      const started = startNodeServer({ node: { id: 'A', redis: urlA, peers: [], prefix }, port });
      await expect(started).rejects.toBeInstanceOf(ListenError);
      await expect(started).rejects.toThrow(/EADDRINUSE/);
      await waitUntil(() => connectionsOf(prefix), (n) => n === 0, { message: 'the failed node to close its Redis connections', timeoutMs: 5_000 });
    } finally {
      blocker.close();
      await deletePrefix([urlA], prefix);
    }
  });

  describe('.close', () => {
    it('should be idempotent and leave nothing listening', async () => {
      const prefix = uniquePrefix('close');
      const server = await startNodeServer({ node: { id: 'A', redis: urlA, peers: [], prefix }, port: 0 });
      const first = server.close();
      expect(server.close()).toBe(first);
      await first;
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
      await expect(server.node.put('k', 1)).rejects.toBeInstanceOf(NodeClosedError);
      expect(await connectionsOf(prefix)).toBe(0);
      await deletePrefix([urlA], prefix);
    });

    it('should let an in-flight write finish and acknowledge it before closing the node', async () => {
      // client: PUT k ──► commit held at WATCH/EXEC ... close() ... release ──► 200, then the node closes
      const { inCommit, release, transactionHooks } = holdCommits();
      const prefix = uniquePrefix('graceful');
      const server = await startNodeServer({
        node: {
          id: 'A',
          redis: urlA,
          peers: [],
          prefix,
          transactionHooks,
        },
        port: 0,
      });
      try {
        const write = request(server.url).put('/keys/in-flight').set(JSON_TYPE).send('{"value":"kept"}').then((r) => r);
        await inCommit;
        let closed = false;
        const closing = server.close().then(() => (closed = true));
        // Not accepting connections any more, but still working on the write.
        await waitUntil(() => fetch(`${server.url}/health`).then(() => 'accepted', () => 'refused'), (s) => s === 'refused', {
          message: 'the server to stop accepting connections',
        });
        expect(closed).toBe(false);
        release();
        const res = await write;
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ key: 'in-flight', value: 'kept' });
        await closing;
        const redis = new Redis(urlA);
        try {
          expect(await redis.get(`${prefix}:A:rec:in-flight`)).toContain('"kept"');
        } finally {
          redis.disconnect();
        }
      } finally {
        release();
        await server.close();
        await deletePrefix([urlA], prefix);
      }
    });

    it('should answer every request that arrived before it, close every connection after its answer, and finish quickly', async () => {
      // When close() starts, HELD keep-alive PUTs are in the app waiting for a held commit;
      // SENT keep-alive connections, each used once, have just received a PUT not yet read;
      // IDLE connections never sent anything:
      //
      //   held0..4  ─► PUT, commit held ─────────────────── release ─► 200, Connection: close, closed
      //   sent0..14 ─► GET /health ◄─ 200 ... PUT (unread) ──────────► 2xx (or 503 node_closed), Connection: close, closed
      //   idle0..1  ─► (nothing) ────────────────────────────────────► closed
      //   close() ─────────────────────────────────────────────────────────────────────► resolves
      const HELD = 5;
      const SENT = 15;
      const IDLE = 2;
      // Waiting for a client's keep-alive timeout, or for the shutdown timeout to cut the
      // connections, would take ten times longer than close() is allowed here.
      const KEEP_ALIVE_MS = 50_000;
      const CLOSE_BOUND_MS = KEEP_ALIVE_MS / 10;
      const { inCommit, release, transactionHooks } = holdCommits();
      const prefix = uniquePrefix('drain');
      const server = await startNodeServer({
        node: {
          id: 'A',
          redis: urlA,
          peers: [],
          prefix,
          transactionHooks,
        },
        port: 0,
        shutdownTimeoutMs: KEEP_ALIVE_MS,
      });
      server.server.keepAliveTimeout = KEEP_ALIVE_MS;
      let requests = 0;
      server.server.on('request', () => requests++);
      const keepAlive = { Connection: 'keep-alive' };
      const keys = [...Array.from({ length: HELD }, (_, i) => `held${i}`), ...Array.from({ length: SENT }, (_, i) => `sent${i}`)];
      const putRequest = (key: string) => httpRequest('PUT', `/keys/${key}`, { body: JSON.stringify({ value: key }), headers: { ...JSON_TYPE, ...keepAlive } });
      const connections = await Promise.all(Array.from({ length: HELD + SENT + IDLE }, () => openConnection(server.port)));
      try {
        const held = connections.slice(0, HELD).map((c, i) => c.request(putRequest(keys[i] as string), CLOSE_BOUND_MS));
        await inCommit;
        for (const c of connections.slice(HELD, HELD + SENT)) {
          const res = await c.request(httpRequest('GET', '/health', { headers: keepAlive }));
          expect([res.status, res.headers.connection]).toEqual([200, 'keep-alive']);
        }
        await waitUntil(async () => requests, (n) => n === HELD + SENT, { message: 'the held PUTs to reach the app' });
        await waitUntil(() => connectionCount(server), (n) => n === HELD + SENT + IDLE, { message: 'the server to accept every connection' });

        const sent = connections.slice(HELD, HELD + SENT).map((c, i) => c.request(putRequest(keys[HELD + i] as string), CLOSE_BOUND_MS));
        const closing = server.close();
        release();
        let bound: NodeJS.Timeout | undefined;
        const late = new Promise<false>((resolve) => (bound = setTimeout(() => resolve(false), CLOSE_BOUND_MS)));
        const [outcomes, allClosed, closedInTime] = await Promise.all([
          Promise.allSettled([...held, ...sent]),
          Promise.race([Promise.all(connections.map((c) => c.closed)).then(() => true), late]),
          Promise.race([closing.then(() => true), late]),
        ]);
        clearTimeout(bound);

        const failures = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`${keys[i]}: ${String(o.reason)}`] : []));
        expect(failures, 'every request that arrived before close() must get a response').toEqual([]);
        const responses = outcomes.map((o) => (o as PromiseFulfilledResult<RawResponse>).value);
        const redis = new Redis(urlA);
        try {
          for (const [i, res] of responses.entries()) {
            const key = keys[i] as string;
            expect(res.headers.connection, key).toBe('close');
            if (res.status === 200) {
              expect(JSON.parse(res.body), key).toMatchObject({ key, value: key });
              expect(await redis.get(`${prefix}:A:rec:${key}`), key).toContain(`"${key}"`);
            } else {
              expectError({ ...res, body: JSON.parse(res.body) }, 503, 'node_closed');
            }
          }
        } finally {
          redis.disconnect();
        }
        // Those in the app when close() began were acknowledged before the node closed.
        expect(responses.slice(0, HELD).map((r) => r.status)).toEqual(Array(HELD).fill(200));
        expect(allClosed, `the server must close every connection within ${CLOSE_BOUND_MS} ms`).toBe(true);
        expect(closedInTime, `close() must finish within ${CLOSE_BOUND_MS} ms`).toBe(true);
      } finally {
        release();
        for (const c of connections) c.destroy();
        await server.close();
        await deletePrefix([urlA], prefix);
      }
    });
  });
});

describe('when the node is closed', () => {
  it('should answer 503 node_closed with Retry-After, and /health 503 closing', async () => {
    const prefix = uniquePrefix('closed');
    const node = await ReplicaNode.start({ id: 'A', redis: urlA, peers: [], prefix });
    const app = createApp(node);
    await node.close();
    try {
      const res = await request(app).put('/keys/k').set(JSON_TYPE).send('{"value":1}');
      expectError(res, 503, 'node_closed');
      expect(res.headers['retry-after']).toBe('1');
      expectError(await request(app).get('/keys/k'), 503, 'node_closed');
      expectError(await request(app).get('/keys'), 503, 'node_closed');
      expectError(await request(app).get('/cluster'), 503, 'node_closed');
      const health = await request(app).get('/health');
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ status: 'closing', node: 'A', error: { code: 'node_closed', message: expect.any(String) } });
    } finally {
      await deletePrefix([urlA], prefix);
    }
  });

  it('should answer /health 503 closing as soon as close() began, while Redis still answers', async () => {
    // PUT k ──► commit held ... node.close() (waits for the PUT) ... GET /health → 503 closing ... release
    const { inCommit, release, transactionHooks } = holdCommits();
    const prefix = uniquePrefix('closing');
    const node = await ReplicaNode.start({
      id: 'A',
      redis: urlA,
      peers: [],
      prefix,
      transactionHooks,
    });
    const app = createApp(node);
    try {
      expect((await request(app).get('/health')).status).toBe(200);
      const write = node.put('k', 1);
      await inCommit;
      const closing = node.close();
      const health = await request(app).get('/health');
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ status: 'closing', node: 'A', error: { code: 'node_closed', message: expect.any(String) } });
      expect(await node.ping()).toBe(true);
      release();
      await write;
      await closing;
    } finally {
      release();
      await node.close();
      await deletePrefix([urlA], prefix);
    }
  });
});

describe('when the node\'s Redis is down', () => {
  let redis: LocalRedisServer;
  let server: NodeServer;

  beforeAll(async () => {
    redis = await LocalRedisServer.start();
    server = await startNodeServer({ node: { id: 'A', redis: redis.url(1), peers: [{ id: 'B', redis: redis.url(2) }], prefix: 'down' }, port: 0 });
    expect((await request(server.url).put('/keys/before').set(JSON_TYPE).send('{"value":1}')).status).toBe(200);
    await redis.stop();
  });
  afterAll(async () => {
    await server?.close();
    await redis?.destroy();
  });

  it('should answer 503 redis_unavailable and say the write did not happen', async () => {
    for (const send of [
      () => request(server.url).put('/keys/k').set(JSON_TYPE).send('{"value":1}'),
      () => request(server.url).delete('/keys/k'),
      () => request(server.url).get('/keys/before'),
    ]) {
      const res = await send();
      expectError(res, 503, 'redis_unavailable');
      expect(res.body.error.message).toMatch(/did not happen/);
      expect(res.headers['retry-after']).toBe('1');
      // The Redis URL describes the deployment; it stays in the log.
      expect(res.body.error.message).not.toContain(String(redis.port));
    }
  }, 60_000);

  it('should answer /health with 503 at once and keep serving /metrics', async () => {
    const started = Date.now();
    const health = await request(server.url).get('/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unavailable', node: 'A', error: { code: 'redis_unavailable', message: expect.any(String) } });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await request(server.url).get('/metrics')).status).toBe(200);
  }, 30_000);

  it('should recover by itself once Redis is back', async () => {
    await redis.resume();
    await waitUntil(() => request(server.url).get('/health'), (r) => r.status === 200, { message: '/health to turn 200 again', timeoutMs: 15_000 });
    const res = await request(server.url).put('/keys/after').set(JSON_TYPE).send('{"value":2}');
    expect(res.status).toBe(200);
  }, 30_000);
});
