/**
 * How a node reports unusable records (see `store/quarantine.ts`): each one increments
 * `eventual_cache_bad_records_total{where,reason}` and is emitted as a
 * {@link BadRecordError} naming the key on the node's `'error'` path (the CLI logs it);
 * the durable counts behind `/cluster` live in the node's Redis.
 */
import type { Redis } from 'ioredis';
import { BadRecordError } from '../errors/index.js';
import type { KeyBuilder } from '../store/keys.js';
import { recordPoisoned, type BadRecord } from '../store/quarantine.js';
import type { NodeMetrics } from './metrics.js';

export class BadRecordReporter {
  private readonly keys: KeyBuilder;
  private readonly redis: Redis;
  private readonly metrics: NodeMetrics;
  private readonly report: (error: BadRecordError) => void;

  constructor(keys: KeyBuilder, redis: Redis, metrics: NodeMetrics, report: (error: BadRecordError) => void) {
    this.keys = keys;
    this.redis = redis;
    this.metrics = metrics;
    this.report = report;
  }

  /** A record of this node's store was moved to the quarantine list. */
  quarantined(bad: BadRecord): void {
    this.metrics.badRecords.inc({ where: 'local', reason: bad.reason });
    this.report(new BadRecordError(bad.key, bad.redisKey, bad.reason, 'local', bad.detail, this.keys.quarantine(this.keys.partition(bad.key))));
  }

  /** Records that a peer's job (or resync page) carried were skipped: list them, then report. */
  async poisoned(from: string, bad: readonly BadRecord[], jobId: string | undefined): Promise<void> {
    await recordPoisoned(this.redis, this.keys, bad, from, jobId, Date.now());
    for (const b of bad) {
      this.metrics.badRecords.inc({ where: 'peer', reason: b.reason });
      this.report(new BadRecordError(b.key, b.redisKey, b.reason, 'peer', b.detail, this.keys.poison));
    }
  }
}
