/**
 * The CLI's configuration: file validation errors that name the field, environment
 * overrides, the embedded default, and the mapping to engine options. No Redis needed.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/cli.js';
import { ConfigError, ENV, loadConfig, parseDelay, parseNodeList, toNodeOptions } from '../../src/cli/config.js';
import { resolveNodeOptions } from '../../src/node/options.js';
import { tempDir } from '../support/cli-process.js';

const tmp = tempDir('config');
afterAll(() => tmp.remove());

const validFile = {
  nodes: [
    { id: 'A', port: 3001, redis: 'redis://127.0.0.1:6379/1' },
    { id: 'B', port: 3002, redis: 'redis://127.0.0.1:6379/2', clockOffsetMs: -2000 },
    { id: 'C', port: 3003, redis: 'rediss://user:secret@cache.example.com:6380/0' },
  ],
  replication: { delayMs: { min: 100, max: 500 } },
  authToken: 'file-token',
};

/** The issues of the ConfigError `fn` throws (fails the test if it does not throw one). */
function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

function fileWith(content: unknown): string {
  return tmp.write(`c-${Math.random().toString(36).slice(2)}.json`, content);
}

describe('loadConfig', () => {
  describe('when there is no config file and no EVENTUAL_CACHE_NODES', () => {
    it('should run the embedded default: A, B, C on 3001-3003 and Redis databases 1-3 of 127.0.0.1:6379', () => {
      const config = loadConfig({ env: {} });
      expect(config.nodes).toEqual([
        { id: 'A', port: 3001, redis: 'redis://127.0.0.1:6379/1', clockOffsetMs: 0 },
        { id: 'B', port: 3002, redis: 'redis://127.0.0.1:6379/2', clockOffsetMs: 0 },
        { id: 'C', port: 3003, redis: 'redis://127.0.0.1:6379/3', clockOffsetMs: 0 },
      ]);
      expect(config.source).toMatchObject({ embedded: true, redisUrl: 'redis://127.0.0.1:6379' });
      expect(config).toMatchObject({ host: '127.0.0.1', prefix: 'ec', replication: {} });
      expect(config.authToken).toBeUndefined();
    });

    it('should take the server from REDIS_URL (replacing its database) and the first port from PORT', () => {
      const config = loadConfig({ env: { REDIS_URL: 'redis://:pw@redis.local:6390/9', PORT: '4000' } });
      expect(config.nodes.map((n) => [n.port, n.redis])).toEqual([
        [4000, 'redis://:pw@redis.local:6390/1'],
        [4001, 'redis://:pw@redis.local:6390/2'],
        [4002, 'redis://:pw@redis.local:6390/3'],
      ]);
    });
  });

  describe('when a config file is given', () => {
    it('should read it, apply defaults and keep per-node options', () => {
      const config = loadConfig({ file: fileWith(validFile), env: {} });
      expect(config.source).toMatchObject({ embedded: false, env: [] });
      expect(config.nodes[1]).toEqual({ id: 'B', port: 3002, redis: 'redis://127.0.0.1:6379/2', clockOffsetMs: -2000 });
      expect(config.replication.delayMs).toEqual({ min: 100, max: 500 });
      expect(config.authToken).toBe('file-token');
    });

    it('should be found through EVENTUAL_CACHE_CONFIG, and --config should win over it', () => {
      const fromEnv = fileWith({ ...validFile, prefix: 'from-env' });
      const fromFlag = fileWith({ ...validFile, prefix: 'from-flag' });
      expect(loadConfig({ env: { [ENV.config]: fromEnv } }).prefix).toBe('from-env');
      expect(loadConfig({ file: fromFlag, env: { [ENV.config]: fromEnv } }).prefix).toBe('from-flag');
    });

    it('should name every bad field at once, with its path', () => {
      const file = fileWith({
        nodes: [
          { id: 'A', port: 3001, redis: 'redis://127.0.0.1:6379/1' },
          { id: 'B', port: '3002', redis: 'http://127.0.0.1:6379/2' },
          { id: 'A', port: 1.5, redis: 'redis://127.0.0.1:6379/3', colour: 'red' },
        ],
        replication: { delayMs: { min: 500, max: 100 } },
        logLevel: 'loud',
        authToken: 'has space',
        tombstoneRetentionMs: -1,
        extra: true,
      });
      const issues = issuesOf(() => loadConfig({ file, env: {} }));
      expect(issues).toEqual(
        expect.arrayContaining([
          'nodes[1].port: expected integer',
          expect.stringMatching(/^nodes\[1\]\.redis: expected a Redis URL/),
          'nodes[2].port: expected integer',
          'nodes[2].colour: unknown field',
          'replication.delayMs.max: expected max >= min',
          expect.stringMatching(/^logLevel: expected one of fatal, error/),
          expect.stringMatching(/^authToken: expected a non-empty token of visible ASCII/),
          'tombstoneRetentionMs: expected a positive integer',
          'extra: unknown field',
        ]),
      );
    });

    it('should reject duplicate node ids and ports on one host', () => {
      const file = fileWith({
        nodes: [
          { id: 'A', port: 3001, redis: 'redis://h:6379/1' },
          { id: 'A', port: 3001, redis: 'redis://h:6379/2' },
        ],
      });
      expect(issuesOf(() => loadConfig({ file, env: {} }))).toEqual([
        'nodes[1].id: duplicate node id "A" (also nodes[0].id)',
        'nodes[1].port: port 3001 is already used by nodes[0]',
      ]);
    });

    it('should reject a delay that is neither a number nor {min, max}, and an empty node list', () => {
      const file = fileWith({ nodes: [], replication: { delayMs: 'fast' } });
      expect(issuesOf(() => loadConfig({ file, env: {} }))).toEqual([
        'nodes: expected at least one node',
        'replication.delayMs: expected a number of milliseconds or {"min": ms, "max": ms}',
      ]);
    });

    it('should say where the JSON is broken, and when the file is missing', () => {
      const broken = fileWith('{"nodes": [');
      expect(() => loadConfig({ file: broken, env: {} })).toThrow(/is not valid JSON/);
      expect(issuesOf(() => loadConfig({ file: '/nonexistent/cluster.json', env: {} }))[0]).toMatch(/^ENOENT: pass an existing JSON file/);
    });
  });

  describe('when environment variables are set', () => {
    it('should override the file', () => {
      const config = loadConfig({
        file: fileWith(validFile),
        env: {
          [ENV.authToken]: 'env-token',
          [ENV.delayMs]: '20',
          [ENV.prefix]: 'p1',
          [ENV.host]: '0.0.0.0',
          [ENV.logLevel]: 'debug',
          [ENV.maxDriftMs]: '5000',
          [ENV.tombstoneRetentionMs]: '60000',
          [ENV.maxValueBytes]: '2048',
          [ENV.maxBodyBytes]: '4096',
          [ENV.dashboard]: 'false',
        },
      });
      expect(config).toMatchObject({
        authToken: 'env-token',
        replication: { delayMs: 20 },
        prefix: 'p1',
        host: '0.0.0.0',
        logLevel: 'debug',
        maxDriftMs: 5000,
        tombstoneRetentionMs: 60000,
        limits: { maxValueBytes: 2048 },
        http: { maxBodyBytes: 4096, dashboard: false },
      });
      expect(config.source.env).toHaveLength(10);
    });

    it('should treat an empty variable as unset', () => {
      expect(loadConfig({ file: fileWith(validFile), env: { [ENV.authToken]: '', [ENV.delayMs]: '  ' } })).toMatchObject({
        authToken: 'file-token',
        replication: { delayMs: { min: 100, max: 500 } },
      });
    });

    it('should name the variable when its value is wrong', () => {
      const issues = issuesOf(() => loadConfig({ env: { [ENV.delayMs]: 'soon', [ENV.port]: '70000', [ENV.logLevel]: 'LOUD', [ENV.dashboard]: 'maybe' } }));
      expect(issues).toEqual([
        expect.stringMatching(/^LOG_LEVEL: expected one of/),
        'EVENTUAL_CACHE_DELAY_MS: expected milliseconds ("100") or a range ("100-500")',
        'EVENTUAL_CACHE_DASHBOARD: expected true or false',
        'PORT: expected a port between 0 and 65535',
      ]);
    });

    it('should take the whole node list from EVENTUAL_CACHE_NODES, replacing the file', () => {
      const config = loadConfig({
        file: fileWith(validFile),
        env: { [ENV.nodes]: 'X:4001=redis://redis-x:6379/0, Y=redis://redis-y:6379/0' },
      });
      expect(config.nodes).toEqual([
        { id: 'X', port: 4001, redis: 'redis://redis-x:6379/0', clockOffsetMs: 0 },
        { id: 'Y', port: 3002, redis: 'redis://redis-y:6379/0', clockOffsetMs: 0 },
      ]);
      expect(config.source.embedded).toBe(false);
    });

    it('should validate the combination (duplicate ids from EVENTUAL_CACHE_NODES)', () => {
      expect(() => loadConfig({ env: { [ENV.nodes]: 'A=redis://h:1/0,A=redis://h:2/0' } })).toThrow(
        /after applying EVENTUAL_CACHE_NODES[\s\S]*nodes\[1\]\.id: duplicate node id "A"/,
      );
      expect(issuesOf(() => loadConfig({ env: { [ENV.nodes]: 'A=localhost:6379' } }))).toEqual([
        expect.stringMatching(/^EVENTUAL_CACHE_NODES: entry 1 \("A"\): expected a Redis URL/),
      ]);
    });

    it('should apply PORT and EVENTUAL_CACHE_CLOCK_OFFSET_MS to the node being run only', () => {
      const env = { [ENV.port]: '9999', [ENV.clockOffsetMs]: '-2500', [ENV.nodeId]: 'B' };
      const one = loadConfig({ file: fileWith(validFile), env });
      expect(one.nodes.map((n) => [n.id, n.port, n.clockOffsetMs])).toEqual([
        ['A', 3001, 0],
        ['B', 9999, -2500],
        ['C', 3003, 0],
      ]);
      const cluster = loadConfig({ file: fileWith(validFile), env: { [ENV.port]: '9999' } });
      expect(cluster.nodes[0]?.port).toBe(3001);
      expect(cluster.source.warnings).toEqual([expect.stringMatching(/^PORT is ignored/)]);
    });

    it('should refuse a node id the config does not define', () => {
      expect(issuesOf(() => loadConfig({ file: fileWith(validFile), env: {}, nodeId: 'Z' }))).toEqual([
        '--id: "Z" is not one of the configured nodes (A, B, C)',
      ]);
    });
  });
});

describe('parseDelay', () => {
  it('should read a fixed delay or a range', () => {
    expect(parseDelay('100')).toBe(100);
    expect(parseDelay('100-500')).toEqual({ min: 100, max: 500 });
    expect(parseDelay('500-100')).toBeUndefined();
    expect(parseDelay('-5')).toBeUndefined();
  });
});

describe('parseNodeList', () => {
  it('should explain a malformed entry', () => {
    expect(parseNodeList('A')).toBe('entry 1 ("A"): expected ID[:PORT]=REDIS_URL or ID[:PORT]=cluster:URL|URL…');
    expect(parseNodeList('A:x=redis://h:1/0')).toMatch(/expected a port/);
    expect(parseNodeList('A B=redis://h:1/0')).toMatch(/node id "A B"/);
  });
});

describe('toNodeOptions', () => {
  it('should make every other node a peer and produce options the engine accepts', () => {
    const config = loadConfig({ file: fileWith({ ...validFile, maxDriftMs: 1000, limits: { maxKeyBytes: 64 } }), env: {} });
    const options = toNodeOptions(config, 'B');
    expect(options.peers).toEqual([
      { id: 'A', redis: 'redis://127.0.0.1:6379/1' },
      { id: 'C', redis: 'rediss://user:secret@cache.example.com:6380/0' },
    ]);
    const resolved = resolveNodeOptions(options);
    expect(resolved).toMatchObject({ id: 'B', clock: { clockOffsetMs: -2000, maxDriftMs: 1000 }, limits: { maxKeyBytes: 64 } });
    expect(resolved.replication.delayMs).toEqual({ min: 100, max: 500 });
  });
});

describe('docs/configuration.md', () => {
  it('should document every environment variable the loader reads', () => {
    const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const missing = Object.values(ENV).filter((name) => !docs.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});

describe('runCli', () => {
  function capture(env: NodeJS.ProcessEnv = {}): CliIo & { text(): string } {
    let text = '';
    return { env, out: (t) => (text += t), err: (t) => (text += t), text: () => text };
  }

  it('should print the usage and exit 0 with --help', async () => {
    const io = capture();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.text()).toMatch(/^Usage: eventual-cache <command>/);
  });

  it('should exit 2 on a usage error, saying what is wrong', async () => {
    for (const [argv, message] of [
      [['launch'], 'unknown command "launch"'],
      [[], 'missing command'],
      [['node'], '"node" needs --id ID (or EVENTUAL_CACHE_NODE_ID)'],
      [['cluster', '--colour'], "Unknown option '--colour'"],
    ] as const) {
      const io = capture();
      expect(await runCli([...argv], io)).toBe(2);
      expect(io.text()).toContain(message);
    }
  });

  it('should exit 2 on a configuration error, naming the field', async () => {
    const io = capture();
    const file = fileWith({ nodes: [{ id: 'A', port: 'x', redis: 'redis://h:1/0' }] });
    expect(await runCli(['cluster', '--config', file], io)).toBe(2);
    expect(io.text()).toContain('nodes[0].port: expected integer');
  });
});
