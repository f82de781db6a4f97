import { readFile, readdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from './exec.js';

/**
 * The cgroup2 mount point from a /proc/<pid>/mountinfo text. Field 5 is the mount point,
 * the fstype follows the " - " separator. Escaped characters (\040) are decoded.
 */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post || post.split(' ')[0] !== 'cgroup2') continue;
    const mountPoint = pre.split(' ')[4];
    if (mountPoint)
      return mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      );
  }
  return undefined;
}

export async function cgroup2Mount(procRoot = '/proc'): Promise<string> {
  const file = join(procRoot, 'self/mountinfo');
  const mount = findCgroup2Mount(await readFile(file, 'utf8'));
  if (!mount)
    throw new Error(
      `no cgroup2 mount in ${file}: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)`,
    );
  return mount;
}

/** Every directory of a cgroup subtree, deepest first (the order rmdir needs). */
export async function cgroupTreeDepthFirst(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) if (e.isDirectory()) await walk(join(d, e.name));
    out.push(d);
  };
  await walk(dir);
  return out;
}

export async function cgroupProcs(dir: string): Promise<number[]> {
  try {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8');
    return text.split('\n').filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The cgroup id that bpf_skb_cgroup_id() and bpf_get_current_cgroup_id() report: the dir's inode. */
export async function cgroupId(dir: string): Promise<bigint> {
  return (await stat(dir, { bigint: true })).ino;
}

/** rmdir with retries: a killed process leaves its cgroup a moment after the kill. */
export async function removeCgroupDir(dir: string, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      if (code !== 'EBUSY' || Date.now() > deadline) {
        throw new Error(
          `cannot remove cgroup ${dir} (procs: ${(await cgroupProcs(dir)).join(',')})`,
          { cause: err },
        );
      }
      await sleep(20);
    }
  }
}
