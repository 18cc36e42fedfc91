/**
 * Validation of what callers hand to a node. Each check throws a typed error naming the
 * argument, so the HTTP layer can answer 400/413/414 by `instanceof`, and nothing invalid
 * ever reaches Redis.
 */
import { InputTooLargeError, InvalidInputError } from '../errors/index.js';
import type { LimitOptions } from './options.js';

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const MAX_SCAN_CURSOR = 2n ** 64n - 1n;
/** Largest page `list` returns. */
export const MAX_LIST_LIMIT = 10_000;

/** A key is any non-empty, well-formed UTF-8 string without control characters, within `maxKeyBytes`. */
export function checkKey(key: unknown, limits: LimitOptions): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidInputError('key', 'key must be a non-empty string');
  if (!key.isWellFormed()) throw new InvalidInputError('key', 'key must be valid UTF-8 (it contains a lone surrogate)');
  if (CONTROL_CHARS.test(key)) throw new InvalidInputError('key', 'key must not contain control characters (U+0000-U+001F, U+007F)');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > limits.maxKeyBytes) {
    throw new InputTooLargeError('key', `key is ${bytes} bytes; the limit is ${limits.maxKeyBytes} bytes (limits.maxKeyBytes)`, limits.maxKeyBytes, bytes);
  }
}

/** The value's JSON text, which is what is stored and replicated. */
export function checkValue(value: unknown, limits: LimitOptions): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new InvalidInputError('value', `value is not JSON-serializable: ${(cause as Error).message}`);
  }
  if (json === undefined) throw new InvalidInputError('value', 'value must be a JSON value (null, boolean, number, string, array or object)');
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limits.maxValueBytes) {
    throw new InputTooLargeError('value', `value is ${bytes} bytes as JSON; the limit is ${limits.maxValueBytes} bytes (limits.maxValueBytes)`, limits.maxValueBytes, bytes);
  }
  return json;
}

/** A TTL is a positive integer of milliseconds up to `maxTtlMs`, or absent. */
export function checkTtl(ttlMs: unknown, limits: LimitOptions): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > limits.maxTtlMs) {
    throw new InvalidInputError('ttlMs', `ttlMs must be a positive integer of milliseconds up to ${limits.maxTtlMs}`);
  }
  return ttlMs;
}

export function checkListLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit <= 0 || limit > MAX_LIST_LIMIT) {
    throw new InvalidInputError('limit', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return limit;
}

/**
 * Cursor = `<SCAN cursor>[.<base64url of the last key returned from that SCAN page>]`.
 * A page that stops inside a SCAN page resumes by key, not by position: the same SCAN
 * cursor can return its keys in another order (or with others mixed in) once the
 * database's hash table was resized meanwhile, so an offset would skip or repeat keys.
 */
export function parseListCursor(cursor: string | undefined): [string, string | undefined] {
  if (cursor === undefined || cursor === '') return ['0', undefined];
  const match = /^(\d{1,20})(?:\.([A-Za-z0-9_-]+))?$/.exec(cursor);
  if (!match || BigInt(match[1] as string) > MAX_SCAN_CURSOR) throw new InvalidInputError('cursor', 'cursor must be a value returned by a previous page');
  return [match[1] as string, match[2] === undefined ? undefined : Buffer.from(match[2], 'base64url').toString('utf8')];
}

/** The cursor that resumes a SCAN page after `lastKey`. */
export function formatListCursor(scanCursor: string, lastKey: string): string {
  return `${scanCursor}.${Buffer.from(lastKey, 'utf8').toString('base64url')}`;
}
