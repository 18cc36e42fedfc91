/**
 * A private `redis-server` process on a free loopback port, in a temporary directory.
 *
 * Used by `npm start` when no Redis answers, by the tests when no container runtime is
 * available, and by the fault tests, which need to stop one node's Redis and start it
 * again on the same port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventualCacheError } from '../errors/index.js';

export interface LocalRedisOptions {
  /**
   * TCP port; a free one is picked when omitted.
   * @defaultValue a free port
   */
  port?: number;
  /**
   * `none` keeps nothing on disk (like this project's test machines). `aof` appends every
   * write to disk (`appendfsync always`), so a stop/start keeps the data, as a production
   * Redis with persistence would.
   * @defaultValue "none"
   */
  persistence?: 'none' | 'aof';
  /** Path of the `redis-server` binary. @defaultValue "redis-server" from PATH */
  binary?: string;
  /** How long to wait for the server to accept connections. Unit: milliseconds. @defaultValue 10000 */
  startTimeoutMs?: number;
}

/** `redis-server` is not installed, or did not start. */
export class LocalRedisError extends EventualCacheError {}

export class LocalRedisServer {
  readonly port: number;
  readonly dir: string;
  private readonly opts: Required<Omit<LocalRedisOptions, 'port'>>;
  private child: ChildProcess | undefined;

  private constructor(port: number, dir: string, opts: Required<Omit<LocalRedisOptions, 'port'>>) {
    this.port = port;
    this.dir = dir;
    this.opts = opts;
  }

  /** True when a `redis-server` binary can be run. */
  static isAvailable(binary = 'redis-server'): boolean {
    const probe = spawnSync(binary, ['--version'], { stdio: 'ignore' });
    return probe.status === 0;
  }

  /** Starts a server and waits until it accepts connections. */
  static async start(options: LocalRedisOptions = {}): Promise<LocalRedisServer> {
    const binary = options.binary ?? 'redis-server';
    if (!LocalRedisServer.isAvailable(binary)) {
      throw new LocalRedisError(
        `Cannot run ${binary}: install Redis (Debian/Ubuntu: "sudo apt-get install -y redis-server", macOS: "brew install redis") or set REDIS_URL to a running server.`,
      );
    }
    const port = options.port ?? (await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'eventual-cache-redis-'));
    const server = new LocalRedisServer(port, dir, {
      persistence: options.persistence ?? 'none',
      binary,
      startTimeoutMs: options.startTimeoutMs ?? 10_000,
    });
    await server.resume();
    return server;
  }

  /** `redis://127.0.0.1:<port>/<db>`. */
  url(db = 0): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process again on the same port and directory (after {@link stop}). */
  async resume(): Promise<void> {
    if (this.running) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--daemonize', 'no', '--loglevel', 'warning'];
    args.push('--appendonly', this.opts.persistence === 'aof' ? 'yes' : 'no');
    if (this.opts.persistence === 'aof') args.push('--appendfsync', 'always');
    const child = spawn(this.opts.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    this.child = child;
    const deadline = Date.now() + this.opts.startTimeoutMs;
    while (!(await accepts(this.port))) {
      if (!this.running) throw new LocalRedisError(`redis-server on port ${this.port} exited at start: ${stderr.trim() || 'no output'}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new LocalRedisError(`redis-server on port ${this.port} did not accept connections within ${this.opts.startTimeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and waits until the port is closed. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the process and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function accepts(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}
