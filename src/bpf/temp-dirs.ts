// The Bpftool module's scratch directories (dump output, batch files, data_in) on tmpfs. Each
// is removed when its call ends; a process killed mid-call (SIGKILL, OOM) cannot do that, so
// their names carry the owner's pid and the next Bpftool of any process removes those whose
// owner is gone. Pure apart from sweepStaleTempDirs.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const PREFIX = 'dnsrace-bpftool-';

/** mkdtemp prefix for this process's scratch directories. */
export function tempDirPrefix(pid: number = process.pid): string {
  return `${PREFIX}${pid}-`;
}

/** Names of scratch directories whose owning process no longer exists. */
export function staleTempDirs(names: readonly string[], alive: (pid: number) => boolean): string[] {
  return names.filter((n) => {
    const m = /^dnsrace-bpftool-(\d+)-/.exec(n);
    return m !== null && !alive(Number(m[1]));
  });
}

/** Whether a pid names a live process (in this pid namespace). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the scratch directories left in root by processes that died; returns their names. */
export async function sweepStaleTempDirs(root: string): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  const stale = staleTempDirs(names, pidAlive);
  await Promise.all(stale.map((n) => rm(join(root, n), { recursive: true, force: true })));
  return stale;
}
