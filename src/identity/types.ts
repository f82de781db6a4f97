// Shared vocabulary of the identity package: what a cgroup id resolves to, and the interfaces
// behind which identity sources sit: local sources (cgroup2 walk, /var/log/pods) and the
// Kubernetes API source (kube-api-source.ts), which goes ahead of the local one in the
// resolver's priority order.

export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

/**
 * 'unknown' is a real answer, not an error: under the cgroupfs driver containerd and Docker both
 * name a container's cgroup by its bare 64-hex id, so the path cannot tell them apart.
 */
export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker' | 'unknown';

export interface ContainerRef {
  readonly runtime: ContainerRuntime;
  /** Full 64-hex container id as the runtime reports it. */
  readonly id: string;
}

/** Owning controller, e.g. { kind: 'Deployment', name: 'coredns' }. Only an API source knows it. */
export interface WorkloadRef {
  readonly kind: string;
  readonly name: string;
}

/** What a source knows about one pod, keyed by its UID. */
export interface PodInfo {
  /** Canonical UID: a dashed UUID, or 32 hex digits for static pods (a hash of the manifest). */
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly workload?: WorkloadRef;
  /** Container names, if the source lists them (/var/log/pods: one subdirectory per container). */
  readonly containers?: readonly string[];
  /**
   * Pod IPs in canonical text (IPv4 dotted, IPv6 RFC 5952), in the API's order (the cluster's
   * primary family first). Only an API source knows them; empty until the pod has an IP.
   */
  readonly ips?: readonly string[];
  /** The pod uses the node's network namespace, so its IPs are the node's and name no pod. */
  readonly hostNetwork?: boolean;
}

/**
 * A source of pod names by UID. Lookups are synchronous reads of the source's cache, so they can
 * run on the hot path; a miss may schedule a (rate-limited) background refresh, and the fresh
 * variant waits for that refresh. Implemented by PodLogDirectory (/var/log/pods) and by
 * KubeApiPodSource (list+watch of this node's pods).
 */
export interface PodInfoSource {
  /** Short stable name used in Identity.source and in logs, e.g. 'var-log-pods', 'kube-api'. */
  readonly name: string;
  lookupByUid(uid: string): PodInfo | undefined;
  lookupByUidFresh(uid: string): Promise<PodInfo | undefined>;
}

/** What a cgroup path says about the pod that owns it (see cgroup-path.ts). */
export interface KubepodsCgroup {
  readonly podUid: string;
  readonly qos: QosClass;
  /** Naming scheme of the pod cgroup: systemd slices or plain cgroupfs directories. */
  readonly driver: 'systemd' | 'cgroupfs';
  /**
   * 'pod': the pod cgroup itself; 'container': a container's cgroup or one nested in it;
   * 'other': anything else inside the pod (CRI-O's conmon monitor, CRI-O's sandbox cgroup,
   * names we do not recognise). All three belong to the pod.
   */
  readonly role: 'pod' | 'container' | 'other';
  readonly container?: ContainerRef;
}

/** One cgroup2 directory known to a CgroupSource. */
export interface CgroupEntry {
  /** cgroup id = inode number of the directory (what bpf_skb_cgroup_id returns). */
  readonly id: bigint;
  /** Path inside the cgroup2 hierarchy, '/' for its root. */
  readonly path: string;
  /** Decoded pod ownership, null when the cgroup is outside any pod. */
  readonly pod: KubepodsCgroup | null;
  /** Clock time at which a scan first missed the directory; kept a while for late map reads. */
  readonly removedAt?: number;
}

/** cgroup id → cgroup directory, same cache/fresh split as PodInfoSource. */
export interface CgroupSource {
  lookup(id: bigint): CgroupEntry | undefined;
  lookupFresh(id: bigint): Promise<CgroupEntry | undefined>;
}

export interface PodIdentity {
  readonly kind: 'pod';
  readonly namespace: string;
  readonly pod: string;
  readonly podUid: string;
  readonly qos: QosClass;
  readonly container?: ContainerRef;
  readonly workload?: WorkloadRef;
  /** Name of the PodInfoSource that named the pod. */
  readonly source: string;
}

/** A cgroup outside every pod: node daemons, the kubelet, the runtime, plain Docker containers. */
export interface HostIdentity {
  readonly kind: 'host';
  readonly cgroupPath: string;
}

/**
 * 'pod-not-named': the cgroup is inside a pod but no source names that UID (yet);
 * 'cgroup-not-found': the id matches no cgroup directory, even after a rescan.
 */
export interface UnknownIdentity {
  readonly kind: 'unknown';
  readonly reason: 'pod-not-named' | 'cgroup-not-found';
  readonly podUid?: string;
  readonly qos?: QosClass;
  readonly container?: ContainerRef;
  readonly cgroupPath?: string;
}

export type Identity = PodIdentity | HostIdentity | UnknownIdentity;

export interface IdentityResolver {
  /** Answer from caches without waiting; a miss schedules a rate-limited background refresh. */
  resolve(cgroupId: bigint): Identity;
  /** Waits for the rate-limited refresh a miss triggers, then answers (for scrape time). */
  resolveFresh(cgroupId: bigint): Promise<Identity>;
}
