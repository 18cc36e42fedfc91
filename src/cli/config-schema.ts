/**
 * The config file's schema (zod 4) and how its issues are worded: `nodes[1].port:
 * expected integer`. Shared by the file loader and the environment parser.
 */
import { MAX_CLUSTER_PARTITIONS } from '../store/layout.js';
import { z } from 'zod';
import { NODE_ID_PATTERN } from '../clock/timestamp.js';
import { EventualCacheError } from '../errors/index.js';
import { clusterSeedsProblem } from '../node/options.js';
import type { ClusterTarget } from '../store/connections.js';

/** Levels accepted by `logLevel` / `LOG_LEVEL` (pino's, plus `silent`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** HTTP port of the first node when neither the config nor `PORT` names one; the others follow. */
export const DEFAULT_FIRST_PORT = 3001;

/** The configuration cannot be used; `issues` lists each problem as `field: what is wrong`. */
export class ConfigError extends EventualCacheError {
  readonly issues: string[];
  constructor(context: string, issues: string[]) {
    super(`${context}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.issues = issues;
  }
}

const ms = (what = 'a number of milliseconds') => z.number({ error: `expected ${what}` }).refine(Number.isFinite, `expected ${what}`);
const nonNegativeMs = () => ms('a non-negative number of milliseconds').refine((v) => v >= 0, 'expected a non-negative number of milliseconds');
const positiveInt = () => z.number({ error: 'expected integer' }).int({ error: 'expected integer' }).positive({ error: 'expected a positive integer' });
const nonNegativeInt = () => z.number({ error: 'expected integer' }).int({ error: 'expected integer' }).nonnegative({ error: 'expected a non-negative integer' });
const port = z
  .number({ error: 'expected integer' })
  .int({ error: 'expected integer' })
  .min(0, { error: 'expected a port between 0 and 65535' })
  .max(65_535, { error: 'expected a port between 0 and 65535' });
const TARGET_EXPECTED = 'expected a Redis URL such as redis://127.0.0.1:6379/1 (redis:// or rediss://), or a Redis Cluster {"cluster": ["redis://h1:7000", …]}';

/**
 * A node's Redis: a URL, or a Redis Cluster by its seed URLs (`{"cluster": [...]}`, checked
 * by the engine's own rule, {@link clusterSeedsProblem}, so the file and the library agree).
 */
const redisTarget = z.custom<string | ClusterTarget>().superRefine((value, ctx) => {
  if (typeof value === 'string') {
    if (!isRedisUrl(value)) ctx.addIssue({ code: 'custom', message: TARGET_EXPECTED });
    return;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('cluster' in value)) {
    ctx.addIssue({ code: 'custom', message: TARGET_EXPECTED });
    return;
  }
  for (const key of Object.keys(value).filter((k) => k !== 'cluster')) ctx.addIssue({ code: 'custom', path: [key], message: 'unknown field (a cluster is {"cluster": [seed URLs]})' });
  const problem = clusterSeedsProblem(value.cluster);
  if (problem) ctx.addIssue({ code: 'custom', path: problem.index === undefined ? ['cluster'] : ['cluster', problem.index], message: problem.message });
});

const delayRange = z
  .strictObject({ min: nonNegativeMs(), max: nonNegativeMs() })
  .refine((d) => d.max >= d.min, { path: ['max'], error: 'expected max >= min' });
const delaySchema = z.union([nonNegativeMs(), delayRange], {
  error: 'expected a number of milliseconds or {"min": ms, "max": ms}',
});

const nodeSchema = z.strictObject({
  id: z.string({ error: 'expected a string' }).regex(NODE_ID_PATTERN, { error: 'expected 1-64 letters, digits, "_" or "-"' }),
  port,
  redis: redisTarget,
  host: z.string({ error: 'expected a string' }).min(1, { error: 'expected a host name or address' }).optional(),
  url: z
    .string({ error: 'expected a URL such as http://node-b:3002' })
    .refine(isHttpUrl, { error: 'expected an http:// or https:// URL such as http://node-b:3002' })
    .optional(),
  clockOffsetMs: ms().optional(),
  /** How each other node reaches this node's Redis, by peer id: a per-link user (see `eventual-cache acl`). */
  peerRedis: z.record(z.string().regex(NODE_ID_PATTERN, { error: 'expected a node id' }), redisTarget).optional(),
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
    clusterPartitions: z
      .number({ error: 'expected integer' })
      .int({ error: 'expected integer' })
      .min(1, { error: 'expected at least 1' })
      .max(MAX_CLUSTER_PARTITIONS, { error: `expected at most ${MAX_CLUSTER_PARTITIONS}` })
      .optional(),
    authToken: z
      .string({ error: 'expected a string' })
      .regex(/^[\x21-\x7e]+$/, { error: 'expected a non-empty token of visible ASCII characters, no spaces (omit the field to disable auth)' })
      .optional(),
    replication: z
      .strictObject({
        delayMs: delaySchema.optional(),
        maxBatchWindowMs: nonNegativeInt().optional(),
        maxKeysPerJob: positiveInt().optional(),
        concurrency: positiveInt().optional(),
        retryInitialMs: positiveInt().optional(),
        retryMaxMs: positiveInt().optional(),
      })
      .optional(),
    tombstoneRetentionMs: positiveInt().optional(),
    waitReplicas: nonNegativeInt().optional(),
    waitTimeoutMs: positiveInt().optional(),
    antiEntropy: z
      .strictObject({
        enabled: z.boolean({ error: 'expected true or false' }).optional(),
        intervalMs: positiveInt().optional(),
        confirmDelayMs: nonNegativeInt().optional(),
        keysPerStep: positiveInt().optional(),
        stepPauseMs: nonNegativeInt().optional(),
        verifyIntervalMs: nonNegativeInt().optional(),
        collectIntervalMs: positiveInt().optional(),
        foldIntervalMs: positiveInt().optional(),
        leaves: z
          .number({ error: 'expected integer' })
          .int({ error: 'expected integer' })
          .refine((n) => n === 0 || [16, 256, 4096, 65_536, 1_048_576].includes(n), { error: 'expected a power of 16 (16 … 1048576), or 0 to switch digests off' })
          .optional(),
        foldThread: z.boolean({ error: 'expected true or false' }).optional(),
      })
      .optional(),
    maxDriftMs: positiveInt().optional(),
    limits: z
      .strictObject({
        maxKeyBytes: positiveInt().optional(),
        maxValueBytes: positiveInt().optional(),
        maxTtlMs: positiveInt().optional(),
        maxBatchOps: positiveInt().optional(),
      })
      .optional(),
    http: z
      .strictObject({
        maxBodyBytes: positiveInt().optional(),
        dashboard: z.boolean({ error: 'expected true or false' }).optional(),
        ui: z.boolean({ error: 'expected true or false' }).optional(),
        allowedHosts: z.array(z.string().regex(/^[^\s/@]+$/, { error: 'expected a host name without port or scheme' }), { error: 'expected an array of host names' }).optional(),
        idleTimeoutMs: positiveInt().optional(),
        headersTimeoutMs: positiveInt().optional(),
        requestTimeoutMs: positiveInt().optional(),
        maxConnections: positiveInt().optional(),
        drainMaxBytes: positiveInt().optional(),
        drainTimeoutMs: positiveInt().optional(),
      })
      .optional(),
    closeTimeoutMs: z.number({ error: 'expected integer' }).int({ error: 'expected integer' }).min(0, { error: 'expected a non-negative integer' }).optional(),
    leaseTtlMs: z.number({ error: 'expected integer' }).int({ error: 'expected integer' }).min(0, { error: 'expected a non-negative integer (0 disables the lease)' }).optional(),
    logLevel: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).optional(),
  })
  .superRefine((c, ctx) => {
    const ids = new Map<string, number>();
    const endpoints = new Map<string, number>();
    c.nodes?.forEach((n, i) => {
      const twin = ids.get(n.id);
      if (twin !== undefined) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'id'], message: `duplicate node id "${n.id}" (also nodes[${twin}].id)` });
      ids.set(n.id, i);
      for (const [peer, target] of Object.entries(n.peerRedis ?? {})) {
        if (peer === n.id || !c.nodes?.some((m) => m.id === peer)) {
          ctx.addIssue({ code: 'custom', path: ['nodes', i, 'peerRedis', peer], message: `"${peer}" is not another configured node` });
        } else if ((typeof target === 'string') !== (typeof n.redis === 'string')) {
          const kind = typeof n.redis === 'string' ? 'a single Redis server, so a URL' : 'a Redis Cluster, so {"cluster": [seed URLs]}';
          ctx.addIssue({ code: 'custom', path: ['nodes', i, 'peerRedis', peer], message: `"${n.id}"'s Redis is ${kind} is expected here too (how ${peer} reaches that same Redis)` });
        }
      }
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

/** True for `http://` and `https://` URLs with a host. */
export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** True for `redis://` and `rediss://` URLs with a host. */
export function isRedisUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}
