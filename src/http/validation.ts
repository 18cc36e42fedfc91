/**
 * Request validation with zod: the PUT body, the query strings, and the key in the path.
 *
 * The schemas are built per app because their bounds are the node's limits. Each failure
 * becomes one {@link HttpError} naming the first offending field, except an overlong key:
 * that is the `InputTooLargeError` the node would throw, mapped to 414 by `toHttpError`.
 */
import { z } from 'zod';
import { checkKey } from '../node/input.js';
import type { LimitOptions } from '../node/options.js';
import type { JsonValue } from '../record/record.js';
import { HttpError } from './errors.js';

/** The largest `limit` a list or conflicts page may ask for. */
export const MAX_PAGE_SIZE = 1000;

/** The body of `PUT /keys/:key`. */
export interface PutBody {
  value: JsonValue;
  ttlMs?: number;
}

/** The query of `GET /keys`. */
export interface ListQuery {
  prefix?: string;
  limit: number;
  cursor?: string;
}

/** The query of `GET /conflicts`. */
export interface ConflictsQuery {
  limit: number;
}

/** A query parameter given twice arrives as an array; say so rather than "expected string". */
const single = (what: string) =>
  z.string({ error: (issue) => (Array.isArray(issue.input) ? 'must be given at most once' : `must be ${what}`) });

const pageLimit = (defaultValue: number) =>
  single('a whole number')
    .regex(/^[0-9]{1,10}$/, `must be a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be from 1 to ${MAX_PAGE_SIZE}`).max(MAX_PAGE_SIZE, `must be from 1 to ${MAX_PAGE_SIZE}`))
    .default(defaultValue);

/**
 * Validates requests against one node's limits. Bodies and queries are strict: an unknown
 * field is an error rather than silently ignored, so a typo (`ttl` for `ttlMs`) is never
 * a write without the intended expiry.
 */
export class RequestValidator {
  private readonly limits: LimitOptions;
  private readonly putBody;
  private readonly listQuery;
  private readonly conflictsQuery;

  constructor(limits: LimitOptions) {
    this.limits = limits;
    this.putBody = z.strictObject(
      {
        // Any JSON value, null included; only a missing `value` is wrong. Nesting and size
        // are checked by the node, without recursion over the value here.
        value: z.custom<JsonValue>((v) => v !== undefined, { error: 'is required: the JSON value to store (null is allowed)' }),
        ttlMs: z
          .number({ error: 'must be a number of milliseconds' })
          .int('must be a whole number of milliseconds')
          .positive('must be a positive number of milliseconds')
          .max(limits.maxTtlMs, `must be at most ${limits.maxTtlMs} ms (limits.maxTtlMs)`)
          .optional(),
      },
      { error: (issue) => (issue.code === 'invalid_type' ? 'the body must be a JSON object like {"value": …, "ttlMs"?: …}' : undefined) },
    );
    this.listQuery = z.strictObject({
      prefix: single('a string')
        .refine((p) => Buffer.byteLength(p, 'utf8') <= limits.maxKeyBytes, `must be at most ${limits.maxKeyBytes} bytes (limits.maxKeyBytes)`)
        .optional(),
      limit: pageLimit(100),
      // The cursor's format belongs to the node, which rejects what it did not make.
      cursor: single('the cursor returned by the previous page').optional(),
    });
    this.conflictsQuery = z.strictObject({ limit: pageLimit(50) });
  }

  body(input: unknown): PutBody {
    return parse(this.putBody, input, 'invalid_body') as PutBody;
  }

  listQueryOf(input: unknown): ListQuery {
    return parse(this.listQuery, input, 'invalid_query') as ListQuery;
  }

  conflictsQueryOf(input: unknown): ConflictsQuery {
    return parse(this.conflictsQuery, input, 'invalid_query');
  }

  /**
   * Checks what only the HTTP layer knows about a key: it arrived as one path segment, so
   * `.` and `..` are dot segments that clients and proxies rewrite (RFC 3986 §5.2.4) and
   * could never be addressed reliably. Its length is checked here too, as the node would,
   * so that a PUT with an overlong key is refused before its body is read. The node checks
   * the rest (empty, control characters, surrogates) and the value's size.
   */
  key(key: string): string {
    if (key === '.' || key === '..') {
      throw new HttpError(400, 'invalid_key', `The key ${JSON.stringify(key)} is a URL dot segment, which clients and proxies rewrite; choose another key.`, {
        field: 'key',
      });
    }
    // The node's own key rules, applied before the body is read: a bad key costs no upload.
    checkKey(key, this.limits);
    return key;
  }
}

function parse<T>(schema: z.ZodType<T>, input: unknown, code: 'invalid_body' | 'invalid_query'): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  if (issue.code === 'unrecognized_keys') {
    const field = String(issue.keys[0]);
    const what = code === 'invalid_body' ? 'body field' : 'query parameter';
    return fail(code, field, `Unknown ${what} ${JSON.stringify(field)}; allowed: ${allowedKeys(schema).join(', ')}.`);
  }
  const field = issue.path.length > 0 ? issue.path.map(String).join('.') : code === 'invalid_body' ? 'body' : 'query';
  return fail(code, field, issue.path.length > 0 ? `${field} ${issue.message}` : issue.message);
}

function fail(code: 'invalid_body' | 'invalid_query', field: string, message: string): never {
  throw new HttpError(400, code, message, { field });
}

function allowedKeys(schema: z.ZodType): string[] {
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}
