/**
 * The group-commit scheduler: which writes share a batch, how many batches commit at once.
 * The commit function here records its batches and settles when the test says so.
 */
import { describe, expect, it } from 'vitest';
import { WriteQueue, type QueuedWrite } from '../../src/store/write-queue.js';

interface Committed {
  partition: number;
  keys: string[];
  done: () => void;
}

function queueOf(partitions: number, slots: number, maxBatch = 100, minConcurrentBatch = 1) {
  const commits: Committed[] = [];
  let open = 0;
  let mostOpenPerPartition = 0;
  const openBy = new Map<number, number>();
  const queue = new WriteQueue<QueuedWrite>({
    partitions,
    // Keys name their partition: "p<partition>-<n>".
    partitionOf: (key) => Number(key.slice(1, key.indexOf('-'))),
    maxBatch,
    minConcurrentBatch,
    slots: () => slots,
    commit: (partition, batch) =>
      new Promise<void>((resolve) => {
        open += 1;
        openBy.set(partition, (openBy.get(partition) ?? 0) + 1);
        mostOpenPerPartition = Math.max(mostOpenPerPartition, openBy.get(partition) ?? 0);
        commits.push({
          partition,
          keys: batch.map((w) => w.op.key),
          done: () => {
            open -= 1;
            openBy.set(partition, (openBy.get(partition) ?? 1) - 1);
            resolve();
          },
        });
      }),
  });
  const put = (key: string) => queue.push({ op: { kind: 'put', key, valueJson: '1' } });
  return { queue, commits, put, open: () => open, mostOpenPerPartition: () => mostOpenPerPartition };
}

/** Lets the queue's `finally` callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('WriteQueue', () => {
  it('should commit a single partition on every slot at once, in arrival order', async () => {
    const q = queueOf(1, 2, 2);
    for (let i = 0; i < 5; i++) q.put(`p0-${i}`);
    q.queue.pump();
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-0', 'p0-1'], ['p0-2', 'p0-3']]);
    expect(q.queue.size).toBe(5);
    q.commits[0]?.done();
    await settle();
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-0', 'p0-1'], ['p0-2', 'p0-3'], ['p0-4']]);
    expect(q.queue.size).toBe(3);
  });

  it('should commit one batch per partition at a time when there are several, and let the waiting writes share the next', async () => {
    const q = queueOf(3, 6);
    q.put('p0-a');
    q.queue.pump();
    // While p0's batch commits, more p0 writes arrive: they wait, whatever the free slots.
    for (const key of ['p0-b', 'p1-a', 'p0-c', 'p2-a']) {
      q.put(key);
      q.queue.pump();
    }
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-a'], ['p1-a'], ['p2-a']]);
    q.commits[0]?.done();
    await settle();
    expect(q.commits[3]).toMatchObject({ partition: 0, keys: ['p0-b', 'p0-c'] });
    for (const c of q.commits.slice(1)) c.done();
    await settle();
    expect(q.mostOpenPerPartition()).toBe(1);
    expect(q.queue.size).toBe(0);
  });

  it('should keep the number of committing batches within the slots, and let partitions take turns', async () => {
    const q = queueOf(4, 2);
    for (const key of ['p0-a', 'p1-a', 'p2-a', 'p3-a']) q.put(key);
    q.queue.pump();
    expect(q.open()).toBe(2);
    q.put('p0-b');
    q.commits[0]?.done();
    await settle();
    // p2 waited longer than p0's new write: it goes first.
    expect(q.commits.map((c) => c.partition)).toEqual([0, 1, 2]);
    q.commits[1]?.done();
    await settle();
    expect(q.commits.map((c) => c.partition)).toEqual([0, 1, 2, 3]);
    q.commits[2]?.done();
    await settle();
    expect(q.commits.map((c) => c.partition)).toEqual([0, 1, 2, 3, 0]);
    expect(q.open()).toBe(2);
  });

  it('should start a batch beside a committing one only once it holds minConcurrentBatch writes', async () => {
    const q = queueOf(1, 2, 100, 3);
    q.put('p0-a');
    q.queue.pump();
    // A lone write with nothing committing goes at once.
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-a']]);
    for (const key of ['p0-b', 'p0-c']) {
      q.put(key);
      q.queue.pump();
    }
    // Two waiting beside a committing batch: not worth a transaction of their own yet.
    expect(q.commits).toHaveLength(1);
    q.put('p0-d');
    q.queue.pump();
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-a'], ['p0-b', 'p0-c', 'p0-d']]);
    q.put('p0-e');
    q.queue.pump();
    expect(q.commits).toHaveLength(2);
    // The first batch ends, but the second still commits: p0-e still needs company.
    q.commits[0]?.done();
    await settle();
    expect(q.commits).toHaveLength(2);
    // Nothing commits any more: it goes alone.
    q.commits[1]?.done();
    await settle();
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-a'], ['p0-b', 'p0-c', 'p0-d'], ['p0-e']]);
  });

  it('should never let a fuller partition go ahead of one that waited longer', async () => {
    const q = queueOf(3, 6, 100, 3);
    q.put('p0-a');
    q.queue.pump();
    q.put('p1-a');
    q.queue.pump();
    for (const key of ['p2-a', 'p2-b', 'p2-c']) {
      q.put(key);
      q.queue.pump();
    }
    // p2 holds enough for a batch of its own, but p1 is first in turn and holds one write.
    expect(q.commits.map((c) => c.partition)).toEqual([0]);
    q.commits[0]?.done();
    await settle();
    // Nothing commits: p1 starts whatever it holds, then p2 (worth it) beside it.
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-a'], ['p1-a'], ['p2-a', 'p2-b', 'p2-c']]);
  });

  it('should cap the threshold at maxBatch', async () => {
    const q = queueOf(1, 2, 2, 16);
    for (let i = 0; i < 4; i++) q.put(`p0-${i}`);
    q.queue.pump();
    expect(q.commits.map((c) => c.keys)).toEqual([['p0-0', 'p0-1'], ['p0-2', 'p0-3']]);
  });
});
