// A Kubernetes v1 Pod, as the API lists or watches it, reduced to what identity needs. Pure.
// Lists and watch events are raw JSON, so every field is read defensively: a malformed object
// yields null or an empty field, never an exception.
import { isIPv4, isIPv6 } from 'node:net';
import type { PodInfo, WorkloadRef } from './types.js';

/** metadata.ownerReferences[] of a pod as JSON: the fields identity reads. */
export interface ApiOwnerReference {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly name?: string;
  readonly uid?: string;
  readonly controller?: boolean;
}

/** A v1 Pod object as JSON (core/v1 types.go): only the fields identity reads, all optional. */
export interface ApiPod {
  readonly metadata?: {
    readonly uid?: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly ApiOwnerReference[];
  };
  readonly spec?: {
    readonly nodeName?: string;
    readonly hostNetwork?: boolean;
    readonly initContainers?: ReadonlyArray<{ readonly name?: string }>;
    readonly containers?: ReadonlyArray<{ readonly name?: string }>;
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly podIPs?: ReadonlyArray<{ readonly ip?: string }>;
    readonly hostIP?: string;
    readonly hostIPs?: ReadonlyArray<{ readonly ip?: string }>;
  };
}

/** One pod as the Kubernetes API source keeps it. */
export interface KubePod {
  /** uid, namespace, name, workload, containers, ips, hostNetwork. */
  readonly info: PodInfo;
  /**
   * Other UIDs the node knows this pod by. A static pod's mirror in the API has a UID of its own,
   * while the kubelet (and so the pod's cgroup) uses the static pod's UID, which the mirror
   * carries in the kubernetes.io/config.mirror annotation.
   */
  readonly aliasUids: readonly string[];
  /** The node's IPs as this pod's status reports them (status.hostIPs). */
  readonly hostIps: readonly string[];
  /** Succeeded or Failed: its sandbox is gone and its IP may already belong to another pod. */
  readonly terminal: boolean;
  readonly nodeName: string | undefined;
}

const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
// A dashed UUID, or the 32 hex digits the kubelet gives static pods (a hash of the manifest).
const POD_UID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/;
// The CronJob controller names each Job "<cronjob>-<scheduled time in minutes since the epoch>"
// (pkg/controller/cronjob/utils.go, getJobName); minute counts have had 8 digits since 1989.
const CRONJOB_JOB_NAME = /^(.+)-(\d{8,})$/;

/** Maps one pod object; null when it lacks what a pod must have (uid, namespace, name). */
export function kubePodFromApi(pod: ApiPod): KubePod | null {
  const meta = pod.metadata;
  const uid = meta?.uid?.toLowerCase();
  const namespace = meta?.namespace;
  const name = meta?.name;
  if (uid === undefined || !POD_UID.test(uid) || !namespace || !name) return null;

  const mirrorOf = meta?.annotations?.[MIRROR_ANNOTATION]?.toLowerCase();
  const aliasUids =
    mirrorOf !== undefined && POD_UID.test(mirrorOf) && mirrorOf !== uid ? [mirrorOf] : [];
  const workload = workloadOf(meta?.ownerReferences, meta?.labels);
  const spec = pod.spec;
  const containers = uniqueSorted(
    [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]
      .map((c) => c?.name)
      .filter((n): n is string => typeof n === 'string' && n !== ''),
  );
  const status = pod.status;
  const ips = canonicalIps([...(status?.podIPs ?? []).map((p) => p?.ip), status?.podIP]);
  const hostIps = canonicalIps([...(status?.hostIPs ?? []).map((h) => h?.ip), status?.hostIP]);
  const info: PodInfo = {
    uid,
    namespace,
    name,
    ...(workload === undefined ? {} : { workload }),
    containers,
    ips,
    hostNetwork: spec?.hostNetwork === true,
  };
  return {
    info,
    aliasUids,
    hostIps,
    terminal: status?.phase === 'Succeeded' || status?.phase === 'Failed',
    nodeName: spec?.nodeName,
  };
}

/**
 * The workload a pod belongs to, from its controller owner reference (metav1.GetControllerOf).
 * Two owners are looked through by name, so that no further API reads (and RBAC rules) are needed:
 * - ReplicaSet → Deployment: the Deployment controller names each ReplicaSet
 *   "<deployment>-<pod-template-hash>" and puts that hash on the pods as a label. A ReplicaSet
 *   whose name does not end in the pod's hash stays a ReplicaSet. (An Argo Rollout's ReplicaSets
 *   follow the same scheme and come out as kind Deployment with the Rollout's name.)
 * - Job → CronJob: the CronJob controller names Jobs "<cronjob>-<minutes since epoch>". A Job
 *   created by hand with a name ending in 8+ digits comes out as a CronJob too.
 * Mirror pods (owned by their Node) and bare pods have no workload.
 */
export function workloadOf(
  owners: readonly ApiOwnerReference[] | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): WorkloadRef | undefined {
  const owner = owners?.find((o) => o?.controller === true);
  if (owner === undefined || !owner.kind || !owner.name) return undefined;
  const group = apiGroup(owner.apiVersion);
  if (owner.kind === 'Node' && group === '') return undefined;
  if (owner.kind === 'ReplicaSet' && group === 'apps') {
    const hash = labels?.[POD_TEMPLATE_HASH_LABEL];
    const suffix = `-${hash ?? ''}`;
    if (hash && owner.name.length > suffix.length && owner.name.endsWith(suffix))
      return { kind: 'Deployment', name: owner.name.slice(0, -suffix.length) };
    return { kind: 'ReplicaSet', name: owner.name };
  }
  if (owner.kind === 'Job' && group === 'batch') {
    const cron = CRONJOB_JOB_NAME.exec(owner.name);
    if (cron?.[1] !== undefined) return { kind: 'CronJob', name: cron[1] };
    return { kind: 'Job', name: owner.name };
  }
  return { kind: owner.kind, name: owner.name };
}

/**
 * An IP address in the text form the exporter uses everywhere (net/addr.ts): IPv4 dotted quad,
 * IPv6 compressed per RFC 5952 in lower case, IPv4-mapped IPv6 as plain IPv4. Undefined for
 * anything that is not an address.
 */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text;
  // Zone ids (fe80::1%eth0) pass isIPv6 but never belong to a pod, and URL refuses them.
  if (!isIPv6(text) || text.includes('%')) return undefined;
  // The WHATWG URL host serialiser compresses IPv6 exactly as RFC 5952 asks.
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped === null) return host;
  const hi = parseInt(mapped[1] ?? '0', 16);
  const lo = parseInt(mapped[2] ?? '0', 16);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

function canonicalIps(raw: ReadonlyArray<string | undefined>): string[] {
  const out: string[] = [];
  for (const text of raw) {
    const ip = typeof text === 'string' ? canonicalIp(text) : undefined;
    if (ip !== undefined && !out.includes(ip)) out.push(ip);
  }
  return out;
}

function apiGroup(apiVersion: string | undefined): string {
  const slash = apiVersion?.indexOf('/') ?? -1;
  return slash < 0 ? '' : (apiVersion ?? '').slice(0, slash);
}

function uniqueSorted(names: string[]): string[] {
  return [...new Set(names)].sort();
}
