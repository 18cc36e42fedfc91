/**
 * The local writes that wait for a group commit, by partition, and which batch commits next.
 *
 * - A batch holds the writes of one partition (one hash slot on a cluster), at most
 *   `maxBatch` of them, in arrival order; partitions with waiting writes take turns.
 * - At most `slots()` batches commit at once (the transaction connections).
 * - A single-partition store may commit on all of them at once: the next WATCH overlaps
 *   the previous EXEC. A store with several partitions commits **one batch per partition**
 *   at a time: the partitions already overlap, and the writes that arrive while a
 *   partition's batch commits share its next one. On a 3-master cluster (3 partitions, a
 *   node's writes spread over them) two batches per partition halved the batches; one per
 *   partition cut the Redis commands per replicated write by about a quarter in the
 *   cluster bench.
 * - **A batch beside another must be worth it.** With nothing committing, the first
 *   partition in turn starts at once, whatever it holds (a lone write never waits). While
 *   a batch commits, another starts only with at least `minConcurrentBatch` writes
 *   (a store option, default 16: the bench gained nothing more from 32 or 64);
 *   otherwise its writes wait for the next turn and share one batch. A transaction costs
 *   about the same for 1 write as for 10 (two round trips; its socket writes are the
 *   largest item in a profile of the node), so under load fewer, fuller batches leave the
 *   CPU to the writes. Measured with 3 nodes at concurrency 64 (bench scenario 2's
 *   diag row runs `minConcurrentBatch: 1` beside the default): 0.089 against 0.141
 *   transactions per write, and 0.83× the time per replicated write. On the 3-master
 *   cluster of scenario 11 its EXEC calls per write fell from 0.257 to 0.166. A partition that is not worth a batch yet also holds back those
 *   behind it in turn, so a busy partition never starves a quiet one: at the latest it
 *   starts when the committing batches are done.
 */
import type { WriteOp } from '../record/write.js';

export interface QueuedWrite {
  readonly op: WriteOp;
}

export interface WriteQueueOptions<W extends QueuedWrite> {
  readonly partitions: number;
  readonly partitionOf: (key: string) => number;
  readonly maxBatch: number;
  /** Writes a batch needs to start while another commits (capped at `maxBatch`). */
  readonly minConcurrentBatch: number;
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

  /**
   * The first partition in turn that has waiting writes and room for another batch, if it
   * may start now: always when nothing commits, else only with a batch worth running beside
   * the others. Partitions later in turn never go ahead of it.
   */
  private nextPartition(): number | undefined {
    const single = this.opts.partitions === 1;
    for (const [p, list] of this.waiting) {
      if (!single && this.committing.has(p)) continue;
      return this.batches === 0 || list.length >= this.minConcurrent ? p : undefined;
    }
    return undefined;
  }

  private get minConcurrent(): number {
    return Math.min(this.opts.minConcurrentBatch, this.opts.maxBatch);
  }
}
