/**
 * Options of a node's HTTP API, with their defaults and validation.
 */
import type { Logger } from 'pino';
import { InvalidOptionsError } from '../errors/index.js';
import type { LimitOptions } from '../node/options.js';

export interface HttpOptions {
  /**
   * Shared secret. When set, every endpoint except `/health` and `/metrics` requires
   * `Authorization: Bearer <token>`; the dashboard also accepts HTTP basic auth with the
   * token as password (any user name), so a browser can log in. Visible ASCII only,
   * because header values are not reliably anything else.
   * @defaultValue undefined (no authentication; the dashboard is then read-only)
   */
  authToken?: string;
  /**
   * Largest request body accepted; bigger bodies get `413 payload_too_large` before they
   * are parsed. Unit: bytes.
   * @defaultValue the node's `limits.maxValueBytes` + {@link DEFAULT_HTTP_OPTIONS}.bodyEnvelopeBytes
   * (1 MiB + 64 KiB with the default limits)
   */
  maxBodyBytes?: number;
  /**
   * Serve the Bull dashboard (bull-board) for this node's replication queues at `/admin/queues`.
   * @defaultValue true
   */
  dashboard?: boolean;
  /**
   * Serve the cluster view page at `/ui/` (and redirect `/` there). With `authToken` set it
   * needs the token like the dashboard (basic auth with the token as password).
   * @defaultValue true
   */
  ui?: boolean;
  /**
   * Base URL of each node's HTTP API by node id, e.g. `{"B": "http://10.0.0.2:3002"}`: the
   * page links to their dashboards and forwards writes for them there. Read per request,
   * so it may be filled in after the servers started. `eventual-cache cluster` and `node`
   * fill it from the config.
   * @defaultValue {} (writes from the page only go to this node)
   */
  nodeUrls?: Readonly<Record<string, string>>;
  /**
   * Where request and error logs go. Requests are logged at `debug`, 503s at `warn`, other
   * 5xx at `error`; headers (and so `Authorization`) are never logged.
   * @defaultValue undefined (no logs)
   */
  logger?: Logger;
  /**
   * Host names (the `Host` header without its port) accepted when no `authToken` is set,
   * besides the loopback names (`localhost`, `127.0.0.0/8`, `[::1]`), which are always
   * accepted. Others get `421 host_not_allowed`: a web page that rebinds its own name to
   * 127.0.0.1 cannot then reach the API. Ignored when `authToken` is set (the token is
   * the protection; a page cannot know it). Case-insensitive; `*` accepts any host.
   * @defaultValue [] (loopback names only)
   */
  allowedHosts?: string[];
  /**
   * A connection with no request in progress (never sent a byte, or between keep-alive
   * requests) is closed after this long. Unit: milliseconds.
   * @defaultValue 5000
   */
  idleTimeoutMs?: number;
  /**
   * The whole request line and headers must arrive within this long of the first byte,
   * else `408` and the connection is closed (slowloris). Unit: milliseconds.
   * @defaultValue 10000
   */
  headersTimeoutMs?: number;
  /**
   * The whole request, body included, must arrive within this long, else `408` and the
   * connection is closed (slow bodies). Unit: milliseconds.
   * @defaultValue 30000
   */
  requestTimeoutMs?: number;
  /**
   * Most client connections held at once. When a new one would exceed it, the oldest
   * connection with no request in progress is closed to make room (so fresh clients keep
   * being served under a flood of idle sockets); if every connection is busy, the new one
   * is closed. Checked at start against the process' open-file limit (`ulimit -n`), which
   * must leave room for the node's own Redis and peer connections.
   * @defaultValue 1024 (less when the open-file limit is low)
   */
  maxConnections?: number;
  /**
   * After an early refusal (413, 414, 415, 401 before the body, 431, 400) the node reads and
   * discards the rest of the request, up to this many bytes, before closing the connection,
   * so that a client that writes its whole body before reading gets the answer instead of
   * a reset. Unit: bytes.
   * @defaultValue 67108864 (64 MiB)
   */
  drainMaxBytes?: number;
  /**
   * Longest time spent draining a refused request (see `drainMaxBytes`) before the
   * connection is cut. Unit: milliseconds.
   * @defaultValue 10000
   */
  drainTimeoutMs?: number;
}

/** Defaults of {@link HttpOptions}. */
export const DEFAULT_HTTP_OPTIONS = Object.freeze({
  authToken: undefined,
  dashboard: true,
  ui: true,
  nodeUrls: Object.freeze({}) as Readonly<Record<string, string>>,
  logger: undefined,
  allowedHosts: [] as readonly string[],
  idleTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
  drainMaxBytes: 64 * 1024 * 1024,
  drainTimeoutMs: 10_000,
  /**
   * Added to the node's `maxValueBytes` when `maxBodyBytes` is not given: room for the
   * `{"value": …, "ttlMs": …}` envelope and whitespace, so that any value the node accepts
   * also fits in a body. Unit: bytes.
   */
  bodyEnvelopeBytes: 64 * 1024,
});

/** {@link HttpOptions} with every default applied. */
export interface ResolvedHttpOptions {
  authToken: string | undefined;
  maxBodyBytes: number;
  dashboard: boolean;
  ui: boolean;
  nodeUrls: Readonly<Record<string, string>>;
  logger: Logger | undefined;
  allowedHosts: readonly string[];
  connections: ConnectionLimits;
}

/** The connection-hygiene part of {@link HttpOptions}, resolved. */
export interface ConnectionLimits {
  idleTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** `undefined`: the default, fitted to the open-file limit at start. */
  maxConnections: number | undefined;
  drainMaxBytes: number;
  drainTimeoutMs: number;
}

const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

/** Validates synchronously; throws {@link InvalidOptionsError} naming the field. */
export function resolveHttpOptions(options: HttpOptions, limits: LimitOptions): ResolvedHttpOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('http', 'expected an object');
  const { authToken, maxBodyBytes, dashboard, ui, nodeUrls, logger, allowedHosts } = options;
  if (authToken !== undefined && (typeof authToken !== 'string' || !TOKEN_PATTERN.test(authToken))) {
    throw new InvalidOptionsError(
      'authToken',
      'must be a non-empty string of visible ASCII characters (no spaces); omit it to disable authentication',
    );
  }
  if (maxBodyBytes !== undefined && (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0)) {
    throw new InvalidOptionsError('maxBodyBytes', 'must be a positive integer number of bytes');
  }
  if (dashboard !== undefined && typeof dashboard !== 'boolean') throw new InvalidOptionsError('dashboard', 'must be true or false');
  if (ui !== undefined && typeof ui !== 'boolean') throw new InvalidOptionsError('ui', 'must be true or false');
  if (nodeUrls !== undefined && (typeof nodeUrls !== 'object' || nodeUrls === null)) throw new InvalidOptionsError('nodeUrls', 'must be an object of node id -> URL');
  if (allowedHosts !== undefined && (!Array.isArray(allowedHosts) || !allowedHosts.every((h) => typeof h === 'string' && /^[^\s/@]+$/.test(h)))) {
    throw new InvalidOptionsError('allowedHosts', 'must be an array of host names such as "cache.internal" (no port, scheme or path)');
  }
  const positive = (field: keyof typeof DEFAULT_HTTP_OPTIONS & keyof HttpOptions, what: string): number => {
    const v = options[field];
    if (v === undefined) return DEFAULT_HTTP_OPTIONS[field] as number;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new InvalidOptionsError(field, `must be a positive integer number of ${what}`);
    return v as number;
  };
  const connections: ConnectionLimits = {
    idleTimeoutMs: positive('idleTimeoutMs', 'milliseconds'),
    headersTimeoutMs: positive('headersTimeoutMs', 'milliseconds'),
    requestTimeoutMs: positive('requestTimeoutMs', 'milliseconds'),
    maxConnections: options.maxConnections === undefined ? undefined : positive('maxConnections', 'connections'),
    drainMaxBytes: positive('drainMaxBytes', 'bytes'),
    drainTimeoutMs: positive('drainTimeoutMs', 'milliseconds'),
  };
  if (connections.requestTimeoutMs < connections.headersTimeoutMs) {
    throw new InvalidOptionsError('requestTimeoutMs', `must be at least headersTimeoutMs (${connections.headersTimeoutMs})`);
  }
  return {
    authToken,
    allowedHosts: (allowedHosts ?? []).map((h) => h.toLowerCase()),
    connections,
    maxBodyBytes: maxBodyBytes ?? limits.maxValueBytes + DEFAULT_HTTP_OPTIONS.bodyEnvelopeBytes,
    dashboard: dashboard ?? DEFAULT_HTTP_OPTIONS.dashboard,
    ui: ui ?? DEFAULT_HTTP_OPTIONS.ui,
    nodeUrls: nodeUrls ?? DEFAULT_HTTP_OPTIONS.nodeUrls,
    logger,
  };
}
