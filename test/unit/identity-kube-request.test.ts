import { describe, expect, it } from 'vitest';
import type { KubeApiConfig } from '../../src/identity/kube-config.js';
import { KubeApiError, kubeApiError, kubeRequestOptions } from '../../src/identity/kube-request.js';

const HTTPS: KubeApiConfig = { server: 'https://10.96.0.1:443', insecureSkipTlsVerify: false };
const QUERY = { fieldSelector: 'spec.nodeName=node-a', limit: 500, continue: undefined };

describe('kubeRequestOptions', () => {
  it('builds a GET with query, bearer token and TLS material for https', () => {
    const got = kubeRequestOptions(
      { ...HTTPS, tlsServerName: 'kubernetes' },
      { ca: 'CA', cert: 'CERT', key: 'KEY', token: 'tok' },
      '/api/v1/pods',
      QUERY,
    );
    expect(got).toEqual({
      protocol: 'https:',
      options: {
        method: 'GET',
        hostname: '10.96.0.1',
        port: 443,
        path: '/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a&limit=500',
        headers: {
          accept: 'application/json',
          'user-agent': 'dnsrace',
          authorization: 'Bearer tok',
        },
        rejectUnauthorized: true,
        servername: 'kubernetes',
        ca: 'CA',
        cert: 'CERT',
        key: 'KEY',
      },
    });
  });

  it.each<[string, KubeApiConfig, object]>([
    [
      'an IPv6 server without a port',
      { server: 'https://[fd00::1]', insecureSkipTlsVerify: true },
      { hostname: 'fd00::1', port: 443, path: '/api/v1/pods', rejectUnauthorized: false },
    ],
    [
      'a path prefix',
      { server: 'https://rancher.example/k8s/clusters/c-1', insecureSkipTlsVerify: false },
      { hostname: 'rancher.example', port: 443, path: '/k8s/clusters/c-1/api/v1/pods' },
    ],
    [
      'plain http: no TLS options',
      { server: 'http://127.0.0.1:8001', insecureSkipTlsVerify: true },
      { hostname: '127.0.0.1', port: 8001, path: '/api/v1/pods' },
    ],
  ])('handles %s', (_what, config, want) => {
    const { options } = kubeRequestOptions(config, { ca: 'CA' }, '/api/v1/pods', {});
    expect(options).toMatchObject(want);
    if (config.server.startsWith('http:')) {
      expect(options.ca).toBeUndefined();
      expect(options.rejectUnauthorized).toBeUndefined();
    }
  });

  it('sends basic auth only without a token', () => {
    const basic = { ...HTTPS, basicAuth: { username: 'admin', password: 'p:w' } };
    expect(kubeRequestOptions(basic, {}, '/x', {}).options.headers).toMatchObject({
      authorization: `Basic ${Buffer.from('admin:p:w').toString('base64')}`,
    });
    expect(kubeRequestOptions(basic, { token: 't' }, '/x', {}).options.headers).toMatchObject({
      authorization: 'Bearer t',
    });
    expect(kubeRequestOptions(HTTPS, {}, '/x', {}).options.headers).not.toHaveProperty(
      'authorization',
    );
  });

  it('puts watch parameters as the API server reads them', () => {
    const { options } = kubeRequestOptions(HTTPS, {}, '/api/v1/pods', {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: '1001',
      timeoutSeconds: 450,
    });
    expect(options.path).toBe(
      '/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion=1001&timeoutSeconds=450',
    );
  });
});

describe('kubeApiError', () => {
  it.each<[string, number, string, string]>([
    [
      'a Forbidden Status',
      403,
      JSON.stringify({
        kind: 'Status',
        reason: 'Forbidden',
        message:
          'pods is forbidden: User "system:serviceaccount:dnsrace:dnsrace" cannot list resource "pods" in API group "" at the cluster scope',
        code: 403,
      }),
      'HTTP 403 Forbidden: pods is forbidden: User "system:serviceaccount:dnsrace:dnsrace" cannot list resource "pods" in API group "" at the cluster scope',
    ],
    [
      'a Status whose message repeats its reason',
      401,
      '{"kind":"Status","reason":"Unauthorized","message":"Unauthorized","code":401}',
      'HTTP 401 Unauthorized',
    ],
    [
      'a 410 Expired',
      410,
      '{"reason":"Expired","message":"too old resource version: 5 (9)"}',
      'HTTP 410 Expired: too old resource version: 5 (9)',
    ],
    ['an HTML page from a proxy', 502, '<html>\n<body>Bad Gateway</body>\n</html>', 'HTTP 502'],
    ['an empty body', 500, '', 'HTTP 500'],
    [
      'a multi-line message',
      500,
      JSON.stringify({ reason: 'InternalError', message: 'line one\nline two\n' }),
      'HTTP 500 InternalError: line one line two',
    ],
  ])('makes one line of %s', (_what, code, body, message) => {
    const err = kubeApiError(code, body);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.statusCode).toBe(code);
    expect(err.message).toBe(message);
  });

  it('cuts a long message', () => {
    const err = kubeApiError(500, JSON.stringify({ message: 'x'.repeat(5_000) }));
    expect(err.message).toBe(`HTTP 500 ${'x'.repeat(300)}`);
  });
});
