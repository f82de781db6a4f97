// Whether and how to reach the Kubernetes API for pod identity: an explicit kubeconfig file, or
// the in-cluster service account, or neither (then /var/log/pods alone names pods). Resolves
// either into a KubeApiConfig: the server, the TLS material and the credentials, where every
// file-held secret stays a file name so that each request re-reads it (rotated tokens and certs).
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import type * as Yaml from 'yaml';

/** auto: use the API when a kubeconfig or service account is there; on: require it; off: never. */
export type KubeApiMode = 'auto' | 'on' | 'off';

/** Secret material inline (kubeconfig *-data fields, token) or in a file re-read per request. */
export type KubeSecret =
  | { readonly data: string }
  | {
      readonly file: string;
      /** Where the file name came from, for errors: 'users[admin].user.client-key'. */
      readonly field: string;
    };

/** What the client needs to reach the API server; see kube-request.ts for its use. */
export interface KubeApiConfig {
  /** Base URL without a trailing slash: https://host:port, maybe with a path prefix (proxies). */
  readonly server: string;
  /** PEM bundle to verify the server with; none: the system's roots. */
  readonly ca?: KubeSecret;
  readonly insecureSkipTlsVerify: boolean;
  /** SNI and the name verified in the server certificate, when not the server URL's host. */
  readonly tlsServerName?: string;
  /** PEM client certificate and key (both or neither). */
  readonly clientCert?: KubeSecret;
  readonly clientKey?: KubeSecret;
  readonly token?: KubeSecret;
  readonly basicAuth?: { readonly username: string; readonly password: string };
}

export interface KubeConnectionRequest {
  readonly mode: KubeApiMode;
  /** --kubeconfig (or $KUBECONFIG, resolved by the config module): wins over in-cluster. */
  readonly kubeconfigPath?: string;
  /** This node's name ($NODE_NAME from the downward API): the watch is limited to its pods. */
  readonly nodeName?: string;
  /** Environment holding KUBERNETES_SERVICE_HOST/PORT. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Prefix of /var/run/secrets/kubernetes.io/serviceaccount (tests). Default ''. */
  readonly rootPrefix?: string;
}

export type KubeConnection =
  | {
      readonly kind: 'enabled';
      readonly kubeConfig: KubeApiConfig;
      readonly nodeName: string;
      /** For logs: 'in-cluster service account' or 'kubeconfig <path>'. */
      readonly origin: string;
    }
  | { readonly kind: 'disabled'; readonly reason: string };

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Decides from flags and environment. Throws, naming what to change, when --kube-api=on cannot be
 * honoured or an explicit kubeconfig cannot be loaded; in auto mode a missing prerequisite only
 * disables the source (the reason says which).
 */
export function chooseKubeConnection(req: KubeConnectionRequest): KubeConnection {
  if (req.mode === 'off') return { kind: 'disabled', reason: 'disabled by --kube-api=off' };
  const unavailable = (reason: string): KubeConnection => {
    if (req.mode === 'on') throw new Error(`--kube-api=on: ${reason}`);
    return { kind: 'disabled', reason };
  };
  const nodeName = req.nodeName?.trim();
  if (!nodeName)
    return unavailable(
      'the node name is not set: set NODE_NAME from the downward API (fieldRef spec.nodeName)',
    );

  if (req.kubeconfigPath !== undefined && req.kubeconfigPath !== '') {
    const kubeConfig = loadKubeconfig(req.kubeconfigPath);
    return { kind: 'enabled', kubeConfig, nodeName, origin: `kubeconfig ${req.kubeconfigPath}` };
  }

  const env = req.env ?? process.env;
  const saDir = (req.rootPrefix ?? '') + SERVICE_ACCOUNT_DIR;
  const tokenFile = join(saDir, 'token');
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT)
    return unavailable(
      'not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset) and no --kubeconfig given',
    );
  if (!existsSync(tokenFile))
    return unavailable(
      `no service account token at ${tokenFile}: set automountServiceAccountToken: true on the pod`,
    );
  const kubeConfig = inClusterConfig({
    host: env.KUBERNETES_SERVICE_HOST,
    port: env.KUBERNETES_SERVICE_PORT,
    serviceAccountDir: saDir,
    hasCa: existsSync(join(saDir, 'ca.crt')),
  });
  return { kind: 'enabled', kubeConfig, nodeName, origin: 'in-cluster service account' };
}

/**
 * client-go's rest.InClusterConfig: https to the kubernetes Service, the projected token (re-read
 * on every request, as the kubelet rotates it) and the cluster CA (system roots when it is absent,
 * as client-go does).
 */
export function inClusterConfig(o: {
  host: string;
  port: string;
  serviceAccountDir: string;
  hasCa: boolean;
}): KubeApiConfig {
  const host = isIPv6(o.host) ? `[${o.host}]` : o.host;
  return {
    server: `https://${host}:${o.port}`,
    insecureSkipTlsVerify: false,
    token: { file: join(o.serviceAccountDir, 'token'), field: 'service account token' },
    ...(o.hasCa
      ? { ca: { file: join(o.serviceAccountDir, 'ca.crt'), field: 'service account CA' } }
      : {}),
  };
}

/**
 * Reads a kubeconfig file and resolves its current context. Throws naming the file and the field
 * to fix; files it names must be readable now (they are read again on every request).
 */
export function loadKubeconfig(path: string): KubeApiConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const several = path.includes(delimiter) && !existsSync(path);
    throw new Error(
      several
        ? `cannot load kubeconfig ${path}: dnsrace reads one kubeconfig file, not a list: pass --kubeconfig <file>`
        : `cannot load kubeconfig ${path}`,
      { cause: err },
    );
  }
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (err) {
    throw new Error(`cannot parse kubeconfig ${path} as YAML`, { cause: err });
  }
  let config: KubeApiConfig;
  try {
    config = kubeApiConfigFromKubeconfig(doc, dirname(resolve(path)));
  } catch (err) {
    throw new Error(`kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
  }
  for (const secret of [config.ca, config.clientCert, config.clientKey, config.token]) {
    if (secret === undefined || !('file' in secret)) continue;
    try {
      accessSync(secret.file, constants.R_OK);
    } catch (err) {
      throw new Error(`kubeconfig ${path}: cannot read ${secret.field} ${secret.file}`, {
        cause: err,
      });
    }
  }
  return config;
}

/** Fields of a kubeconfig user that need code dnsrace does not carry, and what to use instead. */
const UNSUPPORTED_USER_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['exec', 'an exec credential plugin'],
  ['auth-provider', 'an auth-provider plugin'],
  ['as', 'impersonation'],
  ['as-uid', 'impersonation'],
  ['as-groups', 'impersonation'],
  ['as-user-extra', 'impersonation'],
];

/**
 * The current context of a parsed kubeconfig (clientcmd/api/v1 Config), as a KubeApiConfig. Pure.
 * Relative file names are relative to dir, the kubeconfig's directory (as kubectl reads them);
 * *-data fields win over their file twins and tokenFile over token (as client-go has it).
 * Throws an error that names the field to fix.
 */
export function kubeApiConfigFromKubeconfig(doc: unknown, dir: string): KubeApiConfig {
  const root = asRecord(doc);
  if (root === undefined) throw new Error('not a YAML mapping of a Config');
  const contextName = optionalString(root, 'current-context', 'current-context');
  if (!contextName) throw new Error('no current-context: set it to one of contexts[].name');
  const context = named(root, 'contexts', 'context', contextName);
  const clusterName = optionalString(context.value, 'cluster', `${context.at}.cluster`);
  if (!clusterName) throw new Error(`${context.at}.cluster is missing`);
  const cluster = named(root, 'clusters', 'cluster', clusterName);
  const userName = optionalString(context.value, 'user', `${context.at}.user`);
  const user = userName ? named(root, 'users', 'user', userName) : undefined;

  const c = cluster.value;
  const serverText = optionalString(c, 'server', `${cluster.at}.server`);
  if (!serverText) throw new Error(`${cluster.at}.server is missing`);
  let server: URL;
  try {
    server = new URL(serverText);
  } catch (err) {
    throw new Error(`${cluster.at}.server ${serverText} is not a URL`, { cause: err });
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:')
    throw new Error(`${cluster.at}.server ${serverText} is neither https:// nor http://`);
  if (optionalString(c, 'proxy-url', `${cluster.at}.proxy-url`))
    throw new Error(`${cluster.at}.proxy-url: dnsrace does not use proxies; remove it`);
  const insecure = c['insecure-skip-tls-verify'];
  if (insecure !== undefined && typeof insecure !== 'boolean')
    throw new Error(`${cluster.at}.insecure-skip-tls-verify must be true or false`);
  const tlsServerName = optionalString(c, 'tls-server-name', `${cluster.at}.tls-server-name`);
  const ca = secretOf(c, 'certificate-authority', cluster.at, dir);

  let userPart: Pick<KubeApiConfig, 'clientCert' | 'clientKey' | 'token' | 'basicAuth'> = {};
  if (user !== undefined) {
    const u = user.value;
    for (const [field, what] of UNSUPPORTED_USER_FIELDS)
      if (u[field] !== undefined && u[field] !== null)
        throw new Error(
          `${user.at}.${field}: ${what} is not supported; give the user a token, tokenFile or client certificate`,
        );
    const clientCert = secretOf(u, 'client-certificate', user.at, dir);
    const clientKey = secretOf(u, 'client-key', user.at, dir);
    if ((clientCert === undefined) !== (clientKey === undefined))
      throw new Error(
        clientCert === undefined
          ? `${user.at} has client-key but no client-certificate or client-certificate-data`
          : `${user.at} has client-certificate but no client-key or client-key-data`,
      );
    const tokenFile = optionalString(u, 'tokenFile', `${user.at}.tokenFile`);
    const token = optionalString(u, 'token', `${user.at}.token`);
    const username = optionalString(u, 'username', `${user.at}.username`);
    const password = optionalString(u, 'password', `${user.at}.password`);
    if ((username === undefined) !== (password === undefined))
      throw new Error(`${user.at} needs both username and password, or neither`);
    userPart = {
      ...(clientCert === undefined ? {} : { clientCert, clientKey }),
      ...(tokenFile
        ? { token: { file: resolve(dir, tokenFile), field: `${user.at}.tokenFile` } }
        : token
          ? { token: { data: token } }
          : {}),
      ...(username === undefined ? {} : { basicAuth: { username, password: password ?? '' } }),
    };
  }
  return {
    server: serverText.replace(/\/+$/, ''),
    insecureSkipTlsVerify: insecure === true,
    ...(tlsServerName ? { tlsServerName } : {}),
    ...(ca === undefined ? {} : { ca }),
    ...userPart,
  };
}

/** The entry of a named list (contexts, clusters, users) and its path for messages. */
function named(
  root: Record<string, unknown>,
  list: string,
  key: string,
  name: string,
): { value: Record<string, unknown>; at: string } {
  const entries = root[list];
  const entry = Array.isArray(entries)
    ? entries.map(asRecord).find((e) => e?.name === name)
    : undefined;
  if (entry === undefined) throw new Error(`${list}[] has no entry named "${name}"`);
  const at = `${list}[${name}].${key}`;
  const value = asRecord(entry[key]);
  if (value === undefined) throw new Error(`${at} is missing`);
  return { value, at };
}

/** `<field>-data` (base64 PEM) or `<field>` (a file name), data first. */
function secretOf(
  obj: Record<string, unknown>,
  field: string,
  at: string,
  dir: string,
): KubeSecret | undefined {
  const data = optionalString(obj, `${field}-data`, `${at}.${field}-data`);
  if (data) {
    const pem = Buffer.from(data, 'base64').toString('utf8');
    if (!pem.includes('-----BEGIN '))
      throw new Error(`${at}.${field}-data is not base64 of a PEM block`);
    return { data: pem };
  }
  const file = optionalString(obj, field, `${at}.${field}`);
  return file ? { file: resolve(dir, file), field: `${at}.${field}` } : undefined;
}

function optionalString(obj: Record<string, unknown>, key: string, at: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${at} must be a string`);
  return v;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/**
 * The YAML parser, loaded on first use: only a kubeconfig file needs it, and the in-cluster
 * exporter (the DaemonSet) should not pay its ~9 MB of RSS. require, not import(), keeps
 * chooseKubeConnection synchronous.
 */
function yaml(): typeof Yaml {
  return createRequire(import.meta.url)('yaml') as typeof Yaml;
}
