/**
 * The fixed Redis cost of one replication job, apart from the keys it carries
 * (`npx tsx bench/profile.ts job-cost`). Scenario 7's Redis commands per write per peer
 * grow with the jobs per write per peer, so this is the figure that multiplies: a
 * 2-node cluster takes bursts of k distinct keys on one node (each burst one job to the
 * other), and the commands per burst at k = 1 and k = 100 separate the cost per job from
 * the cost per key. The background commands of an idle cluster (vitals, sweeps) are
 * measured first and taken out. A MONITOR during the 1-key bursts names the BullMQ
 * scripts a job runs (by the SHA-1 of each script BullMQ ships).
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { LocalRedisServer } from '../../src/local-redis/local-redis.js';
import { startCluster, type BenchCluster } from './cluster.js';
import { sleep, waitFor } from './deadline.js';
import { commandStats, type CommandStats } from './redis-stats.js';

export interface JobCost {
  /** Redis commands of one job, its keys' own commands taken out (commands inside scripts counted too). */
  commandsPerJob: number;
  /** Redis commands per key and peer, on top of the job. */
  commandsPerKey: number;
  /** BullMQ scripts run per job (1-key bursts, idle background included), by script name. */
  scriptsPerJob: Record<string, number>;
  /** Commands per second of the idle 2-node cluster. */
  idleCommandsPerSec: number;
  /** Commands per burst, by command, at k = 1 (idle background taken out). */
  perBurst1: Record<string, number>;
}

/** SHA-1 → name of every Lua script BullMQ ships (what EVALSHA names in MONITOR). */
async function bullmqScripts(): Promise<Map<string, string>> {
  const dir = join(dirname(createRequire(import.meta.url).resolve('bullmq')), '..', 'esm', 'scripts');
  const names = new Map<string, string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'index.js')) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, { name?: string; content?: string }>;
    for (const script of Object.values(mod)) {
      if (script?.content && script.name) names.set(createHash('sha1').update(script.content).digest('hex'), script.name);
    }
  }
  return names;
}

function totalCalls(before: CommandStats, after: CommandStats): Map<string, number> {
  const out = new Map<string, number>();
  for (const [cmd, a] of after) {
    const d = a.calls - (before.get(cmd)?.calls ?? 0);
    if (d > 0 && cmd !== 'info') out.set(cmd, d);
  }
  return out;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

export async function measureJobCost(server: LocalRedisServer, bursts = 30): Promise<JobCost> {
  const admin = new Redis(server.url(0), { maxRetriesPerRequest: 1 });
  const cluster: BenchCluster = await startCluster(server, { size: 2 });
  let seq = 0;
  const burst = async (k: number) => {
    const target = cluster.events.applied + k;
    await Promise.all(Array.from({ length: k }, () => cluster.nodes[0]?.put(`job-cost-${seq++}`, 'v')));
    await waitFor(() => (cluster.events.applied >= target ? true : undefined), { timeoutMs: 10_000, intervalMs: 2, describe: () => `a ${k}-key burst was not applied` });
    // Lets the job complete (moveToFinished) before the next burst starts.
    await sleep(100);
  };
  try {
    for (let i = 0; i < 5; i++) await burst(10);
    const idle0 = await commandStats(admin);
    const idleStart = performance.now();
    await sleep(3_000);
    const idle = totalCalls(idle0, await commandStats(admin));
    const idlePerMs = sum(idle) / (performance.now() - idleStart);
    const perBurst = async (k: number) => {
      const c0 = await commandStats(admin);
      const t0 = performance.now();
      for (let i = 0; i < bursts; i++) await burst(k);
      const ms = performance.now() - t0;
      const calls = totalCalls(c0, await commandStats(admin));
      const byCommand = Object.fromEntries(
        [...calls]
          .map(([cmd, n]) => [cmd, Math.round(((n - ((idle.get(cmd) ?? 0) / 3_000) * ms) / bursts) * 100) / 100] as const)
          .filter(([, n]) => n > 0.05)
          .sort((a, b) => b[1] - a[1]),
      );
      return { total: (sum(calls) - idlePerMs * ms) / bursts, byCommand };
    };
    const names = await bullmqScripts();
    const monitorClient = new Redis(server.url(0), { maxRetriesPerRequest: 1 });
    const monitor = await monitorClient.monitor();
    const scripts = new Map<string, number>();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() !== 'evalsha') return;
      const name = names.get(args[1] ?? '') ?? `sha ${args[1]?.slice(0, 8)}`;
      scripts.set(name, (scripts.get(name) ?? 0) + 1);
    });
    const one = await perBurst(1);
    monitor.disconnect();
    monitorClient.disconnect();
    const hundred = await perBurst(100);
    const commandsPerKey = (hundred.total - one.total) / 99;
    return {
      commandsPerJob: Math.round((one.total - commandsPerKey) * 10) / 10,
      commandsPerKey: Math.round(commandsPerKey * 100) / 100,
      scriptsPerJob: Object.fromEntries([...scripts].sort((a, b) => b[1] - a[1]).map(([name, n]) => [name, Math.round((n / bursts) * 100) / 100])),
      idleCommandsPerSec: Math.round(idlePerMs * 1000),
      perBurst1: one.byCommand,
    };
  } finally {
    await cluster.close();
    admin.disconnect();
  }
}
