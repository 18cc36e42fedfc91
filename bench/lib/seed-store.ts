/**
 * Fills a node's database straight through a pipeline, as its write path would have left
 * it: the records `p-0 … p-(count-1)`, their digest (computed by the pure module) and the
 * node's start marker. Large stores load in seconds this way, and the node then starts as
 * it would after a restart on existing data (no resync, no digest rebuild).
 */
import { Redis } from 'ioredis';
import { digestShape } from '../../src/digest/digest.js';
import { encodeRecord, type CacheRecord } from '../../src/record/record.js';
import { DigestSeeder } from '../../src/store/digest-store.js';
import type { KeyBuilder } from '../../src/store/keys.js';
import { DEFAULT_STORE_OPTIONS } from '../../src/store/record-store.js';

const CHUNK = 1_000;
const PIPELINES_IN_FLIGHT = 16;

/** The key of the `k`-th seeded record. */
export function seededKey(k: number): string {
  return `p-${k}`;
}

/** Writes `count` records made by `recordOf` into `keys`' namespace of the Redis at `url`. */
export async function seedStore(url: string, keys: KeyBuilder, count: number, recordOf: (key: string, k: number) => CacheRecord): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await redis.set(keys.meta, JSON.stringify({ firstStart: Date.now() }));
    const seeder = new DigestSeeder(keys, digestShape(DEFAULT_STORE_OPTIONS.digestLeaves));
    const inFlight: Array<Promise<unknown>> = [];
    for (let start = 0; start < count; start += CHUNK) {
      const args: string[] = [];
      const stored: Array<[string, string]> = [];
      for (let k = start; k < Math.min(count, start + CHUNK); k++) {
        const key = seededKey(k);
        const raw = encodeRecord(recordOf(key, k));
        args.push(keys.record(key), raw);
        stored.push([key, raw]);
      }
      const pipeline = redis.pipeline().mset(...args);
      seeder.add(pipeline, stored);
      inFlight.push(pipeline.exec());
      if (inFlight.length >= PIPELINES_IN_FLIGHT) await Promise.all(inFlight.splice(0));
    }
    await Promise.all(inFlight);
    const last = redis.pipeline();
    seeder.finish(last);
    await last.exec();
  } finally {
    redis.disconnect();
  }
}
