/**
 * The CLI's pino logger: JSON lines by default (for log collectors and containers), pretty
 * when the output is a terminal and `pino-pretty` (a devDependency) can be loaded.
 *
 * Secrets never reach a log line: token and credential fields are censored by pino's
 * `redact`, and Redis URLs are logged only through {@link safeUrl}, which drops the password.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { describeTarget } from '../store/connections.js';
import type { LogLevel } from './config.js';

export interface CliLoggerOptions {
  /** @defaultValue "info" */
  level?: LogLevel;
  /**
   * `auto`: pretty when the destination is a TTY. `false`: always JSON.
   * @defaultValue "auto"
   */
  pretty?: 'auto' | boolean;
  /**
   * File descriptor to write to: 1 (stdout) or 2 (stderr; the demo keeps stdout for its timeline).
   * @defaultValue 1
   */
  fd?: 1 | 2;
}

/** Field paths pino censors wherever they appear in a log object. */
export const REDACT_PATHS = [
  'authToken',
  'token',
  'password',
  '*.authToken',
  '*.token',
  '*.password',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
];

export async function createCliLogger(options: CliLoggerOptions = {}): Promise<Logger> {
  const fd = options.fd ?? 1;
  const stream = fd === 1 ? process.stdout : process.stderr;
  const pretty = options.pretty === 'auto' || options.pretty === undefined ? stream.isTTY === true : options.pretty;
  const base = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (pretty) {
    const destination = await prettyStream(fd);
    if (destination) return pino(base, destination);
  }
  // Synchronous writes: a CLI exits right after its last line, which must not be lost.
  return pino(base, pino.destination({ fd, sync: true }));
}

/** A pino-pretty stream, or `undefined` when the package is not installed (production installs omit devDependencies). */
async function prettyStream(fd: 1 | 2): Promise<DestinationStream | undefined> {
  try {
    const { default: pretty } = await import('pino-pretty');
    return pretty({ colorize: true, destination: fd, sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  } catch {
    return undefined;
  }
}

/** A Redis URL fit for a log line: the password replaced by `***`. */
export function safeUrl(url: string): string {
  return describeTarget(url);
}
