import { defineConfig } from 'vitest/config';

/**
 * Files that load the whole machine (a Redis Cluster of 6 servers, seven node processes):
 * they run after every other file, so the timing premises of the others (a burst fits one
 * delay window, a 2 s burst writes a meaningful load) never share the 2 cores with them.
 */
const HEAVY = ['test/integration/bench-smoke.test.ts', 'test/integration/cluster-*.test.ts', 'test/integration/redis-cluster-harness.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start BullMQ workers and private redis-servers; two files at a
    // time keep a 2-core machine responsive and the timings honest.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: HEAVY, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'heavy', include: HEAVY, sequence: { groupOrder: 1 } } },
    ],
  },
});
