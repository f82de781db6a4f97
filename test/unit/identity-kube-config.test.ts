import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { chooseKubeConnection } from '../../src/identity/kube-config.js';
import { writeKubeconfig } from '../support/fake-kube-api.js';

const IN_CLUSTER = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dnsrace-kubeconfig-'));
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

async function serviceAccount(): Promise<string> {
  const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
  await mkdir(sa, { recursive: true });
  await writeFile(join(sa, 'token'), 'sa-token');
  await writeFile(join(sa, 'namespace'), 'dnsrace');
  return dir;
}

describe('chooseKubeConnection', () => {
  it('stays off when told so, even with everything in place', async () => {
    const rootPrefix = await serviceAccount();
    expect(
      chooseKubeConnection({ mode: 'off', nodeName: 'node-a', env: IN_CLUSTER, rootPrefix }),
    ).toEqual({ kind: 'disabled', reason: 'disabled by --kube-api=off' });
  });

  it.each([
    ['no node name', { nodeName: undefined, env: IN_CLUSTER }, /NODE_NAME/],
    ['a blank node name', { nodeName: '  ', env: IN_CLUSTER }, /NODE_NAME/],
    ['no in-cluster environment', { nodeName: 'node-a', env: {} }, /KUBERNETES_SERVICE_HOST/],
  ])('auto mode with %s disables the source and says why', (_what, req, reason) => {
    const got = chooseKubeConnection({ mode: 'auto', rootPrefix: dir, ...req });
    expect(got.kind).toBe('disabled');
    expect(got.kind === 'disabled' && got.reason).toMatch(reason);
  });

  it('auto mode without a service account token names the missing file', () => {
    const got = chooseKubeConnection({
      mode: 'auto',
      nodeName: 'node-a',
      env: IN_CLUSTER,
      rootPrefix: dir,
    });
    expect(got).toEqual({
      kind: 'disabled',
      reason: `no service account token at ${dir}/var/run/secrets/kubernetes.io/serviceaccount/token: set automountServiceAccountToken: true on the pod`,
    });
  });

  it('on mode fails fast with what to change', () => {
    expect(() => chooseKubeConnection({ mode: 'on', env: IN_CLUSTER, rootPrefix: dir })).toThrow(
      '--kube-api=on: the node name is not set: set NODE_NAME from the downward API (fieldRef spec.nodeName)',
    );
    expect(() => chooseKubeConnection({ mode: 'on', nodeName: 'node-a', env: {} })).toThrow(
      /--kube-api=on: not running in a pod/,
    );
  });

  it('uses the in-cluster service account through client-node', async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', IN_CLUSTER.KUBERNETES_SERVICE_HOST);
    vi.stubEnv('KUBERNETES_SERVICE_PORT', IN_CLUSTER.KUBERNETES_SERVICE_PORT);
    const rootPrefix = await serviceAccount();
    const got = chooseKubeConnection({ mode: 'auto', nodeName: 'node-a', rootPrefix });
    expect(got.kind).toBe('enabled');
    if (got.kind !== 'enabled') return;
    expect(got.origin).toBe('in-cluster service account');
    expect(got.nodeName).toBe('node-a');
    expect(got.kubeConfig.getCurrentCluster()?.server).toBe('https://10.96.0.1:443');
    expect(got.kubeConfig.getCurrentUser()?.authProvider?.config?.tokenFile).toBe(
      `${rootPrefix}/var/run/secrets/kubernetes.io/serviceaccount/token`,
    );
  });

  it('prefers an explicit kubeconfig over the in-cluster account', async () => {
    const rootPrefix = await serviceAccount();
    const path = await writeKubeconfig(dir, 'http://127.0.0.1:6443', 't0ken');
    const got = chooseKubeConnection({
      mode: 'on',
      nodeName: 'node-a',
      kubeconfigPath: path,
      env: IN_CLUSTER,
      rootPrefix,
    });
    expect(got.kind === 'enabled' && got.origin).toBe(`kubeconfig ${path}`);
    expect(got.kind === 'enabled' && got.kubeConfig.getCurrentCluster()?.server).toBe(
      'http://127.0.0.1:6443',
    );
  });

  it('fails on a kubeconfig it cannot load, naming the file and keeping the cause', async () => {
    const missing = join(dir, 'nope');
    let err: unknown;
    try {
      chooseKubeConnection({ mode: 'auto', nodeName: 'node-a', kubeconfigPath: missing });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`cannot load kubeconfig ${missing}`);
    expect(((err as Error).cause as { code?: string }).code).toBe('ENOENT');
  });

  it('fails on a kubeconfig without a current context', async () => {
    const path = join(dir, 'empty');
    await writeFile(path, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [] }));
    expect(() =>
      chooseKubeConnection({ mode: 'auto', nodeName: 'node-a', kubeconfigPath: path }),
    ).toThrow(`kubeconfig ${path} names no current cluster: set current-context`);
  });
});
