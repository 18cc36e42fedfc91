/**
 * A typed client for one eventual-cache node: `import { CacheClient } from 'eventual-cache/client'`.
 *
 * - fetch only, so it runs in Node ≥ 20 and in browsers. Connections are kept alive (Node's
 *   fetch pools them; browsers do too).
 * - Every key works: a key a URL path cannot carry unchanged (`.`, `..`, anything WHATWG
 *   dot-segment removal rewrites) goes through `POST /batch` by itself.
 * - Reads retry on 503 with capped exponential backoff. Writes are not retried unless
 *   `retryWrites` is set, and then only on 503 (where the node guarantees nothing was
 *   applied); a write whose connection failed is never retried (its outcome is unknown,
 *   `ConnectionError.mayHaveApplied`).
 * - Errors are typed and mirror the API's codes (see ./errors.ts).
 */
import type { BatchOp } from '../node/batch.js';
import type { ClusterStatus } from '../node/status.js';
import type { ConflictEvent, DeleteResult, ListPage } from '../node/types.js';
import type { JsonValue, RecordView } from '../record/record.js';
import type { ErrorBody } from '../http/errors.js';
import { CacheClientError, ConnectionError, errorFor, UnavailableError } from './errors.js';

export * from './errors.js';
export type { BatchOp, ClusterStatus, ConflictEvent, DeleteResult, ErrorBody, JsonValue, ListPage, RecordView };

export interface CacheClientOptions {
  /** The node's base URL, e.g. `http://127.0.0.1:3001`. */
  baseUrl: string;
  /**
   * The nodes' `authToken`, sent as `Authorization: Bearer …`.
   * @defaultValue undefined (no header)
   */
  token?: string;
  /**
   * Attempts after the first for reads answered 503. @defaultValue 3
   */
  readRetries?: number;
  /**
   * Retry writes answered 503 too (the node guarantees a 503 write was not applied).
   * Writes whose connection failed are never retried.
   * @defaultValue false
   */
  retryWrites?: boolean;
  /** First retry delay, doubled per attempt, honouring `Retry-After`. Unit: milliseconds. @defaultValue 100 */
  retryInitialMs?: number;
  /** Largest retry delay. Unit: milliseconds. @defaultValue 2000 */
  retryMaxMs?: number;
  /** Per-request timeout. Unit: milliseconds. @defaultValue 10000 */
  timeoutMs?: number;
  /** The fetch to use (tests, instrumentation). @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

export const DEFAULT_CACHE_CLIENT_OPTIONS = Object.freeze({ readRetries: 3, retryWrites: false, retryInitialMs: 100, retryMaxMs: 2_000, timeoutMs: 10_000 });

/** One result of {@link CacheClient.batch}: the status and body the single-key endpoint would answer. */
export type BatchResult =
  | { status: 200; body: RecordView | DeleteResult }
  | { status: number; body: ErrorBody };

export interface ListOptions {
  prefix?: string;
  /** 1 to 1000. @defaultValue 100 */
  limit?: number;
  cursor?: string;
}

/**
 * True when `key` arrives unchanged as one path segment `/keys/<encodeURIComponent(key)>`:
 * not a dot segment, and nothing WHATWG URL parsing rewrites.
 */
export function pathCarries(key: string): boolean {
  if (key === '.' || key === '..') return false;
  const path = `/keys/${encodeURIComponent(key)}`;
  return new URL(path, 'http://x').pathname === path;
}

type Kind = 'read' | 'write';

export class CacheClient {
  readonly baseUrl: string;
  private readonly o: Required<Omit<CacheClientOptions, 'token' | 'fetch' | 'baseUrl'>>;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(options: CacheClientOptions) {
    if (typeof options?.baseUrl !== 'string') throw new TypeError('CacheClient: baseUrl is required, e.g. "http://127.0.0.1:3001"');
    const url = new URL(options.baseUrl);
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.o = {
      readRetries: options.readRetries ?? DEFAULT_CACHE_CLIENT_OPTIONS.readRetries,
      retryWrites: options.retryWrites ?? DEFAULT_CACHE_CLIENT_OPTIONS.retryWrites,
      retryInitialMs: options.retryInitialMs ?? DEFAULT_CACHE_CLIENT_OPTIONS.retryInitialMs,
      retryMaxMs: options.retryMaxMs ?? DEFAULT_CACHE_CLIENT_OPTIONS.retryMaxMs,
      timeoutMs: options.timeoutMs ?? DEFAULT_CACHE_CLIENT_OPTIONS.timeoutMs,
    };
  }

  /** Writes `value` under `key` on this node; resolves with the stored record. */
  async put(key: string, value: JsonValue, options: { ttlMs?: number } = {}): Promise<RecordView> {
    if (!pathCarries(key)) return (await this.single({ op: 'put', key, value, ...options })) as RecordView;
    const body = options.ttlMs === undefined ? { value } : { value, ttlMs: options.ttlMs };
    return this.request<RecordView>('write', 'PUT', keyPath(key), body);
  }

  /** This node's live copy of `key` (possibly stale), or `undefined` when absent, deleted or expired. */
  async get(key: string): Promise<RecordView | undefined> {
    if (!pathCarries(key)) {
      const [result] = await this.batch([{ op: 'get', key }]);
      if (result?.status === 404) return undefined;
      return unwrap(result) as RecordView;
    }
    return this.request<RecordView>('read', 'GET', keyPath(key), undefined, true);
  }

  /** Deletes `key` (a tombstone that replicates). Idempotent. */
  async delete(key: string): Promise<DeleteResult> {
    if (!pathCarries(key)) return (await this.single({ op: 'delete', key })) as DeleteResult;
    return this.request<DeleteResult>('write', 'DELETE', keyPath(key));
  }

  /**
   * Independent ops in one request (`POST /batch`): any key, results in order. An invalid
   * batch throws `InvalidRequestError` and applied nothing. Retried on 503 only when it
   * holds no writes (or with `retryWrites`).
   */
  async batch(ops: readonly BatchOp[]): Promise<BatchResult[]> {
    const kind: Kind = ops.every((o) => o.op === 'get') ? 'read' : 'write';
    return (await this.request<{ results: BatchResult[] }>(kind, 'POST', '/batch', { ops })).results;
  }

  /** One page of live keys; pass `cursor` back for the next (`null` on the last page). */
  list(options: ListOptions = {}): Promise<ListPage> {
    const q = new URLSearchParams();
    if (options.prefix !== undefined) q.set('prefix', options.prefix);
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    if (options.cursor !== undefined) q.set('cursor', options.cursor);
    const query = q.toString();
    return this.request<ListPage>('read', 'GET', `/keys${query ? `?${query}` : ''}`);
  }

  /** Replication backlog and health per peer (`GET /cluster`). */
  cluster(): Promise<ClusterStatus> {
    return this.request<ClusterStatus>('read', 'GET', '/cluster');
  }

  /** The newest conflicts LWW resolved on this node, newest first. */
  conflicts(limit?: number): Promise<{ node: string; items: ConflictEvent[] }> {
    return this.request('read', 'GET', `/conflicts${limit === undefined ? '' : `?limit=${limit}`}`);
  }

  private async single(op: BatchOp): Promise<RecordView | DeleteResult> {
    const [result] = await this.batch([op]);
    return unwrap(result);
  }

  private async request<T>(kind: Kind, method: string, path: string, body?: unknown, absentIsUndefined = false): Promise<T> {
    const retries = kind === 'read' || this.o.retryWrites ? this.o.readRetries : 0;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchImpl(`${this.baseUrl}${path}`, {
          method,
          headers: { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
      } catch (cause) {
        // A read that could not be sent may be sent again; a write may have been applied.
        if (kind === 'read' && attempt < retries) {
          await sleep(this.delay(attempt, null));
          continue;
        }
        const what = kind === 'write' ? 'the write may or may not have been applied; read the key to find out before writing again' : 'nothing was read';
        throw new ConnectionError(`No answer from ${this.baseUrl} for ${method} ${path}: ${(cause as Error).message}; ${what}.`, kind === 'write', cause);
      }
      const parsed = await res.json().catch(() => undefined);
      if (res.ok) return parsed as T;
      if (res.status === 404 && absentIsUndefined && (parsed as ErrorBody | undefined)?.error?.code === 'not_found') return undefined as T;
      const error = errorFor(res.status, parsed);
      if (error instanceof UnavailableError && attempt < retries) {
        await sleep(this.delay(attempt, res.headers.get('retry-after')));
        continue;
      }
      throw error;
    }
  }

  private delay(attempt: number, retryAfter: string | null): number {
    const backoff = Math.min(this.o.retryMaxMs, this.o.retryInitialMs * 2 ** attempt);
    const after = retryAfter === null ? NaN : Number(retryAfter) * 1000;
    // Jitter spreads the retries of many clients; Retry-After is a floor, capped by retryMaxMs.
    return Math.min(this.o.retryMaxMs, Math.max(Number.isFinite(after) ? after : 0, backoff * (0.5 + Math.random() / 2)));
  }
}

function keyPath(key: string): string {
  return `/keys/${encodeURIComponent(key)}`;
}

function unwrap(result: BatchResult | undefined): RecordView | DeleteResult {
  if (!result) throw new CacheClientError(500, 'internal', 'The node answered a batch without a result.');
  if (result.status === 200) return result.body as RecordView | DeleteResult;
  throw errorFor(result.status, result.body);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
