// deploy/kubernetes built with the real kustomize: every object valid against the Kubernetes
// OpenAPI schemas (kubernetes-models, @kubernetes-models/prometheus-operator) and free of
// fields the API does not know; the DaemonSet's least privilege, RBAC, Service and monitors.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import {
  clientNodeType,
  KUSTOMIZE_DIR,
  kustomizeBuild,
  kustomizeCompose,
  only,
  unknownFields,
  type K8sObject,
} from './deploy-kustomize.js';

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

const BUILDS = {
  base: () => kustomizeBuild('base'),
  'overlays/least-privilege': () => kustomizeBuild('overlays/least-privilege'),
  'overlays/privileged-fallback': () => kustomizeBuild('overlays/privileged-fallback'),
  'least-privilege + doctor + kernel-before-5.11': () =>
    kustomizeCompose(
      ['overlays/least-privilege'],
      ['components/doctor', 'components/kernel-before-5.11'],
    ),
  'privileged-fallback + doctor': () =>
    kustomizeCompose(['overlays/privileged-fallback'], ['components/doctor']),
};

type Container = {
  name: string;
  securityContext: {
    capabilities: { add: string[]; drop: string[] };
    seccompProfile: { type: string };
    [k: string]: unknown;
  };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  [k: string]: unknown;
};
type PodSpec = {
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string; type: string }; emptyDir?: object }[];
  [k: string]: unknown;
};
export type DaemonSetObject = K8sObject & {
  spec: { template: { metadata: K8sObject['metadata']; spec: PodSpec } };
};

const podSpec = (objs: K8sObject[]) => only<DaemonSetObject>(objs, 'DaemonSet').spec.template.spec;

describe.each(Object.entries(BUILDS))('%s', (_name, build) => {
  const objs = build();

  it('validates every object against the OpenAPI schemas', () => {
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `a schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
  });

  it('uses no field the API does not know', () => {
    const builtIn = objs.filter((o) => !o.apiVersion.startsWith('monitoring.coreos.com/'));
    expect(builtIn.flatMap((o) => unknownFields(o, clientNodeType(o), o.kind))).toEqual([]);
  });

  it('drops every capability and runs unprivileged, read-only, with the runtime seccomp profile', () => {
    const [c, ...more] = podSpec(objs).containers;
    expect(more).toEqual([]);
    expect(c!.securityContext).toMatchObject({
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsUser: 0,
      capabilities: { drop: ['ALL'] },
      appArmorProfile: { type: 'Unconfined' },
    });
    // no_new_privs wherever the API allows it: it refuses `false` next to CAP_SYS_ADMIN
    // (pkg/apis/core/validation: "cannot set `allowPrivilegeEscalation` to false and
    // `capabilities.Add` CAP_SYS_ADMIN").
    const sysAdmin = c!.securityContext.capabilities.add.includes('SYS_ADMIN');
    expect(c!.securityContext.allowPrivilegeEscalation).toBe(sysAdmin ? undefined : false);
  });

  it('mounts host paths read-only except bpffs, which it pins into', () => {
    const spec = podSpec(objs);
    const hostPaths = new Map(
      spec.volumes.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]),
    );
    const mounts = spec.containers[0]!.volumeMounts.filter((m) => hostPaths.has(m.name));
    expect(
      Object.fromEntries(mounts.map((m) => [hostPaths.get(m.name), m.readOnly === true])),
    ).toEqual({
      '/sys/fs/bpf': false,
      '/sys/fs/cgroup': true,
      '/sys/kernel/btf': true,
      '/var/log/pods': true,
    });
    // Mounted where the host has them: the paths the exporter logs are the node's.
    for (const m of mounts) expect(m.mountPath).toBe(hostPaths.get(m.name));
  });

  it('runs on every node, as node-critical, in the node network namespace', () => {
    const spec = podSpec(objs);
    expect(spec).toMatchObject({
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      priorityClassName: 'system-node-critical',
      tolerations: [{ operator: 'Exists' }],
      serviceAccountName: 'dnsrace',
    });
  });
});

describe('least privilege', () => {
  const base = podSpec(kustomizeBuild('base'));

  it('the base adds nothing beyond least privilege, and no host PID namespace', () => {
    expect(base.hostPID).toBe(false);
    expect(base.containers[0]!.securityContext.capabilities.add).not.toContain('SYS_ADMIN');
    expect(base.containers[0]!.securityContext.seccompProfile.type).toBe('RuntimeDefault');
  });

  it('the fallback is unconfined by seccomp but still not privileged', () => {
    const fallback = podSpec(kustomizeBuild('overlays/privileged-fallback'));
    expect(fallback.containers[0]!.securityContext).toMatchObject({
      privileged: false,
      seccompProfile: { type: 'Unconfined' },
    });
  });

  it('the doctor component adds the host PID namespace', () => {
    const withDoctor = podSpec(kustomizeCompose(['base'], ['components/doctor']));
    expect(withDoctor.hostPID).toBe(true);
  });

  it('says why for every capability it adds, in the source', () => {
    const files = [
      'base/daemonset.yaml',
      'overlays/privileged-fallback/kustomization.yaml',
      'components/doctor/kustomization.yaml',
      'components/kernel-before-5.11/kustomization.yaml',
    ];
    const caps = /^\s*(?:- |value: )([A-Z_]+)\s*(#.*)?$/;
    for (const f of files) {
      const lines = readFileSync(path.join(KUSTOMIZE_DIR, f), 'utf8').split('\n');
      const added = lines.map((l) => caps.exec(l)).filter((m) => m && m[1] !== 'ALL');
      expect(added.length, f).toBeGreaterThan(0);
      for (const m of added)
        expect(m![2], `${f}: ${m![1]} needs a reason comment`).toMatch(/# \w+/);
    }
  });
});

describe('RBAC', () => {
  const objs = kustomizeBuild('base');

  it('may list and watch pods, nothing else', () => {
    expect(only(objs, 'ClusterRole').rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
    ]);
  });

  it("binds the role to the DaemonSet's service account", () => {
    const sa = only(objs, 'ServiceAccount');
    expect(only(objs, 'ClusterRoleBinding')).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: only(objs, 'ClusterRole').metadata.name },
      subjects: [
        { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
      ],
    });
    expect(podSpec(objs).serviceAccountName).toBe(sa.metadata.name);
    expect(sa.automountServiceAccountToken).toBe(true);
  });

  it('puts everything namespaced into one namespace that admits privileged pods', () => {
    const ns = only(objs, 'Namespace');
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('privileged');
    const namespaced = objs.filter(
      (o) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind),
    );
    for (const o of namespaced) expect(o.metadata.namespace, o.kind).toBe(ns.metadata.name);
  });
});

describe('Service and ServiceMonitor', () => {
  const objs = kustomizeBuild('overlays/least-privilege');
  const ds = only<DaemonSetObject>(objs, 'DaemonSet');
  const svc = only(objs, 'Service') as K8sObject & {
    spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
  };
  const sm = only(objs, 'ServiceMonitor') as K8sObject & {
    spec: {
      selector: { matchLabels: Record<string, string> };
      endpoints: { port: string; path: string }[];
      namespaceSelector: { matchNames: string[] };
    };
  };

  it("selects the DaemonSet's pods and their metrics port", () => {
    expect(ds.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    const portNames = (ds.spec.template.spec.containers[0]!.ports as { name: string }[]).map(
      (p) => p.name,
    );
    expect(portNames).toContain(svc.spec.ports[0]!.targetPort);
  });

  it('scrapes that Service on /metrics', () => {
    expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    expect(sm.spec.namespaceSelector.matchNames).toEqual([svc.metadata.namespace]);
    expect(sm.spec.endpoints).toMatchObject([{ port: svc.spec.ports[0]!.name, path: '/metrics' }]);
  });

  it('gives the job name the alert rules watch (the Service name)', () => {
    const alerts = readFileSync(
      path.join(KUSTOMIZE_DIR, '..', 'prometheus', 'rules', 'dnsrace-alerts.yaml'),
      'utf8',
    );
    const jobs = [...alerts.matchAll(/\bjob="([^"]+)"/g)].map((m) => m[1]);
    expect(jobs.length).toBeGreaterThan(0);
    for (const job of jobs) expect(job).toBe(svc.metadata.name);
  });
});
