/**
 * Optimistic transactions under contention and across reconnects.
 *
 * - A hot key written concurrently on every node while merges race the local writes:
 *   every node ends with the highest-HLC write.
 * - The same guarantee at the transaction level (many merges into one key through a real
 *   TransactionPool), and the negative control: the same code with ONE shared connection
 *   (interleaved WATCHes) demonstrably loses the winner.
 * - The reconnect guard: a connection killed between WATCH and EXEC must not EXEC blind.
 */
import { describe, expect, it } from 'vitest';
import { formatTimestamp } from '../../src/clock/timestamp.js';
import { merge, type MergeResult } from '../../src/record/merge.js';
import { decodeRecord, encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { TransactionPool, type TransactionConnection } from '../../src/store/connections.js';
import { optimisticTransaction, type TransactionOptions } from '../../src/store/transaction.js';
import { waitForConvergence } from '../support/cluster.js';
import { useRedisHarness } from '../support/harness.js';
import { adminClient } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const h = useRedisHarness();

/** A record as node `origin` would write it: its own dot `origin:seq` on top of `seen`. */
function recordOf(key: string, wallMs: number, logical: number, origin: string, seq: number, value: string): CacheRecord {
  const version = { [origin]: seq };
  return { key, hlc: formatTimestamp({ wallMs, logical, nodeId: origin }), origin, version, written: version, deleted: false, valueJson: JSON.stringify(value) };
}

/** Merges `incoming` into `redisKey` in one optimistic transaction, exactly as the store does. */
function mergeInto(pool: TransactionPool, url: string, redisKey: string, incoming: CacheRecord, options: TransactionOptions): Promise<MergeResult> {
  return optimisticTransaction(
    pool,
    url,
    [redisKey],
    ([raw]) => {
      const local = raw === null || raw === undefined ? undefined : decodeRecord(incoming.key, redisKey, raw);
      const result = merge(local, incoming);
      return result.changed ? { result, write: (multi) => multi.set(redisKey, encodeRecord(result.record)) } : { result };
    },
    options,
  );
}

/**
 * The mistake the pool exists to prevent: every "acquire" lends the same connection, so
 * two transactions' WATCH/EXEC interleave on one socket.
 */
class SharedConnectionPool extends TransactionPool {
  private shared: TransactionConnection | undefined;

  override async acquire(): Promise<TransactionConnection> {
    this.shared ??= await super.acquire();
    return this.shared;
  }

  override release(): void {
    /* never returned: it stays shared */
  }
}

async function openPool(pool: TransactionPool): Promise<TransactionPool> {
  await pool.connect(5_000);
  h.defer(() => pool.close());
  return pool;
}

async function readRecord(url: string, redisKey: string, key: string): Promise<CacheRecord | undefined> {
  const admin = await adminClient(url);
  try {
    const raw = await admin.get(redisKey);
    return raw === null ? undefined : decodeRecord(key, redisKey, raw);
  } finally {
    admin.disconnect();
  }
}

/**
 * Runs two merges into one key so that the loser reads first and commits second: the
 * loser's transaction stops in `beforeExec` (after its read) until the winner's whole
 * transaction committed. Returns what the key holds at the end.
 */
async function loserReadsFirstCommitsSecond(pool: TransactionPool, url: string, redisKey: string, winner: CacheRecord, loser: CacheRecord) {
  const retries: string[] = [];
  const loserRead = deferred();
  const winnerCommitted = deferred();

  const loserTx = mergeInto(pool, url, redisKey, loser, {
    maxRetries: 5,
    onRetry: (_attempt, reason) => retries.push(reason),
    beforeExec: async () => {
      loserRead.resolve();
      await winnerCommitted.promise;
    },
  });
  await loserRead.promise;
  await mergeInto(pool, url, redisKey, winner, { maxRetries: 5 });
  winnerCommitted.resolve();
  const loserResult = await loserTx;
  return { final: await readRecord(url, redisKey, winner.key), retries, loserResult };
}

describe('optimistic transactions', () => {
  describe('when a hot key is written on every node while merges race', () => {
    it('should converge every node to the highest-HLC write', async () => {
      // A: put×40 ┐  in 8 waves, all three nodes at once; replication delay 0–15 ms, so
      // B: put×40 ├─ peers' merges into the same key run concurrently with local writes
      // C: put×40 ┘  and with each other (4 transaction connections per node)
      // end: A = B = C = the write with the highest HLC of all 120 acknowledged writes
      const cluster = await h.cluster('hot', ['A', 'B', 'C'], { common: { replication: { delayMs: { min: 0, max: 15 }, concurrency: 8 } } });
      const key = 'hot';
      const acked: string[] = [];
      for (let wave = 0; wave < 8; wave++) {
        const puts = cluster.nodes.flatMap((node) => Array.from({ length: 5 }, (_, i) => node.put(key, `${node.id}-${wave}-${i}`)));
        for (const view of await Promise.all(puts)) acked.push(view.hlc);
      }
      expect(new Set(acked).size, 'every acknowledged write has its own timestamp').toBe(120);
      const highest = [...acked].sort().at(-1) as string;

      const agreed = await waitForConvergence(cluster.nodes, [key], { expectedHlc: { [key]: highest }, message: 'the highest-HLC write to win on every node' });
      const winner = agreed.get(key);
      expect(winner?.version).toEqual(expect.objectContaining({ A: expect.any(Number), B: expect.any(Number), C: expect.any(Number) }));
      const merges = await Promise.all(cluster.nodes.map(async (n) => (await n.metrics.merges.get()).values.reduce((s, v) => s + v.value, 0)));
      expect(merges.every((m) => m > 0), `merges per node: ${merges.join(', ')}`).toBe(true);
    });
  });

  describe('when many merges into one key run through a TransactionPool', () => {
    it('should never lose the winner', async () => {
      // 200 random records from 5 origins, all merged at once into one key through 8
      // dedicated connections; WATCH aborts and retries the losers of each race.
      const url = h.redis.url(0);
      const redisKey = `${h.prefix('pool')}:rec:hot`;
      const pool = await openPool(new TransactionPool(url, 8, 'test-pool'));
      const origins = ['N0', 'N1', 'N2', 'N3', 'N4'];
      const base = Date.UTC(2030, 0, 1);
      const seen = new Set<string>();
      const records: CacheRecord[] = [];
      while (records.length < 200) {
        const origin = origins[Math.floor(Math.random() * origins.length)] as string;
        const wall = base + Math.floor(Math.random() * 50);
        const logical = Math.floor(Math.random() * 3);
        const id = `${wall}/${logical}/${origin}`;
        if (seen.has(id)) continue;
        seen.add(id);
        records.push(recordOf('hot', wall, logical, origin, records.length + 1, id));
      }
      const highest = records.reduce((a, b) => (b.hlc > a.hlc ? b : a));
      const retries: string[] = [];

      await Promise.all(records.map((r) => mergeInto(pool, url, redisKey, r, { maxRetries: 500, onRetry: (_a, reason) => retries.push(reason) })));

      const final = await readRecord(url, redisKey, 'hot');
      expect(final?.hlc).toBe(highest.hlc);
      expect(final?.valueJson).toBe(highest.valueJson);
      expect(retries.filter((r) => r === 'conflict').length, 'the merges really contended (WATCH aborted some)').toBeGreaterThan(0);
    });

    it('should lose the winner if two transactions shared one connection (negative control)', async () => {
      // one connection:  loser WATCH k, GET k (empty)
      //                  winner WATCH k, GET k (empty), MULTI SET winner EXEC  (EXEC clears ALL watches of the connection)
      //                  loser MULTI SET loser EXEC  -> succeeds blind: the winner is overwritten
      const url = h.redis.url(0);
      const redisKey = `${h.prefix('shared')}:rec:k`;
      const pool = await openPool(new SharedConnectionPool(url, 1, 'test-shared'));
      const winner = recordOf('k', Date.UTC(2030, 0, 1, 0, 0, 1), 0, 'W', 1, 'winner');
      const loser = recordOf('k', Date.UTC(2030, 0, 1), 0, 'L', 1, 'loser');

      const { final, retries } = await loserReadsFirstCommitsSecond(pool, url, redisKey, winner, loser);

      expect(retries, 'nothing noticed the lost WATCH').toEqual([]);
      expect(final?.hlc, 'the shared connection let the older write overwrite the newer').toBe(loser.hlc);
    });

    it('should keep the winner with dedicated connections in the same interleaving (control)', async () => {
      // conn 1: loser WATCH k, GET k (empty) ............................. MULTI SET loser EXEC -> null (k changed)
      // conn 2:                 winner WATCH k, GET k, MULTI SET winner EXEC
      // conn 1: retry: WATCH k, GET k (winner) -> merge keeps the winner
      const url = h.redis.url(0);
      const redisKey = `${h.prefix('dedicated')}:rec:k`;
      const pool = await openPool(new TransactionPool(url, 2, 'test-dedicated'));
      const winner = recordOf('k', Date.UTC(2030, 0, 1, 0, 0, 1), 0, 'W', 1, 'winner');
      const loser = recordOf('k', Date.UTC(2030, 0, 1), 0, 'L', 1, 'loser');

      const { final, retries, loserResult } = await loserReadsFirstCommitsSecond(pool, url, redisKey, winner, loser);

      expect(retries).toContain('conflict');
      expect(loserResult.outcome).toBe('stale');
      expect(final?.hlc).toBe(winner.hlc);
      expect(final?.version).toEqual({ L: 1, W: 1 });
    });
  });

  describe('when the transaction connection is killed between WATCH and EXEC', () => {
    it('should retry on the new socket instead of writing blind (transaction level)', async () => {
      // tx conn: WATCH k, GET k (empty), decide: SET older
      //          ── CLIENT KILL ──► ioredis reconnects (the new socket carries no WATCH)
      // other client: SET k = newer
      // tx conn: guard sees a new socket -> retry: WATCH k, GET k (newer) -> merge keeps newer
      const url = h.redis.url(0);
      const redisKey = `${h.prefix('reconnect')}:rec:k`;
      const pool = await openPool(new TransactionPool(url, 1, 'test-reconnect'));
      const admin = await adminClient(url);
      h.defer(() => admin.disconnect());
      const older = recordOf('k', Date.UTC(2030, 0, 1), 0, 'A', 1, 'older');
      const newer = recordOf('k', Date.UTC(2030, 0, 1, 0, 0, 1), 0, 'B', 1, 'newer');
      const retries: string[] = [];
      let killed = false;

      const result = await mergeInto(pool, url, redisKey, older, {
        maxRetries: 5,
        onRetry: (_a, reason) => retries.push(reason),
        beforeExec: async (connection) => {
          if (killed) return;
          killed = true;
          await killAndAwaitReconnect(connection, admin);
          await admin.set(redisKey, encodeRecord(newer));
        },
      });

      expect(killed).toBe(true);
      expect(retries).toContain('connection');
      expect(result.outcome).toBe('stale');
      const final = await readRecord(url, redisKey, 'k');
      expect(final?.hlc, 'the newer record written during the reconnect survived').toBe(newer.hlc);
      expect(final?.version).toEqual({ A: 1, B: 1 });
    });

    it('should not overwrite a newer local write when a replicated merge loses its socket (node level)', async () => {
      // A: put k=fromA ──► job ──► B: merge tx WATCH k, GET k (empty), decide: SET fromA
      //                             beforeExec: CLIENT KILL the tx connection, wait for the reconnect,
      //                                         and B: put k=fromB (newer; queued behind the merge by
      //                                         B's in-process key lock, so it is not awaited here)
      //                             guard -> retry on the new socket -> merge commits fromA
      //                             then B's put commits fromB over it and replicates
      // end: fromB on A, B and C; B counted a `connection` retry. (A writer outside the process,
      // which no lock can queue, is the direct optimisticTransaction test above.)
      let admin: Awaited<ReturnType<typeof adminClient>> | undefined;
      let armed = false;
      let fromB: Promise<{ hlc: string }> | undefined;
      const cluster = await h.cluster('reconnect-node', ['A', 'B', 'C'], {
        perNode: {
          B: {
            transactionHooks: {
              beforeExec: async (connection) => {
                if (!armed) return;
                armed = false;
                if (!admin) throw new Error('admin client not connected');
                await killAndAwaitReconnect(connection, admin);
                fromB = cluster.node('B').put('k', 'fromB');
              },
            },
          },
        },
      });
      const [A, B] = [cluster.node('A'), cluster.node('B')];
      admin = await adminClient(cluster.redisOf('B') as string);
      h.defer(() => admin?.disconnect());

      armed = true;
      const fromA = await A.put('k', 'fromA');
      await waitFor(() => fromB !== undefined, { message: "B's merge of A's write to reach beforeExec" });
      const bWrite = await (fromB as Promise<{ hlc: string }>);
      expect(bWrite.hlc > fromA.hlc).toBe(true);

      await waitForConvergence(cluster.nodes, ['k'], { expectedHlc: { k: bWrite.hlc }, message: "B's newer write to survive and win everywhere" });
      for (const node of cluster.nodes) expect((await node.get('k'))?.value, `value on ${node.id}`).toBe('fromB');
      const retries = (await B.metrics.transactionRetries.get()).values.filter((v) => v.labels.reason === 'connection');
      expect(retries.reduce((s, v) => s + v.value, 0), "B's connection retries").toBeGreaterThanOrEqual(1);
    });
  });
});

/** A promise and its resolve function (`Promise.withResolvers` needs Node 22; engines allow 20). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Kills the connection's socket from another client and waits until ioredis has a new one. */
async function killAndAwaitReconnect(connection: TransactionConnection, admin: Awaited<ReturnType<typeof adminClient>>): Promise<void> {
  const generation = connection.generation;
  const id = await connection.redis.client('ID');
  await admin.client('KILL', 'ID', String(id));
  await waitFor(() => connection.generation !== generation && connection.redis.status === 'ready', {
    timeoutMs: 5_000,
    message: `transaction connection ${id} to be closed and reconnected (status ${connection.redis.status})`,
  });
}
