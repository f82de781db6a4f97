import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupIndex } from '../../src/identity/cgroup-index.js';
import {
  HOST_NAMESPACE,
  HOST_POD,
  UNKNOWN_NAMESPACE,
  UNKNOWN_POD,
  UNKNOWN_POD_UID_PREFIX,
  identityLabels,
} from '../../src/identity/labels.js';
import { PodLogDirectory } from '../../src/identity/pod-log-directory.js';
import { CgroupIdentityResolver } from '../../src/identity/resolver.js';
import type { Identity, PodInfo, PodInfoSource } from '../../src/identity/types.js';

const UID_A = '6dc88073-2128-40d6-9dbc-0ba508da7fe8';
const UID_B = '73dc8baf-43a0-413e-aac2-5eb0868f6c1a';
const CTR_A = '123cd1db937c3c2d0d7772ef9b0a1c4b0b3dcfcb6b889452a90b2fcb43eae43a';
const CTR_B = 'f52987fbdcc7b29175fb52e01c7917e9d6d2e14550e3a2a7abf739da5a067e31';
const LAB = 'dnsrace-lab-x1';
const SCOPE_A = `${LAB}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_A.replaceAll('-', '_')}.slice/cri-containerd-${CTR_A}.scope`;
const SCOPE_B = `${LAB}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_B.replaceAll('-', '_')}.slice/crio-${CTR_B}.scope/container`;
const HOST_CG = `${LAB}/system.slice/dnsmasq.service`;

/** Stands in for the Kubernetes API source that comes later: same interface, in memory. */
class StaticPodSource implements PodInfoSource {
  readonly name = 'static';
  constructor(readonly pods: Map<string, PodInfo>) {}
  lookupByUid(uid: string) {
    return this.pods.get(uid);
  }
  async lookupByUidFresh(uid: string) {
    return this.pods.get(uid);
  }
}

let dir: string;
let cgroupRoot: string;
let podsRoot: string;
let t: number;
const now = () => t;

beforeEach(async () => {
  t = 100_000;
  dir = await mkdtemp(join(tmpdir(), 'dnsrace-identity-'));
  cgroupRoot = join(dir, 'cgroup');
  podsRoot = join(dir, 'pods');
  for (const d of [SCOPE_A, SCOPE_B, HOST_CG])
    await mkdir(join(cgroupRoot, d), { recursive: true });
  await mkdir(join(podsRoot, `kube-system_coredns-0_${UID_A}`, 'coredns'), { recursive: true });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cgroupId(rel: string): Promise<bigint> {
  return (await stat(join(cgroupRoot, rel), { bigint: true })).ino;
}

async function setup(extraSources: PodInfoSource[] = []) {
  const cgroups = new CgroupIndex({ mountPoint: cgroupRoot, subtree: LAB, now });
  const podDir = new PodLogDirectory({ root: podsRoot, now, negativeTtlMs: 5_000 });
  await Promise.all([cgroups.refresh(), podDir.refresh()]);
  t += 1_000; // past the rescan rate limit of the initial refreshes
  const resolver = new CgroupIdentityResolver({ cgroups, podSources: [...extraSources, podDir] });
  return { cgroups, podDir, resolver };
}

describe('CgroupIdentityResolver', () => {
  it('names a container cgroup from its pod slice and /var/log/pods', async () => {
    const { resolver } = await setup();
    const want: Identity = {
      kind: 'pod',
      namespace: 'kube-system',
      pod: 'coredns-0',
      podUid: UID_A,
      qos: 'besteffort',
      container: { runtime: 'containerd', id: CTR_A },
      source: 'var-log-pods',
    };
    expect(resolver.resolve(await cgroupId(SCOPE_A))).toEqual(want);
    await expect(resolver.resolveFresh(await cgroupId(SCOPE_A))).resolves.toEqual(want);
  });

  it('puts cgroups outside every pod in the host bucket', async () => {
    const { resolver } = await setup();
    for (const rel of [HOST_CG, LAB, `${LAB}/kubepods.slice/kubepods-burstable.slice`]) {
      const identity = resolver.resolve(await cgroupId(rel));
      expect(identity).toEqual({ kind: 'host', cgroupPath: `/${rel}` });
      expect(identityLabels(identity)).toEqual({ namespace: HOST_NAMESPACE, pod: HOST_POD });
    }
  });

  it('labels a pod seen in cgroups before its /var/log/pods directory once the directory appears', async () => {
    const { resolver } = await setup();
    const id = await cgroupId(SCOPE_B);
    const before = await resolver.resolveFresh(id);
    expect(before).toEqual({
      kind: 'unknown',
      reason: 'pod-not-named',
      podUid: UID_B,
      qos: 'burstable',
      container: { runtime: 'cri-o', id: CTR_B },
      cgroupPath: `/${SCOPE_B}`,
    });
    expect(identityLabels(before)).toEqual({
      namespace: UNKNOWN_NAMESPACE,
      pod: `${UNKNOWN_POD_UID_PREFIX}${UID_B}`,
    });

    await mkdir(join(podsRoot, `shop_web-0_${UID_B}`, 'web'), { recursive: true });
    t += 5_000; // the negative entry for UID_B expires
    const after = await resolver.resolveFresh(id);
    expect(after).toMatchObject({ kind: 'pod', namespace: 'shop', pod: 'web-0', podUid: UID_B });
    expect(identityLabels(after)).toEqual({ namespace: 'shop', pod: 'web-0' });
  });

  it('the sync path schedules the re-read itself: a later resolve() sees the new pod', async () => {
    const { resolver, podDir } = await setup();
    const id = await cgroupId(SCOPE_B);
    await mkdir(join(podsRoot, `shop_web-0_${UID_B}`, 'web'), { recursive: true });
    expect(resolver.resolve(id).kind).toBe('unknown');
    expect(podDir.stats().reads).toBe(2); // the miss started a re-read without being awaited
    // Poll with the clock frozen, so that resolve() itself cannot start another re-read.
    for (let i = 0; i < 100 && resolver.resolve(id).kind !== 'pod'; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(resolver.resolve(id)).toMatchObject({ kind: 'pod', pod: 'web-0' });
    expect(podDir.stats().reads).toBe(2);
  });

  it('reports an id that matches no cgroup, even after a rescan, as unknown', async () => {
    const { resolver, cgroups } = await setup();
    const identity = await resolver.resolveFresh(0x7fff_ffff_ffff_fff0n);
    expect(identity).toEqual({ kind: 'unknown', reason: 'cgroup-not-found' });
    expect(identityLabels(identity)).toEqual({ namespace: UNKNOWN_NAMESPACE, pod: UNKNOWN_POD });
    expect(cgroups.stats().scans).toBe(2);
  });

  it('finds a container created after the last scan', async () => {
    const { resolver } = await setup();
    const late = `${LAB}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_A.replaceAll('-', '_')}.slice/cri-containerd-${'b'.repeat(64)}.scope`;
    await mkdir(join(cgroupRoot, late));
    await expect(resolver.resolveFresh(await cgroupId(late))).resolves.toMatchObject({
      kind: 'pod',
      pod: 'coredns-0',
      container: { id: 'b'.repeat(64) },
    });
  });

  it('asks sources in priority order; the workload comes from whichever source has it', async () => {
    const api = new StaticPodSource(
      new Map([
        [
          UID_A,
          {
            uid: UID_A,
            namespace: 'kube-system',
            name: 'coredns-0',
            workload: { kind: 'StatefulSet', name: 'coredns' },
          },
        ],
        [UID_B, { uid: UID_B, namespace: 'renamed', name: 'from-api' }],
      ]),
    );
    const { resolver } = await setup([api]);
    expect(resolver.resolve(await cgroupId(SCOPE_A))).toMatchObject({
      kind: 'pod',
      source: 'static',
      workload: { kind: 'StatefulSet', name: 'coredns' },
    });
    await expect(resolver.resolveFresh(await cgroupId(SCOPE_B))).resolves.toMatchObject({
      kind: 'pod',
      namespace: 'renamed',
      pod: 'from-api',
      source: 'static',
    });
  });

  it('falls back to a lower-priority source, taking the workload from a higher one only if it names the pod', async () => {
    const lowWithWorkload = new StaticPodSource(
      new Map([
        [
          UID_A,
          {
            uid: UID_A,
            namespace: 'ignored',
            name: 'ignored',
            workload: { kind: 'Deployment', name: 'coredns' },
          },
        ],
      ]),
    );
    const cgroups = new CgroupIndex({ mountPoint: cgroupRoot, subtree: LAB, now });
    const podDir = new PodLogDirectory({ root: podsRoot, now });
    await Promise.all([cgroups.refresh(), podDir.refresh()]);
    const resolver = new CgroupIdentityResolver({ cgroups, podSources: [podDir, lowWithWorkload] });
    expect(resolver.resolve(await cgroupId(SCOPE_A))).toMatchObject({
      namespace: 'kube-system',
      pod: 'coredns-0',
      source: 'var-log-pods',
      workload: { kind: 'Deployment', name: 'coredns' },
    });
  });
});

describe('identityLabels', () => {
  it.each<{ identity: Identity; want: { namespace: string; pod: string } }>([
    {
      identity: {
        kind: 'pod',
        namespace: 'shop',
        pod: 'web-0',
        podUid: UID_A,
        qos: 'burstable',
        source: 'x',
      },
      want: { namespace: 'shop', pod: 'web-0' },
    },
    {
      identity: { kind: 'host', cgroupPath: '/system.slice' },
      want: { namespace: '_host', pod: '_host' },
    },
    {
      identity: { kind: 'unknown', reason: 'cgroup-not-found' },
      want: { namespace: '_unknown', pod: '_unknown' },
    },
    {
      identity: { kind: 'unknown', reason: 'pod-not-named', podUid: UID_B },
      want: { namespace: '_unknown', pod: `_uid-${UID_B}` },
    },
  ])('$identity.kind → $want.namespace/$want.pod', ({ identity, want }) => {
    expect(identityLabels(identity)).toEqual(want);
  });

  it('bucket values can never collide with real namespaces (RFC 1123 labels have no underscore)', () => {
    for (const v of [HOST_NAMESPACE, UNKNOWN_NAMESPACE])
      expect(v).not.toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});
