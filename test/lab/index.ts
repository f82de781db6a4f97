export {
  createLab,
  Lab,
  LAB_NET,
  withLab,
  type DropQueriesOptions,
  type LabOptions,
  type LabTimings,
  type Undo,
} from './lab.js';
export { Pod, type ClientResult, type DigOptions, type PodOptions } from './pod.js';
export type { DnsCapture } from './capture.js';
export { parseTcpdumpLine, parseTcpdumpOutput, type DnsPacket } from './tcpdump-dns.js';
export {
  containerCgroupSegments,
  type CgroupDriver,
  type ContainerRuntime,
  type QosClass,
} from './cgroup-layout.js';
export {
  DEFAULT_UPSTREAM_RECORDS,
  defaultClusterRecords,
  serviceFqdn,
  type ClusterRecord,
  type UpstreamRecord,
} from './dns-config.js';
export { findLabRuns, removeLabRun, type LabRun } from './cleanup.js';
export { LAB_PREFIX } from './names.js';
export type { BackgroundProcess, ExecResult } from './exec.js';
export {
  ensureCtraceClient,
  nodeNetnsPid,
  parseCtraceOutput,
  runConntrackRace,
  type RaceMode,
  type RaceOptions,
  type RaceResult,
} from './race.js';
