/**
 * In-process FIFO locks on Redis keys, taken by a node's transactions before they WATCH.
 *
 * A node's Redis is written only by that node's process (its own writes and the merges
 * its workers apply), so queueing transactions that touch the same key inside the process
 * removes almost every WATCH conflict: on a hot key, a local group commit and an incoming
 * merge no longer race and retry. WATCH/MULTI/EXEC stays the guarantee (another process,
 * or a hand-made change, is still caught); the locks only make the common case cheap.
 */
export class KeyLocks {
  /** The last holder (or waiter) of each key; its promise settles when it releases. */
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * Waits until every earlier transaction on any of `keys` released, then resolves with the
   * release function. Registration is synchronous, so later callers queue behind this one
   * and the order is first come, first served; waits never form a cycle.
   */
  async acquire(keys: readonly string[]): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const earlier = new Set<Promise<void>>();
    for (const key of keys) {
      const tail = this.tails.get(key);
      if (tail) earlier.add(tail);
      this.tails.set(key, mine);
    }
    if (earlier.size > 0) await Promise.all(earlier);
    return () => {
      for (const key of keys) if (this.tails.get(key) === mine) this.tails.delete(key);
      release();
    };
  }

  /** Keys currently held or waited for (for tests and diagnostics). */
  get size(): number {
    return this.tails.size;
  }
}
