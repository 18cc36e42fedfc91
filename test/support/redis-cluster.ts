/**
 * A real Redis Cluster for the integration tests that need one: by default 3 masters and 3
 * replicas (`cluster-node-timeout` 500 ms, so a failover takes about a second) on free
 * loopback ports, started once per test file (vitest isolates files in their own module
 * instances) and destroyed by {@link closeTestCluster} in the file's `afterAll`.
 *
 * As with `redis.ts`, tests share the cluster within the file, so each test keeps to its
 * own key prefix ({@link uniquePrefix}) and a test that kills a node restarts it before it
 * ends (`restartNode`), leaving 3 masters and 3 replicas for the next.
 */
import { Cluster, type ClusterOptions } from 'ioredis';
import { LocalRedisCluster, type LocalRedisClusterOptions } from '../../src/local-redis/local-cluster.js';

export { uniquePrefix } from './redis.js';

let starting: Promise<LocalRedisCluster> | undefined;

/**
 * The Redis Cluster of this test file, started on first use. `options` count only on the
 * first call of a file (later calls get the same cluster).
 */
export function resolveTestCluster(options: LocalRedisClusterOptions = {}): Promise<LocalRedisCluster> {
  starting ??= LocalRedisCluster.start(options);
  return starting;
}

/** Destroys this file's cluster, if one was started; safe to call twice. */
export async function closeTestCluster(): Promise<void> {
  const pending = starting;
  starting = undefined;
  if (!pending) return;
  const cluster = await pending.catch(() => undefined);
  await cluster?.destroy();
}

/**
 * An ioredis `Cluster` client on `seeds` (the caller quits it). Its errors are swallowed
 * (they surface through the commands), and it retries a command over a failover for up to
 * about `retryBudgetMs`, so a test can write to a failed master's slots as soon as its
 * replica took over.
 */
export function clusterClient(seeds: readonly string[], options: ClusterOptions & { retryBudgetMs?: number } = {}): Cluster {
  const { retryBudgetMs = 5_000, ...rest } = options;
  const nodes = seeds.map((s) => {
    const url = new URL(s);
    return { host: url.hostname, port: Number(url.port) };
  });
  const client = new Cluster(nodes, {
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    retryDelayOnTryAgain: 50,
    maxRedirections: Math.max(16, Math.ceil(retryBudgetMs / 50)),
    ...rest,
  });
  client.on('error', () => undefined);
  return client;
}
