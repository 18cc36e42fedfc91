/**
 * `eventual-cache acl --config FILE --node A`: the `ACL SETUSER` lines to run on node A's
 * Redis so that each peer reaches it with a user of its own that may do exactly what
 * replication needs, and nothing else (Redis 7 ACLs):
 *
 * | Peer B's user on A's Redis may           | Keys                              |
 * |------------------------------------------|-----------------------------------|
 * | read A's records                         | `%R~{prefix}:A:rec:*`             |
 * | read A's anti-entropy digests            | `%R~{prefix}:A:dig:*`             |
 * | read A's published peer list             | `%R~{prefix}:A:peers`             |
 * | read A's vitals and conflict log (the cluster view page) | `%R~{prefix}:A:vitals`, `%R~{prefix}:A:conflicts` |
 * | run its own queue `to-B` (BullMQ worker) | `~{prefix}:A:q:to-B:*`            |
 *
 * Commands: everything but the `@dangerous` and `@admin` categories (so no FLUSHDB, KEYS,
 * CONFIG, DEBUG, SHUTDOWN, CLIENT KILL, …), plus `INFO` (BullMQ reads the Redis version)
 * and `CLIENT SETNAME` (connection names). Key patterns are checked inside
 * BullMQ's Lua scripts too, so its scripts reach only `to-B`'s keys. No pub/sub channels.
 *
 * A's own node, and the producing side of every queue on A, use A's own user.
 *
 * A node on a Redis Cluster is refused (a {@link ConfigError} saying so): ACL users are
 * per server in a cluster (each master and replica needs them, and a replica promoted
 * later too), and the key patterns would have to follow the cluster key layout's hash
 * tags. Its peers use the node's own credentials (`nodes[].redis`) until that is built.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError, type ClusterConfig } from './config.js';
import { safeUrl } from './logger.js';

/** One peer's user on a node's Redis. */
export interface PeerUser {
  peer: string;
  user: string;
  password: string;
  /** The `ACL SETUSER` command, as a line for redis-cli. */
  line: string;
  /** The arguments of the same command, for a client's `call('ACL', ...)`. */
  args: string[];
  /** The URL the peer should use for this node's Redis (the node's URL with this user). */
  url: string;
}

/** The user name a peer gets on `node`'s Redis unless the config names one. */
export function peerUserName(prefix: string, peer: string): string {
  return `${prefix}-peer-${peer}`;
}

/** The users of every peer of `nodeId` on `nodeId`'s Redis (passwords from the config's `peerRedis` URLs, else new random ones). */
export function peerUsers(config: ClusterConfig, nodeId: string): PeerUser[] {
  const node = config.nodes.find((n) => n.id === nodeId);
  if (!node) throw new ConfigError('Unknown node', [`--node: "${nodeId}" is not one of the configured nodes (${config.nodes.map((n) => n.id).join(', ')})`]);
  const redis = node.redis;
  if (typeof redis !== 'string') {
    throw new ConfigError('Per-peer ACL users are not supported on a Redis Cluster', [
      `nodes[${nodeId}].redis is a Redis Cluster (${safeUrl(redis)}): its ACL users would have to be created on every node of the cluster and follow its key layout, which "eventual-cache acl" does not do yet. Let the peers use the node's own credentials (leave nodes[].peerRedis unset), or create users on every cluster node by hand.`,
    ]);
  }
  const p = config.prefix;
  return config.nodes
    .filter((n) => n.id !== nodeId)
    .map((peerNode) => {
      const peer = peerNode.id;
      const configured = node.peerRedis?.[peer];
      const parsed = typeof configured === 'string' ? new URL(configured) : undefined;
      const user = parsed?.username ? decodeURIComponent(parsed.username) : peerUserName(p, peer);
      const password = parsed?.password ? decodeURIComponent(parsed.password) : randomBytes(24).toString('hex');
      const args = [
        'SETUSER',
        user,
        'reset',
        'on',
        `>${password}`,
        'resetchannels',
        `%R~${p}:${nodeId}:rec:*`,
        `%R~${p}:${nodeId}:dig:*`,
        `%R~${p}:${nodeId}:peers`,
        `%R~${p}:${nodeId}:vitals`,
        `%R~${p}:${nodeId}:conflicts`,
        `~${p}:${nodeId}:q:to-${peer}:*`,
        '+@all',
        '-@dangerous',
        '-@admin',
        '+info',
        '+client|setname',
      ];
      const url = new URL(redis);
      url.username = encodeURIComponent(user);
      url.password = encodeURIComponent(password);
      return { peer, user, password, args, line: `ACL ${args.join(' ')}`, url: url.toString() };
    });
}

/** The text `eventual-cache acl` prints. */
export function aclScript(config: ClusterConfig, nodeId: string): string {
  const node = config.nodes.find((n) => n.id === nodeId);
  const users = peerUsers(config, nodeId);
  const lines = [
    `# ACL users for the peers of node ${nodeId}; run on ${nodeId}'s Redis (${safeUrl(node?.redis ?? '')}), e.g. redis-cli -u <url> < this-file.`,
    `# Each peer may read ${nodeId}'s records, digests and peer list, and run its own queue; nothing else.`,
    `# ${nodeId}'s own node keeps its own (full) user. Store this output like a password file.`,
  ];
  for (const u of users) {
    lines.push('', `# peer ${u.peer}: set nodes[${nodeId}].peerRedis.${u.peer} (the URL ${u.peer} uses to reach ${nodeId}'s Redis) to`, `#   ${u.url}`, u.line);
  }
  return `${lines.join('\n')}\n`;
}
