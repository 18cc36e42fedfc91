/**
 * Least-privilege peer access with real Redis ACLs: `eventual-cache acl` users on two
 * private redis-servers, one per node.
 *
 *   A's Redis: default user (A itself) + "…-peer-B" (B's link: read A's records, run to-B)
 *   B's Redis: default user (B itself) + "…-peer-A"
 *
 * Replication both ways, catch-up after B was down, the resync of a wiped B and A's
 * dashboard all work; B's user gets NOPERM writing a record, reading another queue, FLUSHDB.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aclScript, peerUsers } from '../../src/cli/acl.js';
import { loadConfig, type ClusterConfig } from '../../src/cli/config.js';
import { startNodeServer, type NodeServer } from '../../src/http/server.js';
import { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import { deleteKeysWithPrefix, uniquePrefix } from '../support/redis.js';
import { runCli, tempDir } from '../support/cli-process.js';
import { waitFor } from '../support/wait.js';

const tmp = tempDir('acl');
let serverA: LocalRedisServer;
let serverB: LocalRedisServer;
let config: ClusterConfig;
let configPath: string;
const prefix = uniquePrefix('acl');
/** URL B uses for A's Redis (B's user), and A uses for B's Redis (A's user). */
let bToA: string;
let aToB: string;

beforeAll(async () => {
  [serverA, serverB] = await Promise.all([LocalRedisServer.start(), LocalRedisServer.start()]);
  configPath = tmp.write('acl.json', {
    nodes: [
      { id: 'A', port: 0, redis: serverA.url(1) },
      { id: 'B', port: 0, redis: serverB.url(1) },
    ],
    prefix,
    replication: { delayMs: 10 },
  });
  config = loadConfig({ file: configPath, env: {} });
  for (const [server, id] of [[serverA, 'A'], [serverB, 'B']] as const) {
    const admin = new Redis(server.url(1));
    try {
      for (const user of peerUsers(config, id)) await admin.call('ACL', ...user.args);
    } finally {
      admin.disconnect();
    }
  }
  // peerUsers draws new passwords on each call unless the config has them: read them back once.
  bToA = await userUrl(serverA, 'B');
  aToB = await userUrl(serverB, 'A');
}, 60_000);

afterAll(async () => {
  await Promise.all([serverA?.destroy(), serverB?.destroy()]);
  tmp.remove();
});

/** Resets `peer`'s user on `server` to a known password and returns its URL. */
async function userUrl(server: LocalRedisServer, peer: string): Promise<string> {
  const node = peer === 'B' ? 'A' : 'B';
  const withPassword: ClusterConfig = {
    ...config,
    nodes: config.nodes.map((n) => (n.id === node ? { ...n, peerRedis: { [peer]: `redis://${prefix}-peer-${peer}:pw-${peer}-0123456789@x/0` } } : n)),
  };
  const [user] = peerUsers(withPassword, node);
  const admin = new Redis(server.url(1));
  try {
    await admin.call('ACL', ...(user as NonNullable<typeof user>).args);
  } finally {
    admin.disconnect();
  }
  return (user as NonNullable<typeof user>).url;
}

async function start(id: 'A' | 'B'): Promise<NodeServer> {
  return startNodeServer({
    node: id === 'A' ? { id, redis: serverA.url(1), peers: [{ id: 'B', redis: aToB }], prefix, replication: { delayMs: 10 } } : { id, redis: serverB.url(1), peers: [{ id: 'A', redis: bToA }], prefix, replication: { delayMs: 10 } },
    port: 0,
  });
}

async function eventually(node: NodeServer, key: string, value: unknown): Promise<void> {
  await waitFor(async () => ({ done: (await node.node.get(key))?.value === value, observed: await node.node.get(key) }), { message: `${node.node.id} to hold ${key}=${String(value)}`, timeoutMs: 15_000 });
}

describe('eventual-cache acl', () => {
  it('should print one ACL SETUSER line per peer with only the replication key patterns', async () => {
    const run = runCli(['acl', '--config', configPath, '--node', 'A']);
    expect(await run.exited(20_000)).toBe(0);
    const lines = run.stdout().split('\n').filter((l) => l.startsWith('ACL SETUSER'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${prefix}-peer-B reset on >`);
    expect(lines[0]).toContain(`%R~${prefix}:A:rec:* %R~${prefix}:A:dig:* %R~${prefix}:A:peers %R~${prefix}:A:vitals %R~${prefix}:A:conflicts ~${prefix}:A:q:to-B:*`);
    expect(lines[0]).toContain('-@dangerous -@admin');
    expect(aclScript(config, 'A')).toContain('peerRedis.B');
  });
});

describe('replication through per-link ACL users', () => {
  it('should replicate both ways, catch up, resync a wiped node and serve the dashboard', async () => {
    let a = await start('A');
    let b = await start('B');
    try {
      await a.node.put('from-a', 1);
      await b.node.put('from-b', 2);
      await eventually(b, 'from-a', 1);
      await eventually(a, 'from-b', 2);

      // Catch-up: B is down while A writes; its queue on A waits for it.
      await b.close();
      await a.node.put('while-b-down', 3);
      b = await start('B');
      await eventually(b, 'while-b-down', 3);

      // Resync: B's database is wiped; B pulls A's records through its read-only user.
      await b.close();
      await deleteKeysWithPrefix(serverB.url(1), prefix);
      b = await start('B');
      await b.node.resynced();
      await eventually(b, 'from-a', 1);

      // Anti-entropy reads the peer's digest and records through the same read-only users.
      const rounds = [...(await a.node.antiEntropyRound()), ...(await b.node.antiEntropyRound())];
      expect(rounds.map((r) => [r.peer, r.result, r.error])).toEqual([
        ['B', expect.not.stringMatching(/failed|incompatible/), undefined],
        ['A', expect.not.stringMatching(/failed|incompatible/), undefined],
      ]);

      const dashboard = await fetch(`${a.url}/admin/queues/api/queues`);
      expect(dashboard.status).toBe(200);
      expect(JSON.stringify(await dashboard.json())).toContain('to-B');
      expect((await a.node.status()).peers[0]?.lastError).toBeUndefined();
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  }, 90_000);

  it("should refuse B's user writing a record, reading another queue, or FLUSHDB on A's Redis", async () => {
    const asB = new Redis(bToA, { maxRetriesPerRequest: 0 });
    try {
      await expect(asB.set(`${prefix}:A:rec:forged`, 'x')).rejects.toThrow(/NOPERM/);
      await expect(asB.del(`${prefix}:A:rec:from-a`)).rejects.toThrow(/NOPERM/);
      await expect(asB.hgetall(`${prefix}:A:q:to-C:meta`)).rejects.toThrow(/NOPERM/);
      await expect(asB.zrange(`${prefix}:B:q:to-A:delayed`, '0', '-1')).rejects.toThrow(/NOPERM/);
      await expect(asB.flushdb()).rejects.toThrow(/NOPERM/);
      await expect(asB.call('CONFIG', 'GET', 'requirepass')).rejects.toThrow(/NOPERM/);
      // What it may do: read A's records.
      expect(await asB.get(`${prefix}:A:rec:from-a`)).not.toBeNull();
    } finally {
      asB.disconnect();
    }
  });
});
