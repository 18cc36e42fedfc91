/**
 * A node's Redis may be a Redis Cluster (issue 11's contract): `{"cluster": [seed URLs]}`
 * in the config file and in `peerRedis`, `REDIS_CLUSTER` for the embedded default,
 * `cluster:URL|URL` inside `EVENTUAL_CACHE_NODES` and `EVENTUAL_CACHE_PEER_REDIS`, and the
 * same in the library options. A cluster has only database 0, every seed shares one user
 * and TLS setting, and no error quotes a credential. The last test runs the demo's key
 * cleanup on a real Redis Cluster.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { peerUsers } from '../../src/cli/acl.js';
import { runCli, type CliIo } from '../../src/cli/cli.js';
import { ConfigError, ENV, loadConfig, parseNodeList, toNodeOptions } from '../../src/cli/config.js';
import { deleteKeysWithPrefix, openCluster } from '../../src/cli/redis.js';
import { InvalidOptionsError } from '../../src/errors/index.js';
import { resolveNodeOptions } from '../../src/node/options.js';
import { tempDir } from '../support/cli-process.js';
import { closeTestCluster, clusterClient, resolveTestCluster, uniquePrefix } from '../support/redis-cluster.js';

const SECRET = 'S3cret-in-a-seed';
const tmp = tempDir('config-cluster');
afterAll(async () => {
  tmp.remove();
  await closeTestCluster();
});

const clusterA = { cluster: [`redis://ec:${SECRET}@a1:7000`, `redis://ec:${SECRET}@a2:7001/0`] };
const validFile = {
  nodes: [
    { id: 'A', port: 3001, redis: clusterA, peerRedis: { B: { cluster: ['rediss://peer-b:pw@a1:7000'] } } },
    { id: 'B', port: 3002, redis: 'redis://127.0.0.1:6379/2' },
  ],
};

function fileWith(content: unknown): string {
  return tmp.write(`c-${Math.random().toString(36).slice(2)}.json`, content);
}

/** The issues of the ConfigError `fn` throws (fails the test if it does not throw one). */
function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

const nodesWith = (redis: unknown) => ({ nodes: [{ id: 'A', port: 3001, redis }] });

describe('loadConfig with a Redis Cluster', () => {
  describe('when the config file names one', () => {
    it('should keep cluster targets for nodes and peerRedis, mixed with standalone nodes, and hand them to the engine', () => {
      const config = loadConfig({ file: fileWith(validFile), env: {} });
      expect(config.nodes[0]?.redis).toEqual(clusterA);
      expect(toNodeOptions(config, 'B').peers).toEqual([{ id: 'A', redis: { cluster: ['rediss://peer-b:pw@a1:7000'] } }]);
      const a = resolveNodeOptions(toNodeOptions(config, 'A'));
      expect(a.redis).toEqual(clusterA);
      expect(a.peers).toEqual([{ id: 'B', redis: 'redis://127.0.0.1:6379/2' }]);
    });

    it('should take clusterPartitions from the file or EVENTUAL_CACHE_CLUSTER_PARTITIONS, hand it to every node, and refuse a bad count', () => {
      const fromFile = loadConfig({ file: fileWith({ ...validFile, clusterPartitions: 3 }), env: {} });
      expect(resolveNodeOptions(toNodeOptions(fromFile, 'A')).clusterPartitions).toBe(3);
      expect(resolveNodeOptions(toNodeOptions(fromFile, 'B')).clusterPartitions).toBe(3);
      const fromEnv = loadConfig({ file: fileWith(validFile), env: { EVENTUAL_CACHE_CLUSTER_PARTITIONS: '6' } });
      expect(resolveNodeOptions(toNodeOptions(fromEnv, 'A')).clusterPartitions).toBe(6);
      expect(resolveNodeOptions(toNodeOptions(loadConfig({ file: fileWith(validFile), env: {} }), 'A')).clusterPartitions).toBe(12);
      for (const bad of [0, 257, 2.5, '3']) expect(issuesOf(() => loadConfig({ file: fileWith({ ...validFile, clusterPartitions: bad }), env: {} })).join('\n')).toMatch(/clusterPartitions/);
      expect(() => resolveNodeOptions({ id: 'A', redis: clusterA, peers: [], clusterPartitions: 0 })).toThrow(InvalidOptionsError);
    });

    it('should name every bad seed by its path, say that a cluster has only database 0, and never quote a credential', () => {
      const issues = [
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: [] })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: ['redis://h1:7000', 'h2:7001'] })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: ['redis://h1:7000', `redis://u:${SECRET}@h2:7001/3`] })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: [`redis://h1:7000?password=${SECRET}&db=2`] })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: ['redis://h1:7000', 'rediss://h2:7001'] })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: ['redis://h1:7000'], db: 1 })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ cluster: 'redis://h1:7000' })), env: {} })),
        ...issuesOf(() => loadConfig({ file: fileWith(nodesWith({ host: 'h1' })), env: {} })),
      ];
      expect(issues).toEqual([
        'nodes[0].redis.cluster: must list at least one seed URL such as redis://h1:7000',
        'nodes[0].redis.cluster[1]: must be a redis:// or rediss:// URL with a host, such as redis://h1:7000',
        'nodes[0].redis.cluster[1]: redis://***:***@h2:7001/3 names database 3, but a Redis Cluster has only database 0: drop the database from the URL',
        'nodes[0].redis.cluster[0]: redis://h1:7000?password=***&db=2 names database 2, but a Redis Cluster has only database 0: drop the database from the URL',
        expect.stringMatching(/^nodes\[0\]\.redis\.cluster\[1\]: must use the same scheme \(redis:\/\/ or rediss:\/\/\), credentials and options as the first seed/),
        'nodes[0].redis.db: unknown field (a cluster is {"cluster": [seed URLs]})',
        expect.stringMatching(/^nodes\[0\]\.redis\.cluster: must be an array of seed URLs/),
        expect.stringMatching(/^nodes\[0\]\.redis: expected a Redis URL .* or a Redis Cluster \{"cluster": /),
      ]);
      expect(issues.join('\n')).not.toContain(SECRET);
    });

    it("should insist that a peer reaches a node's Redis the way the node does (both clusters or both URLs)", () => {
      const file = {
        nodes: [
          { id: 'A', port: 3001, redis: clusterA, peerRedis: { B: 'redis://peer-b:pw@a1:7000/0' } },
          { id: 'B', port: 3002, redis: 'redis://h:1/0', peerRedis: { A: { cluster: ['redis://h:1'] } } },
        ],
      };
      expect(issuesOf(() => loadConfig({ file: fileWith(file), env: {} }))).toEqual([
        `nodes[0].peerRedis.B: "A"'s Redis is a Redis Cluster, so {"cluster": [seed URLs]} is expected here too (how B reaches that same Redis)`,
        `nodes[1].peerRedis.A: "B"'s Redis is a single Redis server, so a URL is expected here too (how A reaches that same Redis)`,
      ]);
    });
  });

  describe('when REDIS_CLUSTER is set', () => {
    it('should run the embedded default A, B, C all on that cluster', () => {
      const config = loadConfig({ env: { [ENV.redisCluster]: 'redis://c1:7000, redis://c2:7001' } });
      const seeds = ['redis://c1:7000', 'redis://c2:7001'];
      expect(config.nodes.map((n) => [n.id, n.port, n.redis])).toEqual([
        ['A', 3001, { cluster: seeds }],
        ['B', 3002, { cluster: seeds }],
        ['C', 3003, { cluster: seeds }],
      ]);
      expect(config.source).toMatchObject({ embedded: true, redisCluster: seeds, env: [ENV.redisCluster] });
      expect(config.source.redisUrl).toBeUndefined();
    });

    it('should refuse it together with REDIS_URL, and a bad seed, naming the variable without the password', () => {
      expect(issuesOf(() => loadConfig({ env: { [ENV.redisCluster]: 'redis://c1:7000', [ENV.redisUrl]: 'redis://h:6379' } }))).toEqual([
        'REDIS_URL and REDIS_CLUSTER: set one of them (the embedded default runs on one Redis server or one Redis Cluster)',
      ]);
      const issues = issuesOf(() => loadConfig({ env: { [ENV.redisCluster]: `redis://c1:7000,redis://:${SECRET}@c2:7001/5` } }));
      expect(issues).toEqual(['REDIS_CLUSTER: seed 2: redis://:***@c2:7001/5 names database 5, but a Redis Cluster has only database 0: drop the database from the URL']);
    });

    it('should be ignored, with a warning, when a config file lists the nodes', () => {
      const config = loadConfig({ file: fileWith(validFile), env: { [ENV.redisCluster]: 'redis://c1:7000' } });
      expect(config.nodes[1]?.redis).toBe('redis://127.0.0.1:6379/2');
      expect(config.source.warnings).toEqual([expect.stringMatching(/^REDIS_CLUSTER is ignored: it only applies to the embedded default/)]);
    });
  });

  describe('when EVENTUAL_CACHE_NODES and EVENTUAL_CACHE_PEER_REDIS name clusters as cluster:URL|URL', () => {
    it('should read cluster entries beside URL entries', () => {
      const config = loadConfig({
        env: {
          [ENV.nodes]: `A:3001=cluster:redis://ec:${SECRET}@a1:7000|redis://ec:${SECRET}@a2:7001,B:3002=redis://redis-b:6379/0`,
          [ENV.peerRedis]: 'A>B=cluster:redis://peer-b:pw@a1:7000|redis://peer-b:pw@a2:7001',
        },
      });
      expect(config.nodes.map((n) => [n.id, n.port, n.redis])).toEqual([
        ['A', 3001, { cluster: [`redis://ec:${SECRET}@a1:7000`, `redis://ec:${SECRET}@a2:7001`] }],
        ['B', 3002, 'redis://redis-b:6379/0'],
      ]);
      expect(config.nodes[0]?.peerRedis).toEqual({ B: { cluster: ['redis://peer-b:pw@a1:7000', 'redis://peer-b:pw@a2:7001'] } });
    });

    it('should explain a bad cluster entry without quoting its password', () => {
      expect(parseNodeList(`A=cluster:redis://u:${SECRET}@h1:7000|redis://u:${SECRET}@h2:7001/1`)).toBe(
        'entry 1 ("A"): cluster seed 2: redis://***:***@h2:7001/1 names database 1, but a Redis Cluster has only database 0: drop the database from the URL',
      );
      expect(parseNodeList('A=cluster:')).toBe('entry 1 ("A"): expected cluster:URL|URL… with at least one seed URL such as redis://h1:7000');
      expect(issuesOf(() => loadConfig({ env: { [ENV.peerRedis]: 'A>B=cluster:h1:7000' } }))).toEqual([
        'EVENTUAL_CACHE_PEER_REDIS: entry 1 ("A>B"): cluster seed 1: must be a redis:// or rediss:// URL with a host, such as redis://h1:7000',
      ]);
    });
  });
});

describe('resolveNodeOptions with a Redis Cluster', () => {
  const base = { id: 'A', peers: [] };
  const fieldOf = (redis: unknown, peers: unknown[] = []) => {
    try {
      resolveNodeOptions({ ...base, redis, peers } as never);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as Error).message).not.toContain(SECRET);
      return [(error as InvalidOptionsError).field, (error as Error).message];
    }
    return undefined;
  };

  it('should accept seed URLs with credentials and TLS, naming database 0 or none', () => {
    expect(fieldOf({ cluster: [`rediss://u:${SECRET}@h1:7000`, `rediss://u:${SECRET}@h2:7001/0`] })).toBeUndefined();
  });

  it('should throw InvalidOptionsError naming the field for an empty list, a bad seed, another database or mixed credentials', () => {
    expect(fieldOf({ cluster: [] })?.[0]).toBe('redis.cluster');
    expect(fieldOf({ cluster: 'redis://h1:7000' })?.[0]).toBe('redis.cluster');
    expect(fieldOf({ cluster: ['http://h1:7000'] })?.[0]).toBe('redis.cluster[0]');
    expect(fieldOf({ cluster: ['redis://h1:7000', `redis://u:${SECRET}@h2:7001/2`] })).toEqual([
      'redis.cluster[1]',
      expect.stringContaining('names database 2, but a Redis Cluster has only database 0'),
    ]);
    expect(fieldOf('redis://h:1/0', [{ id: 'B', redis: { cluster: [`redis://u:${SECRET}@h1:7000`, 'redis://h2:7001'] } }])?.[0]).toBe('peers[0].redis.cluster[1]');
  });
});

describe('eventual-cache acl on a Redis Cluster', () => {
  it('should refuse, saying why and what to do instead, without quoting a credential', async () => {
    const config = loadConfig({ file: fileWith(validFile), env: {} });
    expect(() => peerUsers(config, 'A')).toThrow(ConfigError);
    let text = '';
    const io: CliIo = { env: {}, out: (t) => (text += t), err: (t) => (text += t) };
    expect(await runCli(['acl', '--node', 'A', '--config', fileWith(validFile)], io)).toBe(2);
    expect(text).toContain('Per-peer ACL users are not supported on a Redis Cluster');
    expect(text).toContain('cluster(redis://***:***@a1:7000, redis://***:***@a2:7001/0)');
    expect(text).not.toContain(SECRET);
  });
});

describe('deleteKeysWithPrefix on a Redis Cluster', () => {
  it("should delete the prefix's keys on every master, and nothing else", async () => {
    const cluster = await resolveTestCluster();
    const prefix = uniquePrefix('cleanup');
    const keep = uniquePrefix('keep');
    const client = clusterClient(cluster.seeds);
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => client.set(`${prefix}:k${i}`, 'x')));
      await client.set(`${keep}:k`, 'stays');
      expect([...(await cluster.keysPerMaster(`${prefix}:*`)).values()].every((n) => n > 0)).toBe(true);
      expect(await deleteKeysWithPrefix(cluster.target, prefix)).toBe(200);
      expect([...(await cluster.keysPerMaster(`${prefix}:*`)).values()]).toEqual([0, 0, 0]);
      expect(await client.get(`${keep}:k`)).toBe('stays');
    } finally {
      client.disconnect();
    }
  });

  it("should take the seeds' credentials and TLS as every node's options", () => {
    const c = openCluster({ cluster: [`rediss://ec:${encodeURIComponent('p@ss')}@h1:7000`, 'rediss://ec:p%40ss@h2:7001/0'] }, 'test');
    try {
      expect(c.options.redisOptions).toMatchObject({ username: 'ec', password: 'p@ss', tls: {}, connectionName: 'test' });
    } finally {
      c.disconnect();
    }
  });
});
