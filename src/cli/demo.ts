/**
 * The seed's 7-step demo, replayed over HTTP against a running cluster, printed as a
 * timeline with millisecond offsets:
 *
 *   1. write user:123 (age 30) on the first node
 *   2. read it everywhere at once: the others are stale
 *   3. wait for replication (polling with a deadline, reporting when each node caught up)
 *   4. read again: everyone agrees
 *   5. concurrent writes: age 31 on the first node, age 32 on the second 50 ms later
 *   6. wait for the conflict to resolve, and show each node's LWW decision (`GET /conflicts`)
 *   7. the final, converged state
 *
 * Unlike the seed, nothing sleeps a fixed second and hopes: "converged" means every node
 * returns the same `hlc` and the same version vector, and the demo fails (exit code 1) if
 * that does not happen before the deadline.
 */
import { performance } from 'node:perf_hooks';

/** A running node to talk to. */
export interface DemoTarget {
  id: string;
  /** Base URL, e.g. `http://127.0.0.1:3001`. */
  url: string;
}

export interface DemoOptions {
  /** At least two nodes; the first and second take the concurrent writes. */
  targets: DemoTarget[];
  /** Bearer token, when the nodes require one. */
  authToken?: string;
  /** @defaultValue "user:123" */
  key?: string;
  /** Gap between the two concurrent writes. Unit: milliseconds. @defaultValue 50 */
  gapMs?: number;
  /** Longest wait for each convergence. Unit: milliseconds. @defaultValue 15000 */
  timeoutMs?: number;
  /** Poll interval while waiting. Unit: milliseconds. @defaultValue 10 */
  pollMs?: number;
  /** Describes the replication delay in the header, e.g. "100–500 ms (random per job)". */
  delayLabel?: string;
  /** Receives each line of the timeline. @defaultValue console.log */
  print?: (line: string) => void;
}

export interface DemoResult {
  /** True when both waits ended with every node holding the same record. */
  converged: boolean;
  /** Time from the first write until every node held it. Unit: milliseconds. */
  firstConvergenceMs?: number;
  /** Time from the second concurrent write until every node held the winner. Unit: milliseconds. */
  secondConvergenceMs?: number;
  /** Conflicts about the concurrent writes that each node logged, by node id. */
  conflicts: Record<string, number>;
  /** Node id whose write won the conflict (the larger hlc). */
  winner?: string;
}

/** What `GET /keys/:key` and `PUT /keys/:key` return. */
interface RecordBody {
  key: string;
  value: unknown;
  hlc: string;
  origin: string;
  version: Record<string, number>;
}

interface ConflictBody {
  key: string;
  node?: string;
  winner: { hlc: string; origin: string };
  loser: { hlc: string; origin: string };
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const targets = options.targets;
  if (targets.length < 2) throw new Error('the demo needs at least two nodes');
  const [first, second] = targets as [DemoTarget, DemoTarget, ...DemoTarget[]];
  const key = options.key ?? 'user:123';
  const gapMs = options.gapMs ?? 50;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const pollMs = options.pollMs ?? 10;
  const print = options.print ?? ((line: string) => console.log(line));
  const http = new DemoClient(options.authToken);
  // Warm-up (connections, first-request compilation) so the timeline shows replication, not start-up.
  await Promise.all(targets.map(async (t) => [await http.health(t), await http.get(t, key)]));
  const t0 = performance.now();
  const at = () => Math.round(performance.now() - t0);
  const say = (text: string) => print(`[+${String(at()).padStart(5)} ms] ${text}`);
  const idWidth = Math.max(...targets.map((t) => t.id.length));
  const label = (t: DemoTarget) => `Node ${t.id.padEnd(idWidth)}`;
  const result: DemoResult = { converged: false, conflicts: {} };

  print(`eventual-cache demo: ${targets.length} nodes, replication delay ${options.delayLabel ?? 'as configured on the nodes'}`);
  for (const t of targets) print(`  Node ${t.id.padEnd(idWidth)}  ${t.url}`);
  print('');

  // 1 ───────────────────────────────────────────────────────────────────────────────────
  const v30 = { name: 'Alice', age: 30 };
  say(`1. Write ${key} = ${json(v30)} to Node ${first.id}`);
  const w1 = await http.put(first, key, v30);
  say(`   Node ${first.id} acknowledged at once (local commit): hlc ${w1.hlc}, version ${json(w1.version)}`);

  // 2 ───────────────────────────────────────────────────────────────────────────────────
  say('2. Immediately read from all nodes:');
  for (const t of targets) {
    const r = await http.get(t, key);
    say(`   ${label(t)}: ${show(r)}  ${freshness(r, w1.hlc)}`);
  }

  // 3 ───────────────────────────────────────────────────────────────────────────────────
  say(`3. Wait for replication (polling every ${pollMs} ms, deadline ${timeoutMs} ms)...`);
  const wait1 = await waitForConvergence(http, targets, key, (r) => r?.hlc === w1.hlc, { timeoutMs, pollMs, say, label, since: performance.now() });
  if (!wait1.converged) return fail(say, result, wait1.detail);
  result.firstConvergenceMs = wait1.elapsedMs;
  say(`   All nodes hold the write ${wait1.elapsedMs} ms after it was acknowledged.`);

  // 4 ───────────────────────────────────────────────────────────────────────────────────
  say('4. Read after replication:');
  for (const t of targets) say(`   ${label(t)}: ${show(wait1.records.get(t.id))}  ${freshness(wait1.records.get(t.id), w1.hlc)}`);

  // 5 ───────────────────────────────────────────────────────────────────────────────────
  say('5. Concurrent writes on different nodes:');
  const v31 = { name: 'Alice', age: 31 };
  const v32 = { name: 'Alice', age: 32 };
  const sentA = performance.now();
  const wA = await http.put(first, key, v31);
  say(`   Node ${first.id}: ${key} = ${json(v31)}  hlc ${wA.hlc}`);
  await sleepUntil(sentA + gapMs);
  const sentB = performance.now();
  const wB = await http.put(second, key, v32);
  say(`   Node ${second.id}: ${key} = ${json(v32)}  hlc ${wB.hlc}  (${Math.round(sentB - sentA)} ms later)`);
  const seenBy = Object.keys(wB.version).includes(first.id) && (wB.version[first.id] ?? 0) >= (wA.version[first.id] ?? 0);
  say(
    seenBy
      ? `   Node ${second.id} had already received Node ${first.id}'s write, so these are not concurrent (replication beat the ${gapMs} ms gap).`
      : `   Neither write has seen the other: version ${json(wA.version)} vs ${json(wB.version)}, neither dominates -> concurrent.`,
  );
  const [winner, loser] = wA.hlc > wB.hlc ? [wA, wB] : [wB, wA];
  result.winner = winner.origin;

  // 6 ───────────────────────────────────────────────────────────────────────────────────
  say('6. Wait for conflict resolution (Last-Write-Wins on the hlc)...');
  const wait2 = await waitForConvergence(http, targets, key, (r) => r?.hlc === winner.hlc, { timeoutMs, pollMs, say, label, since: sentB, sameVersion: true });
  if (!wait2.converged) return fail(say, result, wait2.detail);
  result.secondConvergenceMs = wait2.elapsedMs;
  say(`   Converged ${wait2.elapsedMs} ms after the second write. Conflicts logged by each node:`);
  for (const t of targets) {
    const logged = (await http.conflicts(t)).filter((c) => c.key === key && c.winner.hlc === winner.hlc && c.loser.hlc === loser.hlc);
    result.conflicts[t.id] = logged.length;
    say(
      logged.length > 0
        ? `   ${label(t)}: CONFLICT kept ${winner.origin}'s ${json(winner.value)} (hlc ${winner.hlc}) over ${loser.origin}'s ${json(loser.value)} (hlc ${loser.hlc}) (LWW)`
        : seenBy
          ? `   ${label(t)}: no conflict logged (the writes were sequential)`
          : // Replication ships a key's current state: a node that merged both writes first
            // forwards the resolved record, and the receiver has no rival value to discard.
            `   ${label(t)}: no conflict of its own: another node resolved it first and this one received the merged record (version ${json(wait2.records.get(t.id)?.version)})`,
    );
  }

  // 7 ───────────────────────────────────────────────────────────────────────────────────
  say('7. Final state (after convergence):');
  for (const t of targets) say(`   ${label(t)}: ${show(wait2.records.get(t.id))}  version ${json(wait2.records.get(t.id)?.version)}`);
  result.converged = true;
  print('');
  print(`All nodes converged! (eventual consistency) Winner: Node ${winner.origin}'s write, ${json(winner.value)}.`);
  return result;
}

interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  say: (text: string) => void;
  label: (t: DemoTarget) => string;
  /** `performance.now()` the elapsed times count from. */
  since: number;
  /** Also require identical version vectors (every node merged every write). */
  sameVersion?: boolean;
}

interface WaitResult {
  converged: boolean;
  elapsedMs: number;
  records: Map<string, RecordBody | undefined>;
  detail: string;
}

/** Polls every node until `done` holds for all of them (and, optionally, their vectors agree), reporting when each node got there. */
async function waitForConvergence(
  http: DemoClient,
  targets: DemoTarget[],
  key: string,
  done: (r: RecordBody | undefined) => boolean,
  o: WaitOptions,
): Promise<WaitResult> {
  const deadline = performance.now() + o.timeoutMs;
  const reached = new Set<string>();
  const records = new Map<string, RecordBody | undefined>();
  for (;;) {
    await Promise.all(targets.map(async (t) => records.set(t.id, await http.get(t, key))));
    for (const t of targets) {
      if (!reached.has(t.id) && done(records.get(t.id))) {
        reached.add(t.id);
        o.say(`   ${o.label(t)} has it (${Math.round(performance.now() - o.since)} ms)`);
      }
    }
    const versions = new Set(targets.map((t) => json(sortKeys(records.get(t.id)?.version ?? {}))));
    if (reached.size === targets.length && (!o.sameVersion || versions.size === 1)) {
      return { converged: true, elapsedMs: Math.round(performance.now() - o.since), records, detail: '' };
    }
    if (performance.now() > deadline) {
      const states = targets.map((t) => `${t.id}: ${show(records.get(t.id))} version ${json(records.get(t.id)?.version)}`).join('; ');
      return { converged: false, elapsedMs: Math.round(performance.now() - o.since), records, detail: `not converged after ${o.timeoutMs} ms: ${states}` };
    }
    await new Promise((r) => setTimeout(r, o.pollMs));
  }
}

function fail(say: (text: string) => void, result: DemoResult, detail: string): DemoResult {
  say(`   FAILED: ${detail}`);
  say('   Check the nodes\' GET /cluster (replication backlog, last error) and their logs.');
  return result;
}

/** Minimal HTTP client for the node API (fetch, JSON, bearer token). */
class DemoClient {
  constructor(private readonly token: string | undefined) {}

  async put(t: DemoTarget, key: string, value: unknown): Promise<RecordBody> {
    return (await this.call(t, 'PUT', `/keys/${encodeURIComponent(key)}`, { value })) as RecordBody;
  }

  async get(t: DemoTarget, key: string): Promise<RecordBody | undefined> {
    return (await this.call(t, 'GET', `/keys/${encodeURIComponent(key)}`, undefined, true)) as RecordBody | undefined;
  }

  async health(t: DemoTarget): Promise<void> {
    await this.call(t, 'GET', '/health');
  }

  async conflicts(t: DemoTarget): Promise<ConflictBody[]> {
    const body = (await this.call(t, 'GET', '/conflicts?limit=100')) as unknown;
    if (Array.isArray(body)) return body as ConflictBody[];
    const list = (body as { items?: unknown; conflicts?: unknown }).items ?? (body as { conflicts?: unknown }).conflicts;
    return Array.isArray(list) ? (list as ConflictBody[]) : [];
  }

  private async call(t: DemoTarget, method: string, path: string, body?: unknown, allow404 = false): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(new URL(path, t.url), { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (cause) {
      throw new Error(`Node ${t.id} at ${t.url} did not answer ${method} ${path}: ${(cause as Error).message}`, { cause });
    }
    if (allow404 && res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    const text = await res.text();
    if (!res.ok) {
      const hint = res.status === 401 ? ' (set EVENTUAL_CACHE_TOKEN to the nodes\' token)' : '';
      throw new Error(`Node ${t.id}: ${method} ${path} answered ${res.status}${hint}: ${text.slice(0, 300)}`);
    }
    return JSON.parse(text) as unknown;
  }
}

function freshness(r: RecordBody | undefined, hlc: string): string {
  if (r === undefined) return '(stale: not replicated yet)';
  if (r.hlc === hlc) return '(up to date)';
  return r.hlc < hlc ? '(stale: an older value)' : '(newer)';
}

function show(r: RecordBody | undefined): string {
  return r === undefined ? 'None (404)' : json(r.value);
}

function json(v: unknown): string {
  return JSON.stringify(v) ?? 'undefined';
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function sleepUntil(t: number): Promise<void> {
  const ms = t - performance.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}
