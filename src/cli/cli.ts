/**
 * `eventual-cache <command>`: argument parsing and the commands.
 *
 * Exit codes: 0 success (or a clean shutdown after SIGTERM/SIGINT), 1 a runtime failure
 * (Redis unreachable, the demo did not converge), 2 a usage or configuration error.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { EventualCacheError, InvalidOptionsError } from '../errors/index.js';
import { aclScript } from './acl.js';
import { startNodes, type RunningNodes } from './cluster.js';
import { ConfigError, describeDelay, ENV, loadConfig, type ClusterConfig } from './config.js';
import { runDemo, type DemoTarget } from './demo.js';
import { repairCluster } from './repair.js';
import { createCliLogger, safeUrl } from './logger.js';
import { deleteKeysWithPrefix, ensureRedis, type RedisProvision } from './redis.js';
import { onShutdownSignal } from './shutdown.js';

export const USAGE = `Usage: eventual-cache <command> [options]

Commands:
  cluster              Run every node of the config in this process (development, demos).
                       Without a config: nodes A, B, C on ports 3001-3003, Redis databases 1-3
                       of REDIS_URL (default redis://127.0.0.1:6379); a private redis-server
                       is started if nothing answers there. With REDIS_CLUSTER (seed URLs,
                       comma-separated) all three run on that Redis Cluster instead.
  node --id ID         Run one node of the config (one per machine or container).
  repair               Run one anti-entropy round for every pair of nodes of the config
                       (against their Redis; the nodes may be running) and print what
                       each pair repaired. Exits 1 if a pair could not be compared.
  acl --node ID        Print the ACL SETUSER lines to run on node ID's Redis: one user per
                       peer, allowed to read ID's records and run its own queue, nothing else.
  demo                 Replay the 7-step eventual-consistency demo over HTTP on a fresh
                       in-process cluster (or on running nodes with --url) and print the
                       timeline. Exits 1 if the cluster does not converge.

Options:
  -c, --config FILE    JSON config file (also ${ENV.config}).
      --id ID          Node to run with "node" (also ${ENV.nodeId}).
      --node ID        acl: the node whose Redis gets the users.
      --url URL        demo: use running nodes instead of starting some; repeat or
                       comma-separate, at least two (token from ${ENV.authToken}).
      --keep           demo: keep the in-process cluster up after the demo, to watch and
                       drive it on its cluster view page (Ctrl-C stops it).
  -h, --help           Show this help.
  -v, --version        Show the version.

Every setting also has an environment variable; see docs/configuration.md.
Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
`;

/** Where the CLI writes and what it reads; tests pass their own. */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** A usage mistake: wrong command or flag. */
export class UsageError extends EventualCacheError {}

const DEFAULT_IO: CliIo = {
  env: process.env,
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/**
 * Runs the command line. Returns the exit code for commands that end (`demo`, `--help`,
 * errors), or `undefined` once a server command is up: the process then runs until a
 * signal, and the shutdown handler exits.
 */
export async function runCli(argv: string[], io: CliIo = DEFAULT_IO): Promise<number | undefined> {
  try {
    const { command, flags } = parse(argv);
    if (flags.help || command === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (flags.version) {
      io.out(`${version()}\n`);
      return 0;
    }
    switch (command) {
      case 'cluster':
        await serve(io, flags.config);
        return undefined;
      case 'node': {
        const id = flags.id ?? io.env[ENV.nodeId];
        if (!id) throw new UsageError(`"node" needs --id ID (or ${ENV.nodeId})`);
        await serve(io, flags.config, id);
        return undefined;
      }
      case 'demo':
        return await demo(io, flags.config, flags.url, flags.keep === true);
      case 'repair': {
        const config = loadConfig({ env: io.env, ...(flags.config !== undefined ? { file: flags.config } : {}) });
        const reports = await repairCluster(config, io.out);
        const repaired = reports.reduce((sum, r) => sum + r.keysRepaired, 0);
        io.out(`repaired ${repaired} keys over ${reports.length} pairs\n`);
        return reports.some((r) => r.result === 'failed' || r.result === 'incompatible') ? 1 : 0;
      }
      case 'acl': {
        const id = flags.node ?? flags.id;
        if (!id) throw new UsageError('"acl" needs --node ID');
        const config = loadConfig({ env: io.env, ...(flags.config !== undefined ? { file: flags.config } : {}) });
        io.out(aclScript(config, id));
        return 0;
      }
      case undefined:
        throw new UsageError('missing command');
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    return report(error, io);
  }
}

interface Flags {
  config?: string;
  id?: string;
  node?: string;
  url?: string[];
  keep?: boolean;
  help?: boolean;
  version?: boolean;
}

function parse(argv: string[]): { command: string | undefined; flags: Flags } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        id: { type: 'string' },
        node: { type: 'string' },
        url: { type: 'string', multiple: true },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    return { command: positionals[0], flags: values };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message, { cause: error });
  }
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    io.err(`eventual-cache: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (error instanceof ConfigError) {
    io.err(`eventual-cache: ${error.message}\nSee docs/configuration.md for every setting and its environment variable.\n`);
    return 2;
  }
  if (error instanceof EventualCacheError) {
    // Typed errors carry a message that says what to do; a stack would bury it.
    io.err(`eventual-cache: ${error.message}\n`);
    return error instanceof InvalidOptionsError ? 2 : 1;
  }
  io.err(`eventual-cache: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 1;
}

/** `cluster` (every node) or `node` (just `id`): start, then run until a signal. */
async function serve(io: CliIo, file: string | undefined, id?: string): Promise<void> {
  const config = loadConfig({ env: io.env, ...(file !== undefined ? { file } : {}), ...(id !== undefined ? { nodeId: id } : {}) });
  const logger = await createCliLogger({ level: config.logLevel ?? 'info' });
  logStart(logger, config, id ? 'node' : 'cluster');
  // A lone node shares its Redis with peers in other processes: a private server would be an island.
  const provision: RedisProvision = id ? { config, close: async () => undefined } : await ensureRedis(config, { logger });
  let nodes: RunningNodes;
  try {
    nodes = await startNodes(provision.config, logger, id ? [id] : undefined);
  } catch (error) {
    await provision.close();
    throw error;
  }
  onShutdownSignal({
    logger,
    close: async () => {
      await nodes.close();
      await provision.close();
    },
  });
  logger.info(`${nodes.servers.length === 1 ? 'node' : `${nodes.servers.length} nodes`} ready; SIGTERM or Ctrl-C stops gracefully`);
}

function logStart(logger: Logger, config: ClusterConfig, command: string): void {
  for (const warning of config.source.warnings) logger.warn(warning);
  logger.info(
    {
      command,
      file: config.source.file,
      embedded: config.source.embedded,
      env: config.source.env,
      nodes: config.nodes.map((n) => ({ id: n.id, port: n.port, redis: safeUrl(n.redis) })),
      delay: describeDelay(config.replication.delayMs),
      auth: config.authToken !== undefined,
    },
    config.source.embedded ? 'configuration: embedded default (3 nodes)' : 'configuration loaded',
  );
}

/** The demo's default delay when the config sets none: the seed's 100–500 ms, long enough to see stale reads and real conflicts. */
export const DEMO_DELAY_MS = Object.freeze({ min: 100, max: 500 });

async function demo(io: CliIo, file: string | undefined, urls: string[] | undefined, keep = false): Promise<number> {
  const config = loadConfig({ env: io.env, ...(file !== undefined ? { file } : {}) });
  const print = (line: string) => io.out(`${line}\n`);
  const logger = await createCliLogger({ level: config.logLevel ?? 'warn', fd: 2 });
  for (const warning of config.source.warnings) logger.warn(warning);
  if (urls && urls.length > 0) {
    if (keep) throw new UsageError('--keep keeps the in-process cluster of the demo up; with --url the nodes are yours and stay up anyway');
    const targets = await identify(urls.flatMap((u) => u.split(',')).filter((u) => u.trim() !== ''), config.authToken);
    print(`Cluster view: ${targets[0]?.url}/ui/`);
    const result = await runDemo({ targets, print, ...(config.authToken ? { authToken: config.authToken } : {}) });
    return result.converged ? 0 : 1;
  }

  // A fresh key namespace and free ports: the demo never touches (or clashes with) a
  // cluster already running on the same Redis, and removes its keys afterwards.
  const prefix = `${config.prefix}-demo-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`.slice(0, 64);
  const delayMs = config.replication.delayMs ?? DEMO_DELAY_MS;
  const demoConfig: ClusterConfig = {
    ...config,
    prefix,
    host: '127.0.0.1',
    nodes: config.nodes.map((n) => ({ ...n, port: 0, host: '127.0.0.1' })),
    replication: { ...config.replication, delayMs },
  };
  const provision = await ensureRedis(demoConfig, { logger });
  let nodes: RunningNodes | undefined;
  const cleanup = async () => {
    await nodes?.close();
    const urlsToClean = [...new Map(provision.config.nodes.map((n) => [JSON.stringify(n.redis), n.redis])).values()];
    await Promise.allSettled(urlsToClean.map((u) => deleteKeysWithPrefix(u, prefix)));
    await provision.close();
  };
  const removeSignals = onShutdownSignal({ logger, close: cleanup, exit: (code) => process.exit(code === 0 ? 130 : code) });
  try {
    nodes = await startNodes(provision.config, logger);
    const targets: DemoTarget[] = nodes.servers.map((s) => ({ id: s.node.id, url: s.url }));
    print(`Cluster view: ${targets[0]?.url}/ui/${config.authToken ? ' (log in with any user name and the token as password)' : ''}`);
    const result = await runDemo({
      targets,
      print,
      delayLabel: describeDelay(delayMs),
      ...(config.authToken ? { authToken: config.authToken } : {}),
    });
    if (keep) {
      print(`\nThe cluster stays up: watch and drive it at ${targets[0]?.url}/ui/ (every node serves the page). Ctrl-C stops it and removes the demo's keys.`);
      // The signal handler closes the nodes, removes the keys and exits.
      await new Promise<never>(() => undefined);
    }
    return result.converged ? 0 : 1;
  } finally {
    removeSignals();
    await cleanup();
  }
}

/** Asks each running node who it is (`GET /health`). */
async function identify(urls: string[], token: string | undefined): Promise<DemoTarget[]> {
  if (urls.length < 2) throw new UsageError('--url needs at least two nodes');
  return Promise.all(
    urls.map(async (raw) => {
      const url = raw.trim().replace(/\/+$/, '');
      let body: { node?: unknown };
      try {
        const res = await fetch(`${url}/health`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
        body = (await res.json()) as { node?: unknown };
      } catch (cause) {
        throw new EventualCacheError(`No eventual-cache node answered at ${url}/health: ${(cause as Error).message}. Start the nodes first (npm start, or docker compose up).`, { cause });
      }
      if (typeof body.node !== 'string') throw new EventualCacheError(`${url}/health did not name a node; is this an eventual-cache node?`);
      return { id: body.node, url };
    }),
  );
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
