/**
 * The outbox stream's entries: each is one group-committed batch of keys, written in the
 * same MULTI as its records, that the relay has not yet handed to the peers' queues.
 * Fields: `t` commit time (ms), `k` the keys as JSON, `p` the one peer it is for (absent:
 * every peer).
 */

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
