/**
 * Peer lists that disagree are named in the log ('error' event), /cluster and /metrics;
 * so is a peer URL that is this node's own Redis.
 *
 *   A: peers [B]      B: peers [C]   ─►  A: "B does not list A as a peer"
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeServer, type NodeServer } from '../../src/http/server.js';
import { PeerConfigError } from '../../src/node/peer-check.js';
import { ReplicaNode } from '../../src/node/replica-node.js';
import { deleteKeysWithPrefix, resolveTestRedis, uniquePrefix, type TestRedis } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

let redis: TestRedis;
const prefixes: string[] = [];
beforeAll(async () => {
  redis = await resolveTestRedis();
});
afterAll(async () => {
  for (const prefix of prefixes) for (const url of redis.urls(3)) await deleteKeysWithPrefix(url, prefix);
  await redis.close();
});

describe('the peer-list check', () => {
  it('should report "B does not list A as a peer" in events, /cluster and /metrics', async () => {
    const prefix = uniquePrefix('peers');
    prefixes.push(prefix);
    const [a, b, c] = [redis.url(0), redis.url(1), redis.url(2)];
    const nodeB = await ReplicaNode.start({ id: 'B', redis: b, peers: [{ id: 'C', redis: c }], prefix });
    let server: NodeServer | undefined;
    try {
      const errors: Error[] = [];
      server = await startNodeServer({ node: { id: 'A', redis: a, peers: [{ id: 'B', redis: b }], prefix }, port: 0 });
      server.node.on('error', (e) => errors.push(e));
      const node = server.node;
      await waitFor(async () => ({ done: (await node.checkPeers()).length > 0, observed: await node.checkPeers() }), { message: 'A to notice B' });
      const warnings = await node.checkPeers();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^B does not list A as a peer \(its peers: C\)/);
      const cluster = (await (await fetch(`${server.url}/cluster`)).json()) as { warnings: string[] };
      expect(cluster.warnings).toEqual(warnings);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/eventual_cache_peer_config_problems\{[^}]*peer="B"[^}]*\} 1/);
      // The event fired before this listener was attached, at start; a change fires it again.
      expect(errors.every((e) => e instanceof PeerConfigError)).toBe(true);
    } finally {
      await server?.close();
      await nodeB.close();
    }
  });

  it('should clear the warning once both lists agree', async () => {
    const prefix = uniquePrefix('peers-ok');
    prefixes.push(prefix);
    const [a, b] = [redis.url(0), redis.url(1)];
    const nodeA = await ReplicaNode.start({ id: 'A', redis: a, peers: [{ id: 'B', redis: b }], prefix });
    const nodeB = await ReplicaNode.start({ id: 'B', redis: b, peers: [{ id: 'A', redis: a }], prefix });
    try {
      await waitFor(async () => (await nodeA.checkPeers()).length === 0 && (await nodeB.checkPeers()).length === 0, { message: 'no warnings' });
      expect((await nodeA.status()).warnings).toEqual([]);
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });

  it("should name a peer whose Redis URL is this node's own", async () => {
    const prefix = uniquePrefix('peers-self');
    prefixes.push(prefix);
    const problems: Error[] = [];
    const nodeA = new ReplicaNode({ id: 'A', redis: redis.url(0), peers: [{ id: 'B', redis: redis.url(0).replace('127.0.0.1', 'localhost') }], prefix });
    nodeA.on('error', (e) => problems.push(e));
    await (nodeA as unknown as { open(): Promise<void> }).open();
    try {
      expect(problems.map((e) => e.message)).toContainEqual(expect.stringMatching(/^peer B's Redis \(.*\) is this node's own Redis and database/));
      expect((await nodeA.status()).warnings).toHaveLength(1);
    } finally {
      await nodeA.close();
    }
  });
});
