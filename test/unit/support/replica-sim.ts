/**
 * An in-memory cluster that runs the real pure engine (HybridLogicalClock, localWrite,
 * merge) the way `RecordStore` and `ReplicaNode` do, minus Redis and BullMQ:
 *
 * - a write reads the node's current record, takes `clock.after(existing.hlc)` (or
 *   `clock.now()`), builds the record with `localWrite` and stores it;
 * - a delivery runs `clock.observe(record.hlc)` and then `merge(local, incoming)`.
 *
 * Beside the engine it keeps its own ground truth, independent of version vectors: every
 * write, and for every replica and every record sent, the set of writes in its causal past
 * (the writes it has seen, directly or through merged records). Tests compare the engine's
 * answers with that truth.
 *
 * It checks two step invariants as it goes and throws at the first violation:
 * a replica never replaces a record by one with a smaller HLC (no resurrection), and a
 * clock's high-water mark never moves back.
 */
import { HybridLogicalClock } from '../../../src/clock/hlc.js';
import { compareTimestamps, formatTimestamp, parseTimestamp, wallMsOf, type Timestamp } from '../../../src/clock/timestamp.js';
import { merge, type Conflict } from '../../../src/record/merge.js';
import { isLive, type CacheRecord, type JsonValue } from '../../../src/record/record.js';
import { localWrite, type WriteOp } from '../../../src/record/write.js';
import { deepFreeze } from './arbitraries.js';
import { shuffled, T0 } from './fake-clock.js';

/** A record on the wire, with the (ground-truth) set of write HLCs in its causal past. */
export interface Envelope {
  readonly from: string;
  readonly record: CacheRecord;
  readonly past: ReadonlySet<string>;
}

export interface WriteEvent {
  readonly seq: number;
  readonly node: string;
  readonly op: WriteOp;
  /** The record as the writer stored it (and as it is sent). */
  readonly record: CacheRecord;
  /** Writes to the same key the writer had seen when it wrote (ground truth). */
  readonly past: ReadonlySet<string>;
  /** The writer's physical clock when it wrote. */
  readonly physicalMs: number;
  /** The record it overwrote on its own replica, if any. */
  readonly overwrote?: CacheRecord;
}

/** Counters that let a property show its histories exercised what it claims. */
export interface SimStats {
  drifted: number;
  conflicts: number;
  /** Writes whose HLC came from the drift path of `after()` (ahead of the writer's own clock). */
  successorWrites: number;
  /** Writes made while the writer's physical clock was behind the wall time of what they overwrote. */
  writesBehindOverwritten: number;
  /** Deliveries of an older live record to a replica whose newer record was deleted or expired. */
  resurrectionAttempts: number;
}

export class SimNode {
  readonly clock: HybridLogicalClock;
  readonly records = new Map<string, CacheRecord>();
  readonly known = new Map<string, Set<string>>();
  readonly conflicts: Conflict[] = [];
  /** Extra clock error a test can change mid-history (a step backwards, an NTP jump). */
  stepMs = 0;

  constructor(
    readonly id: string,
    readonly skewMs: number,
    world: { timeMs: number },
    maxDriftMs: number,
  ) {
    this.clock = new HybridLogicalClock(id, { now: () => world.timeMs + this.skewMs + this.stepMs, maxDriftMs });
  }

  knownFor(key: string): Set<string> {
    let set = this.known.get(key);
    if (!set) this.known.set(key, (set = new Set()));
    return set;
  }
}

export interface SimOptions {
  readonly nodeIds: readonly string[];
  /** Per-node wall-clock error in ms (negative = behind); missing entries are 0. */
  readonly skewsMs?: readonly number[];
  /** @defaultValue 60000 */
  readonly maxDriftMs?: number;
  /** @defaultValue {@link T0} */
  readonly startMs?: number;
}

export class SimCluster {
  readonly world: { timeMs: number };
  readonly nodes: ReadonlyMap<string, SimNode>;
  readonly writes: WriteEvent[] = [];
  /** Every record any replica ever sent, in sending order. */
  readonly sent: Envelope[] = [];
  readonly stats: SimStats = { drifted: 0, conflicts: 0, successorWrites: 0, writesBehindOverwritten: 0, resurrectionAttempts: 0 };

  constructor(options: SimOptions) {
    this.world = { timeMs: options.startMs ?? T0 };
    const maxDriftMs = options.maxDriftMs ?? 60_000;
    this.nodes = new Map(options.nodeIds.map((id, i) => [id, new SimNode(id, options.skewsMs?.[i] ?? 0, this.world, maxDriftMs)]));
  }

  node(id: string): SimNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id} in this cluster`);
    return node;
  }

  tick(ms: number): void {
    this.world.timeMs += ms;
  }

  put(nodeId: string, key: string, value: JsonValue, ttlMs?: number): CacheRecord {
    const valueJson = JSON.stringify(value);
    return this.write(nodeId, ttlMs === undefined ? { kind: 'put', key, valueJson } : { kind: 'put', key, valueJson, ttlMs });
  }

  delete(nodeId: string, key: string): CacheRecord {
    return this.write(nodeId, { kind: 'delete', key });
  }

  /** A local write, the way `RecordStore.write` makes it; the record is also queued for sending. */
  write(nodeId: string, op: WriteOp): CacheRecord {
    const node = this.node(nodeId);
    const existing = node.records.get(op.key);
    const before = node.clock.last;
    const physicalMs = node.clock.physicalNow();
    const ts = existing ? node.clock.after(parseTimestamp(existing.hlc)) : node.clock.now();
    const record = deepFreeze(localWrite(existing, op, formatTimestamp(ts), node.id, physicalMs));
    this.checkClockMonotonic(node, before);
    if (compareTimestamps(ts, node.clock.last) > 0) this.stats.successorWrites += 1;
    if (existing && physicalMs < wallMsOf(existing.hlc)) this.stats.writesBehindOverwritten += 1;

    const known = node.knownFor(op.key);
    const event: WriteEvent = { seq: this.writes.length, node: node.id, op, record, past: new Set(known), physicalMs, ...(existing ? { overwrote: existing } : {}) };
    known.add(record.hlc);
    node.records.set(op.key, record);
    this.writes.push(event);
    this.sent.push({ from: node.id, record, past: new Set(known) });
    return record;
  }

  /** `from` sends its current record for `key` (if any) to `to`, which applies it at once. */
  sync(from: string, to: string, key: string): void {
    const source = this.node(from);
    const record = source.records.get(key);
    if (!record) return;
    const envelope: Envelope = { from, record, past: new Set(source.knownFor(key)) };
    this.sent.push(envelope);
    this.deliver(to, envelope);
  }

  /** `from` sends every record it holds to `to`. */
  syncAll(from: string, to: string): void {
    for (const key of [...this.node(from).records.keys()]) this.sync(from, to, key);
  }

  /** Applies a record the way a peer receiver does: observe its timestamp, then merge. */
  deliver(to: string, envelope: Envelope): void {
    const node = this.node(to);
    const { record } = envelope;
    const before = node.clock.last;
    const observed = node.clock.observe(parseTimestamp(record.hlc));
    if (observed.drifted) {
      this.stats.drifted += 1;
      if (compareTimestamps(node.clock.last, before) !== 0) throw new Error(`${to}: a drifted timestamp ${record.hlc} moved the clock`);
    }
    this.checkClockMonotonic(node, before);

    const local = node.records.get(record.key);
    const nowMs = node.clock.physicalNow();
    if (local && !isLive(local, nowMs) && isLive(record, nowMs) && record.hlc < local.hlc) this.stats.resurrectionAttempts += 1;
    const result = merge(local, record);
    if (local && result.record.hlc < local.hlc) {
      throw new Error(`${to}: merging ${record.hlc} replaced newer ${local.hlc} by older ${result.record.hlc}`);
    }
    node.records.set(record.key, deepFreeze(result.record));
    const known = node.knownFor(record.key);
    for (const hlc of envelope.past) known.add(hlc);
    if (result.conflict) {
      node.conflicts.push(result.conflict);
      this.stats.conflicts += 1;
    }
  }

  /** Every record ever sent, to every node, each node in its own random order, some twice. */
  deliverEverything(random: () => number): void {
    const envelopes = [...this.sent];
    for (const node of this.nodes.values()) {
      const copies = envelopes.flatMap((e) => (random() < 0.3 ? [e, e] : [e]));
      for (const envelope of shuffled(copies, random)) this.deliver(node.id, envelope);
    }
  }

  /** What a read on `nodeId` returns now (undefined for absent, deleted or expired keys). */
  read(nodeId: string, key: string): JsonValue | undefined {
    const node = this.node(nodeId);
    const record = node.records.get(key);
    if (!record || !isLive(record, node.clock.physicalNow())) return undefined;
    return JSON.parse(record.valueJson ?? 'null') as JsonValue;
  }

  private checkClockMonotonic(node: SimNode, before: Timestamp): void {
    if (compareTimestamps(node.clock.last, before) < 0) {
      throw new Error(`${node.id}: clock moved back from ${formatTimestamp(before)} to ${formatTimestamp(node.clock.last)}`);
    }
  }
}
