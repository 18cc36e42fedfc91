/**
 * No container engine runs on the test machines, so this reads docker-compose.yml and the
 * Dockerfile and checks they stay in step with the CLI: service names, environment
 * variables the config loader accepts, node ids, ports and Redis hosts.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../src/cli/config.js';
import { configOf, dockerfileEnv, readCompose, readRepoFile as read, repoRoot as root, type Service } from '../support/compose.js';

const compose = readCompose('docker-compose.yml');
const services = compose.services;
const NODE_IDS = ['A', 'B', 'C'] as const;
const KNOWN_VARIABLES = new Set<string>(Object.values(ENV));

describe('docker-compose.yml', () => {
  it('should define one Redis and one node service per node id', () => {
    const expected = NODE_IDS.flatMap((id) => [`redis-${id.toLowerCase()}`, `node-${id.toLowerCase()}`]);
    expect(Object.keys(services).sort()).toEqual(expected.sort());
  });

  it('should only use environment variables the config loader reads', () => {
    for (const id of NODE_IDS) {
      const names = Object.keys(services[`node-${id.toLowerCase()}`]?.environment ?? {});
      expect(names.filter((n) => !KNOWN_VARIABLES.has(n)), `node-${id.toLowerCase()}`).toEqual([]);
    }
    const imageDefaults = Object.keys(dockerfileEnv()).filter((n) => n !== 'NODE_ENV');
    expect(imageDefaults.filter((n) => !KNOWN_VARIABLES.has(n)), 'Dockerfile ENV').toEqual([]);
  });

  for (const id of NODE_IDS) {
    const name = `node-${id.toLowerCase()}`;
    const redisService = `redis-${id.toLowerCase()}`;

    describe(`service ${name}`, () => {
      it(`should run node ${id} of one cluster, on its own Redis service ${redisService}`, () => {
        const service = services[name] as Service;
        const { config, env } = configOf(service);
        expect(env[ENV.nodeId]).toBe(id);
        expect(config.source.embedded).toBe(false);
        expect(config.nodes.map((n) => n.id)).toEqual([...NODE_IDS]);
        const self = config.nodes.find((n) => n.id === id);
        expect(new URL(self?.redis ?? '').hostname).toBe(redisService);
        // Every peer's Redis is a service of this file (peers' queues and records live there).
        for (const n of config.nodes) expect(Object.keys(services)).toContain(new URL(n.redis).hostname);
        expect(config.host).toBe('0.0.0.0');
      });

      it('should publish the port the node listens on, and health-check that port', () => {
        const service = services[name] as Service;
        const { config } = configOf(service);
        const port = config.nodes.find((n) => n.id === id)?.port;
        expect(port).toBe(3001 + NODE_IDS.indexOf(id));
        expect(service.ports).toEqual([`${port}:${port}`]);
        expect(service.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/health`);
      });

      it('should be built from the Dockerfile, run `eventual-cache node` and wait for its Redis', () => {
        const service = services[name] as Service;
        expect(service.build).toBe('.');
        expect(service.command).toEqual(['node']);
        expect(service.depends_on?.[redisService]?.condition).toBe('service_healthy');
        expect(services[redisService]?.image).toMatch(/^redis:/);
      });
    });
  }

  it('should give every node the same cluster definition', () => {
    const definitions = NODE_IDS.map((id) => {
      const { config } = configOf(services[`node-${id.toLowerCase()}`] as Service);
      return JSON.stringify({ nodes: config.nodes, prefix: config.prefix, replication: config.replication });
    });
    expect(new Set(definitions).size).toBe(1);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('should build on node:20-slim with npm ci and run the CLI through its bin', () => {
    expect(dockerfile).toMatch(/^FROM node:20-slim/m);
    expect(dockerfile).toMatch(/^RUN npm ci/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/eventual-cache\.js"\]/m);
    expect(dockerfile).toMatch(/^CMD \["node"\]/m);
  });

  it('should copy only paths that exist', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/));
    expect(sources.filter((p) => !existsSync(new URL(p, root)))).toEqual([]);
  });
});
