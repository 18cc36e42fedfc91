/**
 * Deadlines: every wait in the benchmark has one, so a hang fails the run with a message
 * instead of stalling CI.
 */

/** A wait ran past its deadline. */
export class BenchTimeoutError extends Error {
  override name = 'BenchTimeoutError';
}

/** A replicated scenario finished writing but its nodes never held identical state. */
export class ConvergenceError extends Error {
  override name = 'ConvergenceError';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves like `promise`, or rejects with {@link BenchTimeoutError} after `ms`; `what`
 * may be a function so the message can say how far things got.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BenchTimeoutError(`${typeof what === 'string' ? what : what()} did not finish within ${Math.round(ms)} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than `undefined`;
 * throws {@link BenchTimeoutError} with `describe()`'s explanation at the deadline.
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs: number; intervalMs?: number; describe: () => string | Promise<string> },
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      throw new BenchTimeoutError(`gave up after ${options.timeoutMs} ms: ${await options.describe()}`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}
