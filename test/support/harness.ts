/**
 * Per-file wiring of the integration tests: resolves the Redis once per file, hands each
 * test fresh prefixes and clusters, and after each test closes its nodes, stops its
 * private servers and deletes exactly the keys under its prefixes.
 *
 *   const h = useRedisHarness();
 *   it('should …', async () => {
 *     const cluster = await h.cluster('demo', ['A', 'B', 'C']);
 *     …
 *   });
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { LocalRedisOptions, LocalRedisServer } from '../../src/local-redis/local-redis.js';
import type { RedisTarget } from '../../src/store/connections.js';
import { startCluster, type Cluster, type NodeOverrides } from './cluster.js';
import { deleteKeysWithPrefix, resolveTestRedis, startPrivateRedis, uniquePrefix, type TestRedis } from './redis.js';

export interface HarnessClusterOptions {
  /** Options for every node. */
  common?: NodeOverrides;
  /** Options for single nodes. */
  perNode?: Readonly<Record<string, NodeOverrides>>;
  /** Redis of single nodes (e.g. a private server); others get the shared test Redis, one DB each. */
  redis?: Readonly<Record<string, RedisTarget>>;
  /** Reuse a prefix (to restart a cluster over data an earlier one, or a child process, left). */
  prefix?: string;
  /** Nodes to start now (default: all); start the others later with `cluster.start([id])`. */
  start?: readonly string[];
}

export interface RedisHarness {
  /** The Redis of this file (available inside tests and hooks). */
  readonly redis: TestRedis;
  /** A fresh prefix whose keys are deleted after the test from every test database. */
  prefix(label: string): string;
  /** Node `ids[i]`'s Redis URL on the shared test Redis. */
  urlFor(ids: readonly string[], id: string): string;
  /** Starts a cluster with a fresh prefix (unless given); it is closed after the test. */
  cluster(label: string, ids: readonly string[], options?: HarnessClusterOptions): Promise<Cluster>;
  /** A private redis-server, destroyed after the test. */
  privateServer(options?: LocalRedisOptions): Promise<LocalRedisServer>;
  /** Runs `fn` after the test, before the keys are deleted (most recent first). */
  defer(fn: () => unknown): void;
}

/** Registers the hooks in the calling test file and returns the per-test helpers. */
export function useRedisHarness(): RedisHarness {
  let redis: TestRedis | undefined;
  let clusters: Cluster[] = [];
  let servers: LocalRedisServer[] = [];
  let prefixes: string[] = [];
  let deferred: Array<() => unknown> = [];

  beforeAll(async () => {
    redis = await resolveTestRedis();
  });

  afterEach(async () => {
    const [c, s, p, d] = [clusters, servers, prefixes, deferred];
    clusters = [];
    servers = [];
    prefixes = [];
    deferred = [];
    for (const fn of d.reverse()) await Promise.resolve().then(fn).catch(() => undefined);
    await Promise.all(c.map((cluster) => cluster.closeAll()));
    await Promise.all(s.map((server) => server.destroy()));
    if (redis) {
      const urls = redis.urls(8);
      await Promise.all(p.flatMap((prefix) => urls.map((url) => deleteKeysWithPrefix(url, prefix))));
    }
  });

  afterAll(async () => {
    await redis?.close();
  });

  const harness: RedisHarness = {
    get redis(): TestRedis {
      if (!redis) throw new Error('the test Redis is resolved in beforeAll; use the harness inside tests or hooks');
      return redis;
    },
    prefix(label) {
      const prefix = uniquePrefix(label);
      prefixes.push(prefix);
      return prefix;
    },
    urlFor(ids, id) {
      const slot = ids.indexOf(id);
      if (slot < 0) throw new Error(`no node ${id} among ${ids.join(', ')}`);
      return harness.redis.url(slot);
    },
    async cluster(label, ids, options = {}) {
      const prefix = options.prefix ?? harness.prefix(label);
      if (options.prefix && !prefixes.includes(options.prefix)) prefixes.push(options.prefix);
      const cluster = await startCluster({
        prefix,
        nodes: ids.map((id) => ({ id, redis: options.redis?.[id] ?? harness.urlFor(ids, id) })),
        ...(options.common ? { common: options.common } : {}),
        ...(options.perNode ? { perNode: options.perNode } : {}),
        ...(options.start ? { start: options.start } : {}),
      });
      clusters.push(cluster);
      return cluster;
    },
    async privateServer(options = {}) {
      const server = await startPrivateRedis(options);
      servers.push(server);
      return server;
    },
    defer(fn) {
      deferred.push(fn);
    },
  };
  return harness;
}
