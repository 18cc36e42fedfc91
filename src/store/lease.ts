/**
 * The node-id lease: one key in the node's own Redis, `${prefix}:${id}:lease`, holding
 * who runs the node (host, pid, since) and a random token, with a TTL that a timer keeps
 * renewing. A second process started with the same id finds the key and refuses to start
 * ({@link NodeIdInUseError}), naming the first.
 *
 * Restarts must not wait: a holder on this host whose pid is gone (killed with SIGKILL, say),
 * or that is this very process in an earlier life (a container restarted with the same
 * hostname and pid), is stale and taken over at once. A holder elsewhere that stopped
 * renewing is waited for, up to one TTL, before giving up.
 *
 * The renewal is a WATCH/MULTI on a connection of its own, so it extends only its own lease.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { NodeIdInUseError } from '../errors/index.js';
import { closeRedis, connect, createRedis, unavailable, type RedisTarget } from './connections.js';

/** Default of `ReplicaNodeOptions.leaseTtlMs`. Unit: milliseconds. */
export const DEFAULT_LEASE_TTL_MS = 15_000;

/** What the lease key holds. */
export interface LeaseHolder {
  host: string;
  pid: number;
  since: number;
  token: string;
}

/** Leases held by this process, by key: a second node with the same id here is live, not stale. */
const heldHere = new Set<string>();

export class NodeLease {
  readonly key: string;
  private readonly redis: Redis;
  private readonly me: LeaseHolder;
  private timer: NodeJS.Timeout | undefined;
  private held = false;

  constructor(
    private readonly target: RedisTarget,
    key: string,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly onLost: (error: Error) => void,
  ) {
    this.key = key;
    this.redis = createRedis(target, 'transaction', `${key}`);
    this.me = { host: hostname(), pid: process.pid, since: Date.now(), token: randomBytes(12).toString('hex') };
  }

  /** Takes the lease or throws {@link NodeIdInUseError}; then renews it every third of the TTL. */
  async acquire(connectTimeoutMs: number): Promise<void> {
    await connect(this.redis, this.target, connectTimeoutMs);
    const giveUpAt = Date.now() + this.ttlMs + 1_000;
    for (;;) {
      const value = JSON.stringify(this.me);
      if ((await this.command(() => this.redis.set(this.key, value, 'PX', this.ttlMs, 'NX'))) === 'OK') break;
      const raw = await this.command(() => this.redis.get(this.key));
      const holder = parseHolder(raw);
      if (raw !== null && (holder === undefined || this.isStale(holder))) {
        // Replace exactly the stale value seen, nothing a live holder wrote since.
        if (await this.replace(raw, value)) break;
        continue;
      }
      if (holder && (holder.host === this.me.host || Date.now() > giveUpAt)) {
        await closeRedis(this.redis);
        throw new NodeIdInUseError(this.nodeId, holder);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    this.held = true;
    heldHere.add(this.key);
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Stops renewing and deletes the key if it is still ours. Never throws. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.held) {
      heldHere.delete(this.key);
      this.held = false;
      await this.ifStillOurs((multi) => multi.del(this.key)).catch(() => undefined);
    }
    await closeRedis(this.redis);
  }

  private async renew(): Promise<void> {
    if (!this.held) return;
    try {
      let kept = await this.ifStillOurs((multi) => multi.pexpire(this.key, this.ttlMs));
      // Expired while Redis was away and nobody took it: take it again.
      if (kept === 'missing') kept = (await this.redis.set(this.key, JSON.stringify(this.me), 'PX', this.ttlMs, 'NX')) === 'OK' ? 'kept' : 'lost';
      if (kept === 'lost') {
        this.onLost(new Error(`node-id lease ${this.key} was taken over by another process; two processes may be running node ${this.nodeId}`));
      }
    } catch {
      // Redis away: the next renewal tries again; the lease outlives a short outage (TTL).
    }
  }

  private isStale(holder: LeaseHolder): boolean {
    if (holder.host !== this.me.host) return false;
    if (holder.pid === process.pid) return !heldHere.has(this.key);
    try {
      process.kill(holder.pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  private async replace(expected: string, value: string): Promise<boolean> {
    await this.redis.watch(this.key);
    if ((await this.redis.get(this.key)) !== expected) {
      await this.redis.unwatch();
      return false;
    }
    return (await this.redis.multi().set(this.key, value, 'PX', this.ttlMs).exec()) !== null;
  }

  private async ifStillOurs(op: (multi: ReturnType<Redis['multi']>) => unknown): Promise<'kept' | 'lost' | 'missing'> {
    await this.redis.watch(this.key);
    const raw = await this.redis.get(this.key);
    if (parseHolder(raw)?.token !== this.me.token) {
      await this.redis.unwatch();
      return raw === null ? 'missing' : 'lost';
    }
    const multi = this.redis.multi();
    op(multi);
    return (await multi.exec()) === null ? 'lost' : 'kept';
  }

  private async command<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw unavailable(this.target, error);
    }
  }
}

function parseHolder(raw: string | null): LeaseHolder | undefined {
  if (raw === null) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<LeaseHolder>;
    return typeof v.host === 'string' && typeof v.pid === 'number' && typeof v.since === 'number' && typeof v.token === 'string' ? (v as LeaseHolder) : undefined;
  } catch {
    return undefined;
  }
}
