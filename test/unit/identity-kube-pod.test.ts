import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  kubePodFromApi,
  workloadOf,
  type ApiPod,
} from '../../src/identity/kube-pod.js';
import type { WorkloadRef } from '../../src/identity/types.js';

const UID = '6dc88073-2128-40d6-9dbc-0ba508da7fe8';
const STATIC_UID = '5f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99';

function pod(over: {
  owner?: { apiVersion: string; kind: string; name: string; controller?: boolean };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  hostNetwork?: boolean;
  podIP?: string;
  podIPs?: string[];
  hostIPs?: string[];
  phase?: string;
}): ApiPod {
  return {
    metadata: {
      uid: UID,
      namespace: 'shop',
      name: 'web-7d4b9c6f5-x2x9k',
      labels: over.labels,
      annotations: over.annotations,
      ownerReferences:
        over.owner === undefined
          ? undefined
          : [{ uid: 'owner-uid', controller: true, ...over.owner }],
    },
    spec: {
      nodeName: 'node-a',
      hostNetwork: over.hostNetwork,
      initContainers: [{ name: 'init' }],
      containers: [{ name: 'web' }, { name: 'envoy' }],
    },
    status: {
      phase: over.phase ?? 'Running',
      podIP: over.podIP,
      podIPs: over.podIPs?.map((ip) => ({ ip })),
      hostIPs: over.hostIPs?.map((ip) => ({ ip })),
    },
  };
}

describe('workloadOf', () => {
  const HASH = { 'pod-template-hash': '7d4b9c6f5' };
  it.each<{
    what: string;
    owner?: { apiVersion: string; kind: string; name: string; controller?: boolean };
    labels?: Record<string, string>;
    want: WorkloadRef | undefined;
  }>([
    {
      what: 'ReplicaSet named after its Deployment and the pod-template-hash',
      owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c6f5' },
      labels: HASH,
      want: { kind: 'Deployment', name: 'web' },
    },
    {
      what: 'Deployment whose own name has dashes',
      owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'shop-web-api-7d4b9c6f5' },
      labels: HASH,
      want: { kind: 'Deployment', name: 'shop-web-api' },
    },
    {
      what: 'bare ReplicaSet (no pod-template-hash label)',
      owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c6f5' },
      want: { kind: 'ReplicaSet', name: 'web-7d4b9c6f5' },
    },
    {
      what: 'ReplicaSet whose name does not end in the hash',
      owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web' },
      labels: HASH,
      want: { kind: 'ReplicaSet', name: 'web' },
    },
    {
      what: 'ReplicaSet named exactly like the hash suffix',
      owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: '-7d4b9c6f5' },
      labels: HASH,
      want: { kind: 'ReplicaSet', name: '-7d4b9c6f5' },
    },
    {
      what: 'Job created by a CronJob (minutes since the epoch)',
      owner: { apiVersion: 'batch/v1', kind: 'Job', name: 'backup-29401440' },
      want: { kind: 'CronJob', name: 'backup' },
    },
    {
      what: 'Job with a short numeric suffix',
      owner: { apiVersion: 'batch/v1', kind: 'Job', name: 'migrate-42' },
      want: { kind: 'Job', name: 'migrate-42' },
    },
    {
      what: 'StatefulSet',
      owner: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db' },
      want: { kind: 'StatefulSet', name: 'db' },
    },
    {
      what: 'DaemonSet',
      owner: { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'dnsrace' },
      want: { kind: 'DaemonSet', name: 'dnsrace' },
    },
    {
      what: 'custom controller',
      owner: { apiVersion: 'argoproj.io/v1alpha1', kind: 'Workflow', name: 'etl' },
      want: { kind: 'Workflow', name: 'etl' },
    },
    {
      what: 'a ReplicaSet kind from another API group is not looked through',
      owner: { apiVersion: 'example.com/v1', kind: 'ReplicaSet', name: 'web-7d4b9c6f5' },
      labels: HASH,
      want: { kind: 'ReplicaSet', name: 'web-7d4b9c6f5' },
    },
    {
      what: 'mirror pod owned by its Node',
      owner: { apiVersion: 'v1', kind: 'Node', name: 'node-a' },
      want: undefined,
    },
    {
      what: 'owner reference that is not the controller',
      owner: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', controller: false },
      want: undefined,
    },
    { what: 'bare pod', want: undefined },
  ])('$what', ({ owner, labels, want }) => {
    const refs = owner === undefined ? undefined : [{ uid: 'u', controller: true, ...owner }];
    expect(workloadOf(refs, labels)).toEqual(want);
  });
});

describe('canonicalIp', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['fd00:0:0::1', 'fd00::1'],
    ['FD00::0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::1', '::1'],
    ['10.1.2', undefined],
    ['', undefined],
    ['fd00::1%eth0', undefined],
    ['pod.example', undefined],
  ])('%s → %s', (text, want) => {
    expect(canonicalIp(text)).toBe(want);
  });
});

describe('kubePodFromApi', () => {
  it.each<{
    what: string;
    input: Parameters<typeof pod>[0];
    ips: string[];
    hostIps: string[];
    hostNetwork: boolean;
    terminal: boolean;
  }>([
    {
      what: 'dual-stack pod, in the order the API lists them',
      input: { podIP: '10.1.0.7', podIPs: ['10.1.0.7', 'fd00:10:1::7'], hostIPs: ['192.0.2.10'] },
      ips: ['10.1.0.7', 'fd00:10:1::7'],
      hostIps: ['192.0.2.10'],
      hostNetwork: false,
      terminal: false,
    },
    {
      what: 'IPv6-only pod, address written long-hand',
      input: { podIPs: ['fd00:10:1:0:0:0:0:7'] },
      ips: ['fd00:10:1::7'],
      hostIps: [],
      hostNetwork: false,
      terminal: false,
    },
    {
      what: 'older API server that sets only podIP',
      input: { podIP: '10.1.0.8' },
      ips: ['10.1.0.8'],
      hostIps: [],
      hostNetwork: false,
      terminal: false,
    },
    {
      what: 'hostNetwork pod: its IPs are the node IPs',
      input: { hostNetwork: true, podIPs: ['192.0.2.10'], hostIPs: ['192.0.2.10'] },
      ips: ['192.0.2.10'],
      hostIps: ['192.0.2.10'],
      hostNetwork: true,
      terminal: false,
    },
    {
      what: 'pending pod without an IP yet',
      input: { phase: 'Pending' },
      ips: [],
      hostIps: [],
      hostNetwork: false,
      terminal: false,
    },
    {
      what: 'succeeded pod',
      input: { phase: 'Succeeded', podIPs: ['10.1.0.9'] },
      ips: ['10.1.0.9'],
      hostIps: [],
      hostNetwork: false,
      terminal: true,
    },
    {
      what: 'failed pod with a garbage IP',
      input: { phase: 'Failed', podIPs: ['not-an-ip'] },
      ips: [],
      hostIps: [],
      hostNetwork: false,
      terminal: true,
    },
  ])('$what', ({ input, ips, hostIps, hostNetwork, terminal }) => {
    const got = kubePodFromApi(pod(input));
    expect(got).toMatchObject({ hostIps, terminal, nodeName: 'node-a', aliasUids: [] });
    expect(got?.info).toEqual({
      uid: UID,
      namespace: 'shop',
      name: 'web-7d4b9c6f5-x2x9k',
      containers: ['envoy', 'init', 'web'],
      ips,
      hostNetwork,
    });
  });

  it('carries the workload of the owner chain', () => {
    const got = kubePodFromApi(
      pod({
        owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c6f5' },
        labels: { 'pod-template-hash': '7d4b9c6f5' },
      }),
    );
    expect(got?.info.workload).toEqual({ kind: 'Deployment', name: 'web' });
  });

  it('knows a mirror pod by the static pod UID the kubelet and its cgroup use', () => {
    const got = kubePodFromApi(
      pod({
        annotations: { 'kubernetes.io/config.mirror': STATIC_UID.toUpperCase() },
        owner: { apiVersion: 'v1', kind: 'Node', name: 'node-a' },
      }),
    );
    expect(got?.aliasUids).toEqual([STATIC_UID]);
    expect(got?.info.workload).toBeUndefined();
  });

  it.each<[string, ApiPod]>([
    ['no metadata', { spec: { containers: [] } }],
    ['no uid', { metadata: { namespace: 'a', name: 'b' } }],
    ['uid that is no pod UID', { metadata: { uid: 'x', namespace: 'a', name: 'b' } }],
    ['no namespace', { metadata: { uid: UID, name: 'b' } }],
    ['empty name', { metadata: { uid: UID, namespace: 'a', name: '' } }],
  ])('rejects a pod object with %s', (_what, input) => {
    expect(kubePodFromApi(input)).toBeNull();
  });

  it('survives a raw watch object with missing spec and status', () => {
    const got = kubePodFromApi({ metadata: { uid: UID.toUpperCase(), namespace: 'a', name: 'b' } });
    expect(got).toEqual({
      info: { uid: UID, namespace: 'a', name: 'b', containers: [], ips: [], hostNetwork: false },
      aliasUids: [],
      hostIps: [],
      terminal: false,
      nodeName: undefined,
    });
  });
});
