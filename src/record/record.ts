/**
 * The replicated record: one key's value (or tombstone), its HLC timestamp, its version
 * vector and its optional absolute expiry, plus the byte encoding stored in Redis.
 */
import { CorruptRecordError } from '../errors/index.js';
import { hasTimestampShape, isNodeId, nodeIdOf, wallMsOf } from '../clock/timestamp.js';
import type { VersionVector } from '../clock/version-vector.js';

/** Any value that survives `JSON.stringify` / `JSON.parse` unchanged. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface CacheRecord {
  /** The user's key (any UTF-8 string). */
  readonly key: string;
  /** Canonical HLC timestamp of the write that produced the value; LWW compares these. */
  readonly hlc: string;
  /** Id of the node that made that write (the last part of `hlc`). */
  readonly origin: string;
  /** Version vector: every write to this key that this replica has merged. */
  readonly version: VersionVector;
  /**
   * The version vector of the write itself, as its origin made it (never merged). Its
   * `origin` entry is the write's "dot"; a later write that did not see this dot was
   * concurrent with it, which is how conflicts are recognised after versions are merged.
   */
  readonly written: VersionVector;
  /** True for a tombstone left by a delete. */
  readonly deleted: boolean;
  /** The value as JSON text (absent for tombstones); kept as text so merges never re-serialize it. */
  readonly valueJson?: string;
  /** Absolute expiry, ms since the epoch on the origin's clock; absent when the write had no TTL. */
  readonly expiresAt?: number;
}

/** A record as users see it: the parsed value and the timestamps. */
export interface RecordView {
  key: string;
  value: JsonValue;
  hlc: string;
  origin: string;
  version: VersionVector;
  expiresAt?: number;
}

/** True when the record is neither a tombstone nor expired at `nowMs`. */
export function isLive(record: CacheRecord, nowMs: number): boolean {
  return !record.deleted && (record.expiresAt === undefined || record.expiresAt > nowMs);
}

/** The user-facing view of a live record. */
export function toView(record: CacheRecord): RecordView {
  const view: RecordView = {
    key: record.key,
    value: record.valueJson === undefined ? null : (JSON.parse(record.valueJson) as JsonValue),
    hlc: record.hlc,
    origin: record.origin,
    version: record.version,
  };
  if (record.expiresAt !== undefined) view.expiresAt = record.expiresAt;
  return view;
}

/** Wall time (ms) at which the record's write happened on its origin's clock. */
export function writtenAtMs(record: CacheRecord): number {
  return wallMsOf(record.hlc);
}

/*
 * Encoding: `1|<hlc>|<version>|<written>|<expiresAt or empty>|<d or v>|<value JSON>`.
 * Vectors are `A:3,B:1` with node ids sorted; `written` is empty when equal to `version`. Node ids and HLC strings never contain
 * `|`, `:` or `,`, and the value comes last, so decoding needs no escaping and never parses
 * the value. Encoding is canonical: equal records give identical bytes on every replica.
 */
const FORMAT = '1';

export function encodeRecord(record: CacheRecord): string {
  const version = encodeVector(record.version);
  const written = encodeVector(record.written);
  const exp = record.expiresAt === undefined ? '' : String(record.expiresAt);
  const body = record.deleted ? 'd|' : `v|${record.valueJson ?? 'null'}`;
  return `${FORMAT}|${record.hlc}|${version}|${written === version ? '' : written}|${exp}|${body}`;
}

export function decodeRecord(key: string, redisKey: string, raw: string): CacheRecord {
  try {
    const cut: number[] = [];
    let at = -1;
    for (let i = 0; i < 6; i++) {
      at = raw.indexOf('|', at + 1);
      if (at < 0) throw new Error('bad layout');
      cut.push(at);
    }
    const [p1, p2, p3, p4, p5, p6] = cut as [number, number, number, number, number, number];
    if (raw.slice(0, p1) !== FORMAT) throw new Error('unknown format');
    const hlc = raw.slice(p1 + 1, p2);
    if (!hasTimestampShape(hlc)) throw new Error('bad hlc');
    const version = decodeVector(raw.slice(p2 + 1, p3));
    const writtenText = raw.slice(p3 + 1, p4);
    const expText = raw.slice(p4 + 1, p5);
    const flag = raw.slice(p5 + 1, p6);
    if (flag !== 'd' && flag !== 'v') throw new Error('bad flag');
    const record: { -readonly [K in keyof CacheRecord]: CacheRecord[K] } = {
      key,
      hlc,
      origin: nodeIdOf(hlc),
      version,
      written: writtenText === '' ? version : decodeVector(writtenText),
      deleted: flag === 'd',
    };
    if (flag === 'v') record.valueJson = raw.slice(p6 + 1);
    if (expText !== '') {
      record.expiresAt = Number(expText);
      if (!Number.isSafeInteger(record.expiresAt)) throw new Error('bad expiry');
    }
    return record;
  } catch (cause) {
    throw new CorruptRecordError(redisKey, { cause });
  }
}

function encodeVector(vv: VersionVector): string {
  return Object.keys(vv)
    .sort()
    .map((node) => `${node}:${vv[node]}`)
    .join(',');
}

function decodeVector(text: string): VersionVector {
  const out: Record<string, number> = {};
  if (text === '') return out;
  for (const part of text.split(',')) {
    const colon = part.indexOf(':');
    const n = Number(part.slice(colon + 1));
    if (colon <= 0 || !Number.isSafeInteger(n) || n <= 0 || !isNodeId(part.slice(0, colon))) throw new Error('bad vector');
    out[part.slice(0, colon)] = n;
  }
  return out;
}

/** Byte equality of the stored forms: what "replicas converged" means. */
export function sameRecord(a: CacheRecord, b: CacheRecord): boolean {
  return encodeRecord(a) === encodeRecord(b);
}
