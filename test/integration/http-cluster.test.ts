/**
 * Eventual consistency seen over HTTP, as a user of three nodes sees it: a stale read,
 * then convergence; then concurrent writes resolved by Last-Write-Wins, the same on every
 * node, and visible in /conflicts and /cluster.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, startNodes, useTestRedis, waitUntil, type StartedNodes } from '../support/http-harness.js';

const DELAY_MS = 400;
const JSON_TYPE = { 'Content-Type': 'application/json' };

useTestRedis();

let nodes: StartedNodes;
let urls: { A: string; B: string; C: string };

beforeAll(async () => {
  nodes = await startNodes({ label: 'cluster', ids: ['A', 'B', 'C'], node: { replication: { delayMs: DELAY_MS } } });
  const [A, B, C] = nodes.servers.map((s) => s.url) as [string, string, string];
  urls = { A, B, C };
});
afterAll(() => nodes?.close());

const put = (url: string, key: string, value: unknown) => request(url).put(`/keys/${encodeURIComponent(key)}`).set(JSON_TYPE).send(JSON.stringify({ value }));
const get = (url: string, key: string) => request(url).get(`/keys/${encodeURIComponent(key)}`);

/** Each node's answer for `key`: its hlc and value, or the status when it has none. */
async function readAll(key: string): Promise<Record<string, { status: number; hlc?: string; value?: unknown }>> {
  const out: Record<string, { status: number; hlc?: string; value?: unknown }> = {};
  for (const [id, url] of Object.entries(urls)) {
    const res = await get(url, key);
    out[id] = res.status === 200 ? { status: 200, hlc: res.body.hlc, value: res.body.value } : { status: res.status };
  }
  return out;
}

describe('a three-node cluster over HTTP', () => {
  it('should serve a stale read on the peers, then converge', async () => {
    // A: PUT user:123 {age 30} ──(delay 400 ms)──► B, C
    // B, C: GET right away → 404 (stale, by design) ... then {age 30}, same hlc as A
    const written = await put(urls.A, 'user:123', { name: 'Ada', age: 30 });
    expect(written.status).toBe(200);
    expectError(await get(urls.B, 'user:123'), 404, 'not_found');
    expectError(await get(urls.C, 'user:123'), 404, 'not_found');
    expect((await get(urls.A, 'user:123')).body.value).toEqual({ name: 'Ada', age: 30 });

    const converged = await waitUntil(
      () => readAll('user:123'),
      (all) => Object.values(all).every((r) => r.hlc === written.body.hlc),
      { message: `B and C to hold A's write ${written.body.hlc}`, timeoutMs: 10_000 },
    );
    for (const id of ['B', 'C']) expect(converged[id]?.value).toEqual({ name: 'Ada', age: 30 });
  });

  it('should show the replication backlog in /cluster while a write is in flight, and drain it', async () => {
    await put(urls.A, 'in-flight', 1);
    type Peer = { id: string; backlog: Record<string, number>; oldestPendingMs: number };
    const pending = (peer: Peer) => peer.backlog.delayed! + peer.backlog.waiting! + peer.backlog.active!;
    const during = await waitUntil(
      async () => (await request(urls.A).get('/cluster')).body as { outbox: number; peers: Peer[] },
      (s) => s.peers.length === 2 && s.peers.every((p) => pending(p) > 0),
      { message: 'a job for B and for C to show in the backlog', timeoutMs: DELAY_MS - 100, intervalMs: 5 },
    );
    expect(during.peers.map((p) => p.id).sort()).toEqual(['B', 'C']);
    expect(during.peers.every((p) => p.oldestPendingMs >= 0)).toBe(true);
    await waitUntil(
      async () => (await request(urls.A).get('/cluster')).body as { outbox: number; peers: Peer[] },
      (s) => s.outbox === 0 && s.peers.every((p) => pending(p) === 0 && p.oldestPendingMs === 0),
      { message: "A's backlog to drain", timeoutMs: 10_000 },
    );
  });

  it('should resolve concurrent writes the same way on every node and log the conflict', async () => {
    // A: PUT user:7 {age 31} ─┐   (neither has seen the other's write)
    // B: PUT user:7 {age 32} ─┤──► every node: the write with the larger hlc, and a conflict entry
    const [a, b] = await Promise.all([put(urls.A, 'user:7', { age: 31 }), put(urls.B, 'user:7', { age: 32 })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const winner = a.body.hlc > b.body.hlc ? a.body : b.body;
    const loser = winner === a.body ? b.body : a.body;

    const converged = await waitUntil(
      () => readAll('user:7'),
      (all) => Object.values(all).every((r) => r.hlc === winner.hlc),
      { message: `every node to hold the LWW winner ${winner.hlc}`, timeoutMs: 10_000 },
    );
    for (const id of ['A', 'B', 'C']) expect(converged[id]?.value, id).toEqual(winner.value);

    // The node whose write lost resolved the conflict when the winner arrived.
    const loserUrl = loser.origin === 'A' ? urls.A : urls.B;
    const conflicts = await waitUntil(
      async () => (await request(loserUrl).get('/conflicts?limit=10')).body as { node: string; items: Array<{ key: string; winner: { hlc: string }; loser: { hlc: string } }> },
      (c) => c.items.some((i) => i.key === 'user:7'),
      { message: `the conflict on user:7 in ${loser.origin}'s /conflicts`, timeoutMs: 5_000 },
    );
    expect(conflicts.node).toBe(loser.origin);
    expect(conflicts.items.find((i) => i.key === 'user:7')).toMatchObject({ winner: { hlc: winner.hlc }, loser: { hlc: loser.hlc } });
  });

  it('should replicate a delete as a tombstone that reads 404 everywhere', async () => {
    const written = await put(urls.C, 'doomed', 'x');
    await waitUntil(() => readAll('doomed'), (all) => Object.values(all).every((r) => r.hlc === written.body.hlc), {
      message: 'the write to reach every node',
    });
    const deleted = await request(urls.B).delete('/keys/doomed');
    expect(deleted.body).toMatchObject({ key: 'doomed', deleted: true, origin: 'B' });
    await waitUntil(() => readAll('doomed'), (all) => Object.values(all).every((r) => r.status === 404), {
      message: 'the tombstone to reach every node',
    });
  });
});
