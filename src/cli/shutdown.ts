/**
 * Graceful shutdown on SIGTERM / SIGINT: the first signal closes everything in order
 * (HTTP servers stop accepting and finish in-flight requests, nodes let in-flight merges
 * finish and hand their outbox to the queues, connections close) and exits 0; a second
 * signal, or a close that takes longer than `timeoutMs`, exits 1 at once.
 */
import type { Logger } from 'pino';

export interface ShutdownOptions {
  logger: Logger;
  /** Closes everything the command started; must not throw for a clean exit. */
  close: () => Promise<void>;
  /** Longest graceful close before a forced exit. Unit: milliseconds. @defaultValue 30000 */
  timeoutMs?: number;
  /** @defaultValue process.exit */
  exit?: (code: number) => void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Installs the signal handlers; returns a function that removes them. */
export function onShutdownSignal(options: ShutdownOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const timeoutMs = options.timeoutMs ?? 30_000;
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) {
      options.logger.warn({ signal }, 'second signal: exiting without waiting for the graceful shutdown');
      exit(1);
      return;
    }
    closing = true;
    options.logger.info({ signal }, 'shutting down: no new requests; finishing in-flight work (send the signal again to force)');
    const timer = setTimeout(() => {
      options.logger.error({ timeoutMs }, 'graceful shutdown timed out; exiting');
      exit(1);
    }, timeoutMs);
    timer.unref();
    options
      .close()
      .then(
        () => {
          options.logger.info('shutdown complete');
          return 0;
        },
        (error: unknown) => {
          options.logger.error({ err: error }, 'shutdown failed');
          return 1;
        },
      )
      .then((code) => {
        clearTimeout(timer);
        exit(code);
      });
  };
  for (const s of SIGNALS) process.on(s, handler);
  return () => {
    for (const s of SIGNALS) process.off(s, handler);
  };
}
