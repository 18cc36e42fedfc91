/**
 * Server-side accounting from INFO: which commands a run sent and how much Redis time they
 * took. Dividing by the number of operations shows where a write's cost goes on the
 * server (e.g. how many BullMQ scripts one replicated write costs) independently of how
 * noisy the client machine is.
 */
import type { Redis } from 'ioredis';

export type CommandStats = Map<string, { calls: number; usec: number }>;

export async function commandStats(admin: Redis): Promise<CommandStats> {
  const info = await admin.info('commandstats');
  const out: CommandStats = new Map();
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) out.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

/**
 * Per-operation command counts and server µs between two snapshots, largest first,
 * limited to `top` commands (the rest are summed into `other`).
 */
export function perOperation(before: CommandStats, after: CommandStats, operations: number, top = 8): Record<string, { calls: number; usec: number }> {
  const rows: Array<[string, { calls: number; usec: number }]> = [];
  for (const [cmd, a] of after) {
    const b = before.get(cmd) ?? { calls: 0, usec: 0 };
    const calls = a.calls - b.calls;
    if (calls > 0) rows.push([cmd, { calls: calls / operations, usec: (a.usec - b.usec) / operations }]);
  }
  rows.sort((x, y) => y[1].usec - x[1].usec);
  const out: Record<string, { calls: number; usec: number }> = {};
  const other = { calls: 0, usec: 0 };
  rows.forEach(([cmd, v], i) => {
    if (i < top) out[cmd] = { calls: round3(v.calls), usec: round3(v.usec) };
    else {
      other.calls += v.calls;
      other.usec += v.usec;
    }
  });
  if (other.calls > 0) out['(other)'] = { calls: round3(other.calls), usec: round3(other.usec) };
  const total = rows.reduce((s, [, v]) => ({ calls: s.calls + v.calls, usec: s.usec + v.usec }), { calls: 0, usec: 0 });
  out['(total)'] = { calls: round3(total.calls), usec: round3(total.usec) };
  return out;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** `used_memory` in bytes. */
export async function usedMemory(admin: Redis): Promise<number> {
  const info = await admin.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

/** Empties the private server between scenarios and restarts its statistics. */
export async function resetServer(admin: Redis): Promise<void> {
  await admin.flushall();
  await admin.config('RESETSTAT');
}

/** Bytes Redis uses for every key matching `pattern` (SCAN + `MEMORY USAGE … SAMPLES 0`, exact). */
export async function keysMemory(redis: Redis, pattern: string): Promise<{ bytes: number; keys: number }> {
  let cursor = '0';
  let bytes = 0;
  let keys = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    cursor = next;
    for (const key of found) {
      bytes += (await redis.memory('USAGE', key, 'SAMPLES', '0')) ?? 0;
      keys += 1;
    }
  } while (cursor !== '0');
  return { bytes, keys };
}
