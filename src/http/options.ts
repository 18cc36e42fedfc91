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
}

/** Defaults of {@link HttpOptions}. */
export const DEFAULT_HTTP_OPTIONS = Object.freeze({
  authToken: undefined,
  dashboard: true,
  ui: true,
  nodeUrls: Object.freeze({}) as Readonly<Record<string, string>>,
  logger: undefined,
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
}

const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

/** Validates synchronously; throws {@link InvalidOptionsError} naming the field. */
export function resolveHttpOptions(options: HttpOptions, limits: LimitOptions): ResolvedHttpOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('http', 'expected an object');
  const { authToken, maxBodyBytes, dashboard, ui, nodeUrls, logger } = options;
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
  return {
    authToken,
    maxBodyBytes: maxBodyBytes ?? limits.maxValueBytes + DEFAULT_HTTP_OPTIONS.bodyEnvelopeBytes,
    dashboard: dashboard ?? DEFAULT_HTTP_OPTIONS.dashboard,
    ui: ui ?? DEFAULT_HTTP_OPTIONS.ui,
    nodeUrls: nodeUrls ?? DEFAULT_HTTP_OPTIONS.nodeUrls,
    logger,
  };
}
