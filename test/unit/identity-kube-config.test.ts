import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  chooseKubeConnection,
  inClusterConfig,
  kubeApiConfigFromKubeconfig,
  loadKubeconfig,
} from '../../src/identity/kube-config.js';
import { writeKubeconfig } from '../support/fake-kube-api.js';

// Only its shape matters here: TLS with real certificates is in identity-kube-client.test.ts.
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const b64 = (text: string) => Buffer.from(text).toString('base64');
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
  await writeFile(join(sa, 'ca.crt'), CA_PEM);
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

  it('uses the in-cluster service account: token and CA as files, re-read per request', async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', IN_CLUSTER.KUBERNETES_SERVICE_HOST);
    vi.stubEnv('KUBERNETES_SERVICE_PORT', IN_CLUSTER.KUBERNETES_SERVICE_PORT);
    const rootPrefix = await serviceAccount();
    const sa = `${rootPrefix}/var/run/secrets/kubernetes.io/serviceaccount`;
    const got = chooseKubeConnection({ mode: 'auto', nodeName: 'node-a', rootPrefix });
    expect(got).toEqual({
      kind: 'enabled',
      origin: 'in-cluster service account',
      nodeName: 'node-a',
      kubeConfig: {
        server: 'https://10.96.0.1:443',
        insecureSkipTlsVerify: false,
        token: { file: `${sa}/token`, field: 'service account token' },
        ca: { file: `${sa}/ca.crt`, field: 'service account CA' },
      },
    });
  });

  it('in-cluster without ca.crt verifies against the system roots, as client-go does', async () => {
    const rootPrefix = await serviceAccount();
    await rm(join(rootPrefix, 'var/run/secrets/kubernetes.io/serviceaccount/ca.crt'));
    const got = chooseKubeConnection({ mode: 'on', nodeName: 'n', env: IN_CLUSTER, rootPrefix });
    expect(got.kind === 'enabled' && got.kubeConfig.ca).toBeUndefined();
  });

  it.each([
    ['10.96.0.1', '443', 'https://10.96.0.1:443'],
    ['fd00:10:96::1', '443', 'https://[fd00:10:96::1]:443'],
    ['kubernetes.default.svc', '6443', 'https://kubernetes.default.svc:6443'],
  ])('in-cluster host %s port %s → %s', (host, port, server) => {
    expect(inClusterConfig({ host, port, serviceAccountDir: '/sa', hasCa: true }).server).toBe(
      server,
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
    expect(got.kind === 'enabled' && got.kubeConfig).toEqual({
      server: 'http://127.0.0.1:6443',
      insecureSkipTlsVerify: true,
      token: { data: 't0ken' },
    });
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
    ).toThrow(`kubeconfig ${path}: no current-context: set it to one of contexts[].name`);
  });

  it('fails on a kubeconfig that is not YAML, keeping the parser’s error', async () => {
    const path = join(dir, 'broken');
    await writeFile(path, 'clusters: [\n  - name: a\n');
    let err: unknown;
    try {
      loadKubeconfig(path);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe(`cannot parse kubeconfig ${path} as YAML`);
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('says that a $KUBECONFIG list is not read', () => {
    const list = `${join(dir, 'a')}:${join(dir, 'b')}`;
    expect(() => loadKubeconfig(list)).toThrow(
      `cannot load kubeconfig ${list}: dnsrace reads one kubeconfig file, not a list: pass --kubeconfig <file>`,
    );
  });
});

/** A kubeconfig whose current context "ctx" joins cluster "c" and, when given, user "u". */
function kubeconfig(cluster: object, user?: object): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'ctx',
    contexts: [{ name: 'ctx', context: { cluster: 'c', ...(user ? { user: 'u' } : {}) } }],
    clusters: [
      { name: 'other', cluster: { server: 'https://wrong:1' } },
      { name: 'c', cluster },
    ],
    users: user ? [{ name: 'u', user }] : [],
  };
}

const SERVER = 'https://api.example:6443';

describe('kubeApiConfigFromKubeconfig', () => {
  it.each<[string, object, object | undefined, object]>([
    [
      'a bearer token and inline CA data',
      { server: SERVER, 'certificate-authority-data': b64(CA_PEM) },
      { token: 'abc' },
      {
        server: SERVER,
        insecureSkipTlsVerify: false,
        ca: { data: CA_PEM },
        token: { data: 'abc' },
      },
    ],
    [
      'a CA file, relative to the kubeconfig',
      { server: SERVER, 'certificate-authority': 'pki/ca.crt' },
      undefined,
      {
        server: SERVER,
        insecureSkipTlsVerify: false,
        ca: { file: '/etc/kube/pki/ca.crt', field: 'clusters[c].cluster.certificate-authority' },
      },
    ],
    [
      'CA data and a CA file (data wins, as in client-go)',
      {
        server: SERVER,
        'certificate-authority': '/etc/ca.crt',
        'certificate-authority-data': b64(CA_PEM),
      },
      undefined,
      { server: SERVER, insecureSkipTlsVerify: false, ca: { data: CA_PEM } },
    ],
    [
      'a client certificate and key as files',
      { server: SERVER },
      { 'client-certificate': 'client.crt', 'client-key': '/keys/client.key' },
      {
        server: SERVER,
        insecureSkipTlsVerify: false,
        clientCert: { file: '/etc/kube/client.crt', field: 'users[u].user.client-certificate' },
        clientKey: { file: '/keys/client.key', field: 'users[u].user.client-key' },
      },
    ],
    [
      'a client certificate and key as data',
      { server: SERVER },
      { 'client-certificate-data': b64(CA_PEM), 'client-key-data': b64(KEY_PEM) },
      {
        server: SERVER,
        insecureSkipTlsVerify: false,
        clientCert: { data: CA_PEM },
        clientKey: { data: KEY_PEM },
      },
    ],
    [
      'token and tokenFile (the file wins: it is re-read, as client-go does)',
      { server: SERVER },
      { token: 'stale', tokenFile: 'token' },
      {
        server: SERVER,
        insecureSkipTlsVerify: false,
        token: { file: '/etc/kube/token', field: 'users[u].user.tokenFile' },
      },
    ],
    [
      'basic auth, insecure-skip-tls-verify, tls-server-name and a path prefix',
      {
        server: 'https://rancher.example/k8s/clusters/c-1/',
        'insecure-skip-tls-verify': true,
        'tls-server-name': 'kubernetes',
      },
      { username: 'admin', password: 'pw' },
      {
        server: 'https://rancher.example/k8s/clusters/c-1',
        insecureSkipTlsVerify: true,
        tlsServerName: 'kubernetes',
        basicAuth: { username: 'admin', password: 'pw' },
      },
    ],
    [
      'plain http (kubectl proxy, test servers) and a user with nothing',
      { server: 'http://127.0.0.1:8001' },
      {},
      { server: 'http://127.0.0.1:8001', insecureSkipTlsVerify: false },
    ],
  ])('reads %s', (_what, cluster, user, want) => {
    expect(kubeApiConfigFromKubeconfig(kubeconfig(cluster, user), '/etc/kube')).toEqual(want);
  });

  const ok = kubeconfig({ server: SERVER }, { token: 't' });
  it.each<[string, unknown, string]>([
    ['a YAML scalar', 'text', 'not a YAML mapping of a Config'],
    [
      'no current-context',
      { ...ok, 'current-context': '' },
      'no current-context: set it to one of contexts[].name',
    ],
    [
      'a current-context that is not in contexts',
      { ...ok, 'current-context': 'prod' },
      'contexts[] has no entry named "prod"',
    ],
    [
      'a context without a cluster',
      { ...ok, contexts: [{ name: 'ctx', context: { user: 'u' } }] },
      'contexts[ctx].context.cluster is missing',
    ],
    [
      'a context naming a cluster that is not in clusters',
      { ...ok, clusters: [] },
      'clusters[] has no entry named "c"',
    ],
    [
      'a context naming a user that is not in users',
      { ...ok, users: [{ name: 'v', user: {} }] },
      'users[] has no entry named "u"',
    ],
    [
      'a cluster without server',
      kubeconfig({ 'certificate-authority': '/ca' }),
      'clusters[c].cluster.server is missing',
    ],
    [
      'a server that is no URL',
      kubeconfig({ server: '::' }),
      'clusters[c].cluster.server :: is not a URL',
    ],
    [
      'a server that is neither https nor http',
      kubeconfig({ server: 'unix:///run/k8s.sock' }),
      'clusters[c].cluster.server unix:///run/k8s.sock is neither https:// nor http://',
    ],
    [
      'a proxy',
      kubeconfig({ server: SERVER, 'proxy-url': 'http://proxy:3128' }),
      'clusters[c].cluster.proxy-url: dnsrace does not use proxies; remove it',
    ],
    [
      'insecure-skip-tls-verify as text',
      kubeconfig({ server: SERVER, 'insecure-skip-tls-verify': 'yes' }),
      'clusters[c].cluster.insecure-skip-tls-verify must be true or false',
    ],
    [
      'CA data that is not base64 PEM',
      kubeconfig({ server: SERVER, 'certificate-authority-data': 'bm90IHBlbQ==' }),
      'clusters[c].cluster.certificate-authority-data is not base64 of a PEM block',
    ],
    [
      'an exec credential plugin',
      kubeconfig(
        { server: SERVER },
        { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } },
      ),
      'users[u].user.exec: an exec credential plugin is not supported; give the user a token, tokenFile or client certificate',
    ],
    [
      'an auth-provider plugin',
      kubeconfig({ server: SERVER }, { 'auth-provider': { name: 'oidc' } }),
      'users[u].user.auth-provider: an auth-provider plugin is not supported; give the user a token, tokenFile or client certificate',
    ],
    [
      'a client certificate without its key',
      kubeconfig({ server: SERVER }, { 'client-certificate-data': b64(CA_PEM) }),
      'users[u].user has client-certificate but no client-key or client-key-data',
    ],
    [
      'a client key without its certificate',
      kubeconfig({ server: SERVER }, { 'client-key': '/k' }),
      'users[u].user has client-key but no client-certificate or client-certificate-data',
    ],
    [
      'a token that is not a string',
      kubeconfig({ server: SERVER }, { token: 42 }),
      'users[u].user.token must be a string',
    ],
    [
      'a username without password',
      kubeconfig({ server: SERVER }, { username: 'admin' }),
      'users[u].user needs both username and password, or neither',
    ],
  ])('refuses %s, naming the field', (_what, doc, message) => {
    expect(() => kubeApiConfigFromKubeconfig(doc, '/etc/kube')).toThrow(message);
  });
});

describe('loadKubeconfig', () => {
  it('reads YAML, resolving file names against the kubeconfig’s directory', async () => {
    await mkdir(join(dir, 'pki'));
    await writeFile(join(dir, 'pki', 'ca.crt'), CA_PEM);
    await writeFile(join(dir, 'pki', 'client.crt'), CA_PEM);
    await writeFile(join(dir, 'pki', 'client.key'), KEY_PEM);
    const path = join(dir, 'config');
    await writeFile(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: admin@lab',
        'clusters:',
        '- name: lab',
        '  cluster:',
        '    server: https://10.0.0.1:6443',
        '    certificate-authority: pki/ca.crt',
        'users:',
        '- name: admin',
        '  user:',
        '    client-certificate: pki/client.crt',
        '    client-key: pki/client.key',
        'contexts:',
        '- name: admin@lab',
        '  context: {cluster: lab, user: admin, namespace: default}',
        '',
      ].join('\n'),
    );
    expect(loadKubeconfig(path)).toEqual({
      server: 'https://10.0.0.1:6443',
      insecureSkipTlsVerify: false,
      ca: { file: join(dir, 'pki/ca.crt'), field: 'clusters[lab].cluster.certificate-authority' },
      clientCert: {
        file: join(dir, 'pki/client.crt'),
        field: 'users[admin].user.client-certificate',
      },
      clientKey: { file: join(dir, 'pki/client.key'), field: 'users[admin].user.client-key' },
    });
  });

  it('fails when a file the kubeconfig names cannot be read, naming the field', async () => {
    const path = join(dir, 'config');
    await writeFile(
      path,
      JSON.stringify(kubeconfig({ server: SERVER }, { tokenFile: 'missing-token' })),
    );
    let err: unknown;
    try {
      loadKubeconfig(path);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe(
      `kubeconfig ${path}: cannot read users[u].user.tokenFile ${join(dir, 'missing-token')}`,
    );
    expect(((err as Error).cause as { code?: string }).code).toBe('ENOENT');
  });
});
