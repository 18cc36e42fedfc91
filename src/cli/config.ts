/**
 * The CLI's configuration: a JSON file, environment variables and built-in defaults, in
 * that order of increasing precedence (file < environment < command-line flags), validated
 * with zod into messages that name the offending field or variable.
 *
 * With no node list anywhere (no file, no `EVENTUAL_CACHE_NODES`) the CLI runs the
 * **embedded default**: nodes A, B, C on ports 3001–3003 with Redis databases 1–3 of
 * `REDIS_URL` (or `redis://127.0.0.1:6379`). Every variable is documented in
 * `docs/configuration.md`; keep the two in step (`ENV` in `env.ts` is the list the docs
 * test and the compose test check against). The schema lives in `config-schema.ts`.
 */
import { readFileSync } from 'node:fs';
import type { ReplicaNodeOptions } from '../node/options.js';
import type { ClusterTarget } from '../store/connections.js';
import { DEFAULT_REPLICATION_OPTIONS, type DelaySpec } from '../replication/options.js';
import { ConfigError, configFileSchema, DEFAULT_FIRST_PORT, formatIssues, type ConfigFile, type LogLevel } from './config-schema.js';
import { definedOnly, ENV, nonEmpty, readEnv } from './env.js';

export { ConfigError, configFileSchema, DEFAULT_FIRST_PORT, formatIssues, LOG_LEVELS, type ConfigFile, type LogLevel } from './config-schema.js';
export { ENV, parseDelay, parseNodeList } from './env.js';

/** Redis server of the embedded default when `REDIS_URL` is not set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Node ids of the embedded default, on Redis databases 1, 2 and 3. */
export const EMBEDDED_NODE_IDS = Object.freeze(['A', 'B', 'C']);

/** One node of the cluster as the CLI runs it. */
export interface NodeConfig {
  /** Node id: letters, digits, `_` or `-`, at most 64 characters. */
  id: string;
  /** HTTP port (0 picks a free one). */
  port: number;
  /**
   * This node's Redis: a URL (`redis://[user:pass@]host:port/db`, `rediss://` for TLS), or
   * a Redis Cluster by its seed URLs (`{cluster: ['redis://h1:7000', …]}`, database 0 only).
   */
  redis: ConfigTarget;
  /** Interface the HTTP server binds; falls back to the cluster-wide `host`. */
  host?: string;
  /**
   * Where the other nodes' cluster view pages reach this node's HTTP API (links, forwarded
   * writes). @defaultValue `http://<host>:<port>` (loopback for a wildcard host)
   */
  url?: string;
  /**
   * Shifts this node's clock, to demonstrate skew. Unit: milliseconds.
   * @defaultValue 0
   */
  clockOffsetMs: number;
  /**
   * How each other node reaches this node's Redis, by peer id, e.g. with a per-link ACL
   * user (`eventual-cache acl`); a peer not listed uses `redis`.
   */
  peerRedis?: Record<string, ConfigTarget>;
}

/** A Redis as the config names it: a URL or a Redis Cluster's seed URLs. */
export type ConfigTarget = string | ClusterTarget;

/** Replication settings the config file may carry (a subset of the engine's `ReplicationOptions`). */
export interface ReplicationConfig {
  /** Job delay: fixed, or `{min, max}` drawn per job. Unit: milliseconds. @defaultValue the engine's (50) */
  delayMs?: DelaySpec;
  maxKeysPerJob?: number;
  concurrency?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/** The validated configuration, defaults applied. */
export interface ClusterConfig {
  nodes: NodeConfig[];
  /** Interface the HTTP servers bind. @defaultValue "127.0.0.1" */
  host: string;
  /** First part of every Redis key; all nodes of a cluster must agree. @defaultValue "ec" */
  prefix: string;
  /** Partitions of a node on a Redis Cluster; all nodes must agree. @defaultValue the engine's (12) */
  clusterPartitions?: number;
  /** Bearer token every endpoint but `/health` and `/metrics` requires; none when undefined. */
  authToken?: string;
  replication: ReplicationConfig;
  /** Unit: milliseconds. @defaultValue the engine's (24 h) */
  tombstoneRetentionMs?: number;
  /** Redis replicas that must confirm a local write (`WAIT`) before it is acknowledged. @defaultValue the engine's (0) */
  waitReplicas?: number;
  /** Unit: milliseconds. @defaultValue the engine's (1 s) */
  waitTimeoutMs?: number;
  /** Anti-entropy settings (`leaves` is the digest's leaf count); see `AntiEntropyOptions`. @defaultValue the engine's */
  antiEntropy: NonNullable<ConfigFile['antiEntropy']>;
  /** Unit: milliseconds. @defaultValue the engine's (60 s) */
  maxDriftMs?: number;
  limits: { maxKeyBytes?: number; maxValueBytes?: number; maxTtlMs?: number; maxBatchOps?: number };
  /** HTTP settings besides the token; see the http layer's `HttpOptions`. */
  http: {
    maxBodyBytes?: number;
    dashboard?: boolean;
    ui?: boolean;
    allowedHosts?: string[];
    idleTimeoutMs?: number;
    headersTimeoutMs?: number;
    requestTimeoutMs?: number;
    maxConnections?: number;
    drainMaxBytes?: number;
    drainTimeoutMs?: number;
  };
  /** Longest graceful close of a node. Unit: milliseconds. @defaultValue the engine's (4000) */
  closeTimeoutMs?: number;
  /** TTL of the node-id lease; 0 disables it. Unit: milliseconds. @defaultValue the engine's (15000) */
  leaseTtlMs?: number;
  /** Log level; when unset the CLI uses `info` (`warn` for the demo, whose output is its timeline). */
  logLevel?: LogLevel;
  /** Where the configuration came from, for the start-up log line. */
  source: ConfigSource;
}

export interface ConfigSource {
  /** The config file read, if any. */
  file?: string;
  /** True when the node list is the built-in A, B, C default (the CLI may start a private Redis for it). */
  embedded: boolean;
  /** When `embedded` on a server: the Redis server whose databases 1–3 the nodes use. */
  redisUrl?: string;
  /** When `embedded` on a Redis Cluster (`REDIS_CLUSTER`): its seed URLs, which all three nodes share. */
  redisCluster?: string[];
  /** Environment variables that were applied. */
  env: string[];
  /** Settings that were given but do not apply to this command. */
  warnings: string[];
}

// ---- loading ----------------------------------------------------------------------------

export interface LoadConfigOptions {
  /** `--config FILE`; wins over `EVENTUAL_CACHE_CONFIG`. */
  file?: string;
  /** Environment to read. @defaultValue `process.env` */
  env?: NodeJS.ProcessEnv;
  /**
   * The node `eventual-cache node` runs (`--id`, else `EVENTUAL_CACHE_NODE_ID`): `PORT` and
   * `EVENTUAL_CACHE_CLOCK_OFFSET_MS` apply to it. Omit for the whole cluster.
   */
  nodeId?: string;
}

/**
 * Reads, merges and validates the configuration. Throws {@link ConfigError} naming every
 * bad field (`config.json: nodes[1].port: expected integer`) or variable.
 */
export function loadConfig(options: LoadConfigOptions = {}): ClusterConfig {
  const env = options.env ?? process.env;
  const source: ConfigSource = { embedded: false, env: [], warnings: [] };
  const file = options.file ?? nonEmpty(env[ENV.config]);
  let raw: ConfigFile = {};
  if (file !== undefined) {
    source.file = file;
    raw = parseConfigFile(file, readConfigFile(file));
  }
  const overlay = readEnv(env, source.env);
  const merged: ConfigFile = {
    ...raw,
    ...overlay.top,
    replication: { ...raw.replication, ...overlay.replication },
    antiEntropy: { ...raw.antiEntropy, ...overlay.antiEntropy },
    limits: { ...raw.limits, ...overlay.limits },
    http: { ...raw.http, ...overlay.http },
  };
  if (overlay.nodes) merged.nodes = overlay.nodes;
  if (overlay.peerRedis && merged.nodes) {
    for (const n of merged.nodes) if (overlay.peerRedis[n.id]) n.peerRedis = { ...n.peerRedis, ...overlay.peerRedis[n.id] };
  }
  if (!merged.nodes) {
    const firstPort = overlay.port ?? DEFAULT_FIRST_PORT;
    source.embedded = true;
    if (overlay.redisCluster) {
      if (nonEmpty(env[ENV.redisUrl])) throw new ConfigError('Invalid environment variables', [`${ENV.redisUrl} and ${ENV.redisCluster}: set one of them (the embedded default runs on one Redis server or one Redis Cluster)`]);
      merged.nodes = embeddedNodes({ cluster: overlay.redisCluster }, firstPort);
      source.redisCluster = overlay.redisCluster;
    } else {
      const base = nonEmpty(env[ENV.redisUrl]) ?? DEFAULT_REDIS_URL;
      merged.nodes = embeddedNodes(base, firstPort);
      source.redisUrl = base;
    }
  } else {
    for (const name of [ENV.redisUrl, ENV.redisCluster]) {
      if (nonEmpty(env[name])) source.warnings.push(`${name} is ignored: it only applies to the embedded default cluster (no config file, no ${ENV.nodes})`);
    }
  }
  const nodeId = options.nodeId ?? nonEmpty(env[ENV.nodeId]);
  if (nodeId !== undefined) {
    const node = merged.nodes.find((n) => n.id === nodeId);
    if (!node) {
      throw new ConfigError('Unknown node', [`${options.nodeId !== undefined ? '--id' : ENV.nodeId}: "${nodeId}" is not one of the configured nodes (${merged.nodes.map((n) => n.id).join(', ')})`]);
    }
    if (overlay.port !== undefined && !source.embedded) node.port = overlay.port;
    if (overlay.clockOffsetMs !== undefined) node.clockOffsetMs = overlay.clockOffsetMs;
  } else {
    if (overlay.port !== undefined && !source.embedded) source.warnings.push(`${ENV.port} is ignored: it sets the port of the one node \`eventual-cache node\` runs`);
    if (overlay.clockOffsetMs !== undefined) source.warnings.push(`${ENV.clockOffsetMs} is ignored: it sets the clock offset of the one node \`eventual-cache node\` runs`);
  }
  // Validate the result again: the environment can break cross-field rules (duplicate ids, ports).
  const checked = configFileSchema.safeParse(merged);
  if (!checked.success) throw new ConfigError(`Invalid configuration${source.env.length ? ` (after applying ${source.env.join(', ')})` : ''}`, formatIssues(checked.error));
  const c = checked.data;
  return {
    nodes: (c.nodes ?? []).map((n) => ({ ...n, clockOffsetMs: n.clockOffsetMs ?? 0 })),
    host: c.host ?? '127.0.0.1',
    prefix: c.prefix ?? 'ec',
    ...(c.clusterPartitions !== undefined ? { clusterPartitions: c.clusterPartitions } : {}),
    ...(c.authToken !== undefined ? { authToken: c.authToken } : {}),
    replication: definedOnly(c.replication ?? {}),
    antiEntropy: definedOnly(c.antiEntropy ?? {}),
    ...(c.tombstoneRetentionMs !== undefined ? { tombstoneRetentionMs: c.tombstoneRetentionMs } : {}),
    ...(c.waitReplicas !== undefined ? { waitReplicas: c.waitReplicas } : {}),
    ...(c.waitTimeoutMs !== undefined ? { waitTimeoutMs: c.waitTimeoutMs } : {}),
    ...(c.maxDriftMs !== undefined ? { maxDriftMs: c.maxDriftMs } : {}),
    ...(c.closeTimeoutMs !== undefined ? { closeTimeoutMs: c.closeTimeoutMs } : {}),
    ...(c.leaseTtlMs !== undefined ? { leaseTtlMs: c.leaseTtlMs } : {}),
    limits: definedOnly(c.limits ?? {}),
    http: definedOnly(c.http ?? {}),
    ...(c.logLevel !== undefined ? { logLevel: c.logLevel } : {}),
    source,
  };
}

/** Validates a config file's parsed JSON; `file` only labels the errors. */
export function parseConfigFile(file: string, text: string): ConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`Config file ${file} is not valid JSON`, [(cause as Error).message]);
  }
  const parsed = configFileSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`Invalid config file ${file}`, formatIssues(parsed.error));
  return parsed.data;
}

function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new ConfigError(`Cannot read config file ${file}`, [`${code}: pass an existing JSON file with --config or ${ENV.config}`]);
  }
}

/**
 * The A, B, C default on ports `firstPort`.. `firstPort + 2`: databases 1–3 of one Redis
 * server, or all three on one Redis Cluster (it has only database 0; every key of a node
 * carries the node's id, so nodes can share it).
 */
export function embeddedNodes(redis: ConfigTarget, firstPort = DEFAULT_FIRST_PORT): NodeConfig[] {
  return EMBEDDED_NODE_IDS.map((id, i) => ({
    id,
    port: firstPort === 0 ? 0 : firstPort + i,
    redis: typeof redis === 'string' ? withDatabase(redis, i + 1) : { cluster: [...redis.cluster] },
    clockOffsetMs: 0,
  }));
}

/** The URL with its database number (the path) replaced; unparseable URLs are returned as they are, for the validator to reject. */
export function withDatabase(redisUrl: string, db: number): string {
  try {
    const url = new URL(redisUrl);
    url.pathname = `/${db}`;
    return url.toString();
  } catch {
    return redisUrl;
  }
}
// ---- to engine options ------------------------------------------------------------------

/** The engine options of node `id`: its own Redis, and every other node as a peer. */
export function toNodeOptions(config: ClusterConfig, id: string): ReplicaNodeOptions {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) throw new ConfigError('Unknown node', [`"${id}" is not one of the configured nodes (${config.nodes.map((n) => n.id).join(', ')})`]);
  return {
    id,
    redis: node.redis,
    // A peer's Redis as this node reaches it: a per-link user if the peer's entry names one.
    peers: config.nodes.filter((n) => n.id !== id).map((n) => ({ id: n.id, redis: n.peerRedis?.[id] ?? n.redis })),
    prefix: config.prefix,
    ...(config.clusterPartitions !== undefined ? { clusterPartitions: config.clusterPartitions } : {}),
    replication: { ...config.replication },
    clockOffsetMs: node.clockOffsetMs,
    ...(config.maxDriftMs !== undefined ? { maxDriftMs: config.maxDriftMs } : {}),
    ...(config.tombstoneRetentionMs !== undefined ? { tombstoneRetentionMs: config.tombstoneRetentionMs } : {}),
    ...(config.waitReplicas !== undefined ? { waitReplicas: config.waitReplicas } : {}),
    ...(config.waitTimeoutMs !== undefined ? { waitTimeoutMs: config.waitTimeoutMs } : {}),
    ...antiEntropyOf(config),
    ...(config.closeTimeoutMs !== undefined ? { closeTimeoutMs: config.closeTimeoutMs } : {}),
    ...(config.leaseTtlMs !== undefined ? { leaseTtlMs: config.leaseTtlMs } : {}),
    limits: { ...config.limits },
  };
}

/** The `antiEntropy` section as engine options: `leaves` and `foldThread` become the store's `digestLeaves` and `digestFoldThread`. */
function antiEntropyOf(config: ClusterConfig): Pick<ReplicaNodeOptions, 'antiEntropy' | 'digestLeaves' | 'digestFoldThread'> {
  const { leaves, foldThread, ...rest } = config.antiEntropy ?? {};
  return { antiEntropy: rest, ...(leaves !== undefined ? { digestLeaves: leaves } : {}), ...(foldThread !== undefined ? { digestFoldThread: foldThread } : {}) };
}

/** Formats a delay for humans: `100 ms`, `100–500 ms (random per job)`. */
export function describeDelay(delay: DelaySpec | undefined): string {
  if (delay === undefined) return `${describeDelay(DEFAULT_REPLICATION_OPTIONS.delayMs)} (default)`;
  return typeof delay === 'number' ? `${delay} ms` : `${delay.min}–${delay.max} ms (random per job)`;
}
