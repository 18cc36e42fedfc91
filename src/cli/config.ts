/**
 * The CLI's configuration: a JSON file, environment variables and built-in defaults, in
 * that order of increasing precedence (file < environment < command-line flags), validated
 * with zod into messages that name the offending field or variable.
 *
 * With no node list anywhere (no file, no `EVENTUAL_CACHE_NODES`) the CLI runs the
 * **embedded default**: nodes A, B, C on ports 3001–3003 with Redis databases 1–3 of
 * `REDIS_URL` (or `redis://127.0.0.1:6379`). Every variable is documented in
 * `docs/configuration.md`; keep the two in step (`ENV` below is the list the docs and the
 * compose test check against).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { NODE_ID_PATTERN } from '../clock/timestamp.js';
import { EventualCacheError } from '../errors/index.js';
import type { ReplicaNodeOptions } from '../node/options.js';
import { DEFAULT_REPLICATION_OPTIONS, type DelaySpec } from '../replication/options.js';

/** Levels accepted by `logLevel` / `LOG_LEVEL` (pino's, plus `silent`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Every environment variable the loader reads, by the setting it feeds. */
export const ENV = Object.freeze({
  config: 'EVENTUAL_CACHE_CONFIG',
  nodes: 'EVENTUAL_CACHE_NODES',
  nodeId: 'EVENTUAL_CACHE_NODE_ID',
  redisUrl: 'REDIS_URL',
  port: 'PORT',
  host: 'EVENTUAL_CACHE_HOST',
  prefix: 'EVENTUAL_CACHE_PREFIX',
  authToken: 'EVENTUAL_CACHE_TOKEN',
  delayMs: 'EVENTUAL_CACHE_DELAY_MS',
  clockOffsetMs: 'EVENTUAL_CACHE_CLOCK_OFFSET_MS',
  maxDriftMs: 'EVENTUAL_CACHE_MAX_DRIFT_MS',
  tombstoneRetentionMs: 'EVENTUAL_CACHE_TOMBSTONE_RETENTION_MS',
  maxKeyBytes: 'EVENTUAL_CACHE_MAX_KEY_BYTES',
  maxValueBytes: 'EVENTUAL_CACHE_MAX_VALUE_BYTES',
  maxTtlMs: 'EVENTUAL_CACHE_MAX_TTL_MS',
  maxBodyBytes: 'EVENTUAL_CACHE_MAX_BODY_BYTES',
  dashboard: 'EVENTUAL_CACHE_DASHBOARD',
  logLevel: 'LOG_LEVEL',
});

/** Redis server of the embedded default when `REDIS_URL` is not set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** HTTP port of the first node when neither the config nor `PORT` names one; the others follow. */
export const DEFAULT_FIRST_PORT = 3001;
/** Node ids of the embedded default, on Redis databases 1, 2 and 3. */
export const EMBEDDED_NODE_IDS = Object.freeze(['A', 'B', 'C']);

/** One node of the cluster as the CLI runs it. */
export interface NodeConfig {
  /** Node id: letters, digits, `_` or `-`, at most 64 characters. */
  id: string;
  /** HTTP port (0 picks a free one). */
  port: number;
  /** This node's Redis URL (`redis://[user:pass@]host:port/db`, `rediss://` for TLS). */
  redis: string;
  /** Interface the HTTP server binds; falls back to the cluster-wide `host`. */
  host?: string;
  /**
   * Shifts this node's clock, to demonstrate skew. Unit: milliseconds.
   * @defaultValue 0
   */
  clockOffsetMs: number;
}

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
  /** Bearer token every endpoint but `/health` and `/metrics` requires; none when undefined. */
  authToken?: string;
  replication: ReplicationConfig;
  /** Unit: milliseconds. @defaultValue the engine's (24 h) */
  tombstoneRetentionMs?: number;
  /** Unit: milliseconds. @defaultValue the engine's (60 s) */
  maxDriftMs?: number;
  limits: { maxKeyBytes?: number; maxValueBytes?: number; maxTtlMs?: number };
  /** HTTP settings besides the token; see the http layer's `HttpOptions`. */
  http: { maxBodyBytes?: number; dashboard?: boolean };
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
  /** When `embedded`: the Redis server whose databases 1–3 the nodes use. */
  redisUrl?: string;
  /** Environment variables that were applied. */
  env: string[];
  /** Settings that were given but do not apply to this command. */
  warnings: string[];
}

/** The configuration cannot be used; `issues` lists each problem as `field: what is wrong`. */
export class ConfigError extends EventualCacheError {
  readonly issues: string[];
  constructor(context: string, issues: string[]) {
    super(`${context}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.issues = issues;
  }
}

// ---- schema -----------------------------------------------------------------------------

const ms = (what = 'a number of milliseconds') => z.number({ error: `expected ${what}` }).refine(Number.isFinite, `expected ${what}`);
const nonNegativeMs = () => ms('a non-negative number of milliseconds').refine((v) => v >= 0, 'expected a non-negative number of milliseconds');
const positiveInt = () => z.number({ error: 'expected integer' }).int({ error: 'expected integer' }).positive({ error: 'expected a positive integer' });
const port = z
  .number({ error: 'expected integer' })
  .int({ error: 'expected integer' })
  .min(0, { error: 'expected a port between 0 and 65535' })
  .max(65_535, { error: 'expected a port between 0 and 65535' });
const redisUrl = z.string({ error: 'expected a Redis URL such as redis://127.0.0.1:6379/1' }).refine(isRedisUrl, {
  error: 'expected a Redis URL such as redis://127.0.0.1:6379/1 (redis:// or rediss://)',
});

const delaySchema = z.union([nonNegativeMs(), z.strictObject({ min: nonNegativeMs(), max: nonNegativeMs() })], {
  error: 'expected a number of milliseconds or {"min": ms, "max": ms}',
});

const nodeSchema = z.strictObject({
  id: z.string({ error: 'expected a string' }).regex(NODE_ID_PATTERN, { error: 'expected 1-64 letters, digits, "_" or "-"' }),
  port,
  redis: redisUrl,
  host: z.string({ error: 'expected a string' }).min(1, { error: 'expected a host name or address' }).optional(),
  clockOffsetMs: ms().optional(),
});

/** The config file as written; every field but `nodes` entries' `id`, `port`, `redis` is optional. */
export const configFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    nodes: z.array(nodeSchema, { error: 'expected an array of {"id", "port", "redis"}' }).min(1, { error: 'expected at least one node' }).optional(),
    host: z.string({ error: 'expected a string' }).min(1, { error: 'expected a host name or address' }).optional(),
    prefix: z
      .string({ error: 'expected a string' })
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected 1-64 letters, digits, "_", "." or "-"' })
      .optional(),
    authToken: z
      .string({ error: 'expected a string' })
      .regex(/^[\x21-\x7e]+$/, { error: 'expected a non-empty token of visible ASCII characters, no spaces (omit the field to disable auth)' })
      .optional(),
    replication: z
      .strictObject({
        delayMs: delaySchema.optional(),
        maxKeysPerJob: positiveInt().optional(),
        concurrency: positiveInt().optional(),
        retryInitialMs: positiveInt().optional(),
        retryMaxMs: positiveInt().optional(),
      })
      .optional(),
    tombstoneRetentionMs: positiveInt().optional(),
    maxDriftMs: positiveInt().optional(),
    limits: z
      .strictObject({ maxKeyBytes: positiveInt().optional(), maxValueBytes: positiveInt().optional(), maxTtlMs: positiveInt().optional() })
      .optional(),
    http: z.strictObject({ maxBodyBytes: positiveInt().optional(), dashboard: z.boolean({ error: 'expected true or false' }).optional() }).optional(),
    logLevel: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).optional(),
  })
  .superRefine((c, ctx) => {
    const d = c.replication?.delayMs;
    if (typeof d === 'object' && d.max < d.min) {
      ctx.addIssue({ code: 'custom', path: ['replication', 'delayMs', 'max'], message: 'expected max >= min' });
    }
    const ids = new Map<string, number>();
    const endpoints = new Map<string, number>();
    c.nodes?.forEach((n, i) => {
      const twin = ids.get(n.id);
      if (twin !== undefined) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'id'], message: `duplicate node id "${n.id}" (also nodes[${twin}].id)` });
      ids.set(n.id, i);
      if (n.port === 0) return;
      const endpoint = `${n.host ?? c.host ?? ''}:${n.port}`;
      const other = endpoints.get(endpoint);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'port'], message: `port ${n.port} is already used by nodes[${other}]` });
      endpoints.set(endpoint, i);
    });
  });

export type ConfigFile = z.infer<typeof configFileSchema>;

/** Turns zod issues into `nodes[1].port: expected integer` lines. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown field`).join('; ');
    }
    const where = formatPath(issue.path);
    return `${where || '(top level)'}: ${issue.message}`;
  });
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

function isRedisUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
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
  const overlay = readEnv(env, source);
  const merged: ConfigFile = {
    ...raw,
    ...overlay.top,
    replication: { ...raw.replication, ...overlay.replication },
    limits: { ...raw.limits, ...overlay.limits },
    http: { ...raw.http, ...overlay.http },
  };
  if (overlay.nodes) merged.nodes = overlay.nodes;
  if (!merged.nodes) {
    const base = nonEmpty(env[ENV.redisUrl]) ?? DEFAULT_REDIS_URL;
    const firstPort = overlay.port ?? DEFAULT_FIRST_PORT;
    merged.nodes = embeddedNodes(base, firstPort);
    source.embedded = true;
    source.redisUrl = base;
  } else {
    if (env[ENV.redisUrl]) source.warnings.push(`${ENV.redisUrl} is ignored: it only applies to the embedded default cluster (no config file, no ${ENV.nodes})`);
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
    ...(c.authToken !== undefined ? { authToken: c.authToken } : {}),
    replication: definedOnly(c.replication ?? {}),
    ...(c.tombstoneRetentionMs !== undefined ? { tombstoneRetentionMs: c.tombstoneRetentionMs } : {}),
    ...(c.maxDriftMs !== undefined ? { maxDriftMs: c.maxDriftMs } : {}),
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

/** The A, B, C default: databases 1–3 of one Redis server, ports `firstPort`.. `firstPort + 2`. */
export function embeddedNodes(redisUrl: string, firstPort = DEFAULT_FIRST_PORT): NodeConfig[] {
  return EMBEDDED_NODE_IDS.map((id, i) => ({ id, port: firstPort === 0 ? 0 : firstPort + i, redis: withDatabase(redisUrl, i + 1), clockOffsetMs: 0 }));
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

interface EnvOverlay {
  top: Partial<ConfigFile>;
  replication: NonNullable<ConfigFile['replication']>;
  limits: NonNullable<ConfigFile['limits']>;
  http: NonNullable<ConfigFile['http']>;
  nodes?: NonNullable<ConfigFile['nodes']>;
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
const asPort = check((t) => inRange(parseInteger(t), 0, 65_535), 'expected a port between 0 and 65535');
const asDelay = check(parseDelay, 'expected milliseconds ("100") or a range ("100-500")');
const asBoolean = check((t) => ({ true: true, false: false, '1': true, '0': false })[t.toLowerCase()], 'expected true or false');
const asLevel = check((t) => LOG_LEVELS.find((l) => l === t), `expected one of ${LOG_LEVELS.join(', ')}`);
const asNodes: Parse<NonNullable<ConfigFile['nodes']>> = (text) => {
  const nodes = parseNodeList(text);
  return typeof nodes === 'string' ? { error: nodes } : { value: nodes };
};

function readEnv(env: NodeJS.ProcessEnv, source: ConfigSource): EnvOverlay {
  const issues: string[] = [];
  const take = <T>(name: string, parse: Parse<T>): T | undefined => {
    const text = nonEmpty(env[name]);
    if (text === undefined) return undefined;
    const parsed = parse(text);
    if ('error' in parsed) {
      issues.push(`${name}: ${parsed.error}`);
      return undefined;
    }
    source.env.push(name);
    return parsed.value;
  };
  const overlay: EnvOverlay = {
    top: definedOnly({
      host: take(ENV.host, asString),
      prefix: take(ENV.prefix, asString),
      authToken: take(ENV.authToken, asString),
      maxDriftMs: take(ENV.maxDriftMs, asPositiveInteger),
      tombstoneRetentionMs: take(ENV.tombstoneRetentionMs, asPositiveInteger),
      logLevel: take(ENV.logLevel, asLevel),
    }),
    replication: definedOnly({ delayMs: take(ENV.delayMs, asDelay) }),
    limits: definedOnly({
      maxKeyBytes: take(ENV.maxKeyBytes, asPositiveInteger),
      maxValueBytes: take(ENV.maxValueBytes, asPositiveInteger),
      maxTtlMs: take(ENV.maxTtlMs, asPositiveInteger),
    }),
    http: definedOnly({
      maxBodyBytes: take(ENV.maxBodyBytes, asPositiveInteger),
      dashboard: take(ENV.dashboard, asBoolean),
    }),
    ...definedOnly({
      nodes: take(ENV.nodes, asNodes),
      port: take(ENV.port, asPort),
      clockOffsetMs: take(ENV.clockOffsetMs, asInteger),
    }),
  };
  if (issues.length > 0) throw new ConfigError('Invalid environment variables', issues);
  return overlay;
}

/**
 * `EVENTUAL_CACHE_NODES`: comma-separated `ID[:PORT]=REDIS_URL`, e.g.
 * `A:3001=redis://redis-a:6379/0,B:3002=redis://redis-b:6379/0`. A missing port is
 * 3001 + the entry's position.
 */
export function parseNodeList(value: string): NonNullable<ConfigFile['nodes']> | string {
  const nodes: NonNullable<ConfigFile['nodes']> = [];
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const [i, entry] of entries.entries()) {
    const eq = entry.indexOf('=');
    if (eq <= 0) return `entry ${i + 1} ("${entry}"): expected ID[:PORT]=REDIS_URL`;
    const [id = '', portText] = entry.slice(0, eq).split(':');
    const redis = entry.slice(eq + 1);
    let nodePort = DEFAULT_FIRST_PORT + i;
    if (portText !== undefined) {
      const p = parseInteger(portText);
      if (p === undefined || p < 0 || p > 65_535) return `entry ${i + 1} ("${id}"): expected a port between 0 and 65535 after "${id}:"`;
      nodePort = p;
    }
    if (!NODE_ID_PATTERN.test(id)) return `entry ${i + 1}: node id "${id}" must be 1-64 letters, digits, "_" or "-"`;
    if (!isRedisUrl(redis)) return `entry ${i + 1} ("${id}"): expected a Redis URL such as redis://127.0.0.1:6379/1 after "="`;
    nodes.push({ id, port: nodePort, redis });
  }
  if (nodes.length === 0) return 'expected at least one ID[:PORT]=REDIS_URL entry';
  return nodes;
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

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- to engine options ------------------------------------------------------------------

/** The engine options of node `id`: its own Redis, and every other node as a peer. */
export function toNodeOptions(config: ClusterConfig, id: string): ReplicaNodeOptions {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) throw new ConfigError('Unknown node', [`"${id}" is not one of the configured nodes (${config.nodes.map((n) => n.id).join(', ')})`]);
  return {
    id,
    redis: node.redis,
    peers: config.nodes.filter((n) => n.id !== id).map((n) => ({ id: n.id, redis: n.redis })),
    prefix: config.prefix,
    replication: { ...config.replication },
    clockOffsetMs: node.clockOffsetMs,
    ...(config.maxDriftMs !== undefined ? { maxDriftMs: config.maxDriftMs } : {}),
    ...(config.tombstoneRetentionMs !== undefined ? { tombstoneRetentionMs: config.tombstoneRetentionMs } : {}),
    limits: { ...config.limits },
  };
}

/** Formats a delay for humans: `100 ms`, `100–500 ms (random per job)`. */
export function describeDelay(delay: DelaySpec | undefined): string {
  if (delay === undefined) return `${describeDelay(DEFAULT_REPLICATION_OPTIONS.delayMs)} (default)`;
  return typeof delay === 'number' ? `${delay} ms` : `${delay.min}–${delay.max} ms (random per job)`;
}
