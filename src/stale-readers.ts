// An exporter killed outside a container (SIGKILL, OOM kill) leaves its `bpftool map
// event_pipe` reader behind, reparented: a new reader takes the perf stream over, so the old
// one idles forever, holding dns_events and its per-CPU buffers. Start-up stops such readers of
// our own pins. (In the DaemonSet the exporter is PID 1 of its container, and its children die
// with it.)
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Whether argv is a bpftool event_pipe reading a pin under bpffsDir. */
export function isEventReaderOf(argv: readonly string[], bpffsDir: string): boolean {
  const i = argv.indexOf('event_pipe');
  if (i < 1 || argv[i - 1] !== 'map' || argv[i + 1] !== 'pinned') return false;
  const pin = argv[i + 2];
  const dir = bpffsDir.replace(/\/+$/, '');
  return pin !== undefined && pin.startsWith(`${dir}/`);
}

/** The parent PID from the text of /proc/<pid>/stat (the command may contain spaces and ')'). */
export function parentPidOfStat(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

export interface StaleReaderOptions {
  procRoot?: string;
  /** Our own PID: our children are never stale. */
  self?: number;
  kill?: (pid: number, signal: NodeJS.Signals) => void;
}

/** Kills event_pipe readers of pins under bpffsDir that are not our children; returns their PIDs. */
export async function stopStaleEventReaders(
  bpffsDir: string,
  o: StaleReaderOptions = {},
): Promise<number[]> {
  const proc = o.procRoot ?? '/proc';
  const self = o.self ?? process.pid;
  const kill = o.kill ?? ((pid, signal) => process.kill(pid, signal));
  const stopped: number[] = [];
  for (const entry of await readdir(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const [cmdline, stat] = await Promise.all([
      readFile(path.join(proc, entry, 'cmdline'), 'utf8').catch(() => ''),
      readFile(path.join(proc, entry, 'stat'), 'utf8').catch(() => ''),
    ]);
    const argv = cmdline.split('\0').filter((a) => a !== '');
    if (!isEventReaderOf(argv, bpffsDir) || parentPidOfStat(stat) === self) continue;
    try {
      kill(Number(entry), 'SIGKILL');
      stopped.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return stopped;
}
