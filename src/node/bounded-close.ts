/**
 * Shutdown within a budget. A node's `close()` waits for work in flight (merges, the
 * start-up resync), hands its outbox to the queues and lets the workers finish their
 * current jobs; with a peer's Redis down any of those can wait for a long time (a resync
 * sleeps up to `retryMaxMs` between attempts). Docker gives a container 10 s after
 * SIGTERM, so each step gets only what is left of `closeTimeoutMs`, and what is left
 * undone then is abandoned, never lost: an acknowledged write is in the outbox (committed
 * in the same MULTI as the record) until a queue has it, and the next start relays it.
 */

/** Default of `ReplicaNodeOptions.closeTimeoutMs`. Unit: milliseconds. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 4_000;

/** A deadline shared by the steps of one shutdown. */
export class CloseBudget {
  private readonly deadline: number;

  constructor(timeoutMs: number, now = Date.now()) {
    this.deadline = now + timeoutMs;
  }

  /** Milliseconds left (0 once spent). */
  get remainingMs(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  get spent(): boolean {
    return this.remainingMs === 0;
  }

  /**
   * Waits for `work` at most until the deadline; resolves `true` if it settled in time.
   * A rejection counts as settled (shutdown goes on; the caller reports errors elsewhere).
   */
  async within(work: Promise<unknown>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.remainingMs);
    });
    try {
      return await Promise.race([work.then(() => true, () => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A pause that ends early when `signal` aborts (a closing node does not sit out a retry delay). */
export function interruptibleSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
