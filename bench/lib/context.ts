/**
 * What every scenario receives: the private Redis, the sizes of the chosen profile and a
 * progress logger. Profiles differ only in sizes and durations, never in what is measured.
 */
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { LocalRedisServer } from '../../src/local-redis/local-redis.js';

/** `full`: the numbers for the report; `quick`: CI smoke, under a minute; `smoke`: the in-test variant. */
export type Profile = 'full' | 'quick' | 'smoke';

export interface BenchSizes {
  /**
   * Rounds of the throughput comparisons (scenarios 1, 2 and 5), alternating ours and the
   * baseline; the median round is reported, so a burst of load from other processes
   * skews one round rather than one side.
   */
  rounds: number;
  localWrite: { warmupMs: number; durationMs: number; keyspace: number; concurrencies: number[] };
  replicated: { writes: number; warmupWrites: number; concurrency: number };
  lag: {
    ratePerSec: number;
    durationMs: number;
    /** Writes issued during the first `warmupMs` are not measured. */
    warmupMs: number;
    delayMs: number;
    /** Length of each raw-BullMQ lateness diagnostic. */
    diagnosticMs: number;
    /** Offered rate of the "idle queue" lateness diagnostic (jobs/s). */
    idleRatePerSec: number;
  };
  hotKeys: { hotKeys: number; spreadKeys: number; writersPerNode: number; durationMs: number };
  http: { connections: number; durationSec: number; warmupSec: number };
  memory: { keys: number; valueBytes: number };
  /**
   * Scenario 7: every node in its own process, `concurrencyPerNode` puts in flight in each.
   * The processes are warmed once (`processWarmupWritesPerNode` local writes each, in one
   * unmeasured run of the largest cluster: a cold process runs slowly for thousands of
   * writes), then every run warms its fresh nodes with `warmupWritesPerNode`.
   */
  scale: {
    nodeCounts: number[];
    writes: number;
    concurrencyPerNode: number;
    processWarmupWritesPerNode: number;
    warmupWritesPerNode: number;
    preload: [small: number, large: number];
  };
  /** Anti-entropy: store sizes compared, differing-key counts repaired, passes timed for idle CPU. */
  antiEntropy: { small: number; large: number; diffs: number[]; equalRuns: number; idlePasses: number };
  /** Scenario 8: closed-loop writes on one node of three, per concurrency. */
  sustained: { durationMs: number; concurrencies: number[]; delayMs: number };
  /**
   * Scenario 9: a peer down while `writes` go to `hotKeys` hot keys and `distinctKeys`
   * distinct keys; then a peer catching up on `catchUpKeys` pending distinct keys.
   */
  outage: { writes: number; hotKeys: number; distinctKeys: number; catchUpKeys: number };
  /**
   * Scenario 11: the replicated run (3 nodes, distinct keys) on a 3-master Redis Cluster
   * store and on a redis-server per node; then local writes with `waitReplicas` 1 and 0 on
   * the cluster, for `latency.durationMs` at each concurrency.
   */
  clusterStore: {
    writes: number;
    warmupWrites: number;
    concurrency: number;
    latency: { warmupMs: number; durationMs: number; keyspace: number; concurrencies: number[] };
  };
  /** Longest a replicated run may take to converge after its writes finished. */
  convergeTimeoutMs: number;
  /** Longest a whole scenario may take. */
  scenarioTimeoutMs: number;
}

export const SIZES: Record<Profile, BenchSizes> = {
  full: {
    rounds: 3,
    localWrite: { warmupMs: 1_000, durationMs: 3_000, keyspace: 100_000, concurrencies: [1, 64] },
    replicated: { writes: 20_000, warmupWrites: 2_000, concurrency: 64 },
    lag: { ratePerSec: 1_000, durationMs: 20_000, warmupMs: 2_000, delayMs: 50, diagnosticMs: 5_000, idleRatePerSec: 20 },
    hotKeys: { hotKeys: 8, spreadKeys: 10_000, writersPerNode: 16, durationMs: 10_000 },
    http: { connections: 32, durationSec: 6, warmupSec: 2 },
    memory: { keys: 20_000, valueBytes: 100 },
    scale: { nodeCounts: [3, 5, 7], writes: 10_000, concurrencyPerNode: 32, processWarmupWritesPerNode: 2_000, warmupWritesPerNode: 300, preload: [10_000, 1_000_000] },
    antiEntropy: { small: 10_000, large: 1_000_000, diffs: [1, 100, 10_000], equalRuns: 9, idlePasses: 10 },
    sustained: { durationMs: 10_000, concurrencies: [1, 4, 64], delayMs: 50 },
    outage: { writes: 50_000, hotKeys: 10, distinctKeys: 5_000, catchUpKeys: 100_000 },
    clusterStore: { writes: 10_000, warmupWrites: 1_000, concurrency: 64, latency: { warmupMs: 1_000, durationMs: 3_000, keyspace: 100_000, concurrencies: [1, 64] } },
    convergeTimeoutMs: 120_000,
    scenarioTimeoutMs: 600_000,
  },
  quick: {
    rounds: 1,
    localWrite: { warmupMs: 300, durationMs: 1_000, keyspace: 20_000, concurrencies: [1, 64] },
    replicated: { writes: 3_000, warmupWrites: 300, concurrency: 64 },
    lag: { ratePerSec: 1_000, durationMs: 2_500, warmupMs: 500, delayMs: 50, diagnosticMs: 800, idleRatePerSec: 20 },
    hotKeys: { hotKeys: 8, spreadKeys: 2_000, writersPerNode: 16, durationMs: 1_500 },
    http: { connections: 32, durationSec: 1.5, warmupSec: 1 },
    memory: { keys: 2_000, valueBytes: 100 },
    scale: { nodeCounts: [3, 5, 7], writes: 1_000, concurrencyPerNode: 32, processWarmupWritesPerNode: 200, warmupWritesPerNode: 100, preload: [10_000, 100_000] },
    antiEntropy: { small: 10_000, large: 100_000, diffs: [1, 100, 1_000], equalRuns: 5, idlePasses: 5 },
    sustained: { durationMs: 1_000, concurrencies: [1, 4, 64], delayMs: 50 },
    outage: { writes: 5_000, hotKeys: 10, distinctKeys: 500, catchUpKeys: 5_000 },
    clusterStore: { writes: 3_000, warmupWrites: 300, concurrency: 64, latency: { warmupMs: 300, durationMs: 1_000, keyspace: 20_000, concurrencies: [1, 64] } },
    convergeTimeoutMs: 30_000,
    scenarioTimeoutMs: 90_000,
  },
  smoke: {
    rounds: 1,
    localWrite: { warmupMs: 100, durationMs: 500, keyspace: 2_000, concurrencies: [1, 64] },
    replicated: { writes: 600, warmupWrites: 60, concurrency: 32 },
    lag: { ratePerSec: 500, durationMs: 1_000, warmupMs: 200, delayMs: 50, diagnosticMs: 500, idleRatePerSec: 20 },
    hotKeys: { hotKeys: 4, spreadKeys: 500, writersPerNode: 4, durationMs: 700 },
    http: { connections: 8, durationSec: 1, warmupSec: 1 },
    memory: { keys: 300, valueBytes: 100 },
    scale: { nodeCounts: [3, 5], writes: 300, concurrencyPerNode: 8, processWarmupWritesPerNode: 20, warmupWritesPerNode: 20, preload: [1_000, 5_000] },
    antiEntropy: { small: 1_000, large: 5_000, diffs: [1, 100], equalRuns: 3, idlePasses: 2 },
    sustained: { durationMs: 500, concurrencies: [4], delayMs: 50 },
    outage: { writes: 1_000, hotKeys: 4, distinctKeys: 100, catchUpKeys: 1_000 },
    clusterStore: { writes: 600, warmupWrites: 60, concurrency: 32, latency: { warmupMs: 100, durationMs: 400, keyspace: 2_000, concurrencies: [1, 64] } },
    convergeTimeoutMs: 20_000,
    scenarioTimeoutMs: 60_000,
  },
};

export interface BenchContext {
  readonly profile: Profile;
  readonly sizes: BenchSizes;
  /** The private redis-server every scenario uses (never the shared 6379). */
  readonly server: LocalRedisServer;
  /** Connection to DB 0 for FLUSHALL, INFO, CONFIG and MEMORY. */
  readonly admin: Redis;
  log(message: string): void;
}

/** CPU used by this process and by redis-server, in µs, at one instant. */
export interface CpuSnapshot {
  processUs: number;
  redisUs: number;
}

export async function cpuSnapshot(admin: Redis): Promise<CpuSnapshot> {
  const usage = process.cpuUsage();
  const info = await admin.info('cpu');
  const field = (name: string) => Number(infoField(info, name) ?? 0);
  return { processUs: usage.user + usage.system, redisUs: (field('used_cpu_user') + field('used_cpu_sys')) * 1e6 };
}

/** CPU spent between two snapshots, in µs, split by process. */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): { processUs: number; redisUs: number; totalUs: number } {
  const processUs = after.processUs - before.processUs;
  const redisUs = after.redisUs - before.redisUs;
  return { processUs, redisUs, totalUs: processUs + redisUs };
}

/** Field of `INFO` output, as a string. */
export function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

export interface Environment {
  node: string;
  redis: string;
  cpus: number;
  cpuModel: string;
  os: string;
  totalMemoryMb: number;
  loadAverage: number[];
  date: string;
}

export async function collectEnvironment(admin: Redis): Promise<Environment> {
  const info = await admin.info('server');
  const cpus = os.cpus();
  return {
    node: process.version,
    redis: infoField(info, 'redis_version') ?? 'unknown',
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
  };
}
