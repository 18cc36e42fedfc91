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
import type { BatchOp } from '../node/batch.js';
import type { JsonValue } from '../record/record.js';
import { HttpError } from './errors.js';
import { requestSchemas, type RequestSchemas } from './schemas.js';

export { MAX_PAGE_SIZE } from './schemas.js';

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

/** The body of `POST /batch`, checked for shape; the node checks keys, values and TTLs. */
export interface BatchBody {
  ops: BatchOp[];
}

/**
 * Validates requests against one node's limits. Bodies and queries are strict: an unknown
 * field is an error rather than silently ignored, so a typo (`ttl` for `ttlMs`) is never
 * a write without the intended expiry.
 */
export class RequestValidator {
  private readonly limits: LimitOptions;
  /** The zod schemas this validator applies; `GET /openapi.json` is rendered from them. */
  readonly schemas: RequestSchemas;

  constructor(limits: LimitOptions) {
    this.limits = limits;
    this.schemas = requestSchemas(limits);
  }

  body(input: unknown): PutBody {
    return parse(this.schemas.putBody, input, 'invalid_body') as PutBody;
  }

  listQueryOf(input: unknown): ListQuery {
    return parse(this.schemas.listQuery, input, 'invalid_query') as ListQuery;
  }

  conflictsQueryOf(input: unknown): ConflictsQuery {
    return parse(this.schemas.conflictsQuery, input, 'invalid_query');
  }

  /** The body of the cluster view page's write form (`POST /ui/write`). */
  uiWrite(input: unknown): { node: string; key: string; value: JsonValue } {
    return parse(this.schemas.uiWriteBody, input, 'invalid_body') as { node: string; key: string; value: JsonValue };
  }

  /** `?prefix=` of the cluster view's data endpoints. */
  prefixQueryOf(input: unknown): { prefix?: string } {
    return parse(this.schemas.prefixQuery, input, 'invalid_query') as { prefix?: string };
  }

  /** The shape of a `POST /batch` body; what each op carries is the node's check (`BatchInputError`). */
  batch(input: unknown): BatchBody {
    return parse(this.schemas.batchBody, input, 'invalid_body') as BatchBody;
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
      throw new HttpError(400, 'invalid_key', `The key ${JSON.stringify(key)} is a URL dot segment, which clients and proxies rewrite; send it in the body of POST /batch instead.`, {
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
  if (issue.code === 'unrecognized_keys' && issue.path.length > 0) {
    // Inside a batch op: name the op, and the fields an op of its kind takes.
    const where = issue.path.map(String).join('.');
    const field = `${where}.${String(issue.keys[0])}`;
    return fail(code, field, `Unknown field ${JSON.stringify(String(issue.keys[0]))} in ${where}; an op takes op, key, and for "put" value and ttlMs.`);
  }
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
