/**
 * Prometheus metrics of one replica node, in a registry of its own (several nodes can run
 * in one process, as in `eventual-cache cluster`). Every series carries `node="<id>"`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly writes: Counter<string>;
  readonly deletes: Counter<string>;
  readonly merges: Counter<'outcome'>;
  readonly conflicts: Counter<string>;
  readonly transactionRetries: Counter<'reason'>;
  readonly replicationLag: Histogram<string>;
  readonly replicationJobs: Counter<'peer'>;
  readonly replicationKeys: Counter<'peer' | 'kind'>;
  readonly replicationFailures: Counter<'peer'>;
  readonly clockDrift: Counter<string>;
  readonly badRecords: Counter<'where' | 'reason'>;
  readonly backlog: Gauge<'peer' | 'state'>;

  constructor(nodeId: string, collectBacklog: () => Promise<Array<{ peer: string; state: string; count: number }>>) {
    this.registry.setDefaultLabels({ node: nodeId });
    const registers = [this.registry];
    this.writes = new Counter({ name: 'eventual_cache_writes_total', help: 'Local writes (puts) committed', registers });
    this.deletes = new Counter({ name: 'eventual_cache_deletes_total', help: 'Local deletes (tombstones) committed', registers });
    this.merges = new Counter({
      name: 'eventual_cache_merges_total',
      help: 'Records merged from peers, by outcome (applied, stale, duplicate)',
      labelNames: ['outcome'],
      registers,
    });
    this.conflicts = new Counter({
      name: 'eventual_cache_conflicts_total',
      help: 'Concurrent writes resolved by Last-Write-Wins at this node',
      registers,
    });
    this.transactionRetries = new Counter({
      name: 'eventual_cache_transaction_retries_total',
      help: 'Optimistic transactions retried: conflict (EXEC aborted by WATCH) or connection (socket replaced)',
      labelNames: ['reason'],
      registers,
    });
    this.replicationLag = new Histogram({
      name: 'eventual_cache_replication_lag_seconds',
      help: 'Time from a write committing on its origin to it being applied here (includes the configured delay)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.replicationJobs = new Counter({
      name: 'eventual_cache_replication_jobs_total',
      help: 'Replication jobs enqueued for each peer',
      labelNames: ['peer'],
      registers,
    });
    this.replicationKeys = new Counter({
      name: 'eventual_cache_replication_keys_total',
      help: 'Keys handed to each peer: enqueued, or coalesced into a job that had not started',
      labelNames: ['peer', 'kind'],
      registers,
    });
    this.replicationFailures = new Counter({
      name: 'eventual_cache_replication_failures_total',
      help: 'Failed attempts to apply a replication job from each peer (all are retried)',
      labelNames: ['peer'],
      registers,
    });
    this.clockDrift = new Counter({
      name: 'eventual_cache_clock_drift_events_total',
      help: 'Remote timestamps further ahead of the local clock than maxDriftMs',
      registers,
    });
    this.badRecords = new Counter({
      name: 'eventual_cache_bad_records_total',
      help: 'Unusable records (undecodable, or HLC past the record horizon): where=local moved to the quarantine list, where=peer skipped in a peer\'s job and listed in the poison list',
      labelNames: ['where', 'reason'],
      registers,
    });
    this.backlog = new Gauge({
      name: 'eventual_cache_replication_backlog',
      help: 'Replication jobs for each peer by state (waiting, delayed, active, failed), plus outbox entries not yet enqueued',
      labelNames: ['peer', 'state'],
      registers,
      async collect() {
        this.reset();
        try {
          for (const row of await collectBacklog()) this.set({ peer: row.peer, state: row.state }, row.count);
        } catch {
          /* Redis down: the gauge is left empty rather than failing the scrape */
        }
      },
    });
  }
}
