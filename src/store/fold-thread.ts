/**
 * Folding digest logs in a worker thread (`fold-worker.ts`), behind the same
 * {@link Folder} interface as the in-process {@link DigestFolder}.
 *
 * Why a thread: a fold step of 20,000 keys hashes 20,000 records and builds a few
 * thousand Redis commands, tens of milliseconds of JavaScript. On the node's event loop
 * that work holds up every request behind it and, under a write load, costs a third of
 * the write throughput (bench scenario 10, upkeep); in a thread it runs beside them, on
 * another core when there is one.
 *
 * Up to two threads serve every node of the process (the `cluster` command and the tests
 * host several): each starts with its first folder (about 0.3 s) and stays, idle and
 * unref'd, when its last closes. Each folder in it has its own connections (a reader and one
 * transaction connection per master) and keeps its node's digest trees. A thread that
 * dies (it never should) fails the requests in flight with its error and is started
 * again, with its folders reopened, by the next request.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DigestShape } from '../digest/digest.js';
import type { RedisTarget } from './connections.js';
import type { Redis } from 'ioredis';
import { DigestFolder, type Folder, type FoldOptions, type Transact } from './digest-fold.js';
import type { StoreOptions } from './store-options.js';
import type { FoldAnswer, FoldRequest, FolderSpec } from './fold-worker.js';
import type { KeyBuilder } from './keys.js';

/** How long `close()` waits for the thread to finish a folder's step and quit its connections. */
const CLOSE_TIMEOUT_MS = 5_000;

type Op = FoldRequest extends infer R ? (R extends FoldRequest ? Omit<R, 'id' | 'folder'> : never) : never;

/** The process's fold thread. */
class FoldHost {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  /** The specs of the open folders, to reopen them in a new thread. */
  private readonly open = new Map<number, FolderSpec>();
  private nextFolder = 1;

  /** Registers a folder; resolves with its number. */
  add(spec: FolderSpec): number {
    const folder = this.nextFolder++;
    this.open.set(folder, spec);
    if (this.worker) void this.send(this.worker, folder, { op: 'open', spec }).catch(() => undefined);
    return folder;
  }

  async remove(folder: number): Promise<void> {
    if (!this.open.delete(folder) || !this.worker) return;
    await this.send(this.worker, folder, { op: 'close' });
  }

  request(folder: number, op: Op): Promise<unknown> {
    this.worker ??= this.spawn();
    return this.send(this.worker, folder, op);
  }

  private send(worker: Worker, folder: number, op: Op): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // The thread keeps the process alive only while it owes an answer.
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...op, id, folder } as FoldRequest);
    });
  }

  private spawn(): Worker {
    // The compiled `.js` in a build; from the TypeScript sources (a checkout, the tests)
    // through `fold-worker-source.mjs`, which registers tsx in the thread.
    const entry = import.meta.url.endsWith('.ts') ? './fold-worker-source.mjs' : './fold-worker.js';
    const worker = new Worker(new URL(entry, import.meta.url));
    worker.on('message', (answer: FoldAnswer) => {
      const waiting = this.pending.get(answer.id);
      if (!waiting) return;
      this.pending.delete(answer.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in answer) waiting.reject(Object.assign(new Error(answer.error.message), { name: answer.error.name }));
      else waiting.resolve(answer.value);
    });
    const fail = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const [, waiting] of this.pending) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the digest fold thread exited (code ${code})`)));
    // After the listeners: adding a 'message' listener refs the thread's port again.
    worker.unref();
    // Messages are handled in order, so the folders are open before any request for them.
    for (const [folder, spec] of this.open) void this.send(worker, folder, { op: 'open', spec }).catch(() => undefined);
    return worker;
  }
}

/**
 * The process's fold threads: up to two (one core each of the common small machine),
 * started as nodes open folders; nodes take turns, so the nodes of a `cluster` process
 * fold on two cores while one node's process has one thread.
 */
const hosts: FoldHost[] = [];
const FOLD_THREADS = Math.max(1, Math.min(2, availableParallelism()));
let opened = 0;

/**
 * The folder of a store: in a fold thread unless `options.digestFoldThread` is off or the
 * target cannot be handed to a thread (then on the event loop, committing through the
 * store's own `transact`).
 */
export function createFolder(target: RedisTarget, redis: Redis, keys: KeyBuilder, shape: DigestShape, options: StoreOptions, transact: Transact): Folder {
  if (options.digestFoldThread && FoldThread.canRun(target)) return new FoldThread(target, keys, shape, options);
  return new DigestFolder(redis, keys, shape, transact);
}

/** A node's folder in the process's fold thread. */
export class FoldThread implements Folder {
  readonly shape: DigestShape;
  private readonly folder: number;
  private readonly host: FoldHost;
  private readonly nodeId: string;
  private closed: Promise<void> | undefined;

  constructor(target: RedisTarget, keys: KeyBuilder, shape: DigestShape, options: { connectTimeoutMs: number; maxTransactionRetries: number }) {
    this.shape = shape;
    this.nodeId = keys.nodeId;
    const turn = opened++ % FOLD_THREADS;
    this.host = hosts[turn] ??= new FoldHost();
    this.folder = this.host.add({ target, prefix: keys.prefix, nodeId: keys.nodeId, partitions: keys.partitions, leaves: shape.leaves, connectTimeoutMs: options.connectTimeoutMs, maxTransactionRetries: options.maxTransactionRetries });
  }

  /** True when `target` can be handed to a thread (a URL, seeds, or options without functions). */
  static canRun(target: RedisTarget): boolean {
    try {
      structuredClone(target);
      return true;
    } catch {
      return false;
    }
  }

  fold(options: FoldOptions = {}): Promise<number> {
    return this.request({ op: 'fold', options }) as Promise<number>;
  }

  async forget(): Promise<void> {
    await this.request({ op: 'forget' });
  }

  replaceTreeIfDiffers(partition: number, bytes: Buffer): Promise<boolean> {
    return this.request({ op: 'replace', partition, bytes: new Uint8Array(bytes) }) as Promise<boolean>;
  }

  close(): Promise<void> {
    this.closed ??= Promise.race([this.host.remove(this.folder).catch(() => undefined), new Promise<void>((r) => setTimeout(r, CLOSE_TIMEOUT_MS).unref())]);
    return this.closed;
  }

  private request(op: Op): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(`the digest folder of node ${this.nodeId} is closed`));
    return this.host.request(this.folder, op);
  }
}
