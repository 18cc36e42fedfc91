/**
 * The HTTP API's one error shape, `{"error": {"code", "message", "field"?}}`, and the
 * mapping from every error the app can meet to a status and a code.
 *
 * Engine errors are told apart with `instanceof` (never by message). The body parser's
 * errors are told apart by their documented `type` string.
 */
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import {
  CorruptRecordError,
  InputTooLargeError,
  InvalidInputError,
  NodeClosedError,
  RedisUnavailableError,
  TransactionConflictError,
  ReplicaWaitError,
  AntiEntropyUnavailableError,
} from '../errors/index.js';
import { isConnectionError } from '../store/connections.js';

/** Every `error.code` the API answers with. */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'invalid_body'
  | 'invalid_query'
  | 'invalid_key'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'key_too_long'
  | 'unsupported_media_type'
  | 'headers_too_large'
  | 'host_not_allowed'
  | 'redis_unavailable'
  | 'node_closed'
  | 'transaction_conflict'
  | 'replicas_unconfirmed'
  | 'corrupt_record'
  | 'anti_entropy_unavailable'
  | 'internal';

/** The JSON body of every error response. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    /** The offending body field or query parameter (`value`, `ttlMs`, `limit`, …), when there is one. */
    field?: string;
  };
}

/** An error that already knows its HTTP answer. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: ErrorCode, message: string, options: { field?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.field = options.field;
    this.headers = options.headers ?? {};
  }

  /** The response body. (A method, not a getter: body-parser's http-errors assigns `body` on errors it wraps.) */
  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.field === undefined ? {} : { field: this.field }) } };
  }
}

/** `InvalidInputError` fields that arrive in the query string (`GET /keys`, `/conflicts`). */
const QUERY_FIELDS = new Set(['prefix', 'limit', 'cursor']);
const RETRY_LATER = { 'Retry-After': '1' };

/** The HTTP answer for any thrown value. Unknown errors become a 500 that reveals nothing. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  // A key travels in the request target, so an overlong one is a URI too long (414); any
  // other oversized input is part of the body (413).
  if (error instanceof InputTooLargeError) {
    return error.field === 'key'
      ? new HttpError(414, 'key_too_long', error.message, { field: 'key', cause: error })
      : new HttpError(413, 'payload_too_large', error.message, { field: error.field, cause: error });
  }
  if (error instanceof InvalidInputError) {
    const code = error.field === 'key' ? 'invalid_key' : QUERY_FIELDS.has(error.field) ? 'invalid_query' : 'invalid_body';
    return new HttpError(400, code, error.message, { field: error.field, cause: error });
  }
  if (error instanceof NodeClosedError) {
    return new HttpError(503, 'node_closed', 'This node is shutting down; the operation did not happen. Retry on another node or once it is back.', {
      headers: RETRY_LATER,
      cause: error,
    });
  }
  // Redis' URL and the driver's message stay in the log: they describe the deployment.
  if (error instanceof RedisUnavailableError || isConnectionError(error)) {
    return new HttpError(
      503,
      'redis_unavailable',
      "This node's Redis is unreachable, so the operation did not happen (nothing was written). Retry later or use another node.",
      { headers: RETRY_LATER, cause: error },
    );
  }
  if (error instanceof ReplicaWaitError) {
    return new HttpError(503, 'replicas_unconfirmed', error.message, { headers: RETRY_LATER, cause: error });
  }
  if (error instanceof TransactionConflictError) {
    return new HttpError(503, 'transaction_conflict', `${error.message}`, { headers: RETRY_LATER, cause: error });
  }
  if (error instanceof CorruptRecordError) return new HttpError(500, 'corrupt_record', error.message, { cause: error });
  if (error instanceof AntiEntropyUnavailableError) return new HttpError(409, 'anti_entropy_unavailable', error.message, { cause: error });
  // The router marks a path parameter that is not valid percent-encoded UTF-8 this way.
  if (error instanceof URIError && statusOf(error) === 400) {
    return new HttpError(
      400,
      'invalid_key',
      'The key in the path is not valid percent-encoded UTF-8 (e.g. %FF, or an encoded lone surrogate); encode keys with encodeURIComponent.',
      { field: 'key', cause: error },
    );
  }
  const bodyParserError = fromBodyParser(error);
  if (bodyParserError) return bodyParserError;
  const status = statusOf(error);
  if (status !== undefined && status >= 400 && status < 500) {
    return new HttpError(status, 'bad_request', 'The request could not be processed as sent.', { cause: error });
  }
  return new HttpError(500, 'internal', "Internal error; the node's log has the details.", { cause: error });
}

/** Errors of `express.json()` (body-parser), recognised by their documented `type`. */
function fromBodyParser(error: unknown): HttpError | undefined {
  if (typeof error !== 'object' || error === null || !('type' in error) || typeof error.type !== 'string') return undefined;
  const limit = 'limit' in error && typeof error.limit === 'number' ? error.limit : undefined;
  switch (error.type) {
    case 'entity.parse.failed':
      return new HttpError(400, 'invalid_json', `The body is not valid JSON: ${error instanceof Error ? error.message : 'parse error'}`, { cause: error });
    case 'entity.too.large':
      return new HttpError(413, 'payload_too_large', `The body is larger than the limit of ${limit ?? 'maxBodyBytes'} bytes (maxBodyBytes).`, {
        cause: error,
      });
    case 'encoding.unsupported':
      return new HttpError(415, 'unsupported_media_type', 'Unsupported Content-Encoding; send the body as is, gzip or deflate.', { cause: error });
    case 'charset.unsupported':
      return new HttpError(415, 'unsupported_media_type', 'Unsupported charset; JSON bodies must be UTF-8.', { cause: error });
    case 'request.size.invalid':
    case 'request.aborted':
      return new HttpError(400, 'bad_request', 'The body ended before its announced Content-Length.', { cause: error });
    default:
      return undefined;
  }
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const s = 'status' in error ? error.status : 'statusCode' in error ? error.statusCode : undefined;
  return typeof s === 'number' ? s : undefined;
}

/** Writes `error` as the API's error shape. */
export function sendError(res: Response, error: HttpError): void {
  res.status(error.status).set(error.headers).json(error.toBody());
}

/** The app's last middleware: every error becomes the error shape, 5xx are logged. */
export function errorHandler(logger: Logger | undefined): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const httpError = toHttpError(error);
    if (httpError.status >= 500 && logger) {
      const entry = { err: httpError.cause ?? httpError, method: req.method, path: req.path, status: httpError.status, code: httpError.code };
      if (httpError.status === 503) logger.warn(entry, httpError.message);
      else logger.error(entry, 'request failed');
    }
    sendError(res, httpError);
  };
}
