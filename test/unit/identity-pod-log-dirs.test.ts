import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  PodLogDirectory,
  type PodLogDirectoryOptions,
} from '../../src/identity/pod-log-directory.js';
import { parsePodLogDirName } from '../../src/identity/pod-log-dirs.js';

describe('parsePodLogDirName', () => {
  it.each([
    {
      name: 'kube-system_coredns-5d78c9869d-7xk2p_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e',
      want: {
        namespace: 'kube-system',
        pod: 'coredns-5d78c9869d-7xk2p',
        uid: '0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e',
      },
    },
    {
      name: 'kube-system_kube-apiserver-kind-control-plane_7260904bbd08e72e4dff95d9fccd2ee8',
      want: {
        namespace: 'kube-system',
        pod: 'kube-apiserver-kind-control-plane',
        uid: '7260904bbd08e72e4dff95d9fccd2ee8',
      },
    },
    {
      name: 'default_web.v2-0_a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80',
      want: { namespace: 'default', pod: 'web.v2-0', uid: 'a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80' },
    },
    {
      name: 'a_b_11111111-2222-4333-8444-555555555555',
      want: { namespace: 'a', pod: 'b', uid: '11111111-2222-4333-8444-555555555555' },
    },
  ])('$name', ({ name, want }) => {
    expect(parsePodLogDirName(name)).toEqual(want);
  });

  it.each([
    { why: 'pre-1.14 layout: uid only', name: '0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e' },
    { why: 'two parts', name: 'default_web' },
    {
      why: 'four parts (underscore in a name is impossible)',
      name: 'default_my_pod_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e',
    },
    { why: 'upper case namespace', name: 'Default_web_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e' },
    {
      why: 'namespace with a dot (labels have none)',
      name: 'kube.system_web_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e',
    },
    { why: 'pod name ending in a dash', name: 'default_web-_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e' },
    { why: 'uid is not a uid', name: 'default_web_not-a-uid' },
    { why: 'empty pod', name: 'default__0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e' },
    {
      why: 'namespace longer than 63',
      name: `${'n'.repeat(64)}_web_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e`,
    },
  ])('rejects $why', ({ name }) => {
    expect(parsePodLogDirName(name)).toBeNull();
  });
});

const COREDNS = {
  ns: 'kube-system',
  pod: 'coredns-5d78c9869d-7xk2p',
  uid: '0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8e',
};
const WEB = { ns: 'shop', pod: 'web-0', uid: 'a2830d0d-b0f0-4ff0-81b5-0ee4e299cf80' };

describe('PodLogDirectory', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'dnsrace-pods-'));
    await addPod(COREDNS, ['coredns']);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function addPod(p: { ns: string; pod: string; uid: string }, containers: string[]) {
    const dir = join(root, `${p.ns}_${p.pod}_${p.uid}`);
    await mkdir(dir, { recursive: true });
    for (const c of containers) {
      await mkdir(join(dir, c), { recursive: true });
      await writeFile(join(dir, c, '0.log'), '');
    }
  }

  function clock(start = 50_000) {
    let t = start;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }

  function directory(opts: Partial<PodLogDirectoryOptions> = {}) {
    return new PodLogDirectory({ root, ...opts });
  }

  it('names pods by uid, with their container directories', async () => {
    await addPod(WEB, ['web', 'istio-proxy']);
    await mkdir(join(root, 'stray-directory'));
    await writeFile(join(root, 'kube-system_file_0b1e9f5e-2c43-4a4e-9d4f-0e3c2b1a9f8f'), '');
    const dir = directory();
    await dir.refresh();
    expect(dir.lookupByUid(WEB.uid)).toEqual({
      uid: WEB.uid,
      namespace: 'shop',
      name: 'web-0',
      containers: ['istio-proxy', 'web'],
    });
    expect(dir.lookupByUid(COREDNS.uid)?.namespace).toBe('kube-system');
    expect(dir.stats()).toMatchObject({ pods: 2, ignoredNames: 1, reads: 1 });
    expect(dir.name).toBe('var-log-pods');
  });

  it('a pod whose directory appears later is named once the negative entry expires', async () => {
    const c = clock();
    const dir = directory({ now: c.now, minRefreshIntervalMs: 1_000, negativeTtlMs: 5_000 });
    await dir.refresh();
    c.advance(1_000);
    await expect(dir.lookupByUidFresh(WEB.uid)).resolves.toBeUndefined();
    expect(dir.stats().reads).toBe(2);

    await addPod(WEB, ['web']);
    c.advance(2_000); // rate limit passed, negative entry still valid: no re-read yet
    await expect(dir.lookupByUidFresh(WEB.uid)).resolves.toBeUndefined();
    expect(dir.stats().reads).toBe(2);

    c.advance(3_000); // negative entry expired
    await expect(dir.lookupByUidFresh(WEB.uid)).resolves.toMatchObject({
      namespace: 'shop',
      name: 'web-0',
    });
    expect(dir.stats().reads).toBe(3);
  });

  it('a periodic/forced re-read names a pod even while its negative entry is valid', async () => {
    const c = clock();
    const dir = directory({ now: c.now, negativeTtlMs: 60_000 });
    await dir.refresh();
    c.advance(1_000);
    await dir.lookupByUidFresh(WEB.uid);
    await addPod(WEB, ['web']);
    await dir.refresh();
    expect(dir.lookupByUid(WEB.uid)?.name).toBe('web-0');
  });

  it('rate-limits re-reads triggered by misses', async () => {
    const c = clock();
    const dir = directory({ now: c.now, minRefreshIntervalMs: 1_000 });
    await dir.refresh();
    c.advance(1_000);
    const uids = Array.from(
      { length: 50 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    for (const uid of uids) expect(dir.lookupByUid(uid)).toBeUndefined();
    await Promise.all(uids.map((u) => dir.lookupByUidFresh(u)));
    expect(dir.stats().reads).toBe(2);
  });

  it('keeps the name of a pod whose directory was removed for retainRemovedMs', async () => {
    const c = clock();
    const dir = directory({ now: c.now, retainRemovedMs: 30_000 });
    await dir.refresh();
    await rm(join(root, `${COREDNS.ns}_${COREDNS.pod}_${COREDNS.uid}`), { recursive: true });
    c.advance(10_000);
    await dir.refresh();
    expect(dir.lookupByUid(COREDNS.uid)?.name).toBe(COREDNS.pod);
    expect(dir.stats().removedRetained).toBe(1);
    c.advance(30_000);
    await dir.refresh();
    expect(dir.stats().pods).toBe(0);
  });

  it('reports a missing root by name and keeps answering', async () => {
    const errors: unknown[] = [];
    const missing = join(root, 'nope');
    const dir = new PodLogDirectory({ root: missing, onRefreshError: (e) => errors.push(e) });
    await expect(dir.refresh()).rejects.toThrow(`cannot read pod log directory ${missing}`);
    expect(dir.lookupByUid(COREDNS.uid)).toBeUndefined();
    expect(errors).toHaveLength(1);
  });
});
