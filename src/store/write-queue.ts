/**
 * The local writes that wait for a group commit, by partition, and which batch commits next.
 *
 * - A batch holds the writes of one partition (one hash slot on a cluster), at most
 *   `maxBatch` of them, in arrival order; partitions with waiting writes take turns.
 * - At most `slots()` batches commit at once (the transaction connections).
 * - A single-partition store commits on all of them at once: the next WATCH overlaps the
 *   previous EXEC. A store with several partitions commits **one batch per partition** at a
 *   time: the partitions already overlap, and the writes that arrive while a partition's
 *   batch commits share its next one. On a 3-master cluster (3 partitions, a node's writes
 *   spread over them) two batches per partition halved the batches; one per partition cut
 *   the Redis commands per replicated write by about a quarter in the cluster bench.
 */
import type { WriteOp } from '../record/write.js';

export interface QueuedWrite {
  readonly op: WriteOp;
}

export interface WriteQueueOptions<W extends QueuedWrite> {
  readonly partitions: number;
  readonly partitionOf: (key: string) => number;
  readonly maxBatch: number;
  /** How many batches may commit at once (read at each turn: a cluster pool grows with its masters). */
  readonly slots: () => number;
  /** Commits one batch; must settle every write of it (resolve or reject), and never throw. */
  readonly commit: (partition: number, batch: W[]) => Promise<void>;
}

export class WriteQueue<W extends QueuedWrite> {
  private readonly opts: WriteQueueOptions<W>;
  private readonly waiting = new Map<number, W[]>();
  /** Batches committing, per partition. */
  private readonly committing = new Map<number, number>();
  private queued = 0;
  /** Writes in committing batches. */
  private inflight = 0;
  private batches = 0;

  constructor(options: WriteQueueOptions<W>) {
    this.opts = options;
  }

  /** Writes accepted and not yet committed (waiting or in a batch that is committing). */
  get size(): number {
    return this.queued + this.inflight;
  }

  /** Queues `w`; call {@link pump} after the last of several pushes so they can share a batch. */
  push(w: W): void {
    const p = this.opts.partitionOf(w.op.key);
    const list = this.waiting.get(p);
    if (list) list.push(w);
    else this.waiting.set(p, [w]);
    this.queued += 1;
  }

  /** Starts as many batches as the slots and the per-partition limit allow. */
  pump(): void {
    while (this.queued > 0 && this.batches < this.opts.slots()) {
      const partition = this.nextPartition();
      if (partition === undefined) return;
      // The partition served goes behind the others (Map order).
      const list = this.waiting.get(partition) as W[];
      const batch = list.splice(0, this.opts.maxBatch);
      this.waiting.delete(partition);
      if (list.length > 0) this.waiting.set(partition, list);
      this.queued -= batch.length;
      this.inflight += batch.length;
      this.batches += 1;
      this.committing.set(partition, (this.committing.get(partition) ?? 0) + 1);
      void this.opts.commit(partition, batch).finally(() => {
        this.inflight -= batch.length;
        this.batches -= 1;
        const left = (this.committing.get(partition) ?? 1) - 1;
        if (left > 0) this.committing.set(partition, left);
        else this.committing.delete(partition);
        this.pump();
      });
    }
  }

  /** The first partition in turn that has waiting writes and room for another batch. */
  private nextPartition(): number | undefined {
    if (this.opts.partitions === 1) return this.waiting.keys().next().value;
    for (const p of this.waiting.keys()) if (!this.committing.has(p)) return p;
    return undefined;
  }
}
