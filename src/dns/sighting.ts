// What the identity sources say about a cgroup id, in the terms the row lifecycle needs. Pure.
import {
  HOST_NAMESPACE,
  HOST_POD,
  UNKNOWN_NAMESPACE,
  UNKNOWN_POD_UID_PREFIX,
} from '../identity/labels.js';
import type { CgroupEntry, Identity } from '../identity/types.js';
import type { Sighting } from './lifecycle.js';

export function sightingOf(identity: Identity, entry: CgroupEntry | undefined): Sighting {
  // Removed cgroups stay in the index for a while (removedAt set), still resolving to their pod.
  const gone = entry === undefined || entry.removedAt !== undefined;
  // An id the index does not know may be a cgroup made since its last scan: not known removed.
  const goneSince =
    entry === undefined
      ? { unindexed: true }
      : entry.removedAt !== undefined
        ? { goneSinceMs: entry.removedAt }
        : {};
  switch (identity.kind) {
    case 'pod':
      return {
        name: {
          namespace: identity.namespace,
          pod: identity.pod,
          workloadKind: identity.workload?.kind ?? '',
          workload: identity.workload?.name ?? '',
        },
        gone,
        ...goneSince,
      };
    case 'host':
      return {
        name: { namespace: HOST_NAMESPACE, pod: HOST_POD, workloadKind: '', workload: '' },
        gone,
        ...goneSince,
      };
    case 'unknown':
      return {
        ...(identity.podUid !== undefined
          ? {
              provisional: {
                namespace: UNKNOWN_NAMESPACE,
                pod: UNKNOWN_POD_UID_PREFIX + identity.podUid,
                workloadKind: '',
                workload: '',
              },
            }
          : {}),
        gone,
        ...goneSince,
      };
  }
}
