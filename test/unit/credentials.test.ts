/**
 * No credential survives into a log line or an error message, whatever form the Redis URL
 * uses; errors are logged with message, code and stack.
 */
import { describe, expect, it } from 'vitest';
import { serializeError } from '../../src/cli/logger.js';
import { RedisUnavailableError } from '../../src/errors/index.js';
import { describeTarget, unavailable } from '../../src/store/connections.js';
import { maskCredentials, maskUrl } from '../../src/store/credentials.js';

const SECRET = 's3cr3t-Value';
const FORMS = [
  `redis://:${SECRET}@10.0.0.5:6379/1`,
  `redis://peer-B:${SECRET}@10.0.0.5:6379/1`,
  `redis://${SECRET}:${SECRET}@10.0.0.5:6379/1`,
  `redis://10.0.0.5:6379/1?password=${SECRET}`,
  `redis://10.0.0.5:6379/1?username=${SECRET}&password=${SECRET}`,
  `rediss://10.0.0.5:6380/0?db=1&Password=${SECRET}`,
  `redis://10.0.0.5:6379/1?password=${encodeURIComponent(SECRET + '&x=y')}`,
];

describe('maskUrl', () => {
  for (const url of FORMS) {
    it(`should mask every credential of ${url.replaceAll(SECRET, 'SECRET')}`, () => {
      const masked = maskUrl(url);
      expect(masked).not.toContain(SECRET);
      expect(masked).toContain('10.0.0.5');
      expect(masked).toContain('***');
      expect(describeTarget(url)).toBe(masked);
    });
  }

  it('should leave a URL without credentials as it is', () => {
    expect(maskUrl('redis://10.0.0.5:6379/1')).toBe('redis://10.0.0.5:6379/1');
  });
});

describe('maskCredentials', () => {
  for (const url of FORMS) {
    it(`should mask ${url.replaceAll(SECRET, 'SECRET')} inside free text`, () => {
      expect(maskCredentials(`failed to reach ${url} (ECONNREFUSED)`)).not.toContain(SECRET);
    });
  }
});

describe('unavailable', () => {
  it('should not wrap a RedisUnavailableError twice', () => {
    const first = unavailable(FORMS[3] as string, new Error('connect ECONNREFUSED 10.0.0.5:6379'));
    const second = unavailable(FORMS[3] as string, first);
    expect(second).toBe(first);
    expect(second.message.match(/unreachable/g)).toHaveLength(1);
    expect(second.message).not.toContain(SECRET);
  });
});

describe('serializeError', () => {
  it('should keep message, code and stack of an Error, and its cause', () => {
    const cause = Object.assign(new Error(`connect ECONNREFUSED via redis://u:${SECRET}@h:1`), { code: 'ECONNREFUSED' });
    const out = serializeError(new RedisUnavailableError('redis://h:1/0', 'connect ECONNREFUSED', { cause }));
    expect(out).toMatchObject({ type: 'RedisUnavailableError', message: expect.stringContaining('unreachable') });
    expect(out.stack).toMatch(/RedisUnavailableError/);
    expect(out.cause).toMatchObject({ type: 'Error', code: 'ECONNREFUSED' });
    expect(JSON.stringify(out)).not.toContain(SECRET);
  });

  it('should describe a thrown non-Error by its content, not as {"type":"Object"}', () => {
    const out = serializeError({ message: 'job stalled', code: 'STALLED', jobId: '7' });
    expect(out).toMatchObject({ message: 'job stalled', code: 'STALLED' });
    expect(out.value).toContain('"jobId":"7"');
    expect(serializeError('plain text')).toEqual({ type: 'string', message: 'plain text' });
  });
});
