/**
 * Where the integration tests find a real Redis, in order of preference:
 *
 * 1. `REDIS_URL`, if set: a server someone already runs (CI service, docker-compose). It may
 *    be shared, so tests only ever touch keys under their own unique prefix and delete
 *    exactly those keys afterwards — never FLUSHDB/FLUSHALL.
 * 2. A Redis container from `@testcontainers/redis`, when a container runtime answers. The
 *    probe is bounded by a short timeout so a machine without Docker falls through at once.
 * 3. A private `redis-server` process on a free port (no persistence), started per test file.
 *
 * Whatever the source, every node of a test gets its own prefix and, when the server is
 * ours (container or private process), its own database index, as the engine issue asks
 * ("each node's store lives in its own Redis database").
 */
import { Redis } from 'ioredis';
import { LocalRedisServer, type LocalRedisOptions } from '../../src/local-redis/local-redis.js';

/** How long a container runtime gets to answer before the tests fall back to a local process. */
const CONTAINER_PROBE_TIMEOUT_MS = 1_500;
const CONTAINER_IMAGE = 'redis:7-alpine';

export type RedisSource = 'env' | 'container' | 'local';

/** A Redis server the tests may use, plus how to give back what they took. */
export interface TestRedis {
  readonly source: RedisSource;
  /**
   * URL for the node in `slot` (0 for A, 1 for B, …). On servers we own, each slot is its
   * own database (1..15); on a `REDIS_URL` server every slot uses that URL's database and
   * relies on the per-node key prefix alone, because other databases may belong to others.
   */
  url(slot: number): string;
  /** Every distinct URL that {@link url} can return for slots `0..slots-1`. */
  urls(slots: number): string[];
  /** Stops the container or private server; a `REDIS_URL` server is left alone. */
  close(): Promise<void>;
}

let resolving: Promise<TestRedis> | undefined;

/**
 * The Redis of this test file (resolved once per module instance, i.e. once per file in
 * vitest's isolated workers).
 */
export function resolveTestRedis(): Promise<TestRedis> {
  resolving ??= resolve();
  return resolving;
}

async function resolve(): Promise<TestRedis> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) return envRedis(fromEnv);
  const container = await tryContainer();
  if (container) return container;
  const server = await LocalRedisServer.start();
  return ownedRedis('local', (db) => server.url(db), () => server.destroy());
}

function envRedis(url: string): TestRedis {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.slice(1) || '0');
  if (!Number.isInteger(db) || db < 0) throw new Error(`REDIS_URL ${url} has no usable database index`);
  return {
    source: 'env',
    url: () => url,
    urls: () => [url],
    close: async () => undefined,
  };
}

function ownedRedis(source: RedisSource, urlForDb: (db: number) => string, close: () => Promise<void>): TestRedis {
  // Database 0 is left empty on purpose: a node that forgot its DB index would show up there.
  const dbOf = (slot: number) => 1 + (slot % 15);
  return {
    source,
    url: (slot) => urlForDb(dbOf(slot)),
    urls: (slots) => [...new Set(Array.from({ length: slots }, (_, i) => urlForDb(dbOf(i))))],
    close,
  };
}

/** A Redis container, or `undefined` when no container runtime answers within the probe timeout. */
async function tryContainer(): Promise<TestRedis | undefined> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await withTimeout(getContainerRuntimeClient(), CONTAINER_PROBE_TIMEOUT_MS, 'container runtime probe');
  } catch {
    return undefined;
  }
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer(CONTAINER_IMAGE).start();
  const base = container.getConnectionUrl();
  return ownedRedis('container', (db) => `${base}/${db}`, async () => {
    await container.stop();
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let counter = 0;

/**
 * A key prefix no other test (in this process, another worker, or another helper sharing
 * the same Redis) uses: label, pid, a counter and randomness. Matches the node's
 * `prefix` option pattern (`[A-Za-z0-9_.-]{1,64}`).
 */
export function uniquePrefix(label: string): string {
  counter += 1;
  const clean = label.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 20) || 't';
  return `ect-${clean}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Calls `onBatch` with each SCAN batch of keys starting with `${prefix}:` in the database of `url`. */
async function scanPrefix(url: string, prefix: string, onBatch: (redis: Redis, keys: string[]) => Promise<void>): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}:*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) await onBatch(redis, keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key starting with `${prefix}:` in the database of `url` (SCAN + UNLINK, never FLUSHDB). */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<number> {
  let deleted = 0;
  await scanPrefix(url, prefix, async (redis, keys) => {
    deleted += await redis.unlink(...keys);
  });
  return deleted;
}

/** Counts keys starting with `${prefix}:` (to show cleanup really happened). */
export async function countKeysWithPrefix(url: string, prefix: string): Promise<number> {
  let count = 0;
  await scanPrefix(url, prefix, async (_redis, keys) => {
    count += keys.length;
  });
  return count;
}

/**
 * A private `redis-server` for one node, for tests that must stop that node's Redis while
 * the others keep running. `persistence: 'aof'` makes a stop/resume keep the data, as a
 * production Redis with persistence would.
 */
export function startPrivateRedis(options: LocalRedisOptions = {}): Promise<LocalRedisServer> {
  return LocalRedisServer.start(options);
}

/** A plain ioredis client for assertions and fault injection (the caller disconnects it). */
export async function adminClient(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  await redis.connect();
  return redis;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
