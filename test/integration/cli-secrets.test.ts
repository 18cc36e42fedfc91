/**
 * No credential in what the CLI prints, whatever form the Redis URL takes, and errors read
 * well: a node whose Redis (given with `?password=`) does not answer exits 1 with one
 * "unreachable", not "unreachable (… unreachable (…))", and no password.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/local-redis/local-redis.js';
import { runCli, tempDir } from '../support/cli-process.js';

const SECRET = 'Pa55-w0rd-in-the-url';

describe('eventual-cache node with credentials in its Redis URLs', () => {
  it('should mask ?password=, ?username= and user:pass@ in logs and the start-up error', async () => {
    const tmp = tempDir('secrets');
    try {
      const port = await freePort();
      const config = tmp.write('secrets.json', {
        nodes: [
          { id: 'A', port: 0, redis: `redis://127.0.0.1:${port}/1?username=${SECRET}&password=${SECRET}` },
          { id: 'B', port: 0, redis: `redis://user:${SECRET}@127.0.0.1:${port}/2` },
        ],
      });
      const run = runCli(['node', '--id', 'A', '--config', config], { LOG_LEVEL: 'debug' });
      expect(await run.exited(30_000)).toBe(1);
      const printed = run.stdout() + run.stderr();
      expect(printed).toMatch(/unreachable/);
      expect(printed).not.toContain(SECRET);
      expect(run.stderr().match(/unreachable/g)).toHaveLength(1);
    } finally {
      tmp.remove();
    }
  }, 40_000);
});
