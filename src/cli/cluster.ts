/**
 * Starts the HTTP servers (each with its replica node) of some or all nodes of a config,
 * in one process, and wires the nodes' events to the log.
 */
import type { Logger } from 'pino';
import { BadRecordError } from '../errors/index.js';
import { startNodeServer, type NodeServer } from '../http/server.js';
import type { ReplicaNode } from '../node/replica-node.js';
import { toNodeOptions, type ClusterConfig } from './config.js';
import { safeUrl } from './logger.js';

/** The servers of one process; `close()` is idempotent and closes them all in parallel. */
export interface RunningNodes {
  servers: NodeServer[];
  close(): Promise<void>;
}

/**
 * Starts `ids` (default: every node of the config) in parallel. If any fails to start, the
 * ones that did are closed and the first error is rethrown.
 */
export async function startNodes(config: ClusterConfig, logger: Logger, ids = config.nodes.map((n) => n.id)): Promise<RunningNodes> {
  // Where the cluster view page links to and forwards writes for: from the config, then the
  // bound address of every node this process starts (port 0 included).
  const nodeUrls: Record<string, string> = {};
  for (const n of config.nodes) {
    if (n.url !== undefined) nodeUrls[n.id] = n.url.replace(/\/+$/, '');
    else if (n.port !== 0) nodeUrls[n.id] = `http://${browsableHost(n.host ?? config.host)}:${n.port}`;
  }
  const started = await Promise.allSettled(ids.map((id) => startOne(config, id, logger.child({ node: id }), nodeUrls)));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    await Promise.allSettled(servers.map((s) => s.close()));
    throw failure.reason;
  }
  let closing: Promise<void> | undefined;
  return {
    servers,
    close: () => {
      closing ??= Promise.all(servers.map((s) => s.close())).then(() => undefined);
      return closing;
    },
  };
}

async function startOne(config: ClusterConfig, id: string, logger: Logger, nodeUrls: Record<string, string>): Promise<NodeServer> {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) throw new Error(`unknown node ${id}`);
  const server = await startNodeServer({
    node: toNodeOptions(config, id),
    port: node.port,
    host: node.host ?? config.host,
    http: { ...config.http, ...(config.authToken !== undefined ? { authToken: config.authToken } : {}), logger, nodeUrls },
  });
  if (node.url === undefined) nodeUrls[id] = server.url;
  watch(server.node, logger);
  logger.info(
    { url: server.url, redis: safeUrl(node.redis), peers: config.nodes.filter((n) => n.id !== id).map((n) => n.id), auth: config.authToken !== undefined },
    `node ${id} listening on ${server.url}`,
  );
  return server;
}

/** A listening address as a URL host: wildcards become loopback, IPv6 gets brackets. */
function browsableHost(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Logs what a node does in the background. Conflicts at `info` (they are the point of the
 * demo), clock drift and background errors at `warn`; a background error that repeats
 * (a peer's Redis down, retried every few seconds) is logged once per `quietMs`.
 */
function watch(node: ReplicaNode, logger: Logger, quietMs = 10_000): void {
  node.on('conflict', (c) => logger.info({ key: c.key, winner: c.winner, loser: c.loser }, 'LWW conflict resolved'));
  node.on('drift', (d) => logger.warn({ from: d.from, aheadMs: d.aheadMs }, 'remote clock ahead of maxDriftMs'));
  const lastLogged = new Map<string, number>();
  node.on('error', (error) => {
    if (error instanceof BadRecordError) {
      logger.error({ key: error.key, redisKey: error.redisKey, reason: error.reason, where: error.where }, error.message);
      return;
    }
    const now = Date.now();
    if ((lastLogged.get(error.message) ?? 0) + quietMs > now) return;
    if (lastLogged.size > 100) lastLogged.clear();
    lastLogged.set(error.message, now);
    // The logger's serializer writes message, code and stack (credentials masked).
    logger.warn({ err: error }, `background replication error (retrying): ${error.message}`);
  });
}
