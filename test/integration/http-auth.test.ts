/**
 * The optional bearer token: everything but /health and /metrics is behind it, the
 * dashboard lets a browser in with basic auth (token as password), and the token never
 * reaches the log.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, startNodes, useTestRedis, type StartedNodes } from '../support/http-harness.js';

const TOKEN = 's3cr3t-T0ken_for.tests~';
const BEARER = { Authorization: `Bearer ${TOKEN}` };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const logLines: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    logLines.push(chunk.toString());
    done();
  },
});

useTestRedis();

let nodes: StartedNodes;
let url: string;

beforeAll(async () => {
  nodes = await startNodes({
    label: 'auth',
    ids: ['A', 'B'],
    http: { authToken: TOKEN, logger: pino({ level: 'debug' }, logSink) },
  });
  url = (nodes.servers[0] as (typeof nodes.servers)[number]).url;
});
afterAll(() => nodes?.close());

const api = () => request(url);

describe('when an authToken is set', () => {
  const protectedRequests: Array<[string, (r: ReturnType<typeof api>) => request.Test]> = [
    ['PUT /keys/k', (r) => r.put('/keys/k').set('Content-Type', 'application/json').send('{"value":1}')],
    ['GET /keys/k', (r) => r.get('/keys/k')],
    ['DELETE /keys/k', (r) => r.delete('/keys/k')],
    ['GET /keys', (r) => r.get('/keys')],
    ['GET /cluster', (r) => r.get('/cluster')],
    ['GET /conflicts', (r) => r.get('/conflicts')],
    ['GET /no-such-endpoint', (r) => r.get('/no-such-endpoint')],
  ];

  it('should answer 401 unauthorized with a Bearer challenge without a token', async () => {
    for (const [name, send] of protectedRequests) {
      const res = await send(api());
      expectError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate'], name).toBe('Bearer realm="eventual-cache"');
    }
  });

  it('should answer 401 for a wrong, partial, extended or differently-cased token', async () => {
    const wrong = ['nope', TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase(), `${TOKEN} ${TOKEN}`, '', 'a'.repeat(4096)];
    for (const token of wrong) {
      for (const [name, send] of protectedRequests) {
        const res = await send(api()).set('Authorization', `Bearer ${token}`);
        expect(res.status, `${name} with ${JSON.stringify(token.slice(0, 40))}`).toBe(401);
      }
    }
  });

  it('should not accept the token in other schemes or headers on the API', async () => {
    for (const auth of [basic('user', TOKEN), TOKEN, `Token ${TOKEN}`, `Bearer${TOKEN}`]) {
      expectError(await api().get('/keys').set('Authorization', auth), 401, 'unauthorized');
    }
    expectError(await api().get('/keys').set('X-Api-Key', TOKEN), 401, 'unauthorized');
    expectError(await api().get(`/keys?token=${TOKEN}`), 401, 'unauthorized');
  });

  it('should let a request with the token through to every endpoint', async () => {
    const written = await api().put('/keys/k').set(BEARER).set('Content-Type', 'application/json').send('{"value":"secret value"}');
    expect(written.status).toBe(200);
    expect((await api().get('/keys/k').set(BEARER)).body.value).toBe('secret value');
    expect((await api().get('/keys').set(BEARER)).status).toBe(200);
    expect((await api().get('/cluster').set(BEARER)).status).toBe(200);
    expect((await api().get('/conflicts').set(BEARER)).status).toBe(200);
    expect((await api().delete('/keys/k').set(BEARER)).status).toBe(200);
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    expect((await api().get('/keys').set('Authorization', `bearer ${TOKEN}`)).status).toBe(200);
    // Only after authentication does an unknown path say 404.
    expectError(await api().get('/no-such-endpoint').set(BEARER), 404, 'not_found');
  });

  it('should leave /health and /metrics open', async () => {
    expect((await api().get('/health')).body).toEqual({ status: 'ok', node: 'A' });
    const metrics = await api().get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('eventual_cache_writes_total{node="A"}');
  });

  describe('the dashboard', () => {
    it('should challenge a browser with Basic when there are no credentials', async () => {
      for (const path of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/favicon-32x32.png']) {
        const res = await api().get(path);
        expectError(res, 401, 'unauthorized');
        expect(res.headers['www-authenticate'], path).toBe('Basic realm="eventual-cache dashboard", charset="UTF-8"');
      }
    });

    it('should let a browser in with basic auth: any user name, the token as password', async () => {
      for (const user of ['admin', '', 'someone else']) {
        const res = await api().get('/admin/queues').set('Authorization', basic(user, TOKEN));
        expect(res.status, `user ${JSON.stringify(user)}`).toBe(200);
        expect(res.text).toContain('<title>eventual-cache A</title>');
      }
      expect((await api().get('/admin/queues/api/queues').set(BEARER)).body.queues.map((q: { name: string }) => q.name)).toEqual(['to-B']);
    });

    it('should refuse a wrong password or malformed basic credentials', async () => {
      for (const auth of [basic('admin', 'wrong'), basic(TOKEN, ''), `Basic ${Buffer.from(TOKEN).toString('base64')}`, 'Basic !!!', 'Basic']) {
        expectError(await api().get('/admin/queues').set('Authorization', auth), 401, 'unauthorized');
      }
    });

    it('should let an authenticated user act on the queues', async () => {
      const auth = basic('admin', TOKEN);
      const queue = nodes.servers[0]?.node.queues[0];
      expect((await api().put('/admin/queues/api/queues/to-B/pause').set('Authorization', auth)).status).toBe(200);
      expect(await queue?.isPaused()).toBe(true);
      expect((await api().put('/admin/queues/api/queues/to-B/resume').set('Authorization', auth)).status).toBe(200);
      expect(await queue?.isPaused()).toBe(false);
    });
  });

  it('should never write the token or the Authorization header to the log', async () => {
    await api().get('/keys').set(BEARER);
    await api().get('/keys').set('Authorization', `Bearer wrong-${TOKEN}`);
    await api().get('/admin/queues').set('Authorization', basic('admin', TOKEN));
    const log = logLines.join('');
    expect(log).toContain('"path":"/keys"');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain(Buffer.from(`admin:${TOKEN}`).toString('base64'));
    expect(log.toLowerCase()).not.toContain('authorization');
  });
});
