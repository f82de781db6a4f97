// The load tools in C (flood-sender.c, dns-sink.c), built on demand into .cache/load/
// (not committed), like the lab's musl client.
import { buildWhenStale } from '../lab/build-when-stale.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const LOAD_DIR = dirname(fileURLToPath(import.meta.url));
const CACHE_DIR = join(LOAD_DIR, '../../.cache/load');

export type LoadTool = 'flood-sender' | 'dns-sink';

/** Path of the tool's binary; (re)built with cc when missing or older than its source. */
export async function ensureLoadTool(tool: LoadTool, cacheDir = CACHE_DIR): Promise<string> {
  const src = join(LOAD_DIR, `${tool}.c`);
  return buildWhenStale(src, join(cacheDir, tool), async (tmp) => {
    const r = await execa('cc', ['-O2', '-Wall', '-Werror', '-o', tmp, src], { reject: false });
    if (r.exitCode !== 0)
      throw new Error(`building ${src} failed (apt-get install gcc): ${r.stderr || r.message}`);
  });
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
