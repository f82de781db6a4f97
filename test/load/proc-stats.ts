// What the exporter process holds, read from /proc (root injectable for tests): resident
// memory, open descriptors, child processes. The exporter is found by a unique argument
// (its --bpffs-dir), so that no test needs a handle on its child process.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ProcSample {
  /** VmRSS in bytes. */
  rssBytes: number;
  /** VmHWM (peak RSS) in bytes. */
  peakRssBytes: number;
  fds: number;
  /** Direct children (bpftool calls in flight, the event pipe). */
  children: number;
}

/** kB value of one `/proc/<pid>/status` field, in bytes. */
export function statusField(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`/proc status has no ${field} line`);
  return Number(m[1]) * 1024;
}

/** PIDs whose argv contains every one of `args` (argv elements, exact). */
export async function findPids(args: readonly string[], procRoot = '/proc'): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir(procRoot)) {
    if (!/^\d+$/.test(d)) continue;
    const argv = await readFile(join(procRoot, d, 'cmdline'), 'utf8').then(
      (s) => s.split('\0'),
      () => [] as string[],
    );
    if (args.every((a) => argv.includes(a))) out.push(Number(d));
  }
  return out;
}

/** The one exporter process started with `--bpffs-dir <bpffsDir>` (node running src/main.ts). */
export async function exporterPid(bpffsDir: string, procRoot = '/proc'): Promise<number> {
  const pids = [];
  for (const pid of await findPids(['--bpffs-dir', bpffsDir], procRoot)) {
    const comm = (
      await readFile(join(procRoot, String(pid), 'comm'), 'utf8').catch(() => '')
    ).trim();
    if (comm === 'node') pids.push(pid);
  }
  if (pids.length !== 1)
    throw new Error(`expected one exporter with --bpffs-dir ${bpffsDir}, found ${pids.length}`);
  return pids[0]!;
}

export async function sampleProc(pid: number, procRoot = '/proc'): Promise<ProcSample> {
  const dir = join(procRoot, String(pid));
  let status: string;
  try {
    status = await readFile(join(dir, 'status'), 'utf8');
  } catch (err) {
    throw new Error(`exporter ${pid} is gone (${dir}/status unreadable)`, { cause: err });
  }
  const fds = (await readdir(join(dir, 'fd'))).length;
  const children = (
    await readFile(join(dir, 'task', String(pid), 'children'), 'utf8').catch(() => '')
  )
    .trim()
    .split(/\s+/)
    .filter(Boolean).length;
  return {
    rssBytes: statusField(status, 'VmRSS'),
    peakRssBytes: statusField(status, 'VmHWM'),
    fds,
    children,
  };
}

export const MiB = 1024 * 1024;

export interface ProcSampler {
  stop(): Promise<ProcSample[]>;
}

/** Samples the process every `intervalMs` until stopped (a vanished process ends the series). */
export function startProcSampler(pid: number, intervalMs = 500, procRoot = '/proc'): ProcSampler {
  const out: ProcSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        out.push(await sampleProc(pid, procRoot));
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return out;
    },
  };
}
