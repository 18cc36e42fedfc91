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
import { deletePrefix, expectError, redisUrl, uniquePrefix, waitUntil } from '../support/http-harness.js';

const JSON_TYPE = { 'Content-Type': 'application/json' };
const URL_A = redisUrl(11);

/** Connections a node opened, found by the connection name the engine gives them. */
async function connectionsOf(prefix: string): Promise<number> {
  const redis = new Redis(URL_A);
  try {
    const list = (await redis.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes(`name=${prefix}:`)).length;
  } finally {
    redis.disconnect();
  }
}

describe('startNodeServer', () => {
  it('should start a node and serve it on a free loopback port', async () => {
    const prefix = uniquePrefix('server');
    const server = await startNodeServer({ node: { id: 'A', redis: URL_A, peers: [], prefix }, port: 0 });
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      expect(server.node.id).toBe('A');
      expect((await request(server.url).get('/health')).body).toEqual({ status: 'ok', node: 'A' });
    } finally {
      await server.close();
      await deletePrefix([URL_A], prefix);
    }
  });

  it('should reject an invalid port before starting anything', async () => {
    for (const port of [-1, 65_536, 1.5, Number.NaN]) {
      await expect(startNodeServer({ node: { id: 'A', redis: URL_A, peers: [] }, port })).rejects.toBeInstanceOf(InvalidOptionsError);
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
      const started = startNodeServer({ node: { id: 'A', redis: URL_A, peers: [], prefix }, port });
      await expect(started).rejects.toBeInstanceOf(ListenError);
      await expect(started).rejects.toThrow(/EADDRINUSE/);
      await waitUntil(() => connectionsOf(prefix), (n) => n === 0, { message: 'the failed node to close its Redis connections', timeoutMs: 5_000 });
    } finally {
      blocker.close();
      await deletePrefix([URL_A], prefix);
    }
  });

  describe('.close', () => {
    it('should be idempotent and leave nothing listening', async () => {
      const prefix = uniquePrefix('close');
      const server = await startNodeServer({ node: { id: 'A', redis: URL_A, peers: [], prefix }, port: 0 });
      const first = server.close();
      expect(server.close()).toBe(first);
      await first;
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
      await expect(server.node.put('k', 1)).rejects.toBeInstanceOf(NodeClosedError);
      expect(await connectionsOf(prefix)).toBe(0);
      await deletePrefix([URL_A], prefix);
    });

    it('should let an in-flight write finish and acknowledge it before closing the node', async () => {
      // client: PUT k ──► commit held at WATCH/EXEC ... close() ... release ──► 200, then the node closes
      let entered!: () => void;
      const inCommit = new Promise<void>((resolve) => (entered = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const prefix = uniquePrefix('graceful');
      const server = await startNodeServer({
        node: {
          id: 'A',
          redis: URL_A,
          peers: [],
          prefix,
          transactionHooks: {
            beforeExec: async () => {
              entered();
              await released;
            },
          },
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
        const redis = new Redis(URL_A);
        try {
          expect(await redis.get(`${prefix}:A:rec:in-flight`)).toContain('"kept"');
        } finally {
          redis.disconnect();
        }
      } finally {
        release();
        await server.close();
        await deletePrefix([URL_A], prefix);
      }
    });
  });
});

describe('when the node is closed', () => {
  it('should answer 503 node_closed with Retry-After, and /health 503', async () => {
    const prefix = uniquePrefix('closed');
    const node = await ReplicaNode.start({ id: 'A', redis: URL_A, peers: [], prefix });
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
      expect(health.body).toMatchObject({ status: 'unavailable', node: 'A', error: { code: 'redis_unavailable' } });
    } finally {
      await deletePrefix([URL_A], prefix);
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
