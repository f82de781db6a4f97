/**
 * Container cgroup paths as the kubelet and the container runtimes lay them out, relative to
 * the directory that stands for the cgroup2 root on a real node (the lab parent).
 *
 * systemd driver:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
 *                  kubepods.slice/kubepods-pod<uid_>.slice/...  (guaranteed: no QoS slice)
 * cgroupfs driver: kubepods/burstable/pod<uid>/<id>             (kubepods/pod<uid>/<id> for guaranteed)
 */
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';
export type CgroupDriver = 'systemd' | 'cgroupfs';
export type ContainerRuntime = 'containerd' | 'crio' | 'docker';

export interface ContainerCgroupSpec {
  podUid: string;
  containerId: string;
  qos: QosClass;
  driver: CgroupDriver;
  runtime: ContainerRuntime;
}

export function kubepodsDirName(driver: CgroupDriver): string {
  return driver === 'systemd' ? 'kubepods.slice' : 'kubepods';
}

const SYSTEMD_SCOPE_PREFIX: Record<ContainerRuntime, string> = {
  containerd: 'cri-containerd-',
  crio: 'crio-',
  docker: 'docker-',
};

/** Path segments from the kubepods dir's parent down to the container's own cgroup. */
export function containerCgroupSegments(spec: ContainerCgroupSpec): string[] {
  const { podUid, containerId, qos, driver, runtime } = spec;
  if (driver === 'systemd') {
    // systemd slice names cannot contain '-' inside a unit name component, hence uid with '_'.
    const uid = podUid.replace(/-/g, '_');
    const qosSlices = qos === 'guaranteed' ? [] : [`kubepods-${qos}.slice`];
    const podSlice =
      qos === 'guaranteed' ? `kubepods-pod${uid}.slice` : `kubepods-${qos}-pod${uid}.slice`;
    return [
      'kubepods.slice',
      ...qosSlices,
      podSlice,
      `${SYSTEMD_SCOPE_PREFIX[runtime]}${containerId}.scope`,
    ];
  }
  const qosDirs = qos === 'guaranteed' ? [] : [qos];
  // cri-o keeps its prefix under cgroupfs; containerd and docker use the bare id.
  const leaf = runtime === 'crio' ? `crio-${containerId}` : containerId;
  return ['kubepods', ...qosDirs, `pod${podUid}`, leaf];
}
