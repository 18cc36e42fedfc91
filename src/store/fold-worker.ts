/**
 * The worker thread that folds digest logs (`fold-thread.ts` starts it, up to two per process):
 * for each node that opened a folder here, its own connections to the node's Redis, a
 * {@link DigestFolder}, and answers to that node's requests.
 *
 * Requests and answers are plain objects (see {@link FoldRequest}, {@link FoldAnswer}).
 * Errors cross as their name and message.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { digestShape } from '../digest/digest.js';
import { closeRedis, connect, createRedis, createTransactionPool, type RedisTarget, type TransactionConnections } from './connections.js';
import { DigestFolder, type FoldOptions } from './digest-fold.js';
import { KeyBuilder } from './keys.js';
import { optimisticTransaction } from './transaction.js';
import type { Redis } from 'ioredis';

/** What a folder is opened with. */
export interface FolderSpec {
  readonly target: RedisTarget;
  readonly prefix: string;
  readonly nodeId: string;
  readonly partitions: number;
  readonly leaves: number;
  readonly connectTimeoutMs: number;
  readonly maxTransactionRetries: number;
}

type Op =
  | { readonly op: 'open'; readonly spec: FolderSpec }
  | { readonly op: 'fold'; readonly options: FoldOptions }
  | { readonly op: 'forget' }
  | { readonly op: 'replace'; readonly partition: number; readonly bytes: Uint8Array }
  | { readonly op: 'close' };

/** A request for folder `folder`; `id` pairs it with its answer. */
export type FoldRequest = Op & { readonly id: number; readonly folder: number };

export type FoldAnswer = { readonly id: number; readonly value: unknown } | { readonly id: number; readonly error: { readonly name: string; readonly message: string } };

/** The fold thread's nice value on Linux (see {@link lowerPriority}). */
const FOLD_THREAD_NICE = 10;

/** One node's folder in this thread. */
class Hosted {
  readonly folder: DigestFolder;
  private readonly spec: FolderSpec;
  private readonly redis: Redis;
  private readonly pool: TransactionConnections;
  private connected: Promise<void> | undefined;

  constructor(spec: FolderSpec) {
    this.spec = spec;
    const name = `${spec.prefix}:${spec.nodeId}:fold`;
    this.redis = createRedis(spec.target, 'transaction', name);
    this.pool = createTransactionPool(spec.target, this.redis, 1, name);
    const keys = new KeyBuilder(spec.prefix, spec.nodeId, spec.partitions);
    this.folder = new DigestFolder(this.redis, keys, digestShape(spec.leaves), (watch, plan) =>
      optimisticTransaction(this.pool, spec.target, watch, plan, { maxRetries: spec.maxTransactionRetries }),
    );
  }

  /** Connects on first use, and again after a failed attempt (Redis may come back). */
  ready(): Promise<void> {
    this.connected ??= (async () => {
      await connect(this.redis, this.spec.target, this.spec.connectTimeoutMs);
      await this.pool.connect(this.spec.connectTimeoutMs);
    })().catch((error: unknown) => {
      this.connected = undefined;
      throw error;
    });
    return this.connected;
  }

  async close(): Promise<void> {
    await this.folder.close();
    await this.pool.close();
    await closeRedis(this.redis);
  }
}

const port = parentPort;
if (!port) throw new Error('fold-worker.ts runs only as a worker thread');
lowerPriority();
const hosted = new Map<number, Hosted>();

async function answer(request: FoldRequest): Promise<unknown> {
  if (request.op === 'open') {
    hosted.set(request.folder, new Hosted(request.spec));
    return undefined;
  }
  const host = hosted.get(request.folder);
  if (!host) throw new Error(`no digest folder ${request.folder} in the fold thread`);
  switch (request.op) {
    case 'fold':
      await host.ready();
      return host.folder.fold(request.options);
    case 'forget':
      return host.folder.forget();
    case 'replace':
      await host.ready();
      return host.folder.replaceTreeIfDiffers(request.partition, Buffer.from(request.bytes));
    case 'close':
      hosted.delete(request.folder);
      return host.close();
  }
}

port.on('message', (request: FoldRequest) => {
  answer(request).then(
    (value) => port.postMessage({ id: request.id, value } satisfies FoldAnswer),
    (error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      port.postMessage({ id: request.id, error: { name: e.name, message: e.message } } satisfies FoldAnswer);
    },
  );
});

/**
 * Folding is background upkeep: on Linux the nice value belongs to the thread, so this
 * thread yields the CPU to the node's event loop and to Redis whenever they want it, and
 * folds in the time they leave. Elsewhere the call changes the whole process, so it is made
 * only on Linux. (Nice 10, not 19: a fold starved under a long burst would leave the
 * digest, and `dig:log`, growing until the burst ends.)
 */
function lowerPriority(): void {
  if (process.platform !== 'linux') return;
  try {
    setPriority(0, FOLD_THREAD_NICE);
  } catch {
    // Not permitted here: fold at the node's priority.
  }
}
