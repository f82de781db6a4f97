// Synthetic pods for the scrape benchmark: real cgroup2 directories in kubelet's systemd layout
// (their inodes are the cgroup ids the exporter resolves) and kubelet-style pod log directories.
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface SyntheticPod {
  namespace: string;
  name: string;
  cgroupDir: string;
  cgroupId: bigint;
}

export function podUid(i: number): string {
  return `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

/** Pods from..to-1, spread over 10 namespaces. */
export async function createSyntheticPods(
  cgroupRoot: string,
  podLogDir: string,
  from: number,
  to: number,
): Promise<SyntheticPod[]> {
  const pods: SyntheticPod[] = [];
  for (let i = from; i < to; i++) {
    const uid = podUid(i);
    const namespace = `bench-${i % 10}`;
    const name = `pod-${i}`;
    const cgroupDir = path.join(
      cgroupRoot,
      'kubepods.slice',
      'kubepods-besteffort.slice',
      `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`,
      `cri-containerd-${i.toString(16).padStart(64, '0')}.scope`,
    );
    await mkdir(cgroupDir, { recursive: true });
    await mkdir(path.join(podLogDir, `${namespace}_${name}_${uid}`, 'app'), { recursive: true });
    const cgroupId = (await stat(cgroupDir, { bigint: true })).ino;
    pods.push({ namespace, name, cgroupDir, cgroupId });
  }
  return pods;
}
