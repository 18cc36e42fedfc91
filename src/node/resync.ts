/**
 * The pull-everything resync of a node whose database is new or was wiped (a Redis without
 * persistence that restarted): the queues carry only writes made from now on, so the
 * node reads every record each peer holds and merges them. Anti-entropy
 * (`src/anti-entropy/`) repairs any other difference; this is the fast path for "empty".
 */
import type { CacheRecord } from '../record/record.js';
import { retryDelayMs, type ReplicationOptions } from '../replication/options.js';
import type { PeerReceiver } from '../replication/peer-receiver.js';
import { interruptibleSleep } from './bounded-close.js';

export interface ResyncDeps {
  /** The node's receivers (created once the node connected). */
  readonly receivers: () => readonly PeerReceiver[];
  /** Merges records read from `peer` into this node. */
  readonly apply: (peer: string, records: CacheRecord[]) => Promise<unknown>;
  /** Writes the start marker; true when it was missing (new or wiped database). */
  readonly markStarted: () => Promise<boolean>;
  readonly retry: Pick<ReplicationOptions, 'retryInitialMs' | 'retryMaxMs'>;
  /** Aborted when the node closes: stops retrying and wakes a retry sleep. */
  readonly signal: AbortSignal;
  readonly onError: (error: unknown) => void;
}

export class Resync {
  private readonly deps: ResyncDeps;
  private running: Promise<void> | undefined;

  constructor(deps: ResyncDeps) {
    this.deps = deps;
  }

  /** Resolves when the background resync in progress (if any) finished. */
  get done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** One pass over every peer now; resolves with the number of records read per peer. */
  async once(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const receiver of this.deps.receivers()) counts[receiver.peerId] = await this.pull(receiver);
    return counts;
  }

  /** Starts a background resync (after the one in progress), retried until every peer answered. */
  start(): void {
    const previous = this.running;
    this.running = (async () => {
      await previous;
      await this.untilDone();
    })();
  }

  /** After a reconnect: starts a background resync if the database came back without its start marker. */
  async ifWiped(): Promise<void> {
    if (this.deps.signal.aborted || this.deps.receivers().length === 0) return;
    try {
      if (!(await this.deps.markStarted())) return;
    } catch (error) {
      this.deps.onError(error);
      return;
    }
    this.start();
  }

  private pull(receiver: PeerReceiver): Promise<number> {
    return receiver.pullAll((records) => this.deps.apply(receiver.peerId, records).then(() => undefined));
  }

  private async untilDone(): Promise<void> {
    const { signal } = this.deps;
    const pending = new Set(this.deps.receivers());
    for (let attempt = 1; pending.size > 0 && !signal.aborted; attempt++) {
      for (const receiver of [...pending]) {
        try {
          await this.pull(receiver);
          pending.delete(receiver);
        } catch (error) {
          if (signal.aborted) return;
          this.deps.onError(error);
        }
      }
      if (pending.size > 0) await interruptibleSleep(retryDelayMs(attempt, this.deps.retry), signal);
    }
  }
}
