// The kernel-matrix lane (test/kernel-matrix/README.md): boots Debian's 6.12, 6.1 and 5.10
// kernels under qemu, runs dnsrace's loader and programs in each, and checks every kernel
// against the expectation table in test/kernel-matrix/expectations.ts.
// Needs root, Debian mirror access on a cold cache, and qemu-system-x86 busybox-static kmod
// cpio xz-utils zstd gcc (the lane fails naming what is missing). About 1 min warm, 2 cold.
import { beforeAll, describe, expect, it } from 'vitest';
import { EXPECTATIONS } from '../kernel-matrix/expectations.js';
import { KERNELS } from '../kernel-matrix/kernels.js';
import { runLane, type LaneResult } from '../kernel-matrix/lane.js';

const LANE_TIMEOUT_MS = 10 * 60_000;
let lane: LaneResult;

beforeAll(async () => {
  expect(process.getuid?.(), 'the kernel matrix needs root (apt-get download, qemu 9p of /)').toBe(
    0,
  );
  lane = await runLane({
    kernels: KERNELS.map((k) => k.id),
    // Only the verdicts: the per-step progress is in .cache/kernel-matrix/logs/.
    log: (line) => {
      if (!line.startsWith('[')) console.log(line);
    },
  });
}, LANE_TIMEOUT_MS);

describe('kernel matrix', () => {
  it.each(KERNELS.map((k) => [k.id, EXPECTATIONS[k.id].dropMode] as const))(
    'Debian %s: DNS programs pair, drop attribution mode %s, counts as expected',
    (id) => {
      const outcome = lane.outcomes.find((o) => o.id === id);
      expect(outcome, `no outcome for kernel ${id}`).toBeDefined();
      // The failures name every deviation; the console log path is in the result line.
      expect(outcome!.verdict.failures, outcome!.line).toEqual([]);
      expect(outcome!.verdict.pass).toBe(true);
    },
  );
});
