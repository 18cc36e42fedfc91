/**
 * A private Redis Cluster on loopback: `masters × (1 + replicasPerMaster)` `redis-server`
 * processes with `--cluster-enabled yes`, each in its own temporary directory, joined by
 * `redis-cli --cluster create`. For the tests and benchmarks that must run on a real
 * Cluster (slots, MOVED, failover), never on a mock.
 * Every wait is a poll with a deadline whose failure names what was still wrong ("17003:
 * cluster_state:fail"), never a fixed sleep.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { ClusterTarget } from '../store/connections.js';
import {
  countCommands,
  DEFAULT_CLUSTER_PORT_RANGE,
  diagnose,
  freeClusterPort,
  INTROSPECTION_COMMANDS,
  parseClusterNodes,
  parseInfo,
  type ClusterNodeInfo,
  type NodeReport,
  type PortRange,
} from './cluster-topology.js';
import { ClusterMember, run, tail } from './cluster-member.js';
import { LocalRedisError, LocalRedisServer } from './local-redis.js';

export { CLUSTER_SLOTS, INTROSPECTION_COMMANDS, type ClusterNodeInfo, type PortRange } from './cluster-topology.js';

export interface LocalRedisClusterOptions {
  /** Masters; Redis Cluster needs at least 3. @defaultValue 3 */
  masters?: number;
  /** Replicas of each master (0: no failover possible). @defaultValue 1 */
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before its replica takes
   * over. Small, so a failover test takes about a second. Unit: milliseconds.
   * @defaultValue 500
   */
  nodeTimeoutMs?: number;
  /** Client ports to pick from; each port + 10000 (the cluster bus) must stay below 32768. @defaultValue 15000–22000 */
  portRange?: PortRange;
  /** @defaultValue "redis-server" from PATH */
  binary?: string;
  /** @defaultValue "redis-cli" from PATH */
  cliBinary?: string;
  /** Longest start: processes up, cluster created, every node `cluster_state:ok`, replicas in sync. Unit: milliseconds. @defaultValue 30000 */
  startTimeoutMs?: number;
  /** Longest wait for a failover ({@link LocalRedisCluster.killMaster}) or a rejoin ({@link LocalRedisCluster.restartNode}). Unit: milliseconds. @defaultValue 30000 */
  failoverTimeoutMs?: number;
}

type ResolvedOptions = Required<LocalRedisClusterOptions>;

/** A node of the cluster as some running node sees it, plus whether its process runs. */
export interface LocalClusterNode extends ClusterNodeInfo {
  readonly running: boolean;
}

/** What {@link LocalRedisCluster.killMaster} did. */
export interface FailoverResult {
  /** The master that was killed (SIGKILL). */
  readonly killedPort: number;
  /** The replica now serving its slots. */
  readonly newMasterPort: number;
  /** From the SIGKILL until every running node reported `cluster_state:ok` with the new master. Unit: milliseconds. */
  readonly promotionMs: number;
}

const CREATE_ATTEMPTS = 3;
const SPAWN_ATTEMPTS = 5;
const POLL_MS = 20;

/** Processes of clusters not yet destroyed; killed if this process exits first (no orphaned servers). */
const live = new Set<ClusterMember>();
let exitHookInstalled = false;

export class LocalRedisCluster {
  private readonly opts: ResolvedOptions;
  private readonly members: ClusterMember[] = [];
  private readonly admins = new Map<number, Redis>();
  private destroying: Promise<void> | undefined;

  private constructor(opts: ResolvedOptions) {
    this.opts = opts;
  }

  /** True when both `redis-server` and `redis-cli` can be run. */
  static isAvailable(binary = 'redis-server', cliBinary = 'redis-cli'): boolean {
    return LocalRedisServer.isAvailable(binary) && spawnSync(cliBinary, ['--version'], { stdio: 'ignore' }).status === 0;
  }

  /**
   * Starts the processes, creates the cluster and resolves once every node reports
   * `cluster_state:ok` with all 16384 slots served and every replica in sync. On failure
   * everything started is killed and removed.
   *
   * Takes about 2 s: `redis-cli --cluster create` waits a second for the nodes to meet,
   * and a Redis master reports `cluster_state:ok` no sooner than 2 s after its process
   * started (Redis's `CLUSTER_WRITABLE_DELAY`), so that is the floor.
   */
  static async start(options: LocalRedisClusterOptions = {}): Promise<LocalRedisCluster> {
    const opts = resolveOptions(options);
    if (!LocalRedisCluster.isAvailable(opts.binary, opts.cliBinary)) {
      throw new LocalRedisError(
        `Cannot run ${opts.binary} and ${opts.cliBinary}: install Redis ≥ 7 (Debian/Ubuntu: "sudo apt-get install -y redis-server", macOS: "brew install redis").`,
      );
    }
    const cluster = new LocalRedisCluster(opts);
    installExitHook();
    try {
      await cluster.launchAll();
      await cluster.create();
      await cluster.waitUntil(() => cluster.problem(), opts.startTimeoutMs, 'the new cluster to become healthy');
      await cluster.resetStats();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  /** `redis://127.0.0.1:<port>` of every node, in start order (the first `masters` started as masters). */
  get seeds(): string[] {
    return this.members.map((m) => `redis://127.0.0.1:${m.port}`);
  }

  /** The seeds as a node's `redis` option (`{cluster: [...]}`). */
  get target(): ClusterTarget {
    return { cluster: this.seeds };
  }

  /** Every node's client port, in start order. */
  get ports(): number[] {
    return this.members.map((m) => m.port);
  }

  /** The topology as the first running node that answers sees it. */
  async nodes(): Promise<LocalClusterNode[]> {
    for (const m of this.members.filter((x) => x.running)) {
      try {
        const view = parseClusterNodes(String(await this.query(m.port, 'CLUSTER', 'NODES')));
        return view.map((n) => ({ ...n, running: this.member(n.port)?.running ?? false }));
      } catch {
        /* ask the next one */
      }
    }
    throw new LocalRedisError('no node of the cluster answered CLUSTER NODES');
  }

  /** The running masters that serve slots, ordered by their lowest slot. */
  async masters(): Promise<LocalClusterNode[]> {
    const nodes = await this.nodes();
    return nodes
      .filter((n) => n.role === 'master' && n.running && !n.failing && n.slots.length > 0)
      .sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0));
  }

  /**
   * SIGKILLs master `index` of {@link masters} and waits until one of its replicas serves
   * its slots and every running node reports `cluster_state:ok` again.
   */
  async killMaster(index: number): Promise<FailoverResult> {
    const masters = await this.masters();
    const victim = masters[index];
    if (!victim) throw new RangeError(`killMaster(${index}): there are ${masters.length} masters (0-${masters.length - 1})`);
    const replicas = (await this.nodes()).filter((n) => n.role === 'replica' && n.masterPort === victim.port && n.running && !n.failing);
    if (replicas.length === 0) throw new LocalRedisError(`master ${victim.port} has no running replica, so nothing would take over its slots`);
    const slot = victim.slots[0]?.[0] ?? 0;
    const started = performance.now();
    await this.kill(victim.port);
    let newMasterPort = 0;
    await this.waitUntil(
      async () => {
        const problem = await this.problem();
        if (problem) return problem;
        const owner = (await this.masters()).find((n) => n.slots.some(([from, to]) => from <= slot && slot <= to));
        if (!owner) return `no running master serves slot ${slot}`;
        newMasterPort = owner.port;
        return undefined;
      },
      this.opts.failoverTimeoutMs,
      `a replica of ${victim.port} to take over`,
    );
    return { killedPort: victim.port, newMasterPort, promotionMs: performance.now() - started };
  }

  /**
   * Starts the stopped node on `port` again (same directory, so the same `nodes.conf` and
   * cluster id; no data, as nothing is persisted). A failed-over master rejoins as a
   * replica of its successor. Resolves once the cluster is healthy with it in sync.
   */
  async restartNode(port: number): Promise<void> {
    const m = this.member(port);
    if (!m) throw new RangeError(`restartNode(${port}): not a node of this cluster (${this.ports.join(', ')})`);
    if (m.running) throw new LocalRedisError(`restartNode(${port}): the node is running`);
    await m.launch(this.serverArgs(m), this.opts.startTimeoutMs);
    await this.waitUntil(() => this.problem(), this.opts.failoverTimeoutMs, `node ${port} to rejoin`);
  }

  /** SIGKILLs the node on `port` (master or replica) without waiting for the cluster to react. */
  async kill(port: number): Promise<void> {
    const m = this.member(port);
    if (!m) throw new RangeError(`kill(${port}): not a node of this cluster (${this.ports.join(', ')})`);
    this.dropAdmin(port);
    await m.kill();
  }

  /** Keys matching `pattern` (SCAN MATCH … COUNT 1000) on each current master, by port. */
  async keysPerMaster(pattern = '*'): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const master of await this.masters()) {
      let count = 0;
      let cursor = '0';
      do {
        const [next, keys] = (await this.query(master.port, 'SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000')) as [string, string[]];
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
      out.set(master.port, count);
    }
    return out;
  }

  /**
   * Commands each current master has run (`INFO commandstats`, total `calls`) since it
   * started or since {@link resetStats} (which {@link start} calls last), leaving out
   * `exclude` (by default the introspection a harness or a driver's topology refresh sends
   * and replication's own traffic: CLUSTER, INFO, PING, REPLCONF, …). The SCANs of
   * {@link keysPerMaster} do count.
   */
  async commandsPerMaster(exclude: readonly string[] = INTROSPECTION_COMMANDS): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const master of await this.masters()) out.set(master.port, countCommands(String(await this.query(master.port, 'INFO', 'commandstats')), exclude));
    return out;
  }

  /** `CONFIG RESETSTAT` on every running node, so {@link commandsPerMaster} counts from now. */
  async resetStats(): Promise<void> {
    await Promise.all(this.members.filter((m) => m.running).map((m) => this.query(m.port, 'CONFIG', 'RESETSTAT')));
  }

  /** Kills every process (SIGKILL: nothing is persisted anyway) and removes the directories. Idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      for (const port of [...this.admins.keys()]) this.dropAdmin(port);
      await Promise.all(this.members.map((m) => m.kill()));
      for (const m of this.members) {
        rmSync(m.dir, { recursive: true, force: true });
        live.delete(m);
      }
    })();
    return this.destroying;
  }

  // ---- start ------------------------------------------------------------------------------

  private async launchAll(): Promise<void> {
    const total = this.opts.masters * (1 + this.opts.replicasPerMaster);
    const taken = new Set<number>();
    for (let i = 0; i < total; i++) {
      const port = await freeClusterPort(taken, this.opts.portRange);
      taken.add(port);
      const m = new ClusterMember(port, mkdtempSync(join(tmpdir(), 'eventual-cache-cluster-')), this.opts.binary);
      this.members.push(m);
      live.add(m);
    }
    await Promise.all(this.members.map((m) => this.launchWithRetry(m, taken)));
  }

  /** Launches `m`; a port grabbed by someone else since the probe makes it move to another. */
  private async launchWithRetry(m: ClusterMember, taken: Set<number>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await m.launch(this.serverArgs(m), this.opts.startTimeoutMs);
        return;
      } catch (error) {
        if (attempt >= SPAWN_ATTEMPTS || m.running) throw error;
        m.port = await freeClusterPort(taken, this.opts.portRange);
        taken.add(m.port);
      }
    }
  }

  private serverArgs(m: ClusterMember): string[] {
    // repl-diskless-sync-delay 0: a replica syncs at once instead of after the default 5 s.
    // cluster-replica-validity-factor 0: a replica always may take over, however long its
    // link was down (a test's master can die right after the replica (re)joined).
    return [
      ...['--port', String(m.port), '--bind', '127.0.0.1', '--dir', m.dir, '--daemonize', 'no', '--loglevel', 'warning'],
      ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(this.opts.nodeTimeoutMs)],
      ...['--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0', '--cluster-replica-validity-factor', '0'],
      ...['--cluster-allow-replica-migration', 'no'],
    ];
  }

  /** `redis-cli --cluster create`, retried after a `CLUSTER RESET HARD` of every node if it fails. */
  private async create(): Promise<void> {
    const args = ['--cluster', 'create', ...this.members.map((m) => `127.0.0.1:${m.port}`), '--cluster-replicas', String(this.opts.replicasPerMaster), '--cluster-yes'];
    let last = '';
    for (let attempt = 1; attempt <= CREATE_ATTEMPTS; attempt++) {
      const result = await run(this.opts.cliBinary, args, this.opts.startTimeoutMs);
      if (result.ok) return;
      last = result.output;
      await Promise.all(this.members.map(async (m) => {
        await this.query(m.port, 'FLUSHALL').catch(() => undefined);
        await this.query(m.port, 'CLUSTER', 'RESET', 'HARD').catch(() => undefined);
      }));
    }
    throw new LocalRedisError(`redis-cli --cluster create failed ${CREATE_ATTEMPTS} times; last output: ${tail(last)}`);
  }

  // ---- health -----------------------------------------------------------------------------

  /** What keeps the cluster from being healthy (see {@link diagnose}), or `undefined`. */
  private async problem(): Promise<string | undefined> {
    const running = this.members.filter((m) => m.running);
    const reports: NodeReport[] = [];
    for (const m of running) {
      try {
        reports.push({
          port: m.port,
          clusterInfo: parseInfo(String(await this.query(m.port, 'CLUSTER', 'INFO'))),
          view: parseClusterNodes(String(await this.query(m.port, 'CLUSTER', 'NODES'))),
          replication: parseInfo(String(await this.query(m.port, 'INFO', 'replication'))),
        });
      } catch (error) {
        return `${m.port}: ${(error as Error).message}`;
      }
    }
    return diagnose(reports, { nodes: this.members.length, masters: this.opts.masters });
  }

  private async waitUntil(problem: () => Promise<string | undefined>, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const p = await problem();
      if (p === undefined) return;
      if (performance.now() > deadline) throw new LocalRedisError(`timed out after ${timeoutMs} ms waiting for ${what}: ${p}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  // ---- connections ------------------------------------------------------------------------

  private member(port: number): ClusterMember | undefined {
    return this.members.find((m) => m.port === port);
  }

  /** One command on the node at `port` over a plain (non-cluster) admin connection. */
  private async query(port: number, ...args: string[]): Promise<unknown> {
    let redis = this.admins.get(port);
    if (!redis) {
      redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1_000, retryStrategy: () => null, enableAutoPipelining: false });
      redis.on('error', () => undefined);
      this.admins.set(port, redis);
    }
    try {
      if (redis.status === 'wait') await redis.connect();
      const [command = '', ...rest] = args;
      return await redis.call(command, ...rest);
    } catch (error) {
      this.dropAdmin(port);
      throw error;
    }
  }

  private dropAdmin(port: number): void {
    this.admins.get(port)?.disconnect();
    this.admins.delete(port);
  }
}

function resolveOptions(o: LocalRedisClusterOptions): ResolvedOptions {
  const opts: ResolvedOptions = {
    masters: o.masters ?? 3,
    replicasPerMaster: o.replicasPerMaster ?? 1,
    nodeTimeoutMs: o.nodeTimeoutMs ?? 500,
    portRange: o.portRange ?? DEFAULT_CLUSTER_PORT_RANGE,
    binary: o.binary ?? 'redis-server',
    cliBinary: o.cliBinary ?? 'redis-cli',
    startTimeoutMs: o.startTimeoutMs ?? 30_000,
    failoverTimeoutMs: o.failoverTimeoutMs ?? 30_000,
  };
  if (!Number.isSafeInteger(opts.masters) || opts.masters < 3) throw new RangeError(`masters must be an integer ≥ 3 (Redis Cluster needs 3), got ${opts.masters}`);
  if (!Number.isSafeInteger(opts.replicasPerMaster) || opts.replicasPerMaster < 0) throw new RangeError(`replicasPerMaster must be a non-negative integer, got ${opts.replicasPerMaster}`);
  if (!Number.isSafeInteger(opts.nodeTimeoutMs) || opts.nodeTimeoutMs < 100) throw new RangeError(`nodeTimeoutMs must be an integer ≥ 100, got ${opts.nodeTimeoutMs}`);
  return opts;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const m of live) m.killNow();
  });
}
