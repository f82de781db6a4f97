// Native test helpers compiled on demand into .cache (not committed): rebuilt only when the
// binary is missing or older than its source.
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Returns out, first running build(tmp) when out is missing or older than src. build writes a
 * private name that is then renamed: two test files building at once never run half a file.
 */
export async function buildWhenStale(
  src: string,
  out: string,
  build: (tmp: string) => Promise<void>,
): Promise<string> {
  const srcTime = (await stat(src)).mtimeMs;
  const outTime = await stat(out).then(
    (s) => s.mtimeMs,
    () => -1,
  );
  if (outTime >= srcTime) return out;
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await build(tmp);
  await rename(tmp, out);
  return out;
}
