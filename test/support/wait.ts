/**
 * Waiting for eventually consistent things without sleeping and hoping.
 *
 * `waitFor` polls a condition until it holds or a deadline passes; on timeout it fails
 * with the caller's message *and the last state it observed*, so a convergence failure
 * says which node held what instead of just "timed out".
 */
import { inspect } from 'node:util';

export interface WaitOptions {
  /** Give up after this long. Unit: milliseconds. @defaultValue 10000 */
  timeoutMs?: number;
  /** Pause between polls. Unit: milliseconds. @defaultValue 20 */
  intervalMs?: number;
  /** What was being waited for, e.g. "B and C to hold A's write". */
  message: string;
}

/**
 * What a condition reports: `true`/`false`, or `{ done, observed }` to have `observed`
 * printed if the wait times out. A condition that throws (an `expect` that does not hold
 * yet, say) counts as not done, and its error is reported as the last observation.
 */
export type Observation = boolean | { done: boolean; observed: unknown };

export class WaitTimeoutError extends Error {
  readonly observed: unknown;
  constructor(message: string, observed: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WaitTimeoutError';
    this.observed = observed;
  }
}

/** Polls `condition` until it reports done; throws {@link WaitTimeoutError} at the deadline. */
export async function waitFor(condition: () => Observation | Promise<Observation>, options: WaitOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: unknown = '(condition never completed)';
  let lastError: unknown;
  let polls = 0;
  for (;;) {
    polls += 1;
    try {
      const result = await condition();
      lastError = undefined;
      if (typeof result === 'boolean') {
        if (result) return;
        last = false;
      } else {
        if (result.done) return;
        last = result.observed;
      }
    } catch (error) {
      lastError = error;
      last = error instanceof Error ? error.message : error;
    }
    if (Date.now() >= deadline) {
      const shown = typeof last === 'string' ? last : inspect(last, { depth: 6, breakLength: 120 });
      throw new WaitTimeoutError(
        `Timed out after ${Date.now() - started} ms (${polls} polls) waiting for ${options.message}.\nLast observed: ${shown}`,
        last,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * A fixed pause. Only for proving that something has NOT happened yet (a stale read right
 * after a write, no second merge within a window); never for waiting until something has.
 */
export function pause(ms: number): Promise<void> {
  return delay(ms);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
