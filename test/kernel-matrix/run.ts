// CLI of the kernel-matrix lane (see README.md):
//   node --import tsx test/kernel-matrix/run.ts [6.12 6.1 5.10]
// Exit status 0 only when every kernel passes. Environment: KM_JOBS (2), KM_TIMEOUT (300 s per
// VM), KM_MEMORY (1G), KM_ACCEL (auto|kvm|tcg), KM_CACHE_DIR, KM_REFRESH=1 (apt-get update now).
import { KERNELS, kernelSpec, type KernelId } from './kernels.js';
import { runLane } from './lane.js';

const ids = (process.argv.length > 2 ? process.argv.slice(2) : KERNELS.map((k) => k.id)).map(
  (a) => kernelSpec(a).id as KernelId,
);
const num = (v: string | undefined, dflt: number) => (v ? Number(v) : dflt);
const result = await runLane({
  kernels: ids,
  jobs: num(process.env.KM_JOBS, 2),
  timeoutSeconds: num(process.env.KM_TIMEOUT, 300),
  memory: process.env.KM_MEMORY ?? '1G',
  ...(process.env.KM_CACHE_DIR ? { cacheDir: process.env.KM_CACHE_DIR } : {}),
  ...(process.env.KM_REFRESH === '1' ? { resolveMaxAgeMs: 0 } : {}),
});
console.log(
  `kernel matrix: ${result.pass ? 'PASS' : 'FAIL'} in ${result.seconds.toFixed(1)} s (accel ${result.accel})`,
);
process.exitCode = result.pass ? 0 : 1;
