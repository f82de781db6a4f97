import type { ContainerRef, ContainerRuntime, KubepodsCgroup, QosClass } from './types.js';

// Decodes which pod (and container) owns a cgroup from its path in the cgroup2 hierarchy.
//
// Pod level, written by the kubelet (kubernetes/kubernetes pkg/kubelet/cm):
//   the pod cgroup is named "pod" + UID (pod_container_manager_linux.go, podCgroupNamePrefix),
//   under kubepods/burstable, kubepods/besteffort, or directly under kubepods for Guaranteed pods
//   (qos_container_manager_linux.go). With the systemd driver each name becomes a nested slice
//   whose name repeats its ancestors and whose '-' in the UID turn into '_'
//   (cgroup_manager_linux.go, ConvertCgroupNameToSystemd / escapeSystemdCgroupName):
//     systemd:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice
//               kubepods.slice/kubepods-pod<uid_>.slice                        (Guaranteed)
//     cgroupfs: kubepods/burstable/pod<uid>   kubepods/pod<uid>   kubepods/besteffort/pod<uid>
//   A kubelet started with --cgroup-root=/kubelet (kind does this) prefixes every slice:
//     kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/
//       kubelet-kubepods-besteffort-pod<uid_>.slice          (OBI statagg tests, kind nodes)
//   and the whole tree may sit below a prefix: kind/Docker-in-Docker nodes show
//   /docker/<node id>/kubepods/... (spiffe/spire workloadattestor k8s testdata), our lab uses
//   /dnsrace-lab-<id>/kubepods.slice/... . So the pod segment is looked for anywhere in the path.
//   UIDs are UUIDs, except static pods: the kubelet derives their UID as the 32-hex MD5 of the
//   manifest (e.g. kubepods-burstable-pod7260904bbd08e72e4dff95d9fccd2ee8.slice, seen in
//   open-telemetry/opentelemetry-ebpf-instrumentation pkg/internal/helpers/container).
//
// Container level, written by the runtime below the pod cgroup:
//   containerd, systemd driver:   cri-containerd-<64 hex>.scope
//   CRI-O, systemd driver:        crio-<64 hex>.scope, and with crun a nested ".../container"
//                                 child; crio-conmon-<64 hex>.scope holds CRI-O's conmon monitor,
//                                 not the container (cri-o internal/config/cgmgr); a bare
//                                 crio-<64 hex> under a pod slice is the pod sandbox (MicroShift
//                                 fixtures in OBI statagg tests)
//   Docker (dockershim / cri-dockerd), systemd driver: docker-<64 hex>.scope
//   cgroupfs driver: containerd and Docker use the bare <64 hex> id (indistinguishable, hence
//                    runtime 'unknown'); CRI-O uses crio-<64 hex> and crio-conmon-<64 hex>
//                    (falcosecurity/libs container_engine cri.cpp CRI_CGROUP_LAYOUT, spire tests)
//   containerd given a systemd-style "slice:prefix:id" cgroupsPath while its runc runs the
//   cgroupfs driver (SystemdCgroup = false): runc takes the string as a relative directory name,
//   so one directory named "kubepods-burstable-pod<uid_>.slice:cri-containerd:<64 hex>" appears
//   below containerd's own cgroup, e.g. system.slice/containerd.service/... (falcosecurity/libs
//   cri.cpp ":cri-containerd:" layout; opentelemetry-java-instrumentation cgroup tests).
//
// Anything without a recognisable pod segment is outside every pod: callers treat it as host.

// UUID groups joined by '-' (or '_' in slice names), or 32 hex digits (static pods).
const UID = `${[8, 4, 4, 4, 12].map((n) => `[0-9a-f]{${n}}`).join('[-_]')}|[0-9a-f]{32}`;
const ID = '[0-9a-f]{64}';

// "<anything->kubepods[-qos]-pod<uid>.slice" with an optional ":<prefix>:<id>" tail (see above).
const SYSTEMD_POD_SLICE = new RegExp(
  String.raw`^(?:.*-)?kubepods-(?:(burstable|besteffort)-)?pod(${UID})\.slice` +
    String.raw`(?::([a-z-]+):(${ID}))?$`,
  'i',
);
const CGROUPFS_POD_DIR = new RegExp(`^pod(${UID})$`, 'i');
const CGROUPFS_QOS_DIRS = new Set(['burstable', 'besteffort']);

/** Inline ":<prefix>:<id>" tails and "<prefix>-<id>.scope" names share these runtime prefixes. */
const SCOPE_PREFIX_RUNTIMES: ReadonlyMap<string, ContainerRuntime> = new Map([
  ['cri-containerd', 'containerd'],
  ['crio', 'cri-o'],
  ['docker', 'docker'],
]);

const CONTAINER_SCOPE = new RegExp(`^(cri-containerd|crio|docker)-(${ID})\\.scope$`);
const CRIO_BARE = new RegExp(`^crio-(${ID})$`);
const BARE_ID = new RegExp(`^(${ID})$`);

interface PodSegment {
  readonly podUid: string;
  readonly qos: QosClass;
  readonly driver: KubepodsCgroup['driver'];
  readonly inlineContainer?: ContainerRef;
}

/** Canonical pod UID: systemd slice names carry '_' where the UID has '-'. */
export function normalisePodUid(raw: string): string {
  return raw.replaceAll('_', '-').toLowerCase();
}

/**
 * Decodes the pod, QoS class and container of a cgroup path relative to the cgroup2 mount
 * (a leading lab or node prefix is fine). Returns null for cgroups outside every pod.
 */
export function parseKubepodsCgroupPath(path: string): KubepodsCgroup | null {
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  // Left-most match: a kubelet nested inside a pod (kind in CI) is still that outer pod's traffic.
  for (let i = 0; i < segments.length; i++) {
    const pod = matchPodSegment(segments, i);
    if (pod !== null) return describeBelowPod(pod, segments.slice(i + 1));
  }
  return null;
}

function matchPodSegment(segments: readonly string[], i: number): PodSegment | null {
  const name = segments[i] ?? '';
  const slice = SYSTEMD_POD_SLICE.exec(name);
  if (slice !== null) {
    const [, qos, uid = '', prefix, id] = slice;
    const runtime =
      prefix === undefined ? undefined : SCOPE_PREFIX_RUNTIMES.get(prefix.toLowerCase());
    return {
      podUid: normalisePodUid(uid),
      qos: toQos(qos),
      driver: 'systemd',
      ...(id === undefined
        ? {}
        : { inlineContainer: { runtime: runtime ?? 'unknown', id: id.toLowerCase() } }),
    };
  }
  const dir = CGROUPFS_POD_DIR.exec(name);
  if (dir === null) return null;
  // cgroupfs names carry no kubepods marker of their own: require the kubelet's parents.
  const parent = segments[i - 1];
  if (parent === 'kubepods') {
    return {
      podUid: normalisePodUid(dir[1] ?? ''),
      qos: 'guaranteed',
      driver: 'cgroupfs',
    };
  }
  if (parent !== undefined && CGROUPFS_QOS_DIRS.has(parent) && segments[i - 2] === 'kubepods') {
    return {
      podUid: normalisePodUid(dir[1] ?? ''),
      qos: toQos(parent),
      driver: 'cgroupfs',
    };
  }
  return null;
}

function describeBelowPod(pod: PodSegment, below: readonly string[]): KubepodsCgroup {
  const base = { podUid: pod.podUid, qos: pod.qos, driver: pod.driver };
  // Anything below a container's cgroup (crun's "container" child, cgroups the workload makes
  // itself) still belongs to that container.
  if (pod.inlineContainer !== undefined)
    return { ...base, role: 'container', container: pod.inlineContainer };
  const first = below[0];
  if (first === undefined) return { ...base, role: 'pod' };
  const container = containerFromSegment(first, pod.driver);
  return container === null
    ? { ...base, role: 'other' }
    : { ...base, role: 'container', container };
}

function containerFromSegment(name: string, driver: KubepodsCgroup['driver']): ContainerRef | null {
  // crio-conmon-<id> never matches below: every pattern wants the 64-hex id right after the prefix.
  const scope = CONTAINER_SCOPE.exec(name);
  if (scope !== null) {
    return { runtime: SCOPE_PREFIX_RUNTIMES.get(scope[1] ?? '') ?? 'unknown', id: scope[2] ?? '' };
  }
  const crio = CRIO_BARE.exec(name);
  // Under a systemd pod slice a bare crio-<id> is the sandbox; under cgroupfs it is the container.
  if (crio !== null) return driver === 'cgroupfs' ? { runtime: 'cri-o', id: crio[1] ?? '' } : null;
  const bare = BARE_ID.exec(name);
  if (bare !== null) return { runtime: 'unknown', id: bare[1] ?? '' };
  return null;
}

function toQos(name: string | undefined): QosClass {
  if (name === undefined) return 'guaranteed';
  const lower = name.toLowerCase();
  return lower === 'burstable' || lower === 'besteffort' ? lower : 'guaranteed';
}
