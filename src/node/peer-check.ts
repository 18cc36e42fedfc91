/**
 * Peer lists that disagree, named out loud. Replication from A to B needs both sides: A
 * fills the queue `to-B` because it lists B, and B empties it only if it lists A. When B
 * does not, A's jobs for B pile up forever and nothing fails. So every node publishes its
 * peer list in its own Redis (`${prefix}:${id}:peers`) and reads each peer's, at start and
 * every {@link PEER_CHECK_INTERVAL_MS}; a disagreement goes to the log (an `'error'`
 * event), to `/cluster` (`warnings`) and to the metric `eventual_cache_peer_config_problems`.
 *
 * Also named: a peer whose Redis URL is this node's own (a copy-paste slip: its records
 * and queues would be looked for in the wrong database), and a peer that never published a
 * list where this node looks for it (not running, or running against another Redis).
 */
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { EventualCacheError } from '../errors/index.js';
import { closeRedis, createRedis, describeTarget, isClusterTarget, type RedisTarget } from '../store/connections.js';
import { KeyBuilder } from '../store/keys.js';

/** How often the peers' lists are read again. Unit: milliseconds. */
export const PEER_CHECK_INTERVAL_MS = 30_000;

/** A node and one of its peers disagree about the cluster, or a peer's address is wrong. */
export class PeerConfigError extends EventualCacheError {
  readonly peer: string;
  constructor(peer: string, message: string) {
    super(message);
    this.peer = peer;
  }
}

/** What a node publishes about itself. */
interface PublishedPeers {
  peers: string[];
  at: number;
  /** The partition count the node uses for cluster stores (absent: a node from before it was published). */
  clusterPartitions?: number;
}

export interface PeerCheckOptions {
  selfId: string;
  prefix: string;
  /** The partition count of cluster stores: a peer with another one computes other key names. */
  clusterPartitions: number;
  redis: RedisTarget;
  peers: ReadonlyArray<{ id: string; redis: RedisTarget }>;
  registry: Registry;
  /** Called once each time a new problem appears (not on every check). */
  onProblem(error: PeerConfigError): void;
}

export class PeerCheck {
  private readonly o: PeerCheckOptions;
  private readonly readers = new Map<string, Redis>();
  private readonly problems = new Map<string, string>();
  private readonly gauge: Gauge<'peer'>;
  private timer: NodeJS.Timeout | undefined;
  private early: NodeJS.Timeout | undefined;
  /** When each peer was first found without a published list. */
  private readonly missingSince = new Map<string, number>();

  constructor(options: PeerCheckOptions) {
    this.o = options;
    this.gauge = new Gauge({
      name: 'eventual_cache_peer_config_problems',
      help: 'Configuration problems found with each peer (1: see /cluster warnings; 0: none)',
      labelNames: ['peer'],
      registers: [options.registry],
    });
    for (const peer of options.peers) {
      this.gauge.set({ peer: peer.id }, 0);
      const same = sameRedis(options.redis, peer.redis);
      if (same) this.problems.set(peer.id, `peer ${peer.id}'s Redis (${describeTarget(peer.redis)}) is this node's own Redis and database: check the URL configured for ${peer.id}`);
      const reader = createRedis(peer.redis, 'command', `${options.prefix}:${options.selfId}:peer-check-${peer.id}`);
      reader.connect().catch(() => undefined);
      this.readers.set(peer.id, reader);
    }
  }

  /** Publishes this node's list, reports the problems known at start, and checks every interval. */
  async start(own: Redis): Promise<void> {
    const mine: PublishedPeers = { peers: this.o.peers.map((p) => p.id), at: Date.now(), clusterPartitions: this.o.clusterPartitions };
    await own.set(new KeyBuilder(this.o.prefix, this.o.selfId).peers, JSON.stringify(mine));
    for (const [peer, message] of this.problems) this.report(peer, message);
    // Peers of one cluster start together: check again soon, then at the interval.
    void this.check();
    this.early = setTimeout(() => void this.check(), Math.min(3_000, PEER_CHECK_INTERVAL_MS));
    this.early.unref();
    this.timer = setInterval(() => void this.check(), PEER_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** The problems found so far, one sentence each. */
  get warnings(): string[] {
    return [...this.problems.values()];
  }

  /** Reads every peer's published list now; a peer that does not answer is skipped. */
  async check(): Promise<void> {
    await Promise.all(
      this.o.peers.map(async (peer) => {
        const reader = this.readers.get(peer.id);
        if (!reader || reader.status !== 'ready') return;
        let raw: string | null;
        try {
          raw = await reader.get(new KeyBuilder(this.o.prefix, peer.id).peers);
        } catch {
          return;
        }
        const message = this.judge(peer, raw);
        if (message === undefined) {
          if (this.problems.delete(peer.id)) this.gauge.set({ peer: peer.id }, 0);
        } else if (this.problems.get(peer.id) !== message) {
          this.report(peer.id, message);
        }
      }),
    );
  }

  private judge(peer: { id: string; redis: RedisTarget }, raw: string | null): string | undefined {
    const self = this.o.selfId;
    if (sameRedis(this.o.redis, peer.redis)) return this.problems.get(peer.id);
    if (raw === null) {
      // A peer that is still starting has not published yet: only a lasting absence counts.
      const since = this.missingSince.get(peer.id) ?? Date.now();
      this.missingSince.set(peer.id, since);
      if (Date.now() - since < PEER_CHECK_INTERVAL_MS) return this.problems.get(peer.id);
      return `${peer.id} has not published a peer list on ${describeTarget(peer.redis)} (prefix "${this.o.prefix}"): it is not running there yet, or runs with another Redis URL or prefix; ${self}'s jobs for ${peer.id} wait until it does`;
    }
    this.missingSince.delete(peer.id);
    let published: PublishedPeers;
    try {
      published = JSON.parse(raw) as PublishedPeers;
    } catch {
      return undefined;
    }
    const onCluster = isClusterTarget(this.o.redis) || isClusterTarget(peer.redis);
    if (onCluster && published.clusterPartitions !== undefined && published.clusterPartitions !== this.o.clusterPartitions) {
      return `${peer.id} runs with clusterPartitions ${published.clusterPartitions}, ${self} with ${this.o.clusterPartitions}: the two read each other's Redis Cluster keys under other names, so replication and anti-entropy between them do not work; give every node the same clusterPartitions`;
    }
    if (!Array.isArray(published.peers) || published.peers.includes(self)) return undefined;
    return `${peer.id} does not list ${self} as a peer (its peers: ${published.peers.join(', ') || 'none'}): ${self}'s replication jobs for ${peer.id} pile up unconsumed; add ${self} to ${peer.id}'s configuration or remove ${peer.id} from ${self}'s`;
  }

  private report(peer: string, message: string): void {
    this.problems.set(peer, message);
    this.gauge.set({ peer }, 1);
    this.o.onProblem(new PeerConfigError(peer, message));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.early);
    await Promise.all([...this.readers.values()].map((r) => closeRedis(r)));
  }
}

/**
 * Same server (host and port as written) and same database. Nodes may share a Redis
 * Cluster (it has only database 0, and every key carries its node's id), so two cluster
 * targets never count as a mistake.
 */
function sameRedis(a: RedisTarget, b: RedisTarget): boolean {
  if (isClusterTarget(a) && isClusterTarget(b)) return false;
  const norm = (t: RedisTarget): string => {
    if (isClusterTarget(t)) return [...t.cluster].map(norm).sort().join(',');
    if (typeof t !== 'string') return `${t.host ?? '127.0.0.1'}:${t.port ?? 6379}/${t.db ?? 0}`;
    try {
      const u = new URL(t);
      const host = u.hostname === 'localhost' ? '127.0.0.1' : u.hostname;
      return `${host}:${u.port || '6379'}/${Number(u.pathname.slice(1) || '0')}`;
    } catch {
      return t;
    }
  };
  return norm(a) === norm(b);
}
