/**
 * DNS-rebinding defence for a node without a token: a web page the developer opens can
 * point its own name at 127.0.0.1 and then talk to the node as a same-origin page, but its
 * requests still carry that name in `Host`. Only loopback names, and the names configured
 * in `allowedHosts`, are answered; everything else gets `421 host_not_allowed`.
 */
import { isIP } from 'node:net';
import type { RequestHandler } from 'express';
import { HttpError, sendError } from './errors.js';

/** True for `localhost` (and `*.localhost`, RFC 6761), `127.0.0.0/8` and `::1`. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || h.startsWith('::ffff:127.');
  return false;
}

/** True for an address the HTTP server can bind that is reachable only from this machine. */
export function isLoopbackAddress(address: string): boolean {
  return isLoopbackHost(address);
}

/** The host name of a `Host` header: without the port, brackets kept off IPv6 literals. */
export function hostnameOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

/** Middleware refusing requests whose `Host` is neither loopback nor in `allowed`. */
export function requireKnownHost(allowed: readonly string[]): RequestHandler {
  const names = new Set(allowed.map((h) => h.toLowerCase()));
  const any = names.has('*');
  return (req, res, next) => {
    const header = req.headers.host;
    // HTTP/1.0 without Host: no browser sends that, so no rebinding either.
    if (header === undefined || any) {
      next();
      return;
    }
    const name = hostnameOf(header);
    if (isLoopbackHost(name) || names.has(name) || names.has(name.replace(/^\[(.*)\]$/, '$1'))) {
      next();
      return;
    }
    sendError(
      res,
      new HttpError(
        421,
        'host_not_allowed',
        `Host ${JSON.stringify(name)} is not accepted: without an authToken this node answers only loopback names (localhost, 127.0.0.1, [::1]) and those in http.allowedHosts (EVENTUAL_CACHE_ALLOWED_HOSTS). Add the name there, or set an authToken.`,
      ),
    );
  };
}
