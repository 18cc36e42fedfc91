/**
 * The reference program's demo and its failures (../shared/seed/README.md), replayed on the
 * pure engine with fake clocks. Times in the timelines are ms of real time; each node's
 * wall clock is real time plus its skew.
 */
import { describe, expect, it } from 'vitest';
import { compareHlc, wallMsOf } from '../../src/clock/timestamp.js';
import { encodeRecord } from '../../src/record/record.js';
import { SimCluster } from './support/replica-sim.js';
import { T0 } from './support/fake-clock.js';

const KEY = 'user:123';
const nodes = ['A', 'B', 'C'] as const;
const reads = (cluster: SimCluster, key = KEY): unknown[] => nodes.map((n) => cluster.read(n, key));
const storedBytes = (cluster: SimCluster, key = KEY): string[] => nodes.map((n) => {
  const record = cluster.node(n).records.get(key);
  return record ? encodeRecord(record) : '<absent>';
});

describe('the seed demo', () => {
  // t=0    A: put {age:30}          B, C: read -> stale (absent)
  // t=300  A ──▶ B, C               all read {age:30}
  // t=1000 A: put {age:31}
  // t=1050 B: put {age:32}          (concurrent: neither saw the other)
  // t=1400 everything everywhere    all read {age:32}
  it('should show stale reads at first, then converge to the later concurrent write', () => {
    const cluster = new SimCluster({ nodeIds: nodes });
    cluster.put('A', KEY, { age: 30 });
    expect(reads(cluster)).toEqual([{ age: 30 }, undefined, undefined]);

    cluster.tick(300);
    cluster.syncAll('A', 'B');
    cluster.syncAll('A', 'C');
    expect(reads(cluster)).toEqual([{ age: 30 }, { age: 30 }, { age: 30 }]);

    cluster.tick(700);
    cluster.put('A', KEY, { age: 31 });
    cluster.tick(50);
    cluster.put('B', KEY, { age: 32 });
    cluster.tick(350);
    cluster.deliverEverything(() => 0.5);
    expect(reads(cluster)).toEqual([{ age: 32 }, { age: 32 }, { age: 32 }]);
    expect(new Set(storedBytes(cluster)).size).toBe(1);
    expect(cluster.node('A').conflicts).toHaveLength(1);
  });
});

describe('seed failure 1: a writer whose clock is 2 s behind', () => {
  // real t   A (+0)                 B (-2000)                         C (+0)
  // 1000     put v1 @1000 ─────────▶ receives v1
  // 1010                            put v2 (its wall clock says -990)
  //          ◀──────────────────── v2 ─────────────────────────────▶
  // expect   v2                      v2                                v2
  it.each([
    ['the drift bound is the default 60 s', 60_000],
    ['the 2 s lead counts as drift (maxDriftMs 1 s)', 1000],
  ])('should let the causally later write win everywhere when %s', (_label, maxDriftMs) => {
    const cluster = new SimCluster({ nodeIds: nodes, skewsMs: [0, -2000, 0], maxDriftMs, startMs: T0 + 1000 });
    const v1 = cluster.put('A', KEY, 'v1');
    cluster.sync('A', 'B', KEY);
    expect(cluster.read('B', KEY)).toBe('v1');

    cluster.tick(10);
    expect(cluster.node('B').clock.physicalNow()).toBeLessThan(wallMsOf(v1.hlc));
    const v2 = cluster.put('B', KEY, 'v2');
    expect(compareHlc(v2.hlc, v1.hlc)).toBe(1);

    for (const order of [() => 0, () => 0.99]) cluster.deliverEverything(order);
    expect(reads(cluster)).toEqual(['v2', 'v2', 'v2']);
    expect(new Set(storedBytes(cluster)).size).toBe(1);
    expect(nodes.flatMap((n) => cluster.node(n).conflicts)).toEqual([]);
  });
});

describe('seed failure 2: equal wall-clock timestamps', () => {
  // real t   A                  B                  C
  // 1000     put fromA @1000    put fromB @1000    (same millisecond, no contact)
  //          A's, then B's record reach C; B's record reaches A, A's reaches B
  // expect   one value on all three; the seed kept A=fromA, B=fromB, C=fromB
  it.each([
    ['A first', ['A', 'B']],
    ['B first', ['B', 'A']],
  ] as const)('should converge to one value whichever record reaches C first (%s)', (_label, order) => {
    const cluster = new SimCluster({ nodeIds: nodes });
    const fromA = cluster.put('A', KEY, 'fromA');
    const fromB = cluster.put('B', KEY, 'fromB');
    expect(wallMsOf(fromA.hlc)).toBe(wallMsOf(fromB.hlc));

    for (const from of order) cluster.sync(from, 'C', KEY);
    cluster.sync('B', 'A', KEY);
    cluster.sync('A', 'B', KEY);
    const winner = compareHlc(fromA.hlc, fromB.hlc) > 0 ? 'fromA' : 'fromB';
    expect(reads(cluster)).toEqual([winner, winner, winner]);
    expect(new Set(storedBytes(cluster)).size).toBe(1);
  });
});

describe('seed failure 5: the local copy and the replicated copy of one write', () => {
  // A: put v @t  ──▶ B, C      the record A stored is the record B and C store
  it('should carry the same timestamp and bytes on the origin and on every peer', () => {
    const cluster = new SimCluster({ nodeIds: nodes, skewsMs: [0, 700, -300] });
    const returned = cluster.put('A', KEY, 'v');
    cluster.tick(5);
    cluster.syncAll('A', 'B');
    cluster.tick(250);
    cluster.syncAll('A', 'C');
    const hlcs = nodes.map((n) => cluster.node(n).records.get(KEY)?.hlc);
    expect(hlcs).toEqual([returned.hlc, returned.hlc, returned.hlc]);
    expect(storedBytes(cluster)).toEqual(nodes.map(() => encodeRecord(returned)));
  });
});

describe('deletes', () => {
  // A: put v1 ──▶ B
  // B:            delete ──▶ C      (C sees the tombstone first)
  // A's v1 reaches C late           C must stay deleted
  it('should replicate and stay deleted when the older put arrives late', () => {
    const cluster = new SimCluster({ nodeIds: nodes, skewsMs: [0, -1500, 0] });
    cluster.put('A', KEY, 'v1');
    cluster.sync('A', 'B', KEY);
    cluster.tick(5);
    cluster.delete('B', KEY);
    cluster.sync('B', 'C', KEY);
    cluster.sync('B', 'A', KEY);
    cluster.deliver('C', cluster.sent[0] as (typeof cluster.sent)[number]);
    expect(reads(cluster)).toEqual([undefined, undefined, undefined]);
    expect(cluster.node('C').records.get(KEY)?.deleted).toBe(true);
  });
});

describe('TTL', () => {
  // real t   A (+0)                  B (+400)                      C (+0)
  // 0        put v1 (no TTL)
  // 10                               put v2 ttl 100 over v1 ──────▶ holds v2
  // 600      (v2 expired everywhere; expiry is absolute and replicates)
  //          A's v1 reaches C late ─────────────────────────────▶ must stay absent
  it('should expire everywhere and not let an older write resurrect the key', () => {
    const cluster = new SimCluster({ nodeIds: nodes, skewsMs: [0, 400, 0] });
    const v1 = cluster.put('A', KEY, 'v1');
    cluster.sync('A', 'B', KEY);
    cluster.tick(10);
    const v2 = cluster.put('B', KEY, 'v2', 100);
    expect(v2.expiresAt).toBe(T0 + 10 + 400 + 100);
    cluster.sync('B', 'C', KEY);
    cluster.sync('B', 'A', KEY);
    expect(reads(cluster)).toEqual(['v2', 'v2', 'v2']);

    cluster.tick(590);
    expect(reads(cluster)).toEqual([undefined, undefined, undefined]);
    cluster.deliver('C', { from: 'A', record: v1, past: new Set([v1.hlc]) });
    cluster.deliverEverything(() => 0.3);
    expect(reads(cluster)).toEqual([undefined, undefined, undefined]);
    expect(nodes.map((n) => cluster.node(n).records.get(KEY)?.expiresAt)).toEqual([v2.expiresAt, v2.expiresAt, v2.expiresAt]);
  });
});

describe('a peer far ahead of the drift bound', () => {
  // real t   A (+120 s)                   B (+0, maxDriftMs 60 s)
  // 0        put k1 @+120s ────────────▶ drift reported, B's clock stays put
  // 5                                     put k1 over it -> wins (successor of A's HLC)
  //                                       put k2 (unrelated) -> on B's own clock
  it('should count the drift, keep its clock, and still let its causally later write win', () => {
    const cluster = new SimCluster({ nodeIds: ['A', 'B'], skewsMs: [120_000, 0] });
    const ahead = cluster.put('A', 'k1', 'from the future');
    const b = cluster.node('B');
    const before = b.clock.last;
    cluster.sync('A', 'B', 'k1');
    expect(cluster.stats.drifted).toBe(1);
    expect(b.clock.last).toEqual(before);

    cluster.tick(5);
    const over = cluster.put('B', 'k1', 'later');
    expect(compareHlc(over.hlc, ahead.hlc)).toBe(1);
    const unrelated = cluster.put('B', 'k2', 'own clock');
    expect(wallMsOf(unrelated.hlc)).toBe(T0 + 5);

    cluster.deliverEverything(() => 0.7);
    expect([cluster.read('A', 'k1'), cluster.read('B', 'k1')]).toEqual(['later', 'later']);
  });
});
