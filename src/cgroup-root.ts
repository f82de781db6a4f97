// Where the DNS programs attach by default: the node's kubepods cgroup (systemd driver:
// kubepods.slice, cgroupfs driver: kubepods), so they see every pod and nothing else;
// without one (a plain host), the cgroup2 root.
import { join } from 'node:path';

export const KUBEPODS_CANDIDATES = ['kubepods.slice', 'kubepods'] as const;

export function chooseCgroupRoot(mountPoint: string, isDirectory: (p: string) => boolean): string {
  for (const name of KUBEPODS_CANDIDATES) {
    const p = join(mountPoint, name);
    if (isDirectory(p)) return p;
  }
  return mountPoint;
}
