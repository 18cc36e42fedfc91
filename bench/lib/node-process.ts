/**
 * A benchmark node's process, as deployed: the parent forks `node-host.ts` with the same
 * `tsx` the bench runs under and talks to it over IPC (see node-host.ts for the requests).
 * One process runs one node at a time and outlives it, so a scenario starts its processes
 * once and runs node after node in them. Every request has a deadline; a child that exits
 * or answers with an error fails the request with its message.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Profiler } from 'node:inspector';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PeerOptions } from '../../src/index.js';
import type { ReplicationOptions } from '../../src/replication/options.js';
import type { StoreOptions } from '../../src/store/record-store.js';
import { withTimeout } from './deadline.js';
import type { SchedStat } from './schedstat.js';

const HOST = fileURLToPath(new URL('./node-host.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** What a child needs to run its node. */
export interface NodeHostSpec {
  id: string;
  /** The node's own Redis, as a URL (database included). */
  redis: string;
  prefix: string;
  peers: Array<PeerOptions & { redis: string }>;
  replication?: Partial<ReplicationOptions>;
  store?: Partial<StoreOptions>;
}

export interface WriteResult {
  writes: number;
  /** Latency of the `put`s (ms): from the call to the acknowledgement. */
  latencyMs: { p50: number; p99: number; max: number };
  /** Epoch ms (sub-ms precision) of the first `put` and of the last acknowledgement. */
  startedAt: number;
  endedAt: number;
}

export interface NodeStats {
  /** Epoch ms when the child took the snapshot. */
  at: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** The main thread's time on a CPU and waiting for one (Linux; absent elsewhere). */
  sched?: SchedStat;
  /** `replicated` events (every outcome) and those that applied a newer record. */
  replicated: number;
  applied: number;
  /** Epoch ms of the last applied `replicated` event (0: none yet). */
  lastAppliedAt: number;
  /** The node's `eventual_cache_replication_jobs_total` and `…_transaction_retries_total`. */
  jobs: number;
  retries: number;
  /** Background errors the node reported (a run with any is not trusted). */
  errors: string[];
}

export interface NodeBacklog {
  outbox: number;
  jobs: number;
  failed: number;
}

export interface NodeProcessOptions {
  /** Name in messages (the process may run several nodes one after another). */
  label: string;
  /** Extra Node flags for the child. */
  execArgv?: string[];
  /** Longest start-up of the process (fork, tsx, module loading). @defaultValue 60000 */
  startTimeoutMs?: number;
}

/** Converts a child's epoch timestamp to this process's `performance.now()` clock. */
export function toLocalTime(epochMs: number): number {
  return epochMs - performance.timeOrigin;
}

export class NodeProcess {
  readonly label: string;
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: string | undefined;
  /** Id of the node running in the process, if any. */
  private nodeId: string | undefined;

  private constructor(label: string, child: ChildProcess) {
    this.label = label;
    this.child = child;
    child.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const waiter = this.pending.get(m.id);
      if (!waiter) return;
      this.pending.delete(m.id);
      if (m.ok) waiter.resolve(m.result);
      else waiter.reject(new Error(`${this.name}: ${m.error ?? 'request failed'}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = `${this.name} exited (code ${code}, signal ${signal})`;
      for (const w of this.pending.values()) w.reject(new Error(this.exited));
      this.pending.clear();
    });
  }

  /** Forks the host process and waits until it is ready to start a node. */
  static async spawn(options: NodeProcessOptions): Promise<NodeProcess> {
    const child = fork(HOST, [], { execArgv: ['--import', TSX, ...(options.execArgv ?? [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`node process ${options.label} exited with code ${code} while starting`)));
    });
    try {
      await withTimeout(ready, options.startTimeoutMs ?? 60_000, `starting node process ${options.label}`);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    return new NodeProcess(options.label, child);
  }

  private get name(): string {
    return this.nodeId ? `node ${this.nodeId} (process ${this.label})` : `node process ${this.label}`;
  }

  /** Id of the node the process runs now. */
  get id(): string {
    if (!this.nodeId) throw new Error(`${this.name} runs no node`);
    return this.nodeId;
  }

  /** False once the process exited. */
  get alive(): boolean {
    return this.exited === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private request<T>(type: string, body: Record<string, unknown>, timeoutMs: number): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    const answer = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, type, ...body });
    });
    return withTimeout(answer, timeoutMs, `${this.name}: ${type}`).finally(() => this.pending.delete(id));
  }

  /** Starts a node in the process and waits for its start-up resync. */
  async startNode(spec: NodeHostSpec, timeoutMs = 60_000): Promise<void> {
    await this.request('start', { spec }, timeoutMs);
    this.nodeId = spec.id;
  }

  /** Closes the node; the process stays for the next one. */
  async stopNode(timeoutMs = 20_000): Promise<void> {
    await this.request('stop', {}, timeoutMs);
    this.nodeId = undefined;
  }

  /**
   * `put`s each `[key, seq]` (value: 100 bytes varying with seq) inside the child, with
   * `concurrency` in flight, or offered at `ratePerSec` whether or not earlier ones completed.
   */
  write(keys: ReadonlyArray<readonly [string, number]>, load: { concurrency: number; ratePerSec?: number }, timeoutMs: number): Promise<WriteResult> {
    return this.request('write', { keys, ...load }, timeoutMs);
  }

  stats(timeoutMs = 10_000): Promise<NodeStats> {
    return this.request('stats', {}, timeoutMs);
  }

  /** Resolves when the node counted `atLeast` applied `replicated` events, or at `timeoutMs` with `reached: false`. */
  waitApplied(atLeast: number, timeoutMs: number): Promise<{ applied: number; lastAppliedAt: number; reached: boolean }> {
    return this.request('waitApplied', { atLeast, timeoutMs }, timeoutMs + 10_000);
  }

  /** Starts a V8 CPU profile in the child (sampling every `intervalUs`). */
  profileStart(intervalUs = 200): Promise<void> {
    return this.request('profileStart', { intervalUs }, 10_000);
  }

  /** Stops the child's profile and returns it. */
  profileStop(): Promise<Profiler.Profile> {
    return this.request('profileStop', {}, 60_000);
  }

  /** Folds the node's digest log until it is empty; resolves with the keys folded. */
  async fold(timeoutMs: number): Promise<number> {
    return (await this.request<{ folded: number }>('fold', {}, timeoutMs)).folded;
  }

  backlog(timeoutMs = 10_000): Promise<NodeBacklog> {
    return this.request('backlog', {}, timeoutMs);
  }

  /** Closes any node and waits for the process to exit (killed if it does not within the deadline). */
  async exit(timeoutMs = 20_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    try {
      // The child exits right after answering; an exit that overtakes the answer is a clean exit too.
      await this.request('exit', {}, timeoutMs).catch((error: unknown) => {
        if (this.exited === undefined || this.child.exitCode !== 0) throw error;
      });
      await withTimeout(exited, 10_000, `${this.name} exiting`);
    } finally {
      this.kill();
    }
  }

  /** Ends the child at once (cleanup after a failure). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
