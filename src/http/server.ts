/**
 * A replica node and its HTTP API on one port: what `eventual-cache node` and
 * `eventual-cache cluster` start, and what the HTTP tests start.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { EventualCacheError, InvalidOptionsError } from '../errors/index.js';
import { resolveNodeOptions, type ReplicaNodeOptions } from '../node/options.js';
import { ReplicaNode } from '../node/replica-node.js';
import { createApp } from './app.js';
import { ConnectionGuard, effectiveMaxConnections, lingeringClose, type DrainBounds } from './connection-guard.js';
import type { ErrorBody } from './errors.js';
import { isLoopbackAddress } from './host-check.js';
import { resolveHttpOptions, type HttpOptions } from './options.js';

export interface NodeServerOptions {
  /** The replica node to start, passed to `ReplicaNode.start` as is. */
  node: ReplicaNodeOptions;
  /** TCP port to listen on; `0` picks a free one (read it back from {@link NodeServer.port}). */
  port: number;
  /**
   * Interface to listen on. The default keeps an unauthenticated node off the network;
   * use `0.0.0.0` in a container.
   * @defaultValue "127.0.0.1"
   */
  host?: string;
  /** The HTTP API's options; see {@link HttpOptions}. */
  http?: HttpOptions;
  /**
   * How long `close()` lets in-flight requests finish before cutting their connections;
   * the node's own `closeTimeoutMs` follows, so both defaults together stay under Docker's
   * 10 s grace. Unit: milliseconds.
   * @defaultValue 4000
   */
  shutdownTimeoutMs?: number;
}

/** Defaults of {@link NodeServerOptions}. */
export const DEFAULT_NODE_SERVER_OPTIONS = Object.freeze({ host: '127.0.0.1', shutdownTimeoutMs: 4_000 });

export interface NodeServer {
  /** The running replica node. */
  readonly node: ReplicaNode;
  /** The HTTP server (e.g. to read its address or tune its timeouts). */
  readonly server: Server;
  /** Base URL, e.g. `http://127.0.0.1:3001` (a wildcard host is reported as loopback). */
  readonly url: string;
  /** The port actually bound. */
  readonly port: number;
  /**
   * Graceful shutdown: stops accepting connections and answers every request that has
   * already arrived, each with `Connection: close` so that no keep-alive connection
   * lingers; connections with no request are closed at once. After `shutdownTimeoutMs`
   * whatever is left is cut. Then closes the node (its queues, workers and connections).
   * Idempotent: later calls return the same promise.
   */
  close(): Promise<void>;
}

/** The HTTP server could not listen (port in use, address not available, no permission). */
export class ListenError extends EventualCacheError {
  readonly port: number;
  readonly host: string;
  constructor(host: string, port: number, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const hint =
      code === 'EADDRINUSE'
        ? 'another process uses it; stop it or choose another port'
        : code === 'EACCES'
          ? 'ports below 1024 need privileges; choose a port above 1024'
          : 'check the host and port';
    super(`Cannot listen on ${host}:${port} (${code ?? String(cause)}): ${hint}.`, { cause });
    this.port = port;
    this.host = host;
  }
}

/**
 * Starts a replica node (failing with `RedisUnavailableError` if its Redis does not
 * answer), then serves its API. If listening fails the node is closed again, so a failed
 * start leaves nothing running.
 */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const { node: nodeOptions, port, host = DEFAULT_NODE_SERVER_OPTIONS.host, http = {}, shutdownTimeoutMs = DEFAULT_NODE_SERVER_OPTIONS.shutdownTimeoutMs } = options;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) throw new InvalidOptionsError('port', 'must be an integer from 0 to 65535');
  if (!Number.isSafeInteger(shutdownTimeoutMs) || shutdownTimeoutMs < 0) {
    throw new InvalidOptionsError('shutdownTimeoutMs', 'must be a non-negative integer number of milliseconds');
  }
  // Every option is checked before anything connects, so a typo costs no Redis connection.
  const resolvedHttp = resolveHttpOptions(http, resolveNodeOptions(nodeOptions).limits);
  const maxConnections = effectiveMaxConnections(resolvedHttp.connections.maxConnections);
  warnIfExposed(host, resolvedHttp.authToken, resolvedHttp.logger);
  const node = await ReplicaNode.start(nodeOptions);
  let app: ReturnType<typeof createApp>;
  try {
    app = createApp(node, http);
  } catch (error) {
    await node.close();
    throw error;
  }

  // An Express app is also a middleware `(req, res, next)`; its typings only admit that
  // form for Express' own request type, but `next` is how the app hands back what it cannot route.
  const handle = app as unknown as (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
  let closing = false;
  // Responses not finished yet: close() makes each the last on its connection.
  const unfinished = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    guard.track(req, res);
    unfinished.add(res);
    res.once('close', () => unfinished.delete(res));
    // Keep-alive connections would outlive close(); tell clients to reconnect elsewhere.
    if (closing) lastOnConnection(server, res);
    // Express calls this only when its router cannot even parse the request target
    // (e.g. `PUT http://[/keys/x`); every routable request gets an answer from the app.
    handle(req, res, (error?: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const [status, body] =
        error === undefined
          ? [400, errorBody('bad_request', 'The request target could not be parsed as a URL.')]
          : [500, errorBody('internal', "Internal error; the node's log has the details.")];
      const json = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) }).end(json);
    });
  });
  const guard = new ConnectionGuard(server, resolvedHttp.connections, maxConnections);
  const drain: DrainBounds = { maxBytes: resolvedHttp.connections.drainMaxBytes, timeoutMs: resolvedHttp.connections.drainTimeoutMs };
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => answerClientError(error, socket, drain));
  try {
    await listen(server, port, host);
  } catch (error) {
    await node.close();
    throw new ListenError(host, port, error);
  }
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      for (const res of unfinished) lastOnConnection(server, res);
      const deadline = setTimeout(() => server.closeAllConnections(), shutdownTimeoutMs);
      deadline.unref();
      // server.close() cuts the keep-alive connections between two requests, including one
      // whose next request has arrived but is not read yet. Two turns of the event loop
      // read what has arrived (on accepted connections, then on those still in the accept
      // queue), so only connections with nothing sent are cut.
      await eventLoopTurns(2);
      // Stops listening, cuts the idle keep-alive connections, and calls back once the
      // others are done.
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // Node counts a connection that never sent a byte as busy (awaiting its first request),
      // so it would hold close() until the shutdown timeout; it has nothing to answer.
      for (const socket of guard.sockets) if (socket.bytesRead === 0) socket.destroy();
      await stopped;
      clearTimeout(deadline);
      await node.close();
    })();
    return closed;
  };

  return { node, server, url: `http://${urlHost(host)}:${boundPort}`, port: boundPort, close };
}

/**
 * Makes `res` the last response on its connection: with `Connection: close` if its head is
 * not sent yet (Node then closes the connection after it), else by closing the connection
 * once it is finished and idle. Either way no connection waits for the client's keep-alive
 * timeout.
 */
function lastOnConnection(server: Server, res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
  else res.once('finish', () => server.closeIdleConnections());
}

/**
 * Resolves after `count` complete poll phases of the event loop, in which it reads what has
 * arrived on sockets and accepts queued connections. A setImmediate callback runs after the
 * poll phase of the current turn, which may have begun before this call; each further one
 * runs after one more.
 */
async function eventLoopTurns(count: number): Promise<void> {
  for (let i = 0; i <= count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Requests Node's HTTP parser rejects (malformed request line or headers, headers over
 * 16 KiB, request timeout) never reach Express; answer them in the API's error shape too.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket, drain: DrainBounds): void {
  // Like Node's default: once a response has started on this socket, a raw answer would corrupt it.
  if (error.code === 'ECONNRESET' || !socket.writable || socket.bytesWritten > 0) {
    socket.destroy();
    return;
  }
  const [status, reason, body]: [number, string, ErrorBody] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', errorBody('headers_too_large', 'The request line and headers exceed 16 KiB; keys longer than the node allows are refused anyway.')]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', errorBody('bad_request', 'The request was not received in time.')]
        : [400, 'Bad Request', errorBody('bad_request', 'The request is not valid HTTP/1.1.')];
  const json = JSON.stringify(body);
  const head = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`;
  // A client too slow to send its request gets no time to linger either.
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.end(head, () => socket.destroy());
    return;
  }
  socket.write(head);
  // The client may still be sending (a huge header block, a body): read it away, then close.
  lingeringClose(socket, drain);
}

/**
 * Without a token, anyone who can reach the port can read and rewrite the cache; that is
 * fine on loopback and worth a loud line anywhere else.
 */
function warnIfExposed(host: string, token: string | undefined, logger: Logger | undefined): void {
  if (token !== undefined || isLoopbackAddress(host)) return;
  const message =
    `SECURITY WARNING: listening on ${host} without an authToken: anyone who can reach this port can read and overwrite the cache. ` +
    'Set EVENTUAL_CACHE_TOKEN (authToken), or bind to 127.0.0.1. See README, "Security".';
  if (logger) logger.warn(message);
  else process.emitWarning(message, { code: 'EVENTUAL_CACHE_NO_TOKEN' });
}

function errorBody(code: ErrorBody['error']['code'], message: string): ErrorBody {
  return { error: { code, message } };
}
