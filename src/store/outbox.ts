/**
 * The outbox: one stream per partition, each entry one group-committed batch of keys,
 * written in the same MULTI as its records, that the relay has not yet handed to the
 * peers' queues.
 * Fields: `t` commit time (ms), `k` the keys as JSON, `p` the one peer it is for (absent:
 * every peer).
 */
import type { Redis } from 'ioredis';
import type { KeyBuilder } from './keys.js';
import { groupBy } from './group-by.js';

/** A committed batch of local writes not yet handed to the replication queues. */
export interface OutboxEntry {
  readonly id: string;
  /** The partition whose outbox stream holds the entry (ids are unique per stream only). */
  readonly partition: number;
  readonly keys: string[];
  /** Real time (ms since the epoch, no clock offset) at which the batch committed. */
  readonly committedAt: number;
  /** Set when the entry is for one peer only (keys the relay re-queued for it). */
  readonly peer?: string;
}

/** Decodes the rows of an `XRANGE` over the outbox. */
export function parseOutboxRows(rows: ReadonlyArray<[id: string, fields: string[]]>, partition: number): OutboxEntry[] {
  return rows.map(([id, fields]) => {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
    const entry = { id, partition, keys: JSON.parse(f.get('k') ?? '[]') as string[], committedAt: Number(f.get('t') ?? Date.now()) };
    const peer = f.get('p');
    return peer === undefined ? entry : { ...entry, peer };
  });
}

type Guard = <T>(fn: () => Promise<T>) => Promise<T>;

/** A node's outbox streams (one per partition) and which of them may hold entries. */
export class Outbox {
  private readonly redis: Redis;
  private readonly keys: KeyBuilder;
  private readonly guard: Guard;
  /** Per partition: commits to its stream so far; a read that found it empty forgets it only if none came since. */
  private readonly writes = new Map<number, number>();

  constructor(redis: Redis, keys: KeyBuilder, guard: Guard) {
    this.redis = redis;
    this.keys = keys;
    this.guard = guard;
    this.rescan();
  }

  /** A batch was committed to `partition`'s stream. */
  committed(partition: number): void {
    this.writes.set(partition, (this.writes.get(partition) ?? 0) + 1);
  }

  /**
   * The oldest `count` outbox entries (committed writes not yet enqueued for the peers),
   * oldest first across partitions. Only partitions written since they were last found
   * empty are read, or every one after {@link rescan}.
   */
  async read(count: number): Promise<OutboxEntry[]> {
    if (this.keys.partitions === 1) return parseOutboxRows(await this.guard(() => this.redis.xrange(this.keys.outbox(0), '-', '+', 'COUNT', count)), 0);
    const dirty = [...this.writes];
    const rows = await this.guard(() => Promise.all(dirty.map(([p]) => this.redis.xrange(this.keys.outbox(p), '-', '+', 'COUNT', count))));
    const entries: OutboxEntry[] = [];
    dirty.forEach(([p, writes], i) => {
      const found = rows[i] ?? [];
      if (found.length === 0 && this.writes.get(p) === writes) this.writes.delete(p);
      entries.push(...parseOutboxRows(found, p));
    });
    return entries.sort((a, b) => a.committedAt - b.committedAt).slice(0, count);
  }

  /** Makes the next {@link readOutbox} look at every partition (start, and the relay's periodic sweep). */
  rescan(): void {
    for (const p of this.partitions()) this.writes.set(p, (this.writes.get(p) ?? 0) + 1);
  }

  /** Appends `keys` to the outbox again, for `peer` only (the relay folds a down peer's small jobs this way). */
  async requeue(peer: string, keys: readonly string[], committedAt: number): Promise<void> {
    for (const [p, list] of groupBy(keys, (k) => this.keys.partition(k))) {
      await this.guard(() => this.redis.xadd(this.keys.outbox(p), '*', 't', String(committedAt), 'k', JSON.stringify(list), 'p', peer));
      this.writes.set(p, (this.writes.get(p) ?? 0) + 1);
    }
  }

  /** Removes outbox entries whose keys are now in every peer's queue. */
  async ack(entries: readonly OutboxEntry[]): Promise<void> {
    const ids = new Map<number, string[]>();
    for (const e of entries) ids.set(e.partition, [...(ids.get(e.partition) ?? []), e.id]);
    await Promise.all([...ids].map(([p, list]) => this.guard(() => this.redis.xdel(this.keys.outbox(p), ...list))));
  }

  /** Number of outbox entries not yet enqueued. */
  async length(): Promise<number> {
    const lengths = await this.guard(() => Promise.all(this.partitions().map((p) => this.redis.xlen(this.keys.outbox(p)))));
    return lengths.reduce((a, b) => a + b, 0);
  }

  private partitions(): number[] {
    return Array.from({ length: this.keys.partitions }, (_, i) => i);
  }
}
