/**
 * What the cluster view page shows, gathered by one node from every node's Redis: the
 * serving node needs no HTTP access to the others, so the browser talks to one origin.
 *
 * - Every node publishes its **vitals** (status, replication lag p50/p99 over the last
 *   minute, conflicts, its most recent keys) to its own Redis every `heartbeatMs`, with a
 *   TTL of three heartbeats. A node whose vitals are missing or old is shown as down.
 * - A **snapshot** reads the vitals of every node, and the records of the shown keys and
 *   the conflict log from every node's Redis (through the reader this node already keeps
 *   per peer), and marks each cell stale when it differs from the newest write of its key.
 *
 *   node A ──SET vitals (PX)──► Redis A ◄──GET vitals, MGET records── node B serving the page
 */
import type { Redis } from 'ioredis';
import { KeyBuilder } from '../store/keys.js';
import { readRecords } from '../store/record-store.js';
import type { CacheRecord, JsonValue } from '../record/record.js';
import type { ClusterStatus } from './status.js';
import type { ConflictEvent } from './types.js';

export interface ClusterViewOptions {
  /**
   * How often a node publishes its vitals. Unit: milliseconds.
   * @defaultValue 1000
   */
  heartbeatMs: number;
  /**
   * Most recently written keys a node remembers and a snapshot shows.
   * @defaultValue 24
   */
  recentKeys: number;
  /**
   * Window of the lag percentiles. Unit: milliseconds.
   * @defaultValue 60000
   */
  lagWindowMs: number;
}

export const DEFAULT_CLUSTER_VIEW_OPTIONS: ClusterViewOptions = Object.freeze({ heartbeatMs: 1_000, recentKeys: 24, lagWindowMs: 60_000 });

/** Replication lag percentiles over the window; `null` when nothing was applied in it. */
export interface LagSummary {
  p50Ms: number | null;
  p99Ms: number | null;
  samples: number;
}

/** What a node publishes about itself. */
export interface NodeVitals {
  node: string;
  /** When published, ms since the epoch. */
  at: number;
  status: ClusterStatus | null;
  lag: LagSummary;
  /** Conflicts this node resolved since it started. */
  conflicts: number;
  recentKeys: string[];
}

/** One node in a snapshot. */
export interface ViewNode {
  id: string;
  self: boolean;
  /** `ok`: fresh vitals; `down`: Redis answers but no fresh vitals (the process is away); `unreachable`: its Redis does not answer. */
  health: 'ok' | 'down' | 'unreachable';
  vitals: NodeVitals | null;
}

/** One node's copy of a key. */
export interface ViewCell {
  value: JsonValue | null;
  hlc: string;
  origin: string;
  deleted: boolean;
  expiresAt?: number;
  /** Differs from the newest write of the key (or the node has no copy yet). */
  stale: boolean;
}

export interface ViewRow {
  key: string;
  /** The newest HLC of the key on any node. */
  newest: string;
  /** Per node id; `null` when the node holds nothing for the key (stale if another does), absent when unreadable. */
  cells: Record<string, ViewCell | null>;
  /** The latest conflict any node resolved on this key. */
  conflict?: ConflictEvent;
}

export interface ViewSnapshot {
  node: string;
  at: number;
  nodes: ViewNode[];
  rows: ViewRow[];
  /** Every node's copy of every shown key is the newest. */
  converged: boolean;
}

/** What the view needs from its node. */
export interface ClusterViewSource {
  readonly id: string;
  readonly prefix: string;
  readonly peerIds: readonly string[];
  /** The key names of a node of the deployment (this node or a peer). */
  keysOf(id: string): KeyBuilder;
  /** This node's command connection (never a WATCH connection). */
  readonly redis: Redis;
  /** The connection this node keeps to a peer's Redis. */
  peerReader(id: string): Redis | undefined;
  status(): Promise<ClusterStatus>;
  /** Cumulative replication-lag histogram: bucket upper bounds (s) and counts. */
  lagHistogram(): Promise<{ bounds: number[]; counts: number[] }>;
  conflictCount(): Promise<number>;
  /** Keys whose prefix matches, from this node's own records. */
  keysWithPrefix(prefix: string, limit: number): Promise<string[]>;
}

const READ_TIMEOUT_MS = 500;
const CONFLICTS_READ = 100;

export class ClusterView {
  readonly options: ClusterViewOptions;
  private readonly source: ClusterViewSource;
  private readonly recent = new Set<string>();
  private readonly lagHistory: Array<{ at: number; counts: number[] }> = [];
  private timer: NodeJS.Timeout | undefined;
  private last: NodeVitals | undefined;
  private publishing: Promise<void> | undefined;

  constructor(source: ClusterViewSource, options: Partial<ClusterViewOptions> = {}) {
    this.source = source;
    this.options = { ...DEFAULT_CLUSTER_VIEW_OPTIONS, ...options };
  }

  /** Remembers `key` as recently written (local writes and merged ones alike). */
  touch(key: string): void {
    this.recent.delete(key);
    this.recent.add(key);
    if (this.recent.size > this.options.recentKeys) this.recent.delete(this.recent.values().next().value as string);
  }

  /** Starts publishing vitals. The timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.publishing = this.publish().catch(() => undefined);
    };
    tick();
    this.timer = setInterval(tick, this.options.heartbeatMs);
    this.timer.unref();
  }

  /** Stops publishing (the vitals expire by themselves, so peers then show this node as down). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.publishing;
  }

  /** This node's vitals now. */
  async vitals(): Promise<NodeVitals> {
    const s = this.source;
    const [status, histogram, conflicts] = await Promise.all([s.status().catch(() => null), s.lagHistogram(), s.conflictCount()]);
    const now = Date.now();
    this.lagHistory.push({ at: now, counts: histogram.counts });
    while (this.lagHistory.length > 2 && (this.lagHistory[1] as { at: number }).at < now - this.options.lagWindowMs) this.lagHistory.shift();
    const oldest = this.lagHistory[0] as { counts: number[] };
    const window = histogram.counts.map((c, i) => c - (this.lagHistory.length > 1 ? (oldest.counts[i] ?? 0) : 0));
    this.last = { node: s.id, at: now, status, lag: lagSummary(histogram.bounds, window), conflicts, recentKeys: [...this.recent].reverse() };
    return this.last;
  }

  private async publish(): Promise<void> {
    const vitals = await this.vitals();
    const key = new KeyBuilder(this.source.prefix, this.source.id).vitals;
    await this.source.redis.set(key, JSON.stringify(vitals), 'PX', this.options.heartbeatMs * 3);
  }

  /** Everything the page shows; `prefix` selects keys by prefix instead of the most recent writes. */
  async snapshot(prefix?: string): Promise<ViewSnapshot> {
    const s = this.source;
    const ids = [s.id, ...s.peerIds];
    const connectionOf = (id: string) => (id === s.id ? s.redis : s.peerReader(id));
    const cached = this.last && Date.now() - this.last.at < this.options.heartbeatMs ? this.last : await this.vitals();
    const own: NodeVitals = { ...cached, recentKeys: [...this.recent].reverse() };
    const vitals = await Promise.all(ids.map((id) => (id === s.id ? Promise.resolve<NodeVitals | null | 'unreachable'>(own) : readVitals(connectionOf(id), s.prefix, id))));
    const nodes: ViewNode[] = ids.map((id, i) => {
      const v = vitals[i];
      if (v === 'unreachable' || v === undefined) return { id, self: id === s.id, health: 'unreachable', vitals: null };
      const fresh = v !== null && Date.now() - v.at < this.options.heartbeatMs * 3;
      return { id, self: id === s.id, health: fresh ? 'ok' : 'down', vitals: v };
    });

    const limit = this.options.recentKeys;
    let keys: string[];
    if (prefix !== undefined && prefix !== '') {
      const recent = nodes.flatMap((n) => n.vitals?.recentKeys ?? []).filter((k) => k.startsWith(prefix));
      keys = unique([...recent, ...(await s.keysWithPrefix(prefix, limit).catch(() => []))]).slice(0, limit);
    } else {
      keys = unique(interleave(nodes.map((n) => n.vitals?.recentKeys ?? []))).slice(0, limit);
    }

    const [records, conflicts] = await Promise.all([
      Promise.all(ids.map((id) => withTimeout(readRecords(connectionOf(id) as Redis, s.keysOf(id), keys, ignoreBad)).catch(() => undefined))),
      Promise.all(ids.map((id) => readConflicts(connectionOf(id), s.keysOf(id)))),
    ]);
    const latestConflict = new Map<string, ConflictEvent>();
    for (const list of conflicts) for (const c of list) if (keys.includes(c.key) && (latestConflict.get(c.key)?.at ?? -1) < c.at) latestConflict.set(c.key, c);

    let converged = true;
    const rows = keys.map((key): ViewRow => {
      const copies = ids.map((_, i) => (records[i] === undefined ? undefined : (records[i] as CacheRecord[]).find((r) => r.key === key) ?? null));
      const newest = copies.reduce<string>((max, r) => (r && r.hlc > max ? r.hlc : max), '');
      const cells: Record<string, ViewCell | null> = {};
      copies.forEach((r, i) => {
        const id = ids[i] as string;
        if (r === undefined) return;
        if (r === null) {
          cells[id] = null;
          converged = false;
          return;
        }
        const stale = r.hlc !== newest;
        if (stale) converged = false;
        const cell: ViewCell = { value: r.valueJson === undefined ? null : (JSON.parse(r.valueJson) as JsonValue), hlc: r.hlc, origin: r.origin, deleted: r.deleted, stale };
        if (r.expiresAt !== undefined) cell.expiresAt = r.expiresAt;
        cells[id] = cell;
      });
      const conflict = latestConflict.get(key);
      return conflict ? { key, newest, cells, conflict } : { key, newest, cells };
    });
    rows.sort((a, b) => (a.newest < b.newest ? 1 : a.newest > b.newest ? -1 : 0));
    return { node: s.id, at: Date.now(), nodes, rows, converged };
  }
}

/**
 * Percentiles from cumulative histogram bucket counts (`cumulative[i]` samples at most
 * `bounds[i]` seconds), interpolated linearly inside the bucket, as Prometheus'
 * `histogram_quantile` does.
 */
export function lagSummary(bounds: readonly number[], cumulative: readonly number[]): LagSummary {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total <= 0) return { p50Ms: null, p99Ms: null, samples: 0 };
  const quantile = (q: number): number => {
    const rank = q * total;
    for (let i = 0; i < cumulative.length; i++) {
      const c = cumulative[i] as number;
      if (c >= rank) {
        const lower = i === 0 ? 0 : (bounds[i - 1] as number);
        const upper = bounds[i] ?? lower;
        const below = i === 0 ? 0 : (cumulative[i - 1] as number);
        const inBucket = c - below;
        const seconds = !Number.isFinite(upper) ? lower : inBucket > 0 ? lower + ((upper - lower) * (rank - below)) / inBucket : upper;
        return Math.round(seconds * 1000 * 10) / 10;
      }
    }
    return Math.round((bounds[bounds.length - 1] ?? 0) * 1000);
  };
  return { p50Ms: quantile(0.5), p99Ms: quantile(0.99), samples: total };
}

async function readVitals(redis: Redis | undefined, prefix: string, id: string): Promise<NodeVitals | null | 'unreachable'> {
  if (!redis || redis.status !== 'ready') return 'unreachable';
  try {
    const raw = await withTimeout(redis.get(new KeyBuilder(prefix, id).vitals));
    return raw === null ? null : (JSON.parse(raw) as NodeVitals);
  } catch {
    return 'unreachable';
  }
}

async function readConflicts(redis: Redis | undefined, keys: KeyBuilder): Promise<ConflictEvent[]> {
  if (!redis || redis.status !== 'ready') return [];
  try {
    // One list per partition (several on a cluster store).
    const lists = await withTimeout(Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.lrange(keys.conflicts(p), 0, CONFLICTS_READ - 1))));
    return lists.flat().map((r) => JSON.parse(r) as ConflictEvent);
  } catch {
    return [];
  }
}

/** Unusable records read as absent here: the node that owns them reports and quarantines them. */
function ignoreBad(): void {}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), READ_TIMEOUT_MS)))]).finally(() =>
    clearTimeout(timer),
  );
}

function unique(keys: readonly string[]): string[] {
  return [...new Set(keys)];
}

/** `[[a1, a2], [b1]]` -> `[a1, b1, a2]`: every node's newest keys first. */
function interleave(lists: readonly string[][]): string[] {
  const out: string[] = [];
  for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) out.push(l[i] as string);
  return out;
}
