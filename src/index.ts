/**
 * eventual-cache: a Redis-backed replicated key-value cache. Writes commit locally and
 * return at once; BullMQ delayed jobs carry them to the peers, which merge them with
 * Last-Write-Wins over hybrid logical clocks inside optimistic Redis transactions.
 */
export { ReplicaNode } from './node/replica-node.js';
export type {
  PutOptions,
  DeleteResult,
  ListOptions,
  ListPage,
  ReplicatedEvent,
  ConflictEvent,
  DriftEvent,
  ReplicaNodeEvents,
} from './node/replica-node.js';
export type { PeerStatus, ClusterStatus, BacklogCounts } from './node/status.js';
export { BatchInputError } from './node/batch.js';
export type { BatchOp, BatchOutcome } from './node/batch.js';
export { ClusterView, DEFAULT_CLUSTER_VIEW_OPTIONS } from './node/cluster-view.js';
export type { ClusterViewOptions, NodeVitals, ViewSnapshot, ViewNode, ViewRow, ViewCell, LagSummary } from './node/cluster-view.js';
export { DEFAULT_LIMIT_OPTIONS } from './node/options.js';
export type { ReplicaNodeOptions, PeerOptions, LimitOptions } from './node/options.js';
export { DEFAULT_REPLICATION_OPTIONS } from './replication/options.js';
export type { ReplicationOptions, DelaySpec } from './replication/options.js';
export { DEFAULT_STORE_OPTIONS } from './store/record-store.js';
export type { StoreOptions, ConflictEntry } from './store/record-store.js';
export { HybridLogicalClock, DEFAULT_CLOCK_OPTIONS } from './clock/hlc.js';
export type { ClockOptions } from './clock/hlc.js';
export { formatTimestamp, parseTimestamp, compareTimestamps, compareHlc } from './clock/timestamp.js';
export type { Timestamp } from './clock/timestamp.js';
export { VersionVector } from './clock/version-vector.js';
export { merge } from './record/merge.js';
export type { MergeOutcome, MergeResult, Conflict } from './record/merge.js';
export type { CacheRecord, RecordView, JsonValue } from './record/record.js';
export type { RedisTarget } from './store/connections.js';
export * from './errors/index.js';
export { createApp } from './http/app.js';
export { DEFAULT_HTTP_OPTIONS } from './http/options.js';
export type { HttpOptions } from './http/options.js';
export { openApiDocument } from './http/openapi.js';
export { startNodeServer } from './http/server.js';
export type { NodeServerOptions, NodeServer } from './http/server.js';
