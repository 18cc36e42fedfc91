/**
 * Small routing helpers shared by the route modules: the 405/OPTIONS answer of a
 * resource, the catch-all 404, and the checks every request passes first.
 */
import type { RequestHandler } from 'express';
import { HttpError, sendError } from './errors.js';

/**
 * Last handler of a resource: `OPTIONS` gets `204` with `Allow`, any other method not
 * handled above gets `405 method_not_allowed` with `Allow`.
 */
export function onlyMethods(...allowed: string[]): RequestHandler {
  const allow = allowed.join(', ');
  return (req, res) => {
    if (req.method === 'OPTIONS') {
      res.status(204).set('Allow', `${allow}, OPTIONS`).end();
      return;
    }
    sendError(
      res,
      new HttpError(405, 'method_not_allowed', `${req.method} is not supported on ${req.path}; allowed: ${allow}.`, {
        headers: { Allow: `${allow}, OPTIONS` },
      }),
    );
  };
}

/** The answer for any path no route claimed. */
export const unknownRoute: RequestHandler = (req, res) => {
  const hint = req.path.startsWith('/keys/') ? ' A key containing "/" must be percent-encoded in the path (%2F), e.g. with encodeURIComponent.' : '';
  sendError(res, new HttpError(404, 'not_found', `No such endpoint: ${req.method} ${req.path}.${hint}`));
};

/**
 * Checks every request passes before routing:
 * - Node's parser takes a request line without a version as HTTP/0.9 yet still reads its
 *   headers and body; such a request is malformed, whatever the parser made of it.
 * - A URL is ASCII (RFC 3986). Node hands raw bytes above 0x7F through as Latin-1
 *   characters, which would silently turn a raw UTF-8 key into a different key.
 */
export const wellFormedRequest: RequestHandler = (req, res, next) => {
  if (req.httpVersionMajor < 1) {
    sendError(res, new HttpError(400, 'bad_request', 'The request line has no HTTP version; send HTTP/1.1.'));
    return;
  }
  if (/[^\x21-\x7e]/.test(req.url)) {
    sendError(res, new HttpError(400, 'bad_request', 'The request URL must be ASCII: percent-encode keys and parameters as UTF-8 (encodeURIComponent).'));
    return;
  }
  next();
};

/**
 * Responses describe the live state of a replica: no intermediary may cache them. And no
 * browser may guess a type other than the one sent (a stored value is data, never a page).
 */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  next();
};
