/**
 * Finding a Redis for the embedded default cluster: the one at `REDIS_URL` (or
 * 127.0.0.1:6379) if it answers, else a private `redis-server` started for this process,
 * else a {@link RedisNotFoundError} that tells the user how to get one.
 *
 * Only the embedded default gets a private server: a configured cluster names its Redis
 * servers on purpose, and a node started alone must share its Redis with its peers.
 */
import { Cluster, type ClusterOptions } from 'ioredis';
import type { Logger } from 'pino';
import { EventualCacheError, RedisUnavailableError } from '../errors/index.js';
import { LocalRedisServer } from '../local-redis/local-redis.js';
import { maskCredentials } from '../store/credentials.js';
import { closeRedis, connect, createRedis, type ClusterTarget } from '../store/connections.js';
import { embeddedNodes, type ClusterConfig } from './config.js';
import { safeUrl } from './logger.js';

/** No Redis answered and none could be started. */
export class RedisNotFoundError extends EventualCacheError {
  readonly url: string;
  constructor(url: string) {
    super(
      `No Redis answered at ${url}, and redis-server is not on the PATH to start a private one. ` +
        'Either start Redis (Debian/Ubuntu: "sudo apt-get install -y redis-server", macOS: "brew install redis", ' +
        'Docker: "docker run -d -p 6379:6379 redis:7"), set REDIS_URL to a running server, ' +
        'or pass --config with the Redis URL of every node.',
    );
    this.url = url;
  }
}

/** True when a Redis at `url` accepts a connection and answers PING within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1_500): Promise<boolean> {
  const redis = createRedis(url, 'command', 'eventual-cache:probe');
  try {
    await connect(redis, url, timeoutMs);
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    await closeRedis(redis);
  }
}

/** What {@link ensureRedis} decided; `close()` stops the private server, if one was started. */
export interface RedisProvision {
  config: ClusterConfig;
  /** The private server started for this process, if any. */
  privateServer?: LocalRedisServer;
  close(): Promise<void>;
}

export interface EnsureRedisOptions {
  logger: Logger;
  /** `redis-server` binary to try. @defaultValue "redis-server" */
  binary?: string;
}

/**
 * For the embedded default: returns the config unchanged if its Redis answers, or a copy
 * pointing at a freshly started private server. Configured clusters are returned as they are.
 */
export async function ensureRedis(config: ClusterConfig, options: EnsureRedisOptions): Promise<RedisProvision> {
  const none: RedisProvision = { config, close: async () => undefined };
  const base = config.source.redisUrl;
  if (!config.source.embedded || base === undefined) return none;
  if (await redisAnswers(base)) return none;
  const binary = options.binary ?? 'redis-server';
  if (!LocalRedisServer.isAvailable(binary)) throw new RedisNotFoundError(safeUrl(base));
  const server = await LocalRedisServer.start({ binary });
  const firstPort = config.nodes[0]?.port ?? 0;
  const nodes = embeddedNodes(server.url(0), firstPort).map((n, i) => ({ ...n, ...pick(config.nodes[i]) }));
  options.logger.warn(
    { redis: server.url(0), tried: safeUrl(base) },
    `No Redis answered at ${safeUrl(base)}; started a private redis-server on port ${server.port} (its data is discarded on exit). Set REDIS_URL to use your own.`,
  );
  return {
    config: { ...config, nodes, source: { ...config.source, redisUrl: server.url(0) } },
    privateServer: server,
    close: () => server.destroy(),
  };
}

/** Keeps a node's port and clock offset when its Redis URL is replaced. */
function pick(node: ClusterConfig['nodes'][number] | undefined) {
  return node ? { port: node.port, clockOffsetMs: node.clockOffsetMs } : {};
}

/**
 * Deletes every key under `${prefix}:` in the Redis at `target` (SCAN + UNLINK, never
 * FLUSHDB: the database may be shared). On a Redis Cluster, every master is scanned and
 * each key unlinked on its own (keys of different slots cannot share one UNLINK). Used by
 * the demo to leave nothing behind.
 */
export async function deleteKeysWithPrefix(target: string | ClusterTarget, prefix: string): Promise<number> {
  if (typeof target !== 'string') return deleteOnCluster(target, prefix);
  const redis = createRedis(target, 'command', 'eventual-cache:cleanup');
  let deleted = 0;
  try {
    await connect(redis, target, 2_000);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    return deleted;
  } finally {
    await closeRedis(redis);
  }
}

async function deleteOnCluster(target: ClusterTarget, prefix: string): Promise<number> {
  const cluster = openCluster(target, 'eventual-cache:cleanup');
  let deleted = 0;
  try {
    try {
      await withTimeout(cluster.connect(), 5_000, () => new Error('the cluster did not become ready within 5000 ms'));
    } catch (cause) {
      throw new RedisUnavailableError(safeUrl(target), maskCredentials(cause instanceof Error ? cause.message : String(cause)), { cause });
    }
    for (const master of cluster.nodes('master')) {
      let cursor = '0';
      do {
        const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) {
          const results = (await keys.reduce((p, k) => p.unlink(k), master.pipeline()).exec()) ?? [];
          deleted += results.reduce((n, [, r]) => n + Number(r ?? 0), 0);
        }
        cursor = next;
      } while (cursor !== '0');
    }
    return deleted;
  } finally {
    cluster.disconnect();
  }
}

/**
 * An ioredis `Cluster` client for `target` (lazy: `connect()` it). The seeds' user,
 * password, TLS (`rediss://`) and URL options become the `redisOptions` of every node the
 * client discovers; the target's validation guarantees all seeds agree on them.
 */
export function openCluster(target: ClusterTarget, name: string): Cluster {
  const [first = ''] = target.cluster;
  const url = new URL(first);
  const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'db'));
  const redisOptions: ClusterOptions['redisOptions'] = {
    ...query,
    connectionName: name,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  const startupNodes = target.cluster.map((seed) => {
    const u = new URL(seed);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) };
  });
  const cluster = new Cluster(startupNodes, { lazyConnect: true, redisOptions, clusterRetryStrategy: () => null, enableOfflineQueue: false });
  cluster.on('error', () => undefined);
  return cluster;
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
