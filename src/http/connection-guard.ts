/**
 * Connection hygiene of a node's HTTP server: idle, header and request timeouts, a cap on
 * client connections that keeps file descriptors for the node's own Redis and peer
 * connections, and refusals that reach the client.
 *
 * Why draining matters: when the server answers before it read the body (413 on an
 * announced length, 401, 415, 414, 431) and then closes, the unread bytes in its receive
 * buffer make the kernel send a reset; a client still writing its body gets EPIPE or
 * ECONNRESET and never reads the answer. So a refused request's remaining bytes are read
 * and thrown away, bounded in bytes and time, before the connection closes ("lingering
 * close", as Apache httpd does it).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { InvalidOptionsError } from '../errors/index.js';
import type { ConnectionLimits } from './options.js';

/**
 * File descriptors kept free for the process' own use (Redis connections of each node, its
 * peers' Redis, BullMQ's blocking connections, log files) when fitting the default
 * `maxConnections` to the open-file limit and checking a configured one.
 */
export const RESERVED_DESCRIPTORS = 256;

/** Bounds of one lingering close. */
export interface DrainBounds {
  /** Unit: bytes. */
  maxBytes: number;
  /** Unit: milliseconds. */
  timeoutMs: number;
}

/**
 * The soft open-file limit of this process (`ulimit -n`), read from `/proc/self/limits`;
 * `undefined` where that file does not exist (not Linux).
 */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * The connection cap to use: the configured one, refused when it leaves fewer than
 * {@link RESERVED_DESCRIPTORS} descriptors of the open-file limit; else 1024, lowered to
 * half of what the limit leaves when that is less.
 */
export function effectiveMaxConnections(configured: number | undefined, limit = openFileLimit()): number {
  if (configured !== undefined) {
    if (limit !== undefined && configured + RESERVED_DESCRIPTORS > limit) {
      throw new InvalidOptionsError(
        'maxConnections',
        `${configured} client connections plus ${RESERVED_DESCRIPTORS} descriptors kept for Redis and peer connections exceed this process' open-file limit of ${limit} (ulimit -n); lower maxConnections or raise the limit`,
      );
    }
    return configured;
  }
  if (limit === undefined) return 1024;
  return Math.max(16, Math.min(1024, Math.floor((limit - RESERVED_DESCRIPTORS) / 2)));
}

/** What the guard tracks per client connection. */
interface ConnectionState {
  /** Requests received and not answered yet. */
  active: number;
  lingering: boolean;
  /** Bytes read and written when last seen moving. */
  traffic: number;
  /** When the connection was last seen busy or moving. Unit: ms since the epoch. */
  idleSince: number;
}

/** Installs the guard on `server`; returns the live connections (for shutdown). */
export class ConnectionGuard {
  readonly maxConnections: number;
  private readonly states = new Map<Socket, ConnectionState>();
  private readonly limits: ConnectionLimits;
  private readonly bounds: DrainBounds;

  /** `maxConnections`: from {@link effectiveMaxConnections}. */
  constructor(server: Server, limits: ConnectionLimits, maxConnections: number) {
    this.limits = limits;
    this.maxConnections = maxConnections;
    this.bounds = { maxBytes: limits.drainMaxBytes, timeoutMs: limits.drainTimeoutMs };
    server.headersTimeout = limits.headersTimeoutMs;
    server.requestTimeout = limits.requestTimeoutMs;
    server.keepAliveTimeout = limits.idleTimeoutMs;
    // Node checks both timeouts on this interval; a fraction of the smaller keeps them close to exact.
    (server as Server & { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.max(
      100,
      Math.min(30_000, Math.floor(limits.headersTimeoutMs / 4)),
    );
    server.on('connection', (socket: Socket) => this.accept(socket));
    // One sweep for every connection rather than a timer each. (A socket's own timeout is
    // not reliable here: Node's HTTP parser reads it natively and re-arms its timer.)
    const sweep = setInterval(() => this.closeIdle(Date.now()), Math.max(20, Math.floor(limits.idleTimeoutMs / 10)));
    sweep.unref();
    server.once('close', () => clearInterval(sweep));
  }

  /** Closes every connection that had no request in progress and no traffic for `idleTimeoutMs`. */
  private closeIdle(now: number): void {
    for (const [socket, state] of this.states) {
      const traffic = socket.bytesRead + socket.bytesWritten;
      if (state.active > 0 || state.lingering || traffic !== state.traffic) {
        state.traffic = traffic;
        state.idleSince = now;
      } else if (now - state.idleSince >= this.limits.idleTimeoutMs) {
        socket.destroy();
      }
    }
  }

  /** Every client connection currently open. */
  get sockets(): IterableIterator<Socket> {
    return this.states.keys();
  }

  /** Open client connections. */
  get size(): number {
    return this.states.size;
  }

  /**
   * Call for every request: counts it as in progress on its connection until answered.
   * An answer sent before the request's body was read (a 401, 413 or 415, say) is made the
   * last on its connection, and the connection closes lingering (see {@link lingeringClose}):
   * Node's parser would otherwise stop reading and leave the client blocked mid-body.
   */
  track(req: IncomingMessage, res: ServerResponse): void {
    const state = this.states.get(req.socket);
    if (state) state.active += 1;
    res.once('close', () => {
      if (state) state.active -= 1;
    });
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      if (!req.complete && !this.headersSent) this.setHeader('Connection', 'close');
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'];
  }

  private accept(socket: Socket): void {
    if (this.states.size >= this.maxConnections && !this.evictIdle()) {
      socket.destroy();
      return;
    }
    // Idle: no request in progress and nothing arriving. A request being answered is
    // bounded by requestTimeoutMs instead (and by the node's own Redis timeouts).
    const state: ConnectionState = { active: 0, lingering: false, traffic: 0, idleSince: Date.now() };
    this.states.set(socket, state);
    socket.once('close', () => this.states.delete(socket));
    // Node ends a connection after its last response with destroySoon(); linger instead.
    socket.destroySoon = () => this.linger(socket);
  }

  /** Closes the oldest connection with no request in progress; false if there is none. */
  private evictIdle(): boolean {
    for (const [socket, state] of this.states) {
      if (state.active === 0 && !state.lingering) {
        this.states.delete(socket);
        socket.destroy();
        return true;
      }
    }
    return false;
  }

  /** See {@link lingeringClose}. */
  linger(socket: Socket): void {
    const state = this.states.get(socket);
    if (state) state.lingering = true;
    lingeringClose(socket, this.bounds);
  }
}

/**
 * Ends the write side once everything written so far is sent (the answer), then reads and
 * discards whatever the client still sends until it closes its side, `maxBytes` were
 * discarded or `timeoutMs` passed; then closes the connection. The HTTP parser is detached
 * first: nothing more on this connection is a request to answer.
 */
export function lingeringClose(socket: Socket, bounds: DrainBounds): void {
  if (socket.destroyed) return;
  let discarded = 0;
  const done = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(done, bounds.timeoutMs);
  timer.unref();
  // Node's HTTP parser reads the socket natively (no 'data' events) and stops reading once
  // the response is done; take the socket back from it, as Node does for an upgrade.
  (socket as Socket & { parser?: { unconsume?: () => void } | null }).parser?.unconsume?.();
  socket.removeAllListeners('data');
  socket.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > bounds.maxBytes) done();
  });
  socket.once('end', done);
  socket.once('close', () => clearTimeout(timer));
  socket.setTimeout(0);
  socket.end();
  socket.resume();
  // The parser had stopped the native reads; resume() alone does not restart them.
  const handle = (socket as Socket & { _handle?: { reading?: boolean; readStart?: () => number } | null })._handle;
  if (handle && !handle.reading) {
    handle.reading = true;
    handle.readStart?.();
  }
}
