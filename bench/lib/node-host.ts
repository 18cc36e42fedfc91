/**
 * Child-process host of a benchmark node (forked by `node-process.ts` with `--import tsx`):
 * runs at most one {@link ReplicaNode} at a time, as a deployed node process runs one, and
 * answers the parent's requests over IPC. The process outlives its node so a scenario pays
 * the start-up (Node, tsx, module loading) once per process, not once per run.
 *
 * Requests `{id, type, ...}`, answered `{id, ok: true, result}` or `{id, ok: false, error}`:
 *   start        {spec}  starts the node (see {@link NodeHostSpec}) and waits for its start-up resync
 *   write        {keys: [[key, seq], …], concurrency, ratePerSec?}  local `put`s of 100-byte values,
 *                c in flight (closed loop), or offered at a fixed rate (open loop)
 *   stats        CPU (`process.cpuUsage()`), memory, `replicated` event counts, metrics counters
 *   waitApplied  {atLeast, timeoutMs}  resolves once `applied` events reach `atLeast` (no polling)
 *   backlog      outbox length and unfinished / failed replication jobs of this node's queues
 *   fold         folds the node's digest log until it is empty; answers the keys folded
 *   profileStart / profileStop   a V8 CPU profile of this process between the two (bench/profile.ts)
 *   stop         closes the node; the process stays for the next one
 *   exit         closes the node if one runs; the process exits after answering
 *
 * Times are epoch milliseconds with sub-millisecond precision (`performance.timeOrigin +
 * performance.now()`), so the parent can put every child's events on one clock. The
 * process exits if the parent goes away.
 */
import { Session, type Profiler } from 'node:inspector';
import { Redis } from 'ioredis';
import { ReplicaNode } from '../../src/index.js';
import { counterTotal } from './cluster.js';
import { openLoop, runCount } from './load.js';
import { valueOfBytes } from './payload.js';
import { schedStat } from './schedstat.js';
import { percentile, round } from './stats.js';
import type { NodeHostSpec, NodeBacklog, NodeStats, WriteResult } from './node-process.js';
import { VALUE_BYTES } from './replicated-run.js';

const epochNow = () => performance.timeOrigin + performance.now();

interface Request {
  id: number;
  type: string;
  [field: string]: unknown;
}

/** One running node and what the host counts about it. */
class Hosted {
  readonly events = { replicated: 0, applied: 0, lastAt: 0 };
  readonly errors: string[] = [];
  private readonly waiters: Array<{ atLeast: number; resolve: () => void }> = [];

  private constructor(
    readonly spec: NodeHostSpec,
    readonly node: ReplicaNode,
    readonly raw: Redis,
  ) {
    node.on('error', (error) => {
      this.errors.push(error.message);
      for (const w of this.waiters.splice(0)) w.resolve();
    });
    node.on('replicated', (event) => {
      this.events.replicated += 1;
      if (event.outcome !== 'applied') return;
      this.events.applied += 1;
      this.events.lastAt = epochNow();
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i] as (typeof this.waiters)[number];
        if (this.events.applied >= w.atLeast) {
          this.waiters.splice(i, 1);
          w.resolve();
        }
      }
    });
  }

  static async start(spec: NodeHostSpec): Promise<Hosted> {
    const node = await ReplicaNode.start({
      id: spec.id,
      redis: spec.redis,
      prefix: spec.prefix,
      peers: spec.peers,
      ...(spec.replication ? { replication: spec.replication } : {}),
      ...spec.store,
    });
    const hosted = new Hosted(spec, node, new Redis(spec.redis, { maxRetriesPerRequest: 1 }));
    try {
      await node.resynced();
    } catch (error) {
      await hosted.close();
      throw error;
    }
    return hosted;
  }

  /** Resolves once `applied` reaches `atLeast`, a background error arrived, or `timeoutMs` passed. */
  async waitApplied(atLeast: number, timeoutMs: number): Promise<void> {
    if (this.events.applied >= atLeast || this.errors.length > 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const waiter = { atLeast, resolve };
      this.waiters.push(waiter);
      timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        resolve();
      }, timeoutMs);
    });
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await this.node.close();
    this.raw.disconnect();
  }
}

function main(): void {
  let hosted: Hosted | undefined;
  const current = (): Hosted => {
    if (!hosted) throw new Error('no node runs in this process (send "start" first)');
    return hosted;
  };
  let session: Session | undefined;
  const inspect = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => session?.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
  const stop = async () => {
    const h = hosted;
    hosted = undefined;
    const started = performance.now();
    await h?.close();
    return { closeMs: performance.now() - started };
  };

  const handlers: Record<string, (r: Request) => Promise<unknown>> = {
    start: async (r) => {
      if (hosted) throw new Error(`node ${hosted.spec.id} still runs in this process`);
      hosted = await Hosted.start(r.spec as NodeHostSpec);
      return { pid: process.pid };
    },
    write: async (r): Promise<WriteResult> => {
      const { node } = current();
      const keys = r.keys as Array<[string, number]>;
      const latencies: number[] = [];
      const op = async (i: number) => {
        const [key, seq] = keys[i] as [string, number];
        const t0 = performance.now();
        await node.put(key, valueOfBytes(seq, VALUE_BYTES));
        latencies.push(performance.now() - t0);
      };
      const startedAt = epochNow();
      const rate = Number(r.ratePerSec ?? 0);
      if (rate > 0) await openLoop({ ratePerSec: rate, durationMs: (keys.length * 1000) / rate, op, settleTimeoutMs: 60_000 });
      else await runCount({ concurrency: Number(r.concurrency), total: keys.length, op });
      const endedAt = epochNow();
      latencies.sort((a, b) => a - b);
      const at = (p: number) => (latencies.length > 0 ? round(percentile(latencies, p), 3) : 0);
      return { writes: keys.length, startedAt, endedAt, latencyMs: { p50: at(50), p99: at(99), max: at(100) } };
    },
    stats: async (): Promise<NodeStats> => {
      const { node, events, errors } = current();
      const cpu = process.cpuUsage();
      const mem = process.memoryUsage();
      const sched = schedStat();
      return {
        ...(sched ? { sched } : {}),
        at: epochNow(),
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        replicated: events.replicated,
        applied: events.applied,
        lastAppliedAt: events.lastAt,
        jobs: await counterTotal(node, 'eventual_cache_replication_jobs_total'),
        retries: await counterTotal(node, 'eventual_cache_transaction_retries_total'),
        errors: [...errors],
      };
    },
    waitApplied: async (r) => {
      const h = current();
      const { events, errors } = h;
      const atLeast = Number(r.atLeast);
      await h.waitApplied(atLeast, Number(r.timeoutMs));
      if (errors.length > 0) throw new Error(`node ${h.spec.id} reported an error: ${errors[0]}`);
      return { applied: events.applied, lastAppliedAt: events.lastAt, reached: events.applied >= atLeast };
    },
    backlog: async (): Promise<NodeBacklog> => {
      const { node, raw } = current();
      let jobs = 0;
      let failed = 0;
      for (const queue of node.queues) {
        const c = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed', 'waiting-children');
        jobs += (c.waiting ?? 0) + (c.delayed ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0) + (c['waiting-children'] ?? 0);
        failed += c.failed ?? 0;
      }
      return { outbox: await raw.xlen(node.keys.outbox()), jobs, failed };
    },
    fold: async () => {
      const { node } = current();
      let folded = 0;
      for (let step = await node.foldDigest(); step > 0; step = await node.foldDigest()) folded += step;
      return { folded };
    },
    profileStart: async (r) => {
      session = new Session();
      session.connect();
      await inspect('Profiler.enable');
      await inspect('Profiler.setSamplingInterval', { interval: Number(r.intervalUs ?? 200) });
      await inspect('Profiler.start');
      return {};
    },
    profileStop: async () => {
      const { profile } = await inspect<{ profile: Profiler.Profile }>('Profiler.stop');
      session?.disconnect();
      session = undefined;
      return profile;
    },
    stop,
    exit: stop,
  };

  process.on('message', (message: Request) => {
    const handler = handlers[message.type];
    const reply = (body: Record<string, unknown>, then: () => void = () => undefined) => process.send?.({ id: message.id, ...body }, then);
    if (!handler) {
      reply({ ok: false, error: `unknown request ${JSON.stringify(message.type)}` });
      return;
    }
    handler(message).then(
      (result) => reply({ ok: true, result }, message.type === 'exit' ? () => process.exit(0) : undefined),
      (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(1));
  process.send?.({ ready: true, pid: process.pid });
}

main();
