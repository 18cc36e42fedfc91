/**
 * What a Redis Cluster node says about the cluster (`CLUSTER NODES`, `CLUSTER INFO`,
 * `INFO`), parsed into plain values, and the search for port pairs a cluster node can use.
 * Pure functions except {@link freeClusterPort}, which probes sockets.
 */
import { createServer } from 'node:net';

/** Number of hash slots of every Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

/** A Redis Cluster node listens on `port` for clients and on `port + 10000` for its bus. */
export const CLUSTER_BUS_PORT_OFFSET = 10_000;

/** One node as `CLUSTER NODES` describes it. */
export interface ClusterNodeInfo {
  /** The node's 40-character cluster id. */
  readonly id: string;
  /** Client port on 127.0.0.1. */
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** For a replica: the port of its master (`undefined` when the master is unknown). */
  readonly masterPort?: number;
  /** Slot ranges this node serves, inclusive (`[[0, 5460]]`); empty for replicas. */
  readonly slots: ReadonlyArray<readonly [number, number]>;
  /** Flagged `fail` (the cluster agreed it is down) or `fail?` (the reporter suspects it). */
  readonly failing: boolean;
}

/**
 * Parses `CLUSTER NODES` output. Lines look like
 * `<id> <ip:port@bus> <flags> <master-id|-> <ping> <pong> <epoch> <link> <slot>...`;
 * slots are `0-5460` or `42`, and `[42->-id]` / `[42-<-id]` mark a migration (ignored: the
 * slot still belongs to the node that lists it plainly).
 */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const rows = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => line.split(' '));
  const portOf = new Map(rows.map((r) => [r[0] ?? '', portOfAddress(r[1] ?? '')]));
  return rows.map((r) => {
    const flags = (r[2] ?? '').split(',');
    const masterId = r[3] ?? '-';
    const role = flags.includes('master') ? 'master' : 'replica';
    const masterPort = role === 'replica' && masterId !== '-' ? portOf.get(masterId) : undefined;
    const slots = r
      .slice(8)
      .filter((s) => !s.startsWith('['))
      .map((s): [number, number] => {
        const [from, to] = s.split('-').map(Number);
        return [from ?? 0, to ?? from ?? 0];
      });
    return {
      id: r[0] ?? '',
      port: portOfAddress(r[1] ?? ''),
      role,
      ...(masterPort !== undefined ? { masterPort } : {}),
      slots,
      failing: flags.includes('fail') || flags.includes('fail?'),
    };
  });
}

/** `127.0.0.1:7000@17000,host` -> 7000 (0 when unparseable, e.g. a node still in handshake). */
function portOfAddress(address: string): number {
  const m = /:(\d+)@/.exec(address) ?? /:(\d+)$/.exec(address);
  return m ? Number(m[1]) : 0;
}

/** `field:value` lines (`CLUSTER INFO`, `INFO replication`) as a map. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return out;
}

/**
 * Commands a harness, a driver's topology refresh, a keep-alive or a replica's link send;
 * not the workload.
 */
export const INTROSPECTION_COMMANDS: readonly string[] = Object.freeze([
  'cluster', 'info', 'config', 'client', 'command', 'hello', 'auth', 'ping', 'readonly', 'select', 'psync', 'sync', 'replconf',
]);

/**
 * Total `calls=` of `INFO commandstats`, leaving out the commands in `exclude` (top-level
 * names, lower case: `cmdstat_client|setname` counts as `client`).
 */
export function countCommands(commandstats: string, exclude: readonly string[] = INTROSPECTION_COMMANDS): number {
  let total = 0;
  for (const m of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = (m[1] ?? '').split('|')[0] ?? '';
    if (!exclude.includes(name.toLowerCase())) total += Number(m[2]);
  }
  return total;
}

/** Number of slots in `ranges`. */
export function slotCount(ranges: ReadonlyArray<readonly [number, number]>): number {
  return ranges.reduce((n, [from, to]) => n + (to - from + 1), 0);
}

/** What one running node says: `CLUSTER INFO`, `CLUSTER NODES` and `INFO replication`. */
export interface NodeReport {
  readonly port: number;
  readonly clusterInfo: Map<string, string>;
  readonly view: ClusterNodeInfo[];
  readonly replication: Map<string, string>;
}

/**
 * What keeps a cluster from being healthy, or `undefined` when it is. `reports` come from
 * every running node (the ports of the others count as stopped). Healthy: every running
 * node reports `cluster_state:ok` with all slots ok and knows all `expected.nodes`; sees no
 * running node as failing and no stopped node serving slots; agrees with the others on
 * which node serves which slots, and `expected.masters` nodes do; every replica has its
 * link up and no sync in progress.
 */
export function diagnose(reports: readonly NodeReport[], expected: { nodes: number; masters: number }): string | undefined {
  const running = new Set(reports.map((r) => r.port));
  let owners: string | undefined;
  for (const { port, clusterInfo: info, view, replication } of reports) {
    if (info.get('cluster_state') !== 'ok') return `${port}: cluster_state:${info.get('cluster_state')}`;
    if (info.get('cluster_slots_ok') !== String(CLUSTER_SLOTS)) return `${port}: cluster_slots_ok:${info.get('cluster_slots_ok')} of ${CLUSTER_SLOTS}`;
    if (Number(info.get('cluster_known_nodes')) < expected.nodes) return `${port}: knows ${info.get('cluster_known_nodes')} of ${expected.nodes} nodes`;
    const suspect = view.find((n) => running.has(n.port) && n.failing);
    if (suspect) return `${port}: flags running node ${suspect.port} as failing`;
    const servers = view.filter((n) => n.role === 'master' && n.slots.length > 0);
    const stale = servers.find((n) => !running.has(n.port));
    if (stale) return `${port}: stopped node ${stale.port} still serves slots`;
    const mine = servers.map((n) => `${n.port}:${n.slots.map((s) => s.join('-')).join(',')}`).sort().join(' ');
    if (owners !== undefined && mine !== owners) return `${port}: slot owners ${mine} differ from ${owners}`;
    owners = mine;
    if (replication.get('role') === 'slave') {
      if (replication.get('master_link_status') !== 'up') return `${port}: replica link ${replication.get('master_link_status')}`;
      if (replication.get('master_sync_in_progress') !== '0') return `${port}: replica sync in progress`;
    }
  }
  const masters = (owners ?? '').split(' ').filter((s) => s !== '').length;
  if (masters !== expected.masters) return `${masters} masters serve slots, expected ${expected.masters}`;
  return undefined;
}

/** Client ports a cluster node may take: its bus port (+10000) stays below the ephemeral range (32768). */
export interface PortRange {
  /** @defaultValue 15000 */
  readonly min: number;
  /** @defaultValue 22000 */
  readonly max: number;
}

export const DEFAULT_CLUSTER_PORT_RANGE: PortRange = Object.freeze({ min: 15_000, max: 22_000 });

/**
 * A port `p` in `range`, not in `avoid`, where both `p` and `p + 10000` can be bound on
 * 127.0.0.1 right now. Starts at a random point so that test files starting clusters at
 * the same moment rarely probe the same ports; a port taken between the probe and the
 * server's bind shows up as a server that exits at start, and the caller asks again.
 */
export async function freeClusterPort(avoid: ReadonlySet<number>, range: PortRange = DEFAULT_CLUSTER_PORT_RANGE): Promise<number> {
  if (range.max + CLUSTER_BUS_PORT_OFFSET >= 32_768) throw new RangeError(`port range max ${range.max} + ${CLUSTER_BUS_PORT_OFFSET} must stay below 32768 (the ephemeral range)`);
  const size = range.max - range.min + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = range.min + ((start + i) % size);
    if (avoid.has(port) || avoid.has(port + CLUSTER_BUS_PORT_OFFSET)) continue;
    if ((await canBind(port)) && (await canBind(port + CLUSTER_BUS_PORT_OFFSET))) return port;
  }
  throw new RangeError(`no free port pair (p, p + ${CLUSTER_BUS_PORT_OFFSET}) for p in ${range.min}-${range.max}`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
