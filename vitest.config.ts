import { defineConfig } from 'vitest/config';

// Two lanes: unit tests need no root and run in parallel; e2e tests drive the real kernel
// (netns lab, BPF programs) and run one file at a time so that labs do not compete for CPU.
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-line-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/kernel-matrix/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
