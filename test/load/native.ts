// The load tools in C (flood-sender.c, dns-sink.c), built on demand into .cache/load/
// (not committed), like the lab's musl client.
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const LOAD_DIR = dirname(fileURLToPath(import.meta.url));
const CACHE_DIR = join(LOAD_DIR, '../../.cache/load');

export type LoadTool = 'flood-sender' | 'dns-sink';

/** Path of the tool's binary; (re)built with cc when missing or older than its source. */
export async function ensureLoadTool(tool: LoadTool, cacheDir = CACHE_DIR): Promise<string> {
  const src = join(LOAD_DIR, `${tool}.c`);
  const out = join(cacheDir, tool);
  const srcTime = (await stat(src)).mtimeMs;
  const outTime = await stat(out).then(
    (s) => s.mtimeMs,
    () => -1,
  );
  if (outTime >= srcTime) return out;
  await mkdir(cacheDir, { recursive: true });
  // A private name, then rename: two test files building at once must not run half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  const r = await execa('cc', ['-O2', '-Wall', '-Werror', '-o', tmp, src], { reject: false });
  if (r.exitCode !== 0)
    throw new Error(`building ${src} failed (apt-get install gcc): ${r.stderr || r.message}`);
  await rename(tmp, out);
  return out;
}

/** The flood sender's summary line. */
export interface FloodResult {
  sent: number;
  answered: number;
  lost: number;
  seconds: number;
  qps: number;
}

export function parseFloodResult(stdout: string): FloodResult {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const r = JSON.parse(line) as FloodResult;
    if (typeof r.sent === 'number' && typeof r.qps === 'number') return r;
  } catch (err) {
    throw new Error(`flood-sender printed no summary: ${JSON.stringify(stdout.slice(-300))}`, {
      cause: err,
    });
  }
  throw new Error(`flood-sender summary lacks sent/qps: ${line}`);
}
