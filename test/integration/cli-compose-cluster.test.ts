/**
 * docker-compose.cluster.yml: three sites, each a 3-master Redis Cluster with a one-shot
 * `redis-cli --cluster create` service and one eventual-cache node on it. No container
 * engine runs here, so the file is parsed and checked against the CLI (variables it reads,
 * node ids, ports, cluster seeds that name services of the file) as in cli-compose.test.ts,
 * and the init script itself is run against three real `redis-server --cluster-enabled`
 * processes on loopback.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ENV, toNodeOptions } from '../../src/cli/config.js';
import { ClusterMember } from '../../src/local-redis/cluster-member.js';
import { freeClusterPort, parseInfo } from '../../src/local-redis/cluster-topology.js';
import { resolveNodeOptions } from '../../src/node/options.js';
import { isClusterTarget } from '../../src/store/connections.js';
import { configOf, interpolate, readCompose, type Service } from '../support/compose.js';

const compose = readCompose('docker-compose.cluster.yml');
const services = compose.services;
const SITES = ['A', 'B', 'C'] as const;
const KNOWN_VARIABLES = new Set<string>(Object.values(ENV));
const site = (id: string) => id.toLowerCase();
const redisServices = (id: string) => [1, 2, 3].map((k) => `redis-${site(id)}${k}`);

/** The value after `flag` in a command line. */
function arg(command: string[] | undefined, flag: string): string | undefined {
  const i = (command ?? []).indexOf(flag);
  return i < 0 ? undefined : command?.[i + 1];
}

/** The init service's script, as the shell receives it (`$$` already turned into `$`). */
function initScript(id: string): string {
  const command = services[`redis-${site(id)}-init`]?.command ?? [];
  expect(command.slice(0, 2)).toEqual(['sh', '-c']);
  return interpolate(command[2] ?? '');
}

describe('docker-compose.cluster.yml', () => {
  it('should define, per site, three cluster nodes, one init service and one eventual-cache node', () => {
    const expected = SITES.flatMap((id) => [...redisServices(id), `redis-${site(id)}-init`, `node-${site(id)}`]);
    expect(Object.keys(services).sort()).toEqual(expected.sort());
    expect(compose.name).not.toBe(readCompose('docker-compose.yml').name);
  });

  it('should only use environment variables the config loader reads on the node services', () => {
    for (const id of SITES) {
      const names = Object.keys(services[`node-${site(id)}`]?.environment ?? {});
      expect(names.filter((n) => !KNOWN_VARIABLES.has(n)), `node-${site(id)}`).toEqual([]);
    }
  });

  it('should leave no `$` for Compose to interpolate in the init script (the shell gets `$$` as `$`)', () => {
    const raw = services['redis-a-init']?.command?.[2] ?? '';
    expect(raw.replaceAll('$$', '')).not.toContain('$');
  });

  for (const id of SITES) {
    describe(`site ${id}`, () => {
      it('should run every Redis as a cluster node announcing its service name, persistent, health-checked', () => {
        for (const name of redisServices(id)) {
          const service = services[name] as Service;
          expect(service.image).toMatch(/^redis:7/);
          expect(service.command?.[0]).toBe('redis-server');
          expect(arg(service.command, '--cluster-enabled')).toBe('yes');
          expect(arg(service.command, '--cluster-announce-hostname')).toBe(name);
          expect(arg(service.command, '--cluster-preferred-endpoint-type')).toBe('hostname');
          expect(arg(service.command, '--cluster-config-file')).toMatch(/^\/data\//);
          expect(service.volumes).toEqual([`${name}-data:/data`]);
          expect(Object.keys(compose.volumes ?? {})).toContain(`${name}-data`);
          expect(service.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
        }
      });

      it('should create the cluster once from exactly its three nodes, after they are healthy', () => {
        const init = services[`redis-${site(id)}-init`] as Service;
        expect(init.image).toMatch(/^redis:7/);
        expect(init.restart).toBe('no');
        const ports = redisServices(id).map((name) => arg(services[name]?.command, '--port') ?? '6379');
        expect(String(init.environment?.CLUSTER_NODES).split(' ')).toEqual(redisServices(id).map((name, i) => `${name}:${ports[i]}`));
        for (const name of redisServices(id)) expect(init.depends_on?.[name]?.condition).toBe('service_healthy');
        expect(initScript(id)).toMatch(/redis-cli --cluster create \$addresses --cluster-replicas 0 --cluster-yes/);
      });

      it(`should run node ${id} with \`eventual-cache node\` on its own cluster, after the cluster was created`, () => {
        const name = `node-${site(id)}`;
        const service = services[name] as Service;
        const { config, env } = configOf(service);
        expect(env[ENV.nodeId]).toBe(id);
        expect(service.build).toBe('.');
        expect(service.command).toEqual(['node']);
        expect(service.depends_on).toEqual({ [`redis-${site(id)}-init`]: { condition: 'service_completed_successfully' } });
        expect(config.source.embedded).toBe(false);
        expect(config.nodes.map((n) => n.id)).toEqual([...SITES]);
        for (const n of config.nodes) {
          // Every node's Redis is the cluster of its own site, named by all of that site's nodes and their ports.
          if (!isClusterTarget(n.redis)) throw new Error(`${n.id}'s Redis is not a cluster`);
          const seeds = n.redis.cluster.map((s) => new URL(s));
          expect(seeds.map((u) => u.hostname)).toEqual(redisServices(n.id));
          expect(seeds.map((u) => u.port || '6379')).toEqual(redisServices(n.id).map((s) => arg(services[s]?.command, '--port') ?? '6379'));
        }
        const port = config.nodes.find((n) => n.id === id)?.port;
        expect(port).toBe(3001 + SITES.indexOf(id));
        expect(service.ports).toEqual([`${port}:${port}`]);
        expect(service.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/health`);
        expect(config.host).toBe('0.0.0.0');
        expect(() => resolveNodeOptions(toNodeOptions(config, id))).not.toThrow();
      });
    });
  }

  it('should give every node the same cluster definition', () => {
    const definitions = SITES.map((id) => {
      const { config } = configOf(services[`node-${site(id)}`] as Service);
      return JSON.stringify({ nodes: config.nodes, prefix: config.prefix, replication: config.replication });
    });
    expect(new Set(definitions).size).toBe(1);
  });

  describe('the init script', () => {
    it('should join three fresh cluster nodes into one cluster, and do nothing when run again', async () => {
      const taken = new Set<number>();
      const members: ClusterMember[] = [];
      for (let i = 0; i < 3; i++) {
        const port = await freeClusterPort(taken);
        taken.add(port);
        members.push(new ClusterMember(port, mkdtempSync(join(tmpdir(), 'eventual-cache-compose-')), 'redis-server'));
      }
      try {
        await Promise.all(
          members.map((m) =>
            m.launch(['--port', String(m.port), '--bind', '127.0.0.1', '--dir', m.dir, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--save', '', '--appendonly', 'no'], 10_000),
          ),
        );
        const env = { ...process.env, CLUSTER_NODES: members.map((m) => `127.0.0.1:${m.port}`).join(' ') };
        const first = await runShell(initScript('A'), env);
        expect(first.code, first.output).toBe(0);
        expect(first.output).toMatch(/ ok\n$/);
        const redis = new Redis(members[2]?.port ?? 0);
        try {
          const info = parseInfo(await redis.cluster('INFO'));
          expect(info.get('cluster_state')).toBe('ok');
          expect(info.get('cluster_size')).toBe('3');
        } finally {
          redis.disconnect();
        }
        const again = await runShell(initScript('A'), env);
        expect(again.code, again.output).toBe(0);
        expect(again.output).toMatch(/already created/);
      } finally {
        await Promise.all(members.map((m) => m.kill()));
        for (const m of members) rmSync(m.dir, { recursive: true, force: true });
      }
    }, 30_000);
  });
});

function runShell(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}
