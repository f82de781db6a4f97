import type { Identity } from './types.js';

// Bucket label values for traffic that cannot be attributed to a named pod. They are Prometheus
// label values, so they live here and nowhere else.
//
// Why a leading underscore: Kubernetes namespace names are RFC 1123 labels ([a-z0-9-]) and pod
// names RFC 1123 subdomains ([a-z0-9.-]), so no real namespace or pod can ever take these values.

/** Processes outside every pod: node daemons, the kubelet, the container runtime. */
export const HOST_NAMESPACE = '_host';
export const HOST_POD = '_host';

/** Traffic we cannot place: a pod not named yet, or a cgroup id that matches no directory. */
export const UNKNOWN_NAMESPACE = '_unknown';
export const UNKNOWN_POD = '_unknown';

/**
 * Pod label of a pod known only by its UID (its cgroup exists, no source names it yet): the UID
 * keeps such pods apart in per-pod families. Cardinality is bounded by the pods on the node, and
 * the state is transient: /var/log/pods appears within moments of the pod cgroup.
 */
export const UNKNOWN_POD_UID_PREFIX = '_uid-';

export interface IdentityLabels {
  readonly namespace: string;
  readonly pod: string;
}

export function identityLabels(identity: Identity): IdentityLabels {
  switch (identity.kind) {
    case 'pod':
      return { namespace: identity.namespace, pod: identity.pod };
    case 'host':
      return { namespace: HOST_NAMESPACE, pod: HOST_POD };
    case 'unknown':
      return {
        namespace: UNKNOWN_NAMESPACE,
        pod: identity.podUid === undefined ? UNKNOWN_POD : UNKNOWN_POD_UID_PREFIX + identity.podUid,
      };
  }
}
