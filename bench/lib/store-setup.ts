/**
 * Where a replicated run's nodes keep their stores, and how the run empties that Redis and
 * accounts for it: the bench's usual private server (a database per node), one private
 * `redis-server` per node, or one private Redis Cluster that every node shares (their
 * keys apart by node id, as on a real shared cluster).
 *
 * CPU is summed over every Redis process of the setup (a cluster's replicas included:
 * feeding them is part of what a cluster store costs); commands over the processes that
 * serve clients (a cluster's masters), so both kinds of store count the same commands.
 */
import { Redis } from 'ioredis';
import { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import type { LocalRedisCluster } from '../../src/local-redis/local-cluster.js';
import type { RedisTarget } from '../../src/store/connections.js';
import { cpuSnapshot, type BenchContext, type CpuSnapshot } from './context.js';
import { commandStats, resetServer, type CommandStats } from './redis-stats.js';

export interface StoreSetup {
  /** In words, for reports. */
  readonly description: string;
  /** Redis target of node `i`'s store. */
  target(i: number): RedisTarget;
  /** The nodes' `clusterPartitions` on this setup (the engine's default when absent). */
  readonly clusterPartitions?: number;
  /** Empties every store and restarts the statistics of every Redis process. */
  reset(): Promise<void>;
  /** This process' CPU and that of every Redis process of the setup, summed. */
  cpu(): Promise<CpuSnapshot>;
  /** Commands the setup's client-serving Redis processes ran, summed per command. */
  commands(): Promise<CommandStats>;
  /** Runs just before the measured writes start (after the warm-up converged). */
  beforeMeasured?(): Promise<void>;
  /** Runs once the measured writes converged, before the nodes close. */
  afterMeasured?(): Promise<void>;
}

/** The bench's usual setup: node i on database `1 + i` of the private server. */
export function serverDatabases(ctx: BenchContext): StoreSetup {
  return {
    description: 'one private redis-server, a database per node',
    target: (i) => ctx.server.url(1 + i),
    reset: () => resetServer(ctx.admin),
    cpu: () => cpuSnapshot(ctx.admin),
    commands: () => commandStats(ctx.admin),
  };
}

/** Sums CPU over `admins` (one connection per Redis process). */
async function cpuOf(admins: readonly Redis[]): Promise<CpuSnapshot> {
  const snapshots = await Promise.all(admins.map((a) => cpuSnapshot(a)));
  const usage = process.cpuUsage();
  return { processUs: usage.user + usage.system, redisUs: snapshots.reduce((sum, s) => sum + s.redisUs, 0) };
}

/** Sums `INFO commandstats` over `admins`, command by command. */
async function commandsOf(admins: readonly Redis[]): Promise<CommandStats> {
  const out: CommandStats = new Map();
  for (const stats of await Promise.all(admins.map((a) => commandStats(a)))) {
    for (const [cmd, v] of stats) {
      const sum = out.get(cmd) ?? { calls: 0, usec: 0 };
      out.set(cmd, { calls: sum.calls + v.calls, usec: sum.usec + v.usec });
    }
  }
  return out;
}

function adminOf(port: number): Redis {
  return new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
}

/** One private `redis-server` per node (started here, removed by {@link destroy}). */
export class StandaloneServers implements StoreSetup {
  readonly description: string;
  private readonly servers: LocalRedisServer[];
  private readonly admins: Redis[];

  private constructor(servers: LocalRedisServer[]) {
    this.servers = servers;
    this.admins = servers.map((s) => adminOf(s.port));
    this.description = `${servers.length} private redis-servers, one per node (database 0)`;
  }

  static async start(count: number): Promise<StandaloneServers> {
    const started = await Promise.allSettled(Array.from({ length: count }, () => LocalRedisServer.start()));
    const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(servers.map((s) => s.destroy()));
      throw failed.reason;
    }
    return new StandaloneServers(servers);
  }

  target(i: number): RedisTarget {
    const server = this.servers[i];
    if (!server) throw new RangeError(`node ${i}: only ${this.servers.length} servers were started`);
    return server.url(0);
  }

  async reset(): Promise<void> {
    await Promise.all(this.admins.map((a) => resetServer(a)));
  }

  cpu(): Promise<CpuSnapshot> {
    return cpuOf(this.admins);
  }

  commands(): Promise<CommandStats> {
    return commandsOf(this.admins);
  }

  async destroy(): Promise<void> {
    this.admins.forEach((a) => a.disconnect());
    await Promise.all(this.servers.map((s) => s.destroy()));
  }
}

/** How a cluster's load spread over its masters during the measured part of a run. */
export interface MasterSpread {
  /** Keys matching `<prefix>:*` on each master (by port), once the run converged. */
  keys: Map<number, number>;
  /** Commands each master ran from the first measured write to convergence (introspection left out). */
  commands: Map<number, number>;
}

/**
 * Every node on one shared Redis Cluster. `prefix` is the nodes' key prefix: the keys of a
 * run are counted per master with the pattern `<prefix>:*`.
 */
export class ClusterStore implements StoreSetup {
  readonly description: string;
  /** The spread of the last run, set by {@link afterMeasured}. */
  spread: MasterSpread | undefined;
  private readonly rc: LocalRedisCluster;
  private readonly prefix: string;
  private readonly admins = new Map<number, Redis>();

  readonly clusterPartitions: number | undefined;

  constructor(rc: LocalRedisCluster, prefix: string, description: string, clusterPartitions?: number) {
    this.rc = rc;
    this.prefix = prefix;
    this.description = description;
    this.clusterPartitions = clusterPartitions;
  }

  target(): RedisTarget {
    return this.rc.target;
  }

  private admin(port: number): Redis {
    let a = this.admins.get(port);
    if (!a) {
      a = adminOf(port);
      this.admins.set(port, a);
    }
    return a;
  }

  private async masterAdmins(): Promise<Redis[]> {
    return (await this.rc.masters()).map((m) => this.admin(m.port));
  }

  async reset(): Promise<void> {
    // A master's FLUSHALL reaches its replica through the replication stream.
    await Promise.all((await this.masterAdmins()).map((a) => a.flushall()));
    await this.rc.resetStats();
    this.spread = undefined;
  }

  cpu(): Promise<CpuSnapshot> {
    return cpuOf(this.rc.ports.map((p) => this.admin(p)));
  }

  async commands(): Promise<CommandStats> {
    return commandsOf(await this.masterAdmins());
  }

  async beforeMeasured(): Promise<void> {
    await this.rc.resetStats();
  }

  async afterMeasured(): Promise<void> {
    const commands = await this.rc.commandsPerMaster();
    const keys = await this.rc.keysPerMaster(`${this.prefix}:*`);
    this.spread = { keys, commands };
  }

  /** Closes the statistics connections (the cluster itself belongs to the caller). */
  close(): void {
    for (const a of this.admins.values()) a.disconnect();
    this.admins.clear();
  }
}
