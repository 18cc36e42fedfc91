/**
 * `runBatch`, with a fake node: everything is validated before anything runs, consecutive
 * writes are handed over together (one group commit), reads run between them in order,
 * and one op failing leaves the others' outcomes alone.
 */
import { describe, expect, it } from 'vitest';
import { BatchInputError, runBatch, type BatchTarget } from '../../src/node/batch.js';
import { DEFAULT_LIMIT_OPTIONS } from '../../src/node/options.js';
import type { CacheRecord, RecordView } from '../../src/record/record.js';
import type { WriteOp } from '../../src/record/write.js';

function fakeNode(options: { failKey?: string } = {}) {
  const log: string[] = [];
  const data = new Map<string, CacheRecord>();
  const target: BatchTarget = {
    limits: { ...DEFAULT_LIMIT_OPTIONS, maxBatchOps: 5 },
    async get(key) {
      log.push(`get ${key}`);
      const r = data.get(key);
      return r && !r.deleted ? ({ key, value: JSON.parse(r.valueJson ?? 'null'), hlc: r.hlc, origin: r.origin, version: r.version } as RecordView) : undefined;
    },
    writeMany(ops: readonly WriteOp[]) {
      log.push(`write ${ops.map((o) => `${o.kind}:${o.key}`).join(',')}`);
      return ops.map(async (op) => {
        if (op.key === options.failKey) throw new Error('boom');
        const record: CacheRecord =
          op.kind === 'put'
            ? { key: op.key, hlc: 'h', origin: 'A', version: { A: 1 }, written: { A: 1 }, deleted: false, valueJson: op.valueJson }
            : { key: op.key, hlc: 'h', origin: 'A', version: { A: 1 }, written: { A: 1 }, deleted: true };
        data.set(op.key, record);
        return record;
      });
    },
  };
  return { target, log };
}

describe('runBatch', () => {
  it('should hand consecutive writes over together and run reads in order between them', async () => {
    const { target, log } = fakeNode();
    const out = await runBatch(
      [
        { op: 'put', key: 'a', value: 1 },
        { op: 'put', key: 'b', value: 2 },
        { op: 'get', key: 'a' },
        { op: 'delete', key: 'a' },
        { op: 'get', key: 'a' },
      ],
      target,
    );
    expect(log).toEqual(['write put:a,put:b', 'get a', 'write delete:a', 'get a']);
    expect(out.map((o) => o.op)).toEqual(['put', 'put', 'get', 'delete', 'get']);
    expect(out[2]).toMatchObject({ op: 'get', key: 'a', record: { value: 1 } });
    expect(out[4]).toEqual({ op: 'get', key: 'a', record: undefined });
  });

  it('should run nothing when any op is invalid, naming it', async () => {
    for (const bad of [{ op: 'put', key: '', value: 1 }, { op: 'put', key: 'k' }, { op: 'put', key: 'k', value: 1, ttlMs: 0 }, { op: 'incr', key: 'k' }]) {
      const { target, log } = fakeNode();
      const error = await runBatch([{ op: 'put', key: 'ok', value: 1 }, bad as never], target).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BatchInputError);
      expect((error as BatchInputError).index).toBe(1);
      expect((error as BatchInputError).field).toMatch(/^ops\.1\./);
      expect(log).toEqual([]);
    }
  });

  it('should refuse more than maxBatchOps ops', async () => {
    const { target, log } = fakeNode();
    const ops = Array.from({ length: 6 }, (_, i) => ({ op: 'get' as const, key: `k${i}` }));
    await expect(runBatch(ops, target)).rejects.toMatchObject({ field: 'ops', index: -1 });
    expect(log).toEqual([]);
  });

  it('should report a failed op as its own outcome and keep the others', async () => {
    const { target } = fakeNode({ failKey: 'bad' });
    const out = await runBatch(
      [
        { op: 'put', key: 'good', value: 1 },
        { op: 'put', key: 'bad', value: 2 },
      ],
      target,
    );
    expect(out[0]).toMatchObject({ op: 'put', record: { key: 'good' } });
    expect(out[1]).toMatchObject({ op: 'put', error: expect.any(Error) });
  });

  it('should fail the remaining ops, not the batch, when writes cannot be handed over', async () => {
    const { target } = fakeNode();
    const closed = { ...target, writeMany: () => { throw new Error('closed'); } };
    const out = await runBatch([{ op: 'delete', key: 'x' }, { op: 'put', key: 'y', value: 1 }], closed);
    expect(out.every((o) => 'error' in o)).toBe(true);
  });
});
