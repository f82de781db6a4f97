// Request options for the Kubernetes API from a KubeApiConfig and the secrets read for this
// request, and the error an API answer other than 200 becomes. Pure: kube-client.ts does the I/O.
import type { RequestOptions } from 'node:https';
import type { KubeApiConfig } from './kube-config.js';

/** The secret material of one request, read from the config's files or inline data. */
export interface KubeCredentials {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
}

/** Query values; undefined ones are left out. */
export type KubeQuery = Readonly<Record<string, string | number | boolean | undefined>>;

export interface KubeRequestOptions {
  /** 'https:' or 'http:' (a local proxy or test server), to pick node:https or node:http. */
  readonly protocol: 'https:' | 'http:';
  /** For node:http(s).request: host, port, path with query, headers and TLS options. */
  readonly options: RequestOptions;
}

/** A GET of apiPath (e.g. /api/v1/pods) on the configured server. */
export function kubeRequestOptions(
  config: KubeApiConfig,
  creds: KubeCredentials,
  apiPath: string,
  query: KubeQuery,
): KubeRequestOptions {
  const url = new URL(config.server);
  const protocol = url.protocol === 'http:' ? 'http:' : 'https:';
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query))
    if (value !== undefined) search.set(key, String(value));
  const qs = search.toString();
  const headers: Record<string, string> = {
    accept: 'application/json',
    'user-agent': 'dnsrace',
  };
  if (creds.token !== undefined) headers.authorization = `Bearer ${creds.token}`;
  else if (config.basicAuth !== undefined)
    headers.authorization = `Basic ${Buffer.from(`${config.basicAuth.username}:${config.basicAuth.password}`).toString('base64')}`;
  const options: RequestOptions = {
    method: 'GET',
    // URL keeps IPv6 literals bracketed; the socket layer wants them bare.
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (protocol === 'https:' ? 443 : 80) : Number(url.port),
    // A server URL may carry a path prefix (an authenticating proxy in front of the API).
    path: `${url.pathname.replace(/\/+$/, '')}${apiPath}${qs === '' ? '' : `?${qs}`}`,
    headers,
  };
  if (protocol === 'https:') {
    options.rejectUnauthorized = !config.insecureSkipTlsVerify;
    if (config.tlsServerName !== undefined) options.servername = config.tlsServerName;
    if (creds.ca !== undefined) options.ca = creds.ca;
    if (creds.cert !== undefined) options.cert = creds.cert;
    if (creds.key !== undefined) options.key = creds.key;
  }
  return { protocol, options };
}

/** An answer of the API server other than 200, with its Status object's reason and message. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly statusCode: number;
  /** Status.reason (NotFound, Expired, Forbidden…), when the body was a Status. */
  readonly reason: string | undefined;
  /** Status.message, on one line. */
  readonly detail: string | undefined;

  constructor(statusCode: number, reason: string | undefined, detail: string | undefined) {
    const text = [reason, detail !== reason ? detail : undefined].filter(Boolean).join(': ');
    super(`HTTP ${statusCode}${text === '' ? '' : ` ${text}`}`);
    this.statusCode = statusCode;
    this.reason = reason;
    this.detail = detail;
  }
}

/** Longest Status message kept: enough for an RBAC refusal, never a page of HTML. */
const MAX_DETAIL_CHARS = 300;

/** The error for a non-200 answer; body is what was read of it (a Status object, or anything). */
export function kubeApiError(statusCode: number, body: string): KubeApiError {
  let status: { reason?: unknown; message?: unknown } | undefined;
  try {
    status = JSON.parse(body) as typeof status;
  } catch {
    // not a Status object (a proxy's HTML page, say): the code says enough
  }
  const oneLine = (v: unknown) =>
    typeof v === 'string' && v.trim() !== ''
      ? v.replace(/\s+/g, ' ').trim().slice(0, MAX_DETAIL_CHARS)
      : undefined;
  return new KubeApiError(statusCode, oneLine(status?.reason), oneLine(status?.message));
}
