/**
 * HLC timestamps and their canonical string form.
 *
 * A timestamp is `(wallMs, logical, nodeId)`, ordered lexicographically by those three
 * fields. The canonical string is `2026-11-23T21:55:09.123Z/000042/A`: a fixed-width ISO
 * wall time, a fixed-width logical counter, then the node id. Because the first two parts
 * have fixed widths, **comparing two canonical strings with `<` gives the same answer as
 * comparing the timestamps**, so Last-Write-Wins can be decided (and the REST API's `hlc`
 * field sorted) without parsing.
 */
import { InvalidInputError } from '../errors/index.js';

export interface Timestamp {
  /** Milliseconds since the Unix epoch (the clock's physical part, possibly ahead of real time). */
  readonly wallMs: number;
  /** Counter that orders events within one `wallMs`; 0..{@link MAX_LOGICAL}. */
  readonly logical: number;
  /** Id of the node that issued the timestamp; breaks ties so timestamps are a total order. */
  readonly nodeId: string;
}

/** Largest logical counter; one more rolls the timestamp into the next millisecond. */
export const MAX_LOGICAL = 999_999;
/** Latest wall time whose ISO form keeps four year digits (9999-12-31T23:59:59.999Z). */
export const MAX_WALL_MS = 253_402_300_799_999;
/**
 * Latest wall time a stored record's HLC may carry (9998-12-31T23:59:59.999Z), one year
 * short of {@link MAX_WALL_MS}. The rule depends on the record alone, never on a node's
 * clock, so every node judges a record the same way: a record stamped later (e.g. at the
 * format's ceiling `9999-12-31T23:59:59.999Z/999999/B`) is unusable everywhere and is
 * moved aside, and every usable record leaves a year of successor timestamps for the
 * writes that overwrite it.
 */
export const MAX_RECORD_WALL_MS = MAX_WALL_MS - 365 * 86_400_000;
const LOGICAL_WIDTH = 6;
const SEPARATOR = '/';

/**
 * Node ids appear inside timestamps, Redis keys and BullMQ queue names, so they are kept
 * to characters that are safe in all three (and that sort the same in every locale).
 */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * True for a usable node id: matches {@link NODE_ID_PATTERN} and is not the name of a
 * built-in object member (`constructor`, `__proto__`, …), which would corrupt the plain
 * objects that version vectors are.
 */
export function isNodeId(id: unknown): id is string {
  return typeof id === 'string' && NODE_ID_PATTERN.test(id) && !(id in Object.prototype) && id !== '__proto__';
}

/** Formats a timestamp in its canonical, order-preserving string form. */
export function formatTimestamp(ts: Timestamp): string {
  if (!(ts.wallMs >= 0 && ts.wallMs <= MAX_WALL_MS)) throw new RangeError(`HLC wall time ${ts.wallMs} outside 1970..9999; check the clock source`);
  return `${new Date(ts.wallMs).toISOString()}${SEPARATOR}${String(ts.logical).padStart(LOGICAL_WIDTH, '0')}${SEPARATOR}${ts.nodeId}`;
}

/** Parses a canonical timestamp string; throws {@link InvalidInputError} if it is not one. */
export function parseTimestamp(text: string): Timestamp {
  const first = text.indexOf(SEPARATOR);
  const second = text.indexOf(SEPARATOR, first + 1);
  if (first !== 24 || second !== 24 + 1 + LOGICAL_WIDTH) throw new InvalidInputError('hlc', `not an HLC timestamp: ${JSON.stringify(text)}`);
  const wallMs = Date.parse(text.slice(0, first));
  const logical = Number(text.slice(first + 1, second));
  const nodeId = text.slice(second + 1);
  const ts = { wallMs, logical, nodeId };
  // Date.parse and Number are lenient; only the exact canonical spelling keeps string order = LWW order.
  if (!Number.isFinite(wallMs) || !Number.isInteger(logical) || !isNodeId(nodeId) || formatTimestamp(ts) !== text) {
    throw new InvalidInputError('hlc', `not an HLC timestamp: ${JSON.stringify(text)}`);
  }
  return ts;
}

const CANONICAL_SHAPE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\/\d{6}\/[A-Za-z0-9_-]{1,64}$/;

/**
 * Cheap structural check of a canonical string (fixed widths, digits, a valid node id):
 * enough to guarantee that string order is timestamp order. {@link parseTimestamp} is the
 * strict check.
 */
export function hasTimestampShape(text: string): boolean {
  return CANONICAL_SHAPE.test(text) && isNodeId(nodeIdOf(text));
}

/** The wall-clock part of a canonical timestamp string, without parsing the rest. */
export function wallMsOf(hlc: string): number {
  return Date.parse(hlc.slice(0, 24));
}

/** The node id part of a canonical timestamp string. */
export function nodeIdOf(hlc: string): string {
  return hlc.slice(24 + 1 + LOGICAL_WIDTH + 1);
}

/** Total order on timestamps: wall time, then logical counter, then node id. */
export function compareTimestamps(a: Timestamp, b: Timestamp): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
}

/** Compares canonical strings; equal to {@link compareTimestamps} on their parsed forms. */
export function compareHlc(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
