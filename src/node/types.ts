/**
 * The shapes a replica node's methods and events use.
 */
import type { Conflict, MergeOutcome } from '../record/merge.js';
import type { CacheRecord, RecordView } from '../record/record.js';

export interface PutOptions {
  /** Time to live in milliseconds; the record expires at origin time + ttlMs on every node. */
  ttlMs?: number;
}

/** What `delete` returns: the tombstone's identity. */
export interface DeleteResult {
  key: string;
  deleted: true;
  hlc: string;
  origin: string;
  version: Readonly<Record<string, number>>;
}

export interface ListOptions {
  /** Only keys starting with this. */
  prefix?: string;
  /** At most this many items are returned (1..10000). @defaultValue 100 */
  limit?: number;
  /** Opaque cursor from the previous page; omit for the first. */
  cursor?: string;
}

export interface ListPage {
  items: RecordView[];
  /** Pass back for the next page; `null` when the iteration is complete. */
  cursor: string | null;
}

export interface ReplicatedEvent {
  from: string;
  record: CacheRecord;
  outcome: MergeOutcome;
}

export interface ConflictEvent extends Conflict {
  node: string;
  at: number;
}

export interface DriftEvent {
  from: string;
  hlc: string;
  aheadMs: number;
}

export interface ReplicaNodeEvents {
  write: [record: CacheRecord];
  replicated: [event: ReplicatedEvent];
  conflict: [event: ConflictEvent];
  drift: [event: DriftEvent];
  error: [error: Error];
}

