/**
 * fast-check generators shared by the unit tests, plus small independent oracles (pointwise
 * max, deep freeze) so properties do not check src against itself.
 */
import fc from 'fast-check';
import { formatTimestamp, MAX_LOGICAL, MAX_WALL_MS, type Timestamp } from '../../../src/clock/timestamp.js';
import type { VersionVector } from '../../../src/clock/version-vector.js';
import type { CacheRecord, JsonValue } from '../../../src/record/record.js';
import { T0 } from './fake-clock.js';

/**
 * Node ids allowed by `NODE_ID_PATTERN`. Names of `Object.prototype` members (`constructor`,
 * `__proto__`, ...) are left out here on purpose: they break version vectors, which
 * version-vector.test.ts shows on its own instead of failing every property here.
 */
export const nodeIdArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom('A', 'B', 'C', 'a', 'A-', 'A_1', 'node-1', 'node-10', 'node-2', '9', '10', 'z'),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  )
  .filter((id) => !(id in Object.prototype));

/** Wall times over the whole representable range, biased towards a busy minute so ties happen. */
export const wallMsArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: MAX_WALL_MS }),
  fc.integer({ min: T0, max: T0 + 5 }),
  fc.constantFrom(0, MAX_WALL_MS),
);

export const logicalArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: MAX_LOGICAL }),
  fc.integer({ min: 0, max: 3 }),
  fc.constantFrom(9, 10, 99_999, 100_000, MAX_LOGICAL),
);

export const timestampArb: fc.Arbitrary<Timestamp> = fc.record({ wallMs: wallMsArb, logical: logicalArb, nodeId: nodeIdArb });

/** Pairs that often share a wall time, or wall time and counter, so every comparison branch runs. */
export const timestampPairArb: fc.Arbitrary<[Timestamp, Timestamp]> = fc.oneof(
  fc.tuple(timestampArb, timestampArb),
  fc.tuple(timestampArb, timestampArb).map(([a, b]): [Timestamp, Timestamp] => [a, { ...b, wallMs: a.wallMs }]),
  fc.tuple(timestampArb, nodeIdArb).map(([a, id]): [Timestamp, Timestamp] => [a, { ...a, nodeId: id }]),
  timestampArb.map((a): [Timestamp, Timestamp] => [a, { ...a }]),
);

/** Vectors over a few node ids with small counters, so equal, dominating and concurrent pairs are all common. */
export const smallVectorArb: fc.Arbitrary<Record<string, number>> = fc
  .array(fc.tuple(fc.constantFrom('A', 'B', 'C', 'D', '9', '10'), fc.integer({ min: 0, max: 3 })), { maxLength: 6 })
  .map((entries) => Object.fromEntries(entries));

/** Canonical vectors (positive counters only), as stored in records. */
export const canonicalVectorArb: fc.Arbitrary<Record<string, number>> = fc
  .array(fc.tuple(nodeIdArb, fc.integer({ min: 1, max: 2 ** 31 })), { maxLength: 5 })
  .map((entries) => Object.fromEntries(entries));

/** Pointwise maximum written independently of `VersionVector.merge`, with zero entries dropped. */
export function pointwiseMax(...vectors: VersionVector[]): Record<string, number> {
  const out = new Map<string, number>();
  for (const vv of vectors) {
    for (const [node, n] of Object.entries(vv)) out.set(node, Math.max(out.get(node) ?? 0, n));
  }
  return Object.fromEntries([...out].filter(([, n]) => n > 0));
}

/** Arbitrary JSON values, including unicode strings and the separator characters of the encoding. */
export const jsonValueArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>,
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom<JsonValue>('|', '1|2|3', 'a:1,b:2', '', null, { '|': [':', ','] }, '\u{1F600}', 'd|'),
);

/**
 * Valid stored records: `written` holds the write's dot (origin counter >= 1) and `version`
 * descends `written`, as `localWrite` and `merge` guarantee.
 */
export const recordArb: fc.Arbitrary<CacheRecord> = fc
  .record({
    key: fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom('user:123', 'ключ', '鍵|:,', '\u{1F511}')),
    ts: timestampArb,
    deleted: fc.boolean(),
    value: jsonValueArb,
    expiresAt: fc.option(fc.oneof(fc.integer({ min: 0, max: MAX_WALL_MS }), fc.constant(T0 + 1000)), { nil: undefined }),
    dot: fc.integer({ min: 1, max: 2 ** 31 }),
    writtenRest: canonicalVectorArb,
    merged: canonicalVectorArb,
  })
  .map(({ key, ts, deleted, value, expiresAt, dot, writtenRest, merged }) => {
    const written = pointwiseMax(writtenRest, { [ts.nodeId]: dot });
    const base = { key, hlc: formatTimestamp(ts), origin: ts.nodeId, version: pointwiseMax(written, merged), written, deleted };
    const record: CacheRecord = deleted ? base : { ...base, valueJson: JSON.stringify(value) };
    return expiresAt === undefined ? record : { ...record, expiresAt };
  });

/** Freezes a record and its vectors, so a merge that mutated its inputs would throw. */
export function deepFreeze<T extends CacheRecord>(record: T): T {
  Object.freeze(record.version);
  Object.freeze(record.written);
  return Object.freeze(record);
}
