/**
 * Multi-key commands that work on a single server and on a Redis Cluster alike.
 *
 * On a cluster, MGET and UNLINK must keep their keys in one slot, and SCAN walks one
 * master at a time. These helpers split the keys by slot (one command per slot, sent
 * together) and walk every master in turn, so callers stay the same on both.
 */
import type { Redis } from 'ioredis';
import { clusterOf } from './connections.js';
import { keySlot } from './layout.js';

/** Groups `keys` by slot: each group's positions in `keys`. */
function bySlot(keys: readonly string[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  keys.forEach((k, i) => {
    const slot = keySlot(k);
    const list = groups.get(slot);
    if (list) list.push(i);
    else groups.set(slot, [i]);
  });
  return groups;
}

/** MGET of `keys` in order, one MGET per slot on a cluster. */
export async function mgetAll(redis: Redis, keys: readonly string[]): Promise<Array<string | null>> {
  if (keys.length === 0) return [];
  if (!clusterOf(redis)) return redis.mget(...keys);
  const out = new Array<string | null>(keys.length).fill(null);
  await Promise.all(
    [...bySlot(keys).values()].map(async (positions) => {
      const values = await redis.mget(...positions.map((i) => keys[i] as string));
      positions.forEach((at, j) => (out[at] = values[j] ?? null));
    }),
  );
  return out;
}

/** UNLINK of `keys`, one per slot on a cluster; resolves with how many existed. */
export async function unlinkAll(redis: Redis, keys: readonly string[]): Promise<number> {
  if (keys.length === 0) return 0;
  if (!clusterOf(redis)) return redis.unlink(...keys);
  const counts = await Promise.all([...bySlot(keys).values()].map((positions) => redis.unlink(...positions.map((i) => keys[i] as string))));
  return counts.reduce((a, b) => a + b, 0);
}

/** The servers a SCAN has to walk: the one server, or every master of the cluster (in a stable order). */
function scanTargets(redis: Redis): Redis[] {
  const cluster = clusterOf(redis);
  if (!cluster) return [redis];
  return cluster.nodes('master').sort((a, b) => nodeName(a).localeCompare(nodeName(b)));
}

function nodeName(r: Redis): string {
  return `${r.options.host ?? ''}:${r.options.port ?? 0}`;
}

/**
 * One SCAN page over every server of `redis`. The cursor is SCAN's own on a single
 * server, and `<master>:<cursor>` on a cluster ('0' starts and ends a walk, as SCAN's).
 * Like SCAN, a key present for the whole walk is returned at least once (while the
 * cluster's masters stay the same).
 */
export async function scanPage(redis: Redis, cursor: string, pattern: string, count: number): Promise<[next: string, keys: string[]]> {
  const targets = scanTargets(redis);
  if (!clusterOf(redis)) return (targets[0] as Redis).scan(cursor, 'MATCH', pattern, 'COUNT', count);
  const [m, c] = cursor === '0' ? [0, '0'] : (cursor.split(':') as [string, string]);
  const index = Number(m);
  const target = targets[index];
  if (!target) return ['0', []];
  const [next, keys] = await target.scan(c, 'MATCH', pattern, 'COUNT', count);
  if (next !== '0') return [`${index}:${next}`, keys];
  return [index + 1 < targets.length ? `${index + 1}:0` : '0', keys];
}

/** Every key matching `pattern`, page by page (a whole walk of {@link scanPage}). */
export async function* scanAll(redis: Redis, pattern: string, count: number): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, keys] = await scanPage(redis, cursor, pattern, count);
    cursor = next;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}
