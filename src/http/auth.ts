/**
 * Optional shared-token authentication.
 *
 * Both sides are hashed with SHA-256 before `timingSafeEqual`: the digests always have
 * the same length, so the comparison takes the same time whatever the caller sent, and
 * neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpError, sendError } from './errors.js';

/** Which credentials a route accepts. */
export type AuthScheme = 'bearer' | 'bearer-or-basic';

const BEARER = /^\s*Bearer\s+(\S+)\s*$/i;
const BASIC = /^\s*Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i;

/** Checks a presented secret against the configured token in constant time. */
export class TokenVerifier {
  private readonly expected: Buffer;

  constructor(token: string) {
    this.expected = digest(token);
  }

  matches(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.expected);
  }

  /** True when the `Authorization` header carries the token in one of the accepted schemes. */
  authorizes(header: string | undefined, scheme: AuthScheme): boolean {
    if (header === undefined) return false;
    const bearer = BEARER.exec(header);
    if (bearer) return this.matches(bearer[1] as string);
    if (scheme === 'bearer-or-basic') {
      const basic = BASIC.exec(header);
      if (!basic) return false;
      const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      // RFC 7617: user-id and password are separated by the first colon; any user name will do.
      return colon >= 0 && this.matches(decoded.slice(colon + 1));
    }
    return false;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Middleware that lets a request through only with the token. A browser meets the
 * `bearer-or-basic` variant (the dashboard) and gets a `Basic` challenge, which makes it
 * show a login dialog; API clients get a `Bearer` challenge.
 */
export function requireToken(verifier: TokenVerifier, scheme: AuthScheme): RequestHandler {
  const challenge =
    scheme === 'bearer' ? 'Bearer realm="eventual-cache"' : 'Basic realm="eventual-cache dashboard", charset="UTF-8"';
  const how =
    scheme === 'bearer'
      ? 'send "Authorization: Bearer <token>" with the authToken configured on the node (EVENTUAL_CACHE_TOKEN)'
      : 'log in with any user name and the node\'s authToken as password, or send "Authorization: Bearer <token>"';
  return (req, res, next) => {
    if (verifier.authorizes(req.headers.authorization, scheme)) {
      next();
      return;
    }
    const message = req.headers.authorization === undefined ? `Authentication required: ${how}.` : `The credentials were not accepted: ${how}.`;
    sendError(res, new HttpError(401, 'unauthorized', message, { headers: { 'WWW-Authenticate': challenge } }));
  };
}
