/**
 * One `redis-server` process of a {@link LocalRedisCluster}: started, killed and started
 * again on the same port and directory (its `nodes.conf`, hence its cluster id, survive).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accepts, LocalRedisError } from './local-redis.js';

/** Bytes of a server's log kept to explain a failed start. */
const LOG_TAIL_BYTES = 4_096;

export class ClusterMember {
  /** Client port; the cluster bus is this + 10000. Changes only before the first successful launch. */
  port: number;
  readonly dir: string;
  private readonly binary: string;
  private child: ChildProcess | undefined;
  private log = '';

  constructor(port: number, dir: string, binary: string) {
    this.port = port;
    this.dir = dir;
    this.binary = binary;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the server and resolves once it accepts connections; rejects with its log if it exits first. */
  async launch(args: string[], timeoutMs: number): Promise<void> {
    if (this.running) return;
    this.log = '';
    // Redis logs to stdout when no logfile is set; keep the tail for error messages.
    const child = spawn(this.binary, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-LOG_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    const deadline = Date.now() + timeoutMs;
    while (!(await accepts(this.port))) {
      if (!this.running) throw new LocalRedisError(`redis-server on port ${this.port} exited at start: ${this.log.trim() || 'no output'}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new LocalRedisError(`redis-server on port ${this.port} did not accept connections within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    // Something else may have answered on a port taken since it was probed.
    if (!this.running) throw new LocalRedisError(`redis-server on port ${this.port} exited at start: ${this.log.trim() || 'no output'}`);
  }

  /** SIGKILL, and wait for the exit (the port is free again afterwards). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Synchronous kill for `process.on('exit')`. */
  killNow(): void {
    if (this.running) this.child?.kill('SIGKILL');
  }
}

/** Runs a command (redis-cli) to completion within `timeoutMs`: whether it succeeded, and its output. */
export function run(binary: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ ok: error === null, output: `${stdout}${stderr}${error ? `\n${error.message}` : ''}` });
    });
  });
}

/** The end of a command's output for an error message, colours stripped. */
export function tail(text: string): string {
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '').trim();
  return plain.length > 800 ? `…${plain.slice(-800)}` : plain || '(no output)';
}
