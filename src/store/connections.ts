/**
 * Redis connections: how they are made, how they fail, and the pool of dedicated
 * connections that optimistic transactions borrow.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisUnavailableError } from '../errors/index.js';
import { maskCredentials, maskUrl } from './credentials.js';

/**
 * A Redis Cluster: its seed nodes as URLs (`redis://[user:pass@]host:port`, `rediss://` for
 * TLS; a cluster has only database 0, so a URL names no other). The client discovers the
 * rest of the cluster from any seed that answers.
 */
export interface ClusterTarget {
  readonly cluster: readonly string[];
}

/**
 * Where a node's Redis is: a URL (`redis://[user:pass@]host:port/db`, `rediss://` for TLS),
 * ioredis options, or a Redis Cluster ({@link ClusterTarget}).
 */
export type RedisTarget = string | RedisOptions | ClusterTarget;

/** True when `target` names a Redis Cluster rather than a single server. */
export function isClusterTarget(target: RedisTarget): target is ClusterTarget {
  return typeof target === 'object' && target !== null && Array.isArray((target as ClusterTarget).cluster);
}

/**
 * Where `target` is, fit for logs and error messages: every credential (`user:pass@`,
 * `?password=`, `?username=`) replaced by `***`; ioredis options show host, port and db only.
 */
export function describeTarget(target: RedisTarget): string {
  if (typeof target === 'string') return maskUrl(target);
  if (isClusterTarget(target)) return `cluster(${target.cluster.map(maskUrl).join(', ')})`;
  return `redis://${target.host ?? '127.0.0.1'}:${target.port ?? 6379}/${target.db ?? 0}`;
}

/**
 * `error` as a {@link RedisUnavailableError} naming `target`; one that already is one is
 * returned as it is (no "unreachable (… unreachable (…))").
 */
export function unavailable(target: RedisTarget, error: unknown): RedisUnavailableError {
  if (error instanceof RedisUnavailableError) return error;
  return new RedisUnavailableError(describeTarget(target), maskCredentials(error instanceof Error ? error.message : String(error)), { cause: error });
}

/** What the connection is for; decides how it behaves while Redis is away. */
export type ConnectionRole =
  /**
   * Reads, the outbox and queue producers: fail at once while disconnected (no offline
   * queue) so an HTTP caller gets its 503 immediately rather than after the reconnect budget.
   * No auto-pipelining: BullMQ (and the digest fold, the lease, the poison list) send
   * MULTIs and pipelines on these connections, and ioredis 6's auto-pipeline then threw
   * `results[i] is not iterable` from a callback under load, which kills the process.
   */
  | 'command'
  /** BullMQ workers: block and retry forever (BullMQ requires `maxRetriesPerRequest: null`). */
  | 'worker'
  /**
   * Optimistic transactions: never queue or resend a command across a reconnect, because
   * a MULTI/EXEC replayed on a new connection would run without its WATCH.
   */
  | 'transaction';

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  command: { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: false },
  worker: { maxRetriesPerRequest: null },
  transaction: { maxRetriesPerRequest: 0, enableOfflineQueue: false, autoResendUnfulfilledCommands: false, enableAutoPipelining: false },
};

/**
 * Opens a connection; `lazyConnect` so callers decide when to wait for it.
 *
 * For a cluster target this is an ioredis `Cluster` client, typed as `Redis`: it answers
 * the same commands, routed by slot. The few callers whose commands are not routed by one
 * key (SCAN, multi-key reads over many slots) ask {@link clusterOf} and split the work.
 */
export function createRedis(target: RedisTarget, role: ConnectionRole, name: string): Redis {
  if (isClusterTarget(target)) return createCluster(target, ROLE_OPTIONS[role], name) as unknown as Redis;
  const options: RedisOptions = {
    lazyConnect: true,
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    ...ROLE_OPTIONS[role],
  };
  const redis = typeof target === 'string' ? new Redis(target, options) : new Redis({ ...target, ...options });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  // The failures surface through the commands that need the connection instead.
  redis.on('error', () => undefined);
  return redis;
}

/** The cluster client behind `redis`, or `undefined` for a single server's connection. */
export function clusterOf(redis: Redis): Cluster | undefined {
  return (redis as unknown) instanceof Cluster ? (redis as unknown as Cluster) : undefined;
}

/** Resolves once `redis` is ready, or rejects with {@link RedisUnavailableError} after `timeoutMs`. */
export async function waitUntilReady(redis: Redis, target: RedisTarget, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (redis.status !== 'ready') {
    if (redis.status === 'end' || Date.now() > deadline) throw new RedisUnavailableError(describeTarget(target), `connection ${redis.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Connects a lazy connection, turning failure into {@link RedisUnavailableError}. */
export async function connect(redis: Redis, target: RedisTarget, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.status === 'wait' ? redis.connect() : waitForReady(redis),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (cause) {
    redis.disconnect();
    throw unavailable(target, cause);
  } finally {
    clearTimeout(timer);
  }
}

function waitForReady(redis: Redis): Promise<void> {
  return new Promise((resolve) => redis.once('ready', () => resolve()));
}

/** True for errors that mean "Redis is not reachable right now" rather than a bug. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof RedisUnavailableError) return true;
  const code = (error as NodeJS.ErrnoException).code;
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH'].includes(code)) return true;
  return /Connection is closed|Stream isn't writeable|enableOfflineQueue|max retries per request|MaxRetriesPerRequest|LOADING|connect ECONNREFUSED/i.test(
    error.message,
  );
}

/** Quits politely if possible, disconnects otherwise; never throws. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status === 'ready') {
    try {
      await Promise.race([redis.quit(), new Promise((r) => setTimeout(r, 1_000))]);
    } catch {
      /* already gone */
    }
  }
  redis.disconnect();
}

/**
 * A connection lent to one transaction at a time, with a generation number that changes
 * whenever the underlying socket closes. A transaction records the generation before WATCH
 * and refuses to send MULTI/EXEC if it changed: a new socket would not carry the WATCH.
 */
export class TransactionConnection {
  readonly redis: Redis;
  private gen = 0;

  constructor(redis: Redis) {
    this.redis = redis;
    redis.on('close', () => {
      this.gen += 1;
    });
  }

  get generation(): number {
    return this.gen;
  }

  /** Still the same socket as at `generation`, and usable. */
  isIntact(generation: number): boolean {
    return this.gen === generation && this.redis.status === 'ready';
  }
}

/** Where optimistic transactions borrow their dedicated connections (one server, or a cluster's masters). */
export interface TransactionConnections {
  /** Transactions that may run at once. */
  readonly size: number;
  connect(timeoutMs: number): Promise<void>;
  /** Lends a connection to the server that holds `keys` (one server: any of the pool). */
  acquire(keys: readonly string[]): Promise<TransactionConnection>;
  release(c: TransactionConnection): void;
  /** After a redirect or a lost master: re-learn where keys live (cluster only). */
  refresh?(): Promise<void>;
  close(): Promise<void>;
}

/** Dedicated transaction connections for `target`; `topology` is the store's command connection (a cluster client on a cluster). */
export function createTransactionPool(target: RedisTarget, topology: Redis, size: number, name: string): TransactionConnections {
  const cluster = clusterOf(topology);
  if (isClusterTarget(target) && cluster) return new ClusterTransactionPool(target, cluster, size, name, ROLE_OPTIONS.transaction);
  return new TransactionPool(target, size, name);
}

/**
 * A fixed set of dedicated connections. `acquire` lends one exclusively (WATCH is per
 * connection: two transactions interleaved on one connection silently lose updates).
 */
export class TransactionPool implements TransactionConnections {
  private readonly idle: TransactionConnection[] = [];
  private readonly all: TransactionConnection[] = [];
  private readonly waiters: Array<(c: TransactionConnection) => void> = [];
  private readonly target: RedisTarget;

  constructor(target: RedisTarget, size: number, name: string) {
    this.target = target;
    for (let i = 0; i < size; i++) {
      const c = new TransactionConnection(createRedis(target, 'transaction', `${name}:tx${i}`));
      this.all.push(c);
      this.idle.push(c);
    }
  }

  get size(): number {
    return this.all.length;
  }

  async connect(timeoutMs: number): Promise<void> {
    await Promise.all(this.all.map((c) => connect(c.redis, this.target, timeoutMs)));
  }

  acquire(_keys?: readonly string[]): Promise<TransactionConnection> {
    const c = this.idle.pop();
    if (c) return Promise.resolve(c);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(c: TransactionConnection): void {
    const next = this.waiters.shift();
    if (next) next(c);
    else this.idle.push(c);
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((c) => closeRedis(c.redis)));
  }
}

// Imported last: cluster-connections.ts builds on the classes above.
import { ClusterTransactionPool, createCluster } from './cluster-connections.js';
