/**
 * Keeping Redis credentials out of logs, errors, `/cluster` and metrics. A Redis URL can
 * carry them three ways, all accepted by ioredis: `redis://user:pass@host`,
 * `redis://host?password=…` and `redis://host?username=…&password=…`. Every one is
 * replaced by `***`; so is any free text that embeds such a URL.
 */

/** Query parameters whose value is a secret (compared case-insensitively). */
const SECRET_PARAMS = /^(password|pass|passwd|pwd|username|user|token|auth|secret|sentinelpassword|sentinelusername)$/i;

/** `url` with its user, password and credential parameters replaced by `***`. */
export function maskUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(unparseable Redis URL)';
  }
  if (parsed.username) parsed.username = '***';
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()]) if (SECRET_PARAMS.test(name)) parsed.searchParams.set(name, '***');
  // URLSearchParams encodes "*" as %2A; keep the mask readable.
  return parsed.toString().replace(/%2A%2A%2A/g, '***');
}

/**
 * `text` with every URL's credentials masked (see {@link maskUrl}): for messages that quote
 * a URL somewhere inside them, such as a driver's error.
 */
export function maskCredentials(text: string): string {
  return text
    // Same shape as maskUrl: `//:***@` for a password alone, `//***:***@` for both.
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@"'<>]*)@/gi, (_m, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return colon < 0 ? `${scheme}***@` : `${scheme}${colon > 0 ? '***' : ''}:***@`;
    })
    .replace(/([?&;](?:password|pass|passwd|pwd|username|user|token|auth|secret)=)[^&\s"'#]*/gi, '$1***');
}
