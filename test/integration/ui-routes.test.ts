/**
 * The cluster view's data over HTTP: the pushed stream, the state, the write form's
 * errors, and a shutdown that an open page does not hold up.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeServer } from '../../src/http/server.js';
import { expectError, startNodes, useTestRedis, type StartedNodes } from '../support/http-harness.js';
import { deleteKeysWithPrefix } from '../support/redis.js';

const redis = useTestRedis();

let nodes: StartedNodes;
beforeAll(async () => {
  nodes = await startNodes({ label: 'ui-routes', ids: ['A', 'B'], node: { replication: { delayMs: 10 } } });
});
afterAll(() => nodes?.close());

const url = () => (nodes.servers[0] as (typeof nodes.servers)[number]).url;
const json = { 'Content-Type': 'application/json' };

/** Reads the first `event: state` of `/ui/events`. */
async function firstEvent(target: string, controller: AbortController): Promise<Record<string, unknown>> {
  const res = await fetch(`${target}/ui/events`, { signal: controller.signal });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before an event: ${text}`);
    text += new TextDecoder().decode(value);
    const match = /event: state\ndata: (.*)\n\n/.exec(text);
    if (match) return JSON.parse(match[1] as string) as Record<string, unknown>;
  }
}

describe('the cluster view data', () => {
  it('should push the state at once, with every node and the recent writes', async () => {
    await request(url()).put('/keys/seen').set(json).send('{"value": 1}');
    const controller = new AbortController();
    const state = await firstEvent(url(), controller);
    controller.abort();
    expect(state).toMatchObject({ node: 'A', nodes: [{ id: 'A', self: true, health: 'ok' }, { id: 'B' }] });
    expect((state.rows as Array<{ key: string }>).map((r) => r.key)).toContain('seen');
  });

  it('should select keys by prefix', async () => {
    await request(url()).put('/keys/pre:1').set(json).send('{"value": 1}');
    const res = await request(url()).get('/ui/state?prefix=pre:');
    expect(res.status).toBe(200);
    expect(res.body.rows.map((r: { key: string }) => r.key)).toEqual(['pre:1']);
  });

  it('should refuse a bad write form with a 4xx and write nothing', async () => {
    expectError(await request(url()).post('/ui/write').set(json).send('{"node": "Z", "key": "k", "value": 1}'), 400, 'invalid_body');
    expectError(await request(url()).post('/ui/write').set(json).send('{"node": "A", "key": "", "value": 1}'), 400, 'invalid_key');
    expectError(await request(url()).post('/ui/write').set(json).send('{"node": "A", "key": "k"}'), 400, 'invalid_body');
    expectError(await request(url()).post('/ui/write').set('Content-Type', 'text/plain').send('x'), 415, 'unsupported_media_type');
    // B's URL was not given to this node (nodeUrls): it says so rather than guess.
    expectError(await request(url()).post('/ui/write').set(json).send('{"node": "B", "key": "k", "value": 1}'), 503, 'node_closed');
    expect((await request(url()).get('/keys/k')).status).toBe(404);
  });

  it('should not let an open event stream hold up a graceful shutdown', async () => {
    const r = await redis();
    const server = await startNodeServer({ node: { id: 'S', redis: r.url(5), peers: [], prefix: nodes.prefix }, port: 0, shutdownTimeoutMs: 120_000 });
    const controller = new AbortController();
    await firstEvent(server.url, controller);
    // Without the fix this waits for the shutdown timeout (120 s), past the test's timeout.
    await server.close();
    controller.abort();
    await deleteKeysWithPrefix(r.url(5), nodes.prefix);
  });
});
