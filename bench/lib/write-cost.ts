/**
 * What one written value costs a replicated run, end to end: Redis commands and CPU, this
 * process' CPU, replication jobs and merges, each divided by the writes. Both sides of a
 * coalescing comparison are measured with it over the same window (first write of the
 * measured load to verified delivery), so polling and verification land on both sides.
 */
import type { Redis } from 'ioredis';
import { cpuSnapshot, cpuSpent, type CpuSnapshot } from './context.js';
import { commandStats, perOperation, type CommandStats } from './redis-stats.js';
import { round } from './stats.js';

export interface CostSnapshot {
  readonly cpu: CpuSnapshot;
  readonly commands: CommandStats;
}

export async function costSnapshot(admin: Redis): Promise<CostSnapshot> {
  return { cpu: await cpuSnapshot(admin), commands: await commandStats(admin) };
}

/** What the side under measurement counted itself over the window. */
export interface WriteCounts {
  writes: number;
  writesPerSec: number;
  /** BullMQ jobs created (a replaced job counts: it was written, then deleted). */
  jobs: number;
  /** Merges (ours, every outcome) or applies (a job's read and write of one key). */
  applies: number;
  /** Of `applies`, those done before the last write of the load was acknowledged. */
  appliesWhileWriting: number;
}

export interface WriteCost {
  writes: number;
  writesPerSec: number;
  /**
   * Commands Redis executed, per write. `INFO commandstats` counts the commands a Lua
   * script runs as well as the EVALSHA itself, so a BullMQ script counts as all its work.
   */
  redisCommandsPerWrite: number;
  /** redis-server user + system CPU per write (µs). */
  redisCpuUsPerWrite: number;
  /** This process' CPU per write (µs): load generator, producers, workers. */
  nodeCpuUsPerWrite: number;
  jobsPerWrite: number;
  appliesPerWrite: number;
  /** Share of the applies a peer saw while the writes were still coming (1 = none held back). */
  appliedWhileWritingShare: number;
  /** The busiest commands per write (calls and Redis µs). */
  commands: Record<string, { calls: number; usec: number }>;
}

export async function costSince(admin: Redis, before: CostSnapshot, counts: WriteCounts): Promise<WriteCost> {
  const after = await costSnapshot(admin);
  const cpu = cpuSpent(before.cpu, after.cpu);
  const writes = Math.max(1, counts.writes);
  const commands = perOperation(before.commands, after.commands, writes, 10);
  return {
    writes: counts.writes,
    writesPerSec: round(counts.writesPerSec),
    redisCommandsPerWrite: commands['(total)']?.calls ?? Number.NaN,
    redisCpuUsPerWrite: round(cpu.redisUs / writes),
    nodeCpuUsPerWrite: round(cpu.processUs / writes),
    jobsPerWrite: round(counts.jobs / writes, 3),
    appliesPerWrite: round(counts.applies / writes, 3),
    appliedWhileWritingShare: counts.applies > 0 ? round(counts.appliesWhileWriting / counts.applies, 3) : Number.NaN,
    commands,
  };
}
