// Public surface of the identity package: cgroup id → pod identity from local sources and the
// Kubernetes API.
export { parseKubepodsCgroupPath, normalisePodUid } from './cgroup-path.js';
export { CgroupIndex, type CgroupIndexOptions, type CgroupIndexStats } from './cgroup-index.js';
export {
  HOST_NAMESPACE,
  HOST_POD,
  UNKNOWN_NAMESPACE,
  UNKNOWN_POD,
  UNKNOWN_POD_UID_PREFIX,
  identityLabels,
  type IdentityLabels,
} from './labels.js';
export {
  findCgroup2Mount,
  parseMountInfo,
  readCgroup2Mount,
  type Cgroup2Mount,
  type MountInfoEntry,
} from './mountinfo.js';
export {
  PodLogDirectory,
  type PodLogDirectoryOptions,
  type PodLogDirectoryStats,
} from './pod-log-directory.js';
export { parsePodLogDirName, type PodLogDirName } from './pod-log-dirs.js';
export { CgroupIdentityResolver, type CgroupIdentityResolverOptions } from './resolver.js';
export type * from './types.js';
export {
  chooseKubeConnection,
  type KubeApiMode,
  type KubeConnection,
  type KubeConnectionRequest,
} from './kube-config.js';
export {
  KubeApiPodSource,
  describeError as describeKubeError,
  type IdentityLogger,
  type KubeApiHealth,
  type KubeApiPodSourceOptions,
  type KubeApiState,
  type WatchEventType,
} from './kube-api-source.js';
export { Backoff, type BackoffOptions } from './kube-backoff.js';
export { canonicalIp, kubePodFromApi, workloadOf, type KubePod } from './kube-pod.js';
export { KubePodStore, type DeletedPod, type KubePodStoreOptions } from './kube-pod-store.js';
