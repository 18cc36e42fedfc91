/**
 * The client's typed errors, mirroring the API's `error.code`s. Branch with `instanceof`
 * (or on `code`), never on messages.
 */
import type { ErrorCode } from '../http/errors.js';

export type { ErrorCode };

/** Base class: the node answered with its error shape, or could not be reached. */
export class CacheClientError extends Error {
  /** HTTP status, or 0 when no answer arrived. */
  readonly status: number;
  readonly code: ErrorCode | 'connection_failed';
  /** The offending field (`ttlMs`, `ops.3.key`, …) when the node named one. */
  readonly field: string | undefined;
  constructor(status: number, code: ErrorCode | 'connection_failed', message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.field = options.field;
  }
}

/** 400, 405, 415: the request was wrong as sent (`invalid_key`, `invalid_body`, …); nothing was applied. */
export class InvalidRequestError extends CacheClientError {}

/** 401: no token, or not the node's. */
export class UnauthorizedError extends CacheClientError {}

/** 404 for something other than a key (`get` answers `undefined` for an absent key). */
export class NotFoundError extends CacheClientError {}

/** 413, 414, 431: a key, value or body over the node's limits. */
export class TooLargeError extends CacheClientError {}

/**
 * 503: the node's Redis is unreachable, the node is closing, or a transaction kept
 * conflicting. The node guarantees the operation did not happen, so it is safe to retry
 * (reads are retried by themselves; writes only with `retryWrites`).
 */
export class UnavailableError extends CacheClientError {}

/** 500: the node failed (`internal`, `corrupt_record`); its log has the details. */
export class ServerError extends CacheClientError {}

/**
 * No answer (network error, timeout). For a write the outcome is unknown: it may or may
 * not have been applied, so it is never retried automatically.
 */
export class ConnectionError extends CacheClientError {
  /** True for writes: the node may have applied it before the connection failed. */
  readonly mayHaveApplied: boolean;
  constructor(message: string, mayHaveApplied: boolean, cause: unknown) {
    super(0, 'connection_failed', message, { cause });
    this.mayHaveApplied = mayHaveApplied;
  }
}

/** The error for a status and the API's error body. */
export function errorFor(status: number, body: unknown): CacheClientError {
  const e = (body as { error?: { code?: ErrorCode; message?: string; field?: string } } | undefined)?.error;
  const code = e?.code ?? 'internal';
  const message = e?.message ?? `HTTP ${status}`;
  const options = e?.field === undefined ? {} : { field: e.field };
  if (status === 401) return new UnauthorizedError(status, code, message, options);
  if (status === 404) return new NotFoundError(status, code, message, options);
  if (status === 413 || status === 414 || status === 431) return new TooLargeError(status, code, message, options);
  if (status === 503) return new UnavailableError(status, code, message, options);
  if (status >= 400 && status < 500) return new InvalidRequestError(status, code, message, options);
  return new ServerError(status, code, message, options);
}
