/**
 * Shutdown stays inside its budget with a peer's Redis down and the start-up resync
 * asleep between retries, in the library and through the CLI's SIGTERM path, and what
 * was acknowledged is still in the outbox (or a queue) afterwards.
 *
 *   A starts on a fresh DB ─► resync from B fails ─► sleeps 60 s (retryInitialMs)
 *   PUT k (ack) ─► close() / SIGTERM ─► done well within 10 s; k in A's outbox or queue
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/local-redis/local-redis.js';
import { ReplicaNode } from '../../src/node/replica-node.js';
import { KeyBuilder } from '../../src/store/keys.js';
import { listeningUrl, runCli, tempDir } from '../support/cli-process.js';
import { adminClient, deleteKeysWithPrefix, resolveTestRedis, uniquePrefix, type TestRedis } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

/** Docker's default grace after SIGTERM; the whole shutdown must fit with room to spare. */
const DOCKER_GRACE_MS = 10_000;
const tmp = tempDir('shutdown');
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

/** Entries in A's outbox plus jobs in A's queue for B: where an acknowledged write waits. */
async function pendingFor(prefix: string): Promise<{ outbox: number; jobs: number }> {
  const connection = await adminClient(redis.url(0));
  const keys = new KeyBuilder(prefix, 'A');
  const queue = new Queue('to-B', { connection, prefix: keys.queuePrefix() });
  try {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized');
    return { outbox: await connection.xlen(keys.outbox()), jobs: Object.values(counts).reduce((a, b) => a + b, 0) };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

describe('ReplicaNode.close', () => {
  it('should finish within closeTimeoutMs with the peer down and a resync asleep, keeping the acknowledged write', async () => {
    const prefix = uniquePrefix('close');
    prefixes.push(prefix);
    const deadPeer = `redis://127.0.0.1:${await freePort()}/0`;
    const node = await ReplicaNode.start({
      id: 'A',
      redis: redis.url(0),
      peers: [{ id: 'B', redis: deadPeer }],
      prefix,
      connectTimeoutMs: 500,
      replication: { retryInitialMs: 60_000, retryMaxMs: 60_000, delayMs: 60_000 },
      closeTimeoutMs: 3_000,
    });
    await node.put('acked', 1);
    // Let the resync fail once and fall asleep.
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await node.close();
    const took = Date.now() - started;
    expect(took).toBeLessThan(DOCKER_GRACE_MS);
    const pending = await pendingFor(prefix);
    expect(pending.outbox + pending.jobs).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('eventual-cache node, SIGTERM', () => {
  it('should exit 0 well within Docker\'s 10 s grace with a peer down and a resync waiting', async () => {
    const prefix = uniquePrefix('sigterm');
    prefixes.push(prefix);
    const deadPeer = `redis://127.0.0.1:${await freePort()}/0`;
    const config = tmp.write('sigterm.json', {
      nodes: [
        { id: 'A', port: 0, redis: redis.url(0) },
        { id: 'B', port: 0, redis: deadPeer },
      ],
      prefix,
      replication: { retryInitialMs: 60_000, retryMaxMs: 60_000, delayMs: 60_000 },
    });
    const run = runCli(['node', '--id', 'A', '--config', config], { LOG_LEVEL: 'info' });
    try {
      const url = await listeningUrl(run, 'A');
      const res = await fetch(`${url}/keys/acked`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"value":1}' });
      expect(res.status).toBe(200);
      await waitFor(async () => (await pendingFor(prefix)).outbox + (await pendingFor(prefix)).jobs >= 1, { message: 'the write to be in the outbox or queue' });
      const started = Date.now();
      run.child.kill('SIGTERM');
      expect(await run.exited(20_000)).toBe(0);
      const took = Date.now() - started;
      expect(took, `SIGTERM to exit: ${took} ms`).toBeLessThan(DOCKER_GRACE_MS);
      const pending = await pendingFor(prefix);
      expect(pending.outbox + pending.jobs).toBeGreaterThanOrEqual(1);
    } finally {
      run.kill();
    }
  }, 60_000);
});
