/**
 * The CLI's pino logger: JSON lines by default (for log collectors and containers), pretty
 * when the output is a terminal and `pino-pretty` (a devDependency) can be loaded.
 *
 * Secrets never reach a log line: token and credential fields are censored by pino's
 * `redact`, and Redis URLs are logged only through {@link safeUrl}, which drops the password.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { describeTarget, type ClusterTarget } from '../store/connections.js';
import { maskCredentials } from '../store/credentials.js';
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
    serializers: { err: serializeError, error: serializeError },
    // A message that quotes a Redis URL (a driver's error, say) loses its credentials.
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? maskCredentials(a) : a)));
      },
    },
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

/** What a log line shows of an error: enough to act on, nothing secret. */
export interface SerializedError {
  type: string;
  message: string;
  code?: string | number;
  stack?: string;
  cause?: SerializedError;
  [field: string]: unknown;
}

/**
 * pino serializer for `err`: the name, message, `code` and stack of an `Error`, its
 * `cause` chain (three levels), and for a thrown non-Error its JSON, never just
 * `{"type":"Object"}`. Credentials in any of these are masked.
 */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code as string | number | undefined;
    const out: SerializedError = { type: error.name, message: maskCredentials(error.message) };
    if (code !== undefined) out.code = code;
    if (error.stack) out.stack = maskCredentials(error.stack);
    if (error.cause !== undefined && depth < 3) out.cause = serializeError(error.cause, depth + 1);
    return out;
  }
  if (typeof error === 'object' && error !== null) {
    const record = error as Record<string, unknown>;
    let json: string;
    try {
      json = JSON.stringify(error);
    } catch {
      json = String(error);
    }
    const message = typeof record.message === 'string' ? record.message : json;
    const out: SerializedError = { type: error.constructor?.name ?? 'Object', message: maskCredentials(message) };
    if (typeof record.code === 'string' || typeof record.code === 'number') out.code = record.code;
    if (message !== json) out.value = maskCredentials(json);
    return out;
  }
  return { type: typeof error, message: maskCredentials(String(error)) };
}

/**
 * A Redis URL, or a Redis Cluster's seeds (`cluster(redis://h1:7000, …)`), fit for a log
 * line: every credential replaced by `***`.
 */
export function safeUrl(target: string | ClusterTarget): string {
  return describeTarget(target);
}
