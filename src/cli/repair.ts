/**
 * `eventual-cache repair --config FILE`: one anti-entropy exchange for every ordered pair
 * of nodes of the config, straight against their Redis databases, printing what each
 * pair repaired. It starts no replication workers, so it can run beside the nodes (or
 * while they are stopped): it merges through the same pure merge and optimistic
 * transactions as the nodes do.
 */
import { HybridLogicalClock } from '../clock/hlc.js';
import { dropCollected } from '../anti-entropy/collector.js';
import { exchange, type RoundReport } from '../anti-entropy/exchange.js';
import { resolveAntiEntropyOptions } from '../anti-entropy/options.js';
import { closeRedis, connect, createRedis } from '../store/connections.js';
import { keysFor } from '../store/keys.js';
import { RecordStore } from '../store/record-store.js';
import { toNodeOptions, type ClusterConfig } from './config.js';
import { resolveNodeOptions } from '../node/options.js';

/** Runs the rounds; resolves with every pair's report (`peer` is the source, `node` the one repaired). */
export async function repairCluster(config: ClusterConfig, out: (line: string) => void): Promise<Array<RoundReport & { node: string }>> {
  const reports: Array<RoundReport & { node: string }> = [];
  for (const node of config.nodes) await foldIfStopped(config, node.id, out);
  for (const node of config.nodes) {
    const o = resolveNodeOptions(toNodeOptions(config, node.id));
    const keys = keysFor(o.prefix, o.id, o.redis, o.clusterPartitions);
    const store = new RecordStore(o.redis, keys, new HybridLogicalClock(o.id, o.clock), o.store);
    await store.connect();
    try {
      if (!store.digest) {
        out(`${o.id}: digests are switched off (antiEntropy.leaves = 0); skipped\n`);
        continue;
      }
      for (const peer of o.peers) {
        const reader = createRedis(peer.redis, 'command', `${o.prefix}:${o.id}:repair-${peer.id}`);
        try {
          await connect(reader, peer.redis, o.store.connectTimeoutMs);
          out(`${o.id} ← ${peer.id}: comparing digests…\n`);
          const report = await exchange(
            { peerId: peer.id, local: { redis: store.redis, keys }, remote: { redis: reader, keys: keysFor(o.prefix, peer.id, peer.redis, o.clusterPartitions) }, shape: store.digest },
            resolveAntiEntropyOptions({ ...o.antiEntropy, stepPauseMs: 0 }),
            async (records) => {
              const kept = await dropCollected(store.redis, keys, records, Date.now(), o.store.tombstoneRetentionMs);
              return (await store.applyRemote(kept)).filter((r) => r.result.changed).length;
            },
            { onProgress: (pulled, total) => out(`${o.id} ← ${peer.id}: ${pulled}/${total} differing keys pulled\n`) },
          );
          reports.push({ ...report, node: o.id });
          out(`${o.id} ← ${peer.id}: ${describe(report)}\n`);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          reports.push({ node: o.id, peer: peer.id, startedAt: Date.now(), durationMs: 0, result: 'failed', differingLeaves: 0, confirmedLeaves: 0, differingKeys: 0, confirmedKeys: 0, keysRepaired: 0, bytesRead: 0, error: message });
          out(`${o.id} ← ${peer.id}: failed: ${message}\n`);
        } finally {
          await closeRedis(reader);
        }
      }
    } finally {
      await store.close();
    }
  }
  return reports;
}

/**
 * Folds the digest log of a node that is not running (its heartbeat is older than three
 * intervals), so its digest covers its last writes. A running node folds its own log every
 * second; folding it from here as well could double-count, so it is left alone.
 */
async function foldIfStopped(config: ClusterConfig, id: string, out: (line: string) => void): Promise<void> {
  const o = resolveNodeOptions(toNodeOptions(config, id));
  const keys = keysFor(o.prefix, o.id, o.redis, o.clusterPartitions);
  const store = new RecordStore(o.redis, keys, new HybridLogicalClock(o.id, o.clock), o.store);
  await store.connect();
  try {
    const heartbeat = await store.redis.hget(keys.digestMeta, 'heartbeatAt');
    const running = heartbeat !== null && Date.now() - Number(heartbeat) < 3 * o.antiEntropy.intervalMs;
    if (!store.folder || running) return;
    const folded = await store.folder.fold();
    if (folded > 0) out(`${o.id}: folded ${folded} pending digest changes (node not running)\n`);
  } finally {
    await store.close();
  }
}

function describe(r: RoundReport): string {
  const cost = `${r.bytesRead} bytes read, ${r.durationMs} ms`;
  if (r.result === 'equal') return `equal (${r.differingLeaves > 0 ? `${r.differingLeaves} leaves differed for a moment, ` : ''}${cost})`;
  if (r.result === 'failed' || r.result === 'incompatible') return `${r.result}: ${r.error ?? ''}`;
  return `${r.result}: ${r.confirmedKeys} differing keys, ${r.keysRepaired} repaired (${cost})`;
}
