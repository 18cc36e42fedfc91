/**
 * The environment variables of the CLI and how their text is parsed. Every variable maps
 * to one config setting (see `docs/configuration.md`, which a test keeps in step with
 * {@link ENV}); a bad value is reported with the variable's name.
 */
import { NODE_ID_PATTERN } from '../clock/timestamp.js';
import type { DelaySpec } from '../replication/options.js';
import { clusterSeedsProblem } from '../node/options.js';
import type { ClusterTarget } from '../store/connections.js';
import { maskCredentials } from '../store/credentials.js';
import { ConfigError, DEFAULT_FIRST_PORT, isRedisUrl, LOG_LEVELS, type ConfigFile } from './config-schema.js';

/** Every environment variable the loader reads, by the setting it feeds. */
export const ENV = Object.freeze({
  config: 'EVENTUAL_CACHE_CONFIG',
  nodes: 'EVENTUAL_CACHE_NODES',
  nodeId: 'EVENTUAL_CACHE_NODE_ID',
  redisUrl: 'REDIS_URL',
  redisCluster: 'REDIS_CLUSTER',
  port: 'PORT',
  host: 'EVENTUAL_CACHE_HOST',
  prefix: 'EVENTUAL_CACHE_PREFIX',
  clusterPartitions: 'EVENTUAL_CACHE_CLUSTER_PARTITIONS',
  authToken: 'EVENTUAL_CACHE_TOKEN',
  delayMs: 'EVENTUAL_CACHE_DELAY_MS',
  clockOffsetMs: 'EVENTUAL_CACHE_CLOCK_OFFSET_MS',
  maxDriftMs: 'EVENTUAL_CACHE_MAX_DRIFT_MS',
  tombstoneRetentionMs: 'EVENTUAL_CACHE_TOMBSTONE_RETENTION_MS',
  waitReplicas: 'EVENTUAL_CACHE_WAIT_REPLICAS',
  waitTimeoutMs: 'EVENTUAL_CACHE_WAIT_TIMEOUT_MS',
  antiEntropyEnabled: 'EVENTUAL_CACHE_ANTI_ENTROPY',
  antiEntropyIntervalMs: 'EVENTUAL_CACHE_ANTI_ENTROPY_INTERVAL_MS',
  antiEntropyConfirmDelayMs: 'EVENTUAL_CACHE_ANTI_ENTROPY_CONFIRM_DELAY_MS',
  antiEntropyKeysPerStep: 'EVENTUAL_CACHE_ANTI_ENTROPY_KEYS_PER_STEP',
  antiEntropyStepPauseMs: 'EVENTUAL_CACHE_ANTI_ENTROPY_STEP_PAUSE_MS',
  antiEntropyVerifyIntervalMs: 'EVENTUAL_CACHE_ANTI_ENTROPY_VERIFY_INTERVAL_MS',
  antiEntropyCollectIntervalMs: 'EVENTUAL_CACHE_TOMBSTONE_COLLECT_INTERVAL_MS',
  antiEntropyFoldIntervalMs: 'EVENTUAL_CACHE_DIGEST_FOLD_INTERVAL_MS',
  digestLeaves: 'EVENTUAL_CACHE_DIGEST_LEAVES',
  digestFoldThread: 'EVENTUAL_CACHE_DIGEST_FOLD_THREAD',
  maxKeyBytes: 'EVENTUAL_CACHE_MAX_KEY_BYTES',
  maxValueBytes: 'EVENTUAL_CACHE_MAX_VALUE_BYTES',
  maxTtlMs: 'EVENTUAL_CACHE_MAX_TTL_MS',
  maxBatchOps: 'EVENTUAL_CACHE_MAX_BATCH_OPS',
  maxBodyBytes: 'EVENTUAL_CACHE_MAX_BODY_BYTES',
  dashboard: 'EVENTUAL_CACHE_DASHBOARD',
  ui: 'EVENTUAL_CACHE_UI',
  allowedHosts: 'EVENTUAL_CACHE_ALLOWED_HOSTS',
  idleTimeoutMs: 'EVENTUAL_CACHE_IDLE_TIMEOUT_MS',
  headersTimeoutMs: 'EVENTUAL_CACHE_HEADERS_TIMEOUT_MS',
  requestTimeoutMs: 'EVENTUAL_CACHE_REQUEST_TIMEOUT_MS',
  maxConnections: 'EVENTUAL_CACHE_MAX_CONNECTIONS',
  drainMaxBytes: 'EVENTUAL_CACHE_DRAIN_MAX_BYTES',
  drainTimeoutMs: 'EVENTUAL_CACHE_DRAIN_TIMEOUT_MS',
  closeTimeoutMs: 'EVENTUAL_CACHE_CLOSE_TIMEOUT_MS',
  leaseTtlMs: 'EVENTUAL_CACHE_LEASE_TTL_MS',
  peerRedis: 'EVENTUAL_CACHE_PEER_REDIS',
  logLevel: 'LOG_LEVEL',
});

/** What the environment sets; `port` and `clockOffsetMs` apply to one node only. */
export interface EnvOverlay {
  top: Partial<ConfigFile>;
  replication: NonNullable<ConfigFile['replication']>;
  antiEntropy: NonNullable<ConfigFile['antiEntropy']>;
  limits: NonNullable<ConfigFile['limits']>;
  http: NonNullable<ConfigFile['http']>;
  nodes?: NonNullable<ConfigFile['nodes']>;
  /** `EVENTUAL_CACHE_PEER_REDIS`: node id -> peer id -> URL or cluster. */
  peerRedis?: Record<string, Record<string, string | ClusterTarget>>;
  /** `REDIS_CLUSTER`: the seed URLs of the embedded default's Redis Cluster. */
  redisCluster?: string[];
  port?: number;
  clockOffsetMs?: number;
}

/** Parses one variable's text: the value, or what is wrong with it. */
type Parse<T> = (text: string) => { value: T } | { error: string };

const check =
  <T>(parse: (text: string) => T | undefined, expected: string): Parse<T> =>
  (text) => {
    const value = parse(text);
    return value === undefined ? { error: expected } : { value };
  };
const asString: Parse<string> = (text) => ({ value: text });
const asInteger = check(parseInteger, 'expected an integer');
const asPositiveInteger = check((t) => positive(parseInteger(t)), 'expected a positive integer');
const asNonNegativeInteger = check((t) => inRange(parseInteger(t), 0, Number.MAX_SAFE_INTEGER), 'expected a non-negative integer');
const asPort = check((t) => inRange(parseInteger(t), 0, 65_535), 'expected a port between 0 and 65535');
const asDelay = check(parseDelay, 'expected milliseconds ("100") or a range ("100-500")');
const BOOLEANS = new Map([['true', true], ['false', false], ['1', true], ['0', false]]);
const asBoolean = check((t) => BOOLEANS.get(t.toLowerCase()), 'expected true or false');
const asLevel = check((t) => LOG_LEVELS.find((l) => l === t), `expected one of ${LOG_LEVELS.join(', ')}`);
const asHostList: Parse<string[]> = (text) => {
  const hosts = text.split(',').map((h) => h.trim()).filter((h) => h !== '');
  return hosts.every((h) => /^[^\s/@]+$/.test(h)) ? { value: hosts } : { error: 'expected comma-separated host names without port or scheme' };
};
/** `A>B=redis://…,A>C=cluster:redis://…|redis://…`: how B (C) reaches A's Redis. */
const asPeerRedis: Parse<Record<string, Record<string, string | ClusterTarget>>> = (text) => {
  const out: Record<string, Record<string, string | ClusterTarget>> = {};
  for (const [i, entry] of text.split(',').map((e) => e.trim()).filter((e) => e !== '').entries()) {
    const m = /^([A-Za-z0-9_-]{1,64})>([A-Za-z0-9_-]{1,64})=(.+)$/.exec(entry);
    if (!m) return { error: `entry ${i + 1}: expected NODE>PEER=REDIS_URL or NODE>PEER=cluster:URL|URL… (how PEER reaches NODE's Redis)` };
    const target = parseTarget(m[3] as string);
    if (typeof target === 'object' && 'error' in target) return { error: `entry ${i + 1} ("${m[1]}>${m[2]}"): ${target.error}` };
    (out[m[1] as string] ??= {})[m[2] as string] = target;
  }
  return { value: out };
};
/** `REDIS_CLUSTER`: comma-separated seed URLs. */
const asSeedList: Parse<string[]> = (text) => {
  const seeds = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const problem = clusterSeedsProblem(seeds);
  if (!problem) return { value: seeds };
  return { error: problem.index === undefined ? `expected comma-separated seed URLs such as redis://h1:7000,redis://h2:7001` : `seed ${problem.index + 1}: ${problem.message}` };
};
const asNodes: Parse<NonNullable<ConfigFile['nodes']>> = (text) => {
  const nodes = parseNodeList(text);
  return typeof nodes === 'string' ? { error: nodes } : { value: nodes };
};

/** Reads every variable, recording the names applied in `applied`; throws {@link ConfigError} naming each bad one. */
export function readEnv(env: NodeJS.ProcessEnv, applied: string[]): EnvOverlay {
  const issues: string[] = [];
  const take = <T>(name: string, parse: Parse<T>): T | undefined => {
    const text = nonEmpty(env[name]);
    if (text === undefined) return undefined;
    const parsed = parse(text);
    if ('error' in parsed) {
      issues.push(`${name}: ${parsed.error}`);
      return undefined;
    }
    applied.push(name);
    return parsed.value;
  };
  const overlay: EnvOverlay = {
    top: definedOnly({
      host: take(ENV.host, asString),
      prefix: take(ENV.prefix, asString),
      clusterPartitions: take(ENV.clusterPartitions, asPositiveInteger),
      authToken: take(ENV.authToken, asString),
      maxDriftMs: take(ENV.maxDriftMs, asPositiveInteger),
      closeTimeoutMs: take(ENV.closeTimeoutMs, asNonNegativeInteger),
      leaseTtlMs: take(ENV.leaseTtlMs, asNonNegativeInteger),
      tombstoneRetentionMs: take(ENV.tombstoneRetentionMs, asPositiveInteger),
      waitReplicas: take(ENV.waitReplicas, asNonNegativeInteger),
      waitTimeoutMs: take(ENV.waitTimeoutMs, asPositiveInteger),
      logLevel: take(ENV.logLevel, asLevel),
    }),
    replication: definedOnly({ delayMs: take(ENV.delayMs, asDelay) }),
    antiEntropy: definedOnly({
      enabled: take(ENV.antiEntropyEnabled, asBoolean),
      intervalMs: take(ENV.antiEntropyIntervalMs, asPositiveInteger),
      confirmDelayMs: take(ENV.antiEntropyConfirmDelayMs, asNonNegativeInteger),
      keysPerStep: take(ENV.antiEntropyKeysPerStep, asPositiveInteger),
      stepPauseMs: take(ENV.antiEntropyStepPauseMs, asNonNegativeInteger),
      verifyIntervalMs: take(ENV.antiEntropyVerifyIntervalMs, asNonNegativeInteger),
      collectIntervalMs: take(ENV.antiEntropyCollectIntervalMs, asPositiveInteger),
      foldIntervalMs: take(ENV.antiEntropyFoldIntervalMs, asPositiveInteger),
      leaves: take(ENV.digestLeaves, asNonNegativeInteger),
      foldThread: take(ENV.digestFoldThread, asBoolean),
    }),
    limits: definedOnly({
      maxKeyBytes: take(ENV.maxKeyBytes, asPositiveInteger),
      maxValueBytes: take(ENV.maxValueBytes, asPositiveInteger),
      maxTtlMs: take(ENV.maxTtlMs, asPositiveInteger),
      maxBatchOps: take(ENV.maxBatchOps, asPositiveInteger),
    }),
    http: definedOnly({
      maxBodyBytes: take(ENV.maxBodyBytes, asPositiveInteger),
      dashboard: take(ENV.dashboard, asBoolean),
      ui: take(ENV.ui, asBoolean),
      allowedHosts: take(ENV.allowedHosts, asHostList),
      idleTimeoutMs: take(ENV.idleTimeoutMs, asPositiveInteger),
      headersTimeoutMs: take(ENV.headersTimeoutMs, asPositiveInteger),
      requestTimeoutMs: take(ENV.requestTimeoutMs, asPositiveInteger),
      maxConnections: take(ENV.maxConnections, asPositiveInteger),
      drainMaxBytes: take(ENV.drainMaxBytes, asPositiveInteger),
      drainTimeoutMs: take(ENV.drainTimeoutMs, asPositiveInteger),
    }),
    ...definedOnly({
      nodes: take(ENV.nodes, asNodes),
      peerRedis: take(ENV.peerRedis, asPeerRedis),
      redisCluster: take(ENV.redisCluster, asSeedList),
      port: take(ENV.port, asPort),
      clockOffsetMs: take(ENV.clockOffsetMs, asInteger),
    }),
  };
  if (issues.length > 0) throw new ConfigError('Invalid environment variables', issues);
  return overlay;
}

/**
 * `EVENTUAL_CACHE_NODES`: comma-separated `ID[:PORT]=REDIS`, e.g.
 * `A:3001=redis://redis-a:6379/0,B:3002=cluster:redis://b1:7000|redis://b2:7000`. `REDIS`
 * is a URL, or `cluster:` and a Redis Cluster's seed URLs separated by `|` (a character a
 * URL never holds unencoded, unlike `,`). A missing port is 3001 + the entry's position.
 */
export function parseNodeList(value: string): NonNullable<ConfigFile['nodes']> | string {
  const nodes: NonNullable<ConfigFile['nodes']> = [];
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const [i, entry] of entries.entries()) {
    const eq = entry.indexOf('=');
    if (eq <= 0) return `entry ${i + 1} ("${maskCredentials(entry)}"): expected ID[:PORT]=REDIS_URL or ID[:PORT]=cluster:URL|URL…`;
    const [id = '', portText] = entry.slice(0, eq).split(':');
    let nodePort = DEFAULT_FIRST_PORT + i;
    if (portText !== undefined) {
      const p = parseInteger(portText);
      if (p === undefined || p < 0 || p > 65_535) return `entry ${i + 1} ("${id}"): expected a port between 0 and 65535 after "${id}:"`;
      nodePort = p;
    }
    if (!NODE_ID_PATTERN.test(id)) return `entry ${i + 1}: node id "${id}" must be 1-64 letters, digits, "_" or "-"`;
    const redis = parseTarget(entry.slice(eq + 1));
    if (typeof redis === 'object' && 'error' in redis) return `entry ${i + 1} ("${id}"): ${redis.error}`;
    nodes.push({ id, port: nodePort, redis });
  }
  if (nodes.length === 0) return 'expected at least one ID[:PORT]=REDIS_URL entry';
  return nodes;
}

/** Marks a Redis Cluster in the environment's `…=REDIS` forms: `cluster:URL|URL…`. */
export const CLUSTER_MARKER = 'cluster:';

/**
 * A Redis as the environment writes it: a URL, or `cluster:URL|URL…` for a Redis Cluster
 * (seeds checked like the config file's); `{error}` says what is wrong, without credentials.
 */
export function parseTarget(text: string): string | ClusterTarget | { error: string } {
  if (!text.startsWith(CLUSTER_MARKER)) {
    return isRedisUrl(text) ? text : { error: 'expected a Redis URL such as redis://127.0.0.1:6379/1, or cluster:URL|URL… for a Redis Cluster' };
  }
  const seeds = text.slice(CLUSTER_MARKER.length).split('|').map((s) => s.trim()).filter((s) => s !== '');
  const problem = clusterSeedsProblem(seeds);
  if (!problem) return { cluster: seeds };
  return { error: problem.index === undefined ? 'expected cluster:URL|URL… with at least one seed URL such as redis://h1:7000' : `cluster seed ${problem.index + 1}: ${problem.message}` };
}

/** `"100"` -> 100, `"100-500"` -> `{min: 100, max: 500}`. */
export function parseDelay(value: string): DelaySpec | undefined {
  const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(value);
  if (range) {
    const min = Number(range[1]);
    const max = Number(range[2]);
    return max >= min ? { min, max } : undefined;
  }
  const n = Number(value.trim());
  return value.trim() !== '' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function parseInteger(value: string): number | undefined {
  const v = value.trim();
  return /^-?\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : undefined;
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && n > 0 ? n : undefined;
}

function inRange(n: number | undefined, min: number, max: number): number | undefined {
  return n !== undefined && n >= min && n <= max ? n : undefined;
}

/** The trimmed value, or `undefined` when unset or blank (an empty variable counts as unset). */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** A copy without the `undefined` fields. */
export function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
