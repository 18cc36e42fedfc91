/**
 * The JSON request body, read the same way by every route that takes one (`PUT /keys/:key`,
 * `POST /batch`): JSON media type, UTF-8 only, and at most `maxBodyBytes`.
 */
import { isUtf8 } from 'node:buffer';
import express, { type RequestHandler } from 'express';
import { HttpError } from './errors.js';

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/** The three middlewares, in order: media type, announced length, then parse. */
export function jsonBody(maxBodyBytes: number): [RequestHandler, RequestHandler, RequestHandler] {
  const requireJson: RequestHandler = (req, _res, next) => {
    // `req.is` is null when there is no body at all; the schema then says what is missing.
    if (req.is(['application/json', '+json']) === false) {
      const type = req.headers['content-type'];
      throw new HttpError(
        415,
        'unsupported_media_type',
        `${type === undefined ? 'No Content-Type' : `Content-Type ${JSON.stringify(type)}`} is not JSON; send "Content-Type: application/json".`,
      );
    }
    // JSON exchanged between systems is UTF-8 (RFC 8259 §8.1); other charsets are refused
    // rather than transcoded.
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new HttpError(415, 'unsupported_media_type', `charset ${JSON.stringify(charset)} is not supported; JSON bodies must be UTF-8.`);
    }
    next();
  };

  // An announced length over the limit is refused before a byte of the body is read, and
  // the connection is closed: the body parser would otherwise read (and discard) all of it.
  const announcedLength: RequestHandler = (req, res, next) => {
    const length = Number(req.headers['content-length']);
    const encoded = (req.headers['content-encoding'] ?? 'identity').toLowerCase() !== 'identity';
    if (!encoded && length > maxBodyBytes) {
      res.set('Connection', 'close');
      throw new HttpError(413, 'payload_too_large', `The body is ${length} bytes; the limit is ${maxBodyBytes} bytes (maxBodyBytes).`);
    }
    next();
  };

  const parseJson = express.json({
    limit: maxBodyBytes,
    strict: false,
    type: () => true,
    // Invalid UTF-8 would otherwise be decoded into U+FFFD and stored as if it had been sent.
    verify: (_req, _res, buf) => {
      if (!isUtf8(buf)) throw new HttpError(400, 'invalid_json', 'The body is not valid UTF-8; JSON bodies must be UTF-8.');
    },
  });

  return [requireJson, announcedLength, parseJson];
}
