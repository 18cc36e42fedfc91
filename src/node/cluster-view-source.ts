/**
 * Adapts a {@link ReplicaNode} to what its {@link ClusterView} reads, so the view needs
 * nothing of the node's internals beyond two connections.
 */
import { keysFor } from '../store/keys.js';
import type { Redis } from 'ioredis';
import type { ClusterViewSource } from './cluster-view.js';
import type { ReplicaNode } from './replica-node.js';

export function clusterViewSource(node: ReplicaNode, redis: Redis, peerReader: (id: string) => Redis | undefined): ClusterViewSource {
  return {
    id: node.id,
    prefix: node.options.prefix,
    peerIds: node.options.peers.map((p) => p.id),
    keysOf: (id) => (id === node.id ? node.keys : keysFor(node.options.prefix, id, node.options.peers.find((p) => p.id === id)?.redis ?? '', node.options.clusterPartitions)),
    redis,
    peerReader,
    status: () => node.status(),
    async lagHistogram() {
      const metric = await node.metrics.replicationLag.get();
      const buckets = metric.values.filter((v) => v.metricName?.endsWith('_bucket'));
      const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
      return { bounds, counts: buckets.map((b) => b.value) };
    },
    async conflictCount() {
      return (await node.metrics.conflicts.get()).values[0]?.value ?? 0;
    },
    async keysWithPrefix(prefix, limit) {
      return (await node.list({ prefix, limit })).items.map((i) => i.key);
    },
  };
}
