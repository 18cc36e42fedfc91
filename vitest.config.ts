import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start BullMQ workers and private redis-servers; two files at a
    // time keep a 2-core machine responsive and the timings honest.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
