// The manifests agree with the code: every env var and flag is one src/config.ts knows and
// parses, ports and probe paths are the exporter's, host mounts hold the exporter's default
// paths, and the capabilities granted are those src/capabilities.ts checks at start-up. A
// flag renamed or a default moved in code breaks this test, not a rollout.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployCapabilities } from '../../src/capabilities.js';
import { KUBEPODS_CANDIDATES } from '../../src/cgroup-root.js';
import { OPTIONS, parseConfig, type Config } from '../../src/config.js';
import { DEFAULT_BPFFS_DIR } from '../../src/bpf/loader.js';
import {
  kustomizeBuild,
  kustomizeCompose,
  only,
  ROOT,
  type K8sObject,
} from './deploy-kustomize.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
}
interface Container {
  image: string;
  args?: string[];
  command?: string[];
  env: EnvVar[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext: { capabilities: { add: string[] } };
}
interface Pod {
  hostNetwork: boolean;
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string } }[];
}

const podOf = (objs: K8sObject[]) =>
  (only(objs, 'DaemonSet') as unknown as { spec: { template: { spec: Pod } } }).spec.template.spec;

const base = podOf(kustomizeBuild('base'));
const container = base.containers[0]!;

/** Environment variables that are not the exporter's own options. */
const FOREIGN_ENV: Record<string, string> = {
  NODE_OPTIONS: "Node's own: the V8 heap limit under the container's memory limit",
};

/** The manifest's env as the exporter would see it (downward API and secret filled in). */
function resolvedEnv(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'node-a';
    else if (e.valueFrom?.secretKeyRef) env[e.name] = 'secret-token';
    else throw new Error(`env ${e.name}: no value this test knows how to fill in`);
  }
  return env;
}

const config: Config = (() => {
  const r = parseConfig(container.args ?? [], resolvedEnv(container));
  if (r.help) throw new Error('the manifest asks for --help');
  return r.config;
})();

/** The hostPath mount that holds p, with its host path. */
function mountHolding(p: string) {
  const hostPaths = new Map(base.volumes.map((v) => [v.name, v.hostPath?.path]));
  const m = container.volumeMounts
    .filter((vm) => p === vm.mountPath || p.startsWith(`${vm.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  return m && { ...m, hostPath: hostPaths.get(m.name) };
}

describe('configuration', () => {
  it('sets only environment variables src/config.ts reads (or named foreign ones)', () => {
    const known = new Set(OPTIONS.map((o) => o.env));
    const unknown = container.env
      .map((e) => e.name)
      .filter((n) => !known.has(n) && !FOREIGN_ENV[n]);
    expect(unknown).toEqual([]);
  });

  it('passes no flags: everything is an environment variable (flags show in ps)', () => {
    expect(container.args ?? []).toEqual([]);
    expect(container.command).toBeUndefined();
  });

  it('parses with the real parser, to the values the manifest means', () => {
    expect(config).toMatchObject({
      listenHost: '0.0.0.0',
      nodeName: 'node-a',
      kubeApi: 'on',
      drilldownHost: '127.0.0.1',
      drilldownToken: 'secret-token',
      cgroupRoot: undefined, // auto: the node's kubepods cgroup
    });
  });

  it('takes the node name from the downward API (the API source lists only its pods)', () => {
    const nodeName = container.env.find(
      (e) => e.name === OPTIONS.find((o) => o.key === 'nodeName')!.env,
    );
    expect(nodeName?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
  });

  it('keeps the drill-down (query names) on the loopback address', () => {
    expect(config.drilldownHost).toBe('127.0.0.1');
    expect(container.ports.map((p) => p.containerPort)).not.toContain(config.drilldownPort);
  });

  it.each(['DNSRACE_PURGE_ON_EXIT', 'DNSRACE_RESET_MAPS'])(
    '%s is not set: counters survive restarts (docs/install.md says when to set it)',
    (name) => {
      expect(OPTIONS.map((o) => o.env)).toContain(name);
      expect(container.env.map((e) => e.name)).not.toContain(name);
    },
  );
});

describe('ports and probes', () => {
  const metrics = container.ports.find((p) => p.name === 'metrics');

  it('exposes the port the exporter listens on', () => {
    expect(metrics?.containerPort).toBe(config.listenPort);
  });

  it.each([
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
  ] as const)('%s asks %s on that port', (probe, route) => {
    expect(container[probe].httpGet).toEqual({ path: route, port: 'metrics' });
  });

  it('probes routes the HTTP server serves', () => {
    const server = readFileSync(path.join(ROOT, 'src', 'http', 'server.ts'), 'utf8');
    for (const route of ['/metrics', '/healthz', '/readyz'])
      expect(server, `src/http/server.ts serves ${route}`).toContain(`app.get('${route}'`);
  });

  it('the Service targets the same port', () => {
    const svc = only(kustomizeBuild('base'), 'Service') as K8sObject & {
      spec: { ports: { port: number; targetPort: string }[] };
    };
    expect(svc.spec.ports).toMatchObject([{ port: config.listenPort, targetPort: 'metrics' }]);
  });
});

describe('host mounts hold the paths the exporter uses', () => {
  it('bpffs: the pin directory is on the host bpffs, writable', () => {
    expect(config.bpffsDir).toBe(DEFAULT_BPFFS_DIR);
    expect(mountHolding(config.bpffsDir)).toMatchObject({
      hostPath: '/sys/fs/bpf',
      mountPath: '/sys/fs/bpf',
    });
    expect(mountHolding(config.bpffsDir)?.readOnly).not.toBe(true);
  });

  it("the pod log directory is the host's, read-only", () => {
    expect(mountHolding(config.podLogDir)).toMatchObject({
      hostPath: '/var/log/pods',
      readOnly: true,
    });
  });

  it('the cgroup tree (where the auto cgroup root is looked for) is the host cgroup2, read-only', () => {
    for (const name of KUBEPODS_CANDIDATES)
      expect(mountHolding(`/sys/fs/cgroup/${name}`)).toMatchObject({
        hostPath: '/sys/fs/cgroup',
        readOnly: true,
      });
  });

  it("kernel BTF is the host's, read-only", () => {
    expect(mountHolding('/sys/kernel/btf/vmlinux')).toMatchObject({
      hostPath: '/sys/kernel/btf',
      readOnly: true,
    });
  });

  it("the conntrack statistics are the node's: procfs of the host network namespace", () => {
    expect(config.conntrackStatFile).toMatch(/^\/proc\/net\//);
    expect(mountHolding(config.conntrackStatFile)).toBeUndefined(); // the container's own /proc
    expect(base.hostNetwork).toBe(true);
  });
});

describe('capabilities match what the exporter checks at start-up', () => {
  const added = (objs: K8sObject[]) =>
    [...podOf(objs).containers[0]!.securityContext.capabilities.add].sort();

  it.each([
    ['base', () => kustomizeBuild('base'), deployCapabilities('least-privilege')],
    [
      'least-privilege',
      () => kustomizeBuild('overlays/least-privilege'),
      deployCapabilities('least-privilege'),
    ],
    [
      'privileged-fallback',
      () => kustomizeBuild('overlays/privileged-fallback'),
      deployCapabilities('fallback'),
    ],
    [
      'least-privilege + kernel-before-5.11',
      () => kustomizeCompose(['overlays/least-privilege'], ['components/kernel-before-5.11']),
      [...deployCapabilities('least-privilege'), 'SYS_RESOURCE'],
    ],
    [
      'least-privilege + doctor',
      () => kustomizeCompose(['overlays/least-privilege'], ['components/doctor']),
      [...deployCapabilities('least-privilege'), ...deployCapabilities('doctor')],
    ],
    [
      'privileged-fallback + doctor',
      () => kustomizeCompose(['overlays/privileged-fallback'], ['components/doctor']),
      [...deployCapabilities('fallback'), ...deployCapabilities('doctor')],
    ],
  ])('%s', (_name, build, expected) => {
    expect(added(build())).toEqual([...expected].sort());
  });
});

describe('image', () => {
  it('is tagged with the version in package.json', () => {
    const version = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    ).version;
    expect(container.image).toBe(`dnsrace:${version}`);
  });
});
