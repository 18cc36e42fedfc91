/**
 * THE convergence property: random histories of puts, deletes and puts with TTL on 3-5
 * in-memory replicas with skewed, jumping clocks, partial exchanges mid-history (so later
 * writes causally follow earlier ones), then every record delivered to every replica in
 * random order with duplicates. See support/replica-sim.ts for the model.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareTimestamps, parseTimestamp } from '../../src/clock/timestamp.js';
import { encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { seededRandom } from './support/fake-clock.js';
import { SimCluster, type SimStats, type WriteEvent } from './support/replica-sim.js';

const NODE_IDS = ['A', 'B', '10', '9', 'z_1'] as const;
const KEYS = ['a', 'b', 'c'] as const;

/** `readFrom`: the writer first receives that peer's record for the key (a causal write). */
type Step =
  | { readonly kind: 'put'; readonly node: number; readonly key: string; readonly ttlMs?: number; readonly readFrom?: number }
  | { readonly kind: 'delete'; readonly node: number; readonly key: string; readonly readFrom?: number }
  | { readonly kind: 'tick'; readonly ms: number }
  | { readonly kind: 'sync'; readonly from: number; readonly to: number; readonly key: string }
  | { readonly kind: 'late'; readonly to: number; readonly pick: number }
  | { readonly kind: 'clockStep'; readonly node: number; readonly ms: number };

interface History {
  readonly nodeCount: number;
  readonly skewsMs: readonly number[];
  readonly maxDriftMs: number;
  readonly steps: readonly Step[];
  readonly seed: number;
}

const nodeArb = fc.nat(NODE_IDS.length - 1);
const keyArb = fc.constantFrom(...KEYS);

function stepArb(options: { ticks: boolean }): fc.Arbitrary<Step> {
  const readFrom = fc.option(nodeArb, { nil: undefined, freq: 2 });
  const steps: fc.WeightedArbitrary<Step>[] = [
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), node: nodeArb, key: keyArb, readFrom }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('put' as const), node: nodeArb, key: keyArb, ttlMs: fc.integer({ min: 1, max: 3000 }), readFrom }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), node: nodeArb, key: keyArb, readFrom }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), from: nodeArb, to: nodeArb, key: keyArb }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('late' as const), to: nodeArb, pick: fc.nat() }) },
  ];
  if (options.ticks) {
    steps.push(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 100, max: 5000 })) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('clockStep' as const), node: nodeArb, ms: fc.integer({ min: -3000, max: 1000 }) }) },
    );
  }
  return fc.oneof(...steps);
}

function historyArb(options: { maxDriftMs: fc.Arbitrary<number>; ticks: boolean; skewMs: number }): fc.Arbitrary<History> {
  const skews = fc.array(fc.integer({ min: -options.skewMs, max: options.skewMs }), { minLength: NODE_IDS.length, maxLength: NODE_IDS.length });
  return fc.record({
    nodeCount: fc.integer({ min: 3, max: 5 }),
    skewsMs: fc.oneof(skews, fc.constant(NODE_IDS.map(() => 0))),
    maxDriftMs: options.maxDriftMs,
    steps: fc.array(stepArb(options), { minLength: 1, maxLength: 40, size: 'max' }),
    seed: fc.integer(),
  });
}

function play(history: History): SimCluster {
  const ids = NODE_IDS.slice(0, history.nodeCount);
  const id = (i: number): string => ids[i % ids.length] as string;
  const cluster = new SimCluster({ nodeIds: ids, skewsMs: history.skewsMs, maxDriftMs: history.maxDriftMs });
  for (const step of history.steps) {
    switch (step.kind) {
      case 'put':
        if (step.readFrom !== undefined) cluster.sync(id(step.readFrom), id(step.node), step.key);
        cluster.put(id(step.node), step.key, { w: cluster.writes.length, by: id(step.node) }, step.ttlMs);
        break;
      case 'delete':
        if (step.readFrom !== undefined) cluster.sync(id(step.readFrom), id(step.node), step.key);
        cluster.delete(id(step.node), step.key);
        break;
      case 'tick':
        cluster.tick(step.ms);
        break;
      case 'sync':
        cluster.sync(id(step.from), id(step.to), step.key);
        break;
      case 'late': {
        const envelope = cluster.sent[step.pick % Math.max(1, cluster.sent.length)];
        if (envelope) cluster.deliver(id(step.to), envelope);
        break;
      }
      case 'clockStep':
        cluster.node(id(step.node)).stepMs += step.ms;
        break;
    }
  }
  cluster.deliverEverything(seededRandom(history.seed));
  return cluster;
}

/** Throws with a readable message; far cheaper than `expect` inside the quadratic loops. */
function check(condition: boolean, message: () => string): void {
  if (!condition) throw new Error(message());
}

const hlcOrder = (a: WriteEvent, b: WriteEvent): number => compareTimestamps(parseTimestamp(a.record.hlc), parseTimestamp(b.record.hlc));

/** What a run exercised, summed over all runs of a property. */
interface Coverage extends SimStats {
  runs: number;
  causalWrites: number;
  equalWallConcurrent: number;
  tombstoneWinners: number;
  ttlWinners: number;
}
const emptyCoverage = (): Coverage => ({ runs: 0, drifted: 0, conflicts: 0, successorWrites: 0, writesBehindOverwritten: 0, resurrectionAttempts: 0, causalWrites: 0, equalWallConcurrent: 0, tombstoneWinners: 0, ttlWinners: 0 });

/** Every assertion of the convergence property for one finished run. */
function checkRun(cluster: SimCluster, coverage: Coverage): void {
  const nodes = [...cluster.nodes.values()];
  coverage.runs += 1;
  for (const k of Object.keys(cluster.stats) as (keyof SimStats)[]) coverage[k] += cluster.stats[k];

  for (const key of KEYS) {
    const writes = cluster.writes.filter((w) => w.op.key === key);
    const held = nodes.map((n) => n.records.get(key));
    if (writes.length === 0) {
      check(held.every((r) => r === undefined), () => `${key} was never written but some replica holds it`);
      continue;
    }

    // 1. Every replica holds byte-identical records ...
    const encoded = held.map((r) => (r ? encodeRecord(r) : '<absent>'));
    check(new Set(encoded).size === 1, () => `replicas diverged on ${key}:\n${nodes.map((n, i) => `  ${n.id}: ${encoded[i]}`).join('\n')}`);

    // ... equal to the highest-HLC write, with a version that counts every write to the key
    // (each node's writes to a key are numbered 1, 2, ... so the counts are the vector).
    const winner = writes.reduce((a, b) => (hlcOrder(a, b) >= 0 ? a : b));
    const counts: Record<string, number> = {};
    const dotOf = new Map<WriteEvent, number>();
    for (const w of writes) dotOf.set(w, (counts[w.node] = (counts[w.node] ?? 0) + 1));
    const expected: CacheRecord = { ...winner.record, version: counts };
    check(encoded[0] === encodeRecord(expected), () => `${key}: replicas hold ${encoded[0]}\n  expected the highest-HLC write ${encodeRecord(expected)}`);
    if (winner.record.deleted) coverage.tombstoneWinners += 1;
    if (winner.record.expiresAt !== undefined) coverage.ttlWinners += 1;

    // 2. Causality: a write orders after every write its writer had seen (however far
    //    behind its clock was), and the version vectors record exactly that relation.
    for (const later of writes) {
      if (later.past.size > 0 && [...later.past].some((h) => !h.endsWith(`/${later.node}`))) coverage.causalWrites += 1;
      for (const earlier of writes) {
        if (earlier === later) continue;
        const sawIt = later.past.has(earlier.record.hlc);
        check(!sawIt || hlcOrder(earlier, later) < 0, () => `${key}: ${later.record.hlc} was written after seeing ${earlier.record.hlc} but orders before it`);
        const vectorSaysSaw = (later.record.version[earlier.node] ?? 0) >= (dotOf.get(earlier) as number);
        check(sawIt === vectorSaysSaw, () => `${key}: version ${JSON.stringify(later.record.version)} of ${later.record.hlc} says saw=${vectorSaysSaw} for ${earlier.record.hlc}, truth is ${sawIt}`);
        if (!sawIt && !earlier.past.has(later.record.hlc) && earlier.node !== later.node && later.record.hlc.slice(0, 24) === earlier.record.hlc.slice(0, 24)) {
          coverage.equalWallConcurrent += 1;
        }
      }
    }
    // 3. A causally later write always wins: nothing was written after seeing the winner.
    check(writes.every((w) => !w.past.has(winner.record.hlc)), () => `${key}: the winner ${winner.record.hlc} was overwritten causally`);

    // 4. Conflicts: only between writes that were truly concurrent, each loser at most once
    //    per replica, and every write lost to LWW (never overwritten knowingly) is reported
    //    by its own origin.
    const byHlc = new Map(writes.map((w) => [w.record.hlc, w]));
    for (const node of nodes) {
      const losers = new Set<string>();
      for (const c of node.conflicts.filter((x) => x.key === key)) {
        const win = byHlc.get(c.winner.hlc);
        const lose = byHlc.get(c.loser.hlc);
        check(win !== undefined && lose !== undefined, () => `${node.id}: conflict names unknown writes ${JSON.stringify(c)}`);
        check(c.winner.hlc > c.loser.hlc, () => `${node.id}: conflict winner ${c.winner.hlc} is older than loser ${c.loser.hlc}`);
        check(!win?.past.has(c.loser.hlc), () => `${node.id}: reported ${c.loser.hlc} as lost to ${c.winner.hlc}, which had seen it`);
        check(!losers.has(c.loser.hlc), () => `${node.id}: reported ${c.loser.hlc} as a loser twice`);
        losers.add(c.loser.hlc);
      }
    }
    for (const w of writes) {
      if (w === winner || writes.some((o) => o.past.has(w.record.hlc))) continue;
      const origin = cluster.node(w.node);
      check(origin.conflicts.some((c) => c.loser.hlc === w.record.hlc), () => `${key}: ${w.record.hlc} lost to LWW but its origin ${w.node} never reported the conflict`);
    }
  }
}

function assertConverges(arb: fc.Arbitrary<History>, numRuns: number): Coverage {
  const coverage = emptyCoverage();
  fc.assert(
    fc.property(arb, (history) => checkRun(play(history), coverage)),
    { numRuns },
  );
  return coverage;
}

describe('replicated Last-Write-Wins', () => {
  describe('when clocks are skewed by up to 5 s, jump around, and drift bounds vary', () => {
    it('should converge to the highest-HLC write, byte-identical on every replica (property)', () => {
      const coverage = assertConverges(historyArb({ maxDriftMs: fc.constantFrom(250, 2000, 60_000), ticks: true, skewMs: 5000 }), 4000);
      // The property is only as good as the histories: each situation it claims to cover
      // must actually have happened (seed failures 1 and 2, drift, TTL, tombstones, late
      // older writes reaching a deleted/expired key).
      expect(coverage.runs).toBe(4000);
      for (const field of ['drifted', 'conflicts', 'successorWrites', 'writesBehindOverwritten', 'resurrectionAttempts', 'causalWrites', 'equalWallConcurrent', 'tombstoneWinners', 'ttlWinners'] as const) {
        expect(coverage[field], field).toBeGreaterThan(200);
      }
    });
  });

  describe.each([
    ['every remote timestamp counts as drift', 1],
    ['no remote timestamp counts as drift', Number.MAX_SAFE_INTEGER],
  ])('when %s', (_label, maxDriftMs) => {
    it('should converge all the same (property)', () => {
      const coverage = assertConverges(historyArb({ maxDriftMs: fc.constant(maxDriftMs), ticks: true, skewMs: 5000 }), 500);
      expect(coverage.drifted > 0).toBe(maxDriftMs === 1);
    });
  });

  describe('when every write happens in the same wall-clock millisecond', () => {
    it('should converge, ties broken the same way everywhere (property)', () => {
      const coverage = assertConverges(historyArb({ maxDriftMs: fc.constant(60_000), ticks: false, skewMs: 0 }), 1000);
      expect(coverage.equalWallConcurrent).toBeGreaterThan(100);
    });
  });
});
