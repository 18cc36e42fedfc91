/**
 * The node-id lease: a second process with the same node id refuses to start and names
 * the first; a holder that died is taken over at once; close() releases the lease.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdInUseError } from '../../src/errors/index.js';
import { ReplicaNode } from '../../src/node/replica-node.js';
import { KeyBuilder } from '../../src/store/keys.js';
import { listeningUrl, runCli, tempDir } from '../support/cli-process.js';
import { adminClient, deleteKeysWithPrefix, resolveTestRedis, uniquePrefix, type TestRedis } from '../support/redis.js';

const tmp = tempDir('lease');
let redis: TestRedis;
const prefixes: string[] = [];
beforeAll(async () => {
  redis = await resolveTestRedis();
});
afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysWithPrefix(redis.url(0), prefix);
  await redis.close();
  tmp.remove();
});

function fresh(label: string): string {
  const prefix = uniquePrefix(label);
  prefixes.push(prefix);
  return prefix;
}

describe('the node-id lease', () => {
  it('should refuse a second node with the same id, naming the first, and let it start once the first closed', async () => {
    const prefix = fresh('lease-twice');
    const options = { id: 'A', redis: redis.url(0), peers: [], prefix };
    const first = await ReplicaNode.start(options);
    const error = await ReplicaNode.start(options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NodeIdInUseError);
    expect((error as Error).message).toContain(`process ${process.pid} on host "${hostname()}"`);
    expect((error as Error).message).toMatch(/running since \d{4}-\d\d-\d\dT/);
    await first.close();
    const second = await ReplicaNode.start(options);
    await second.close();
  });

  it('should take over at once the lease of a process that died on this host', async () => {
    const prefix = fresh('lease-stale');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const admin = await adminClient(redis.url(0));
    try {
      const holder = { host: hostname(), pid: Number(dead.stdout), since: Date.now() - 60_000, token: 'dead' };
      await admin.set(new KeyBuilder(prefix, 'A').lease, JSON.stringify(holder), 'PX', 600_000);
    } finally {
      admin.disconnect();
    }
    const started = Date.now();
    const node = await ReplicaNode.start({ id: 'A', redis: redis.url(0), peers: [], prefix });
    expect(Date.now() - started).toBeLessThan(5_000);
    await node.close();
  });

  it('should wait for the lease of a holder elsewhere that stopped renewing, then start', async () => {
    const prefix = fresh('lease-remote');
    const admin = await adminClient(redis.url(0));
    try {
      const holder = { host: 'some-other-host', pid: 1, since: Date.now() - 60_000, token: 'gone' };
      await admin.set(new KeyBuilder(prefix, 'A').lease, JSON.stringify(holder), 'PX', 800);
    } finally {
      admin.disconnect();
    }
    const node = await ReplicaNode.start({ id: 'A', redis: redis.url(0), peers: [], prefix, leaseTtlMs: 2_000 });
    await node.close();
  });

  it('should make a second `eventual-cache node` process with the same id exit 1, naming the first', async () => {
    const prefix = fresh('lease-cli');
    const config = tmp.write('lease.json', { nodes: [{ id: 'A', port: 0, redis: redis.url(0) }], prefix });
    const first = runCli(['node', '--id', 'A', '--config', config], { LOG_LEVEL: 'info' });
    let second: ReturnType<typeof runCli> | undefined;
    try {
      await listeningUrl(first, 'A');
      second = runCli(['node', '--id', 'A', '--config', config], { LOG_LEVEL: 'info' });
      expect(await second.exited(20_000)).toBe(1);
      expect(second.stderr()).toContain(`already in use on this Redis by process ${first.child.pid} on host "${hostname()}"`);
    } finally {
      first.kill();
      second?.kill();
    }
  }, 40_000);
});
