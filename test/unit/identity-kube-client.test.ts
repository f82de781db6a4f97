// kube-client.ts over real TLS: a local https server with certificates made by openssl for this
// run (a CA, a server certificate for 127.0.0.1 and "kubernetes", a client certificate), as an
// API server would check them. The fake Kubernetes API server (identity-kube-api-source.test.ts)
// speaks plain http only.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createKubeAgent,
  kubeGetJson,
  kubeWatch,
  readKubeCredentials,
} from '../../src/identity/kube-client.js';
import type { KubeApiConfig } from '../../src/identity/kube-config.js';
import { KubeApiError } from '../../src/identity/kube-request.js';
import type { WatchEvent } from '../../src/identity/kube-watch-stream.js';

let dir: string;
let server: Server;
let handler: (req: IncomingMessage, res: ServerResponse) => void;
/** Per request: the client certificate's CN (if any) and the Authorization header. */
let seen: Array<{ cn: string | undefined; authorization: string | undefined; url: string }>;
let base: KubeApiConfig;

function openssl(...args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    throw new Error(
      e.code === 'ENOENT'
        ? 'openssl not found: install it (apt-get install openssl)'
        : `openssl ${args.join(' ')} failed: ${String(e.stderr).trim()}`,
      { cause: err },
    );
  }
}

/** A P-256 key and a certificate signed by ca (or self-signed when ca is undefined). */
function certificate(name: string, subject: string, ext: string, ca?: string): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (ca === undefined) {
    openssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-subj',
      subject,
      '-addext',
      ext,
    );
    return;
  }
  openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > ${name}.ext`], { cwd: dir });
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dnsrace-kube-tls-'));
  certificate('ca', '/CN=dnsrace-test-ca', 'basicConstraints=critical,CA:TRUE');
  certificate('other-ca', '/CN=some-other-ca', 'basicConstraints=critical,CA:TRUE');
  certificate('server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:kubernetes', 'ca');
  certificate('client', '/CN=system:node:node-a', 'extendedKeyUsage=clientAuth', 'ca');
  server = createServer({
    key: await readFile(join(dir, 'server.key')),
    cert: await readFile(join(dir, 'server.crt')),
    ca: await readFile(join(dir, 'ca.crt')),
    // Like the API server: a client certificate is one way in, a token another.
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    const cn = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
    seen.push({
      cn: typeof cn === 'string' ? cn : undefined,
      authorization: req.headers.authorization,
      url: req.url ?? '',
    });
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = {
    server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    insecureSkipTlsVerify: false,
    ca: { file: join(dir, 'ca.crt'), field: 'certificate-authority' },
  };
}, 30_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  seen = [];
  server.closeAllConnections();
});
seen = [];

const json = (body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('kubeGetJson over TLS', () => {
  it('verifies the server with the CA file and shows the client certificate', async () => {
    handler = json({ kind: 'PodList', items: [] });
    const config: KubeApiConfig = {
      ...base,
      clientCert: { file: join(dir, 'client.crt'), field: 'client-certificate' },
      clientKey: { file: join(dir, 'client.key'), field: 'client-key' },
    };
    await expect(kubeGetJson(config, '/api/v1/pods', { limit: 1 })).resolves.toEqual({
      kind: 'PodList',
      items: [],
    });
    expect(seen).toEqual([
      { cn: 'system:node:node-a', authorization: undefined, url: '/api/v1/pods?limit=1' },
    ]);
  });

  it('takes CA, certificate and key inline as well', async () => {
    handler = json({ ok: true });
    const pem = async (f: string) => ({ data: await readFile(join(dir, f), 'utf8') });
    const config: KubeApiConfig = {
      ...base,
      ca: await pem('ca.crt'),
      clientCert: await pem('client.crt'),
      clientKey: await pem('client.key'),
    };
    await expect(kubeGetJson(config, '/x', {})).resolves.toEqual({ ok: true });
    expect(seen[0]?.cn).toBe('system:node:node-a');
  });

  it.each<[string, Partial<KubeApiConfig>, RegExp]>([
    ['another CA', { ca: { file: 'other-ca.crt', field: 'certificate-authority' } }, /certificate/],
    ['no CA (system roots)', { ca: undefined }, /certificate/],
    ['a server name the certificate lacks', { tlsServerName: 'api.example' }, /altnames/],
  ])('refuses the server when verified against %s', async (_what, over, message) => {
    handler = json({});
    const ca =
      over.ca && 'file' in over.ca ? { ca: { ...over.ca, file: join(dir, over.ca.file) } } : {};
    await expect(kubeGetJson({ ...base, ...over, ...ca }, '/x', {})).rejects.toThrow(message);
    expect(seen).toEqual([]);
  });

  it.each<[string, Partial<KubeApiConfig>]>([
    ['tls-server-name that the certificate has', { tlsServerName: 'kubernetes' }],
    ['insecure-skip-tls-verify', { ca: undefined, insecureSkipTlsVerify: true }],
  ])('accepts the server with %s', async (_what, over) => {
    handler = json({ ok: 1 });
    await expect(kubeGetJson({ ...base, ...over }, '/x', {})).resolves.toEqual({ ok: 1 });
  });

  it('re-reads a token file on every request (rotated service account tokens)', async () => {
    handler = json({});
    const tokenFile = join(dir, 'token');
    const config: KubeApiConfig = { ...base, token: { file: tokenFile, field: 'tokenFile' } };
    const agent = createKubeAgent(config);
    try {
      await writeFile(tokenFile, 'first\n');
      await kubeGetJson(config, '/x', {}, { agent });
      await writeFile(tokenFile, 'second');
      await kubeGetJson(config, '/x', {}, { agent });
    } finally {
      agent.destroy();
    }
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer first', 'Bearer second']);
  });

  it.each<[string, string | undefined, string]>([
    ['empty', '  \n', `the bearer token is empty (tokenFile ${'TOKEN'})`],
    ['missing', undefined, `cannot read tokenFile ${'TOKEN'}: ENOENT`],
  ])('fails before connecting when the token file is %s', async (_what, content, message) => {
    const tokenFile = join(dir, `token-${_what}`);
    if (content !== undefined) await writeFile(tokenFile, content);
    const config: KubeApiConfig = { ...base, token: { file: tokenFile, field: 'tokenFile' } };
    await expect(readKubeCredentials(config)).rejects.toThrow(message.replace('TOKEN', tokenFile));
    expect(seen).toEqual([]);
  });

  it('rejects a refusal with a KubeApiError carrying the Status', async () => {
    handler = (_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          reason: 'Forbidden',
          message: 'pods is forbidden',
          code: 403,
        }),
      );
    };
    const err = await kubeGetJson(base, '/x', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).message).toBe('HTTP 403 Forbidden: pods is forbidden');
  });

  it('gives up on a server that never answers when the signal fires, with its reason', async () => {
    handler = () => undefined; // headers never come
    const err = await kubeGetJson(base, '/x', {}, { signal: AbortSignal.timeout(100) }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).name).toBe('TimeoutError');
  });
});

describe('kubeWatch over TLS', () => {
  function watch(config: KubeApiConfig, onEvent?: (e: WatchEvent, abort: () => void) => void) {
    const events: WatchEvent[] = [];
    let opened = false;
    let abort = () => undefined as void;
    const ended = new Promise<unknown>((resolve) => {
      abort = kubeWatch(
        config,
        '/api/v1/pods',
        { watch: true },
        {
          onOpen: () => (opened = true),
          onEvent: (e) => {
            events.push(e);
            onEvent?.(e, abort);
          },
          onEnd: (err) => resolve(err ?? 'clean end'),
        },
      );
    });
    return { events, ended, abort: () => abort(), opened: () => opened };
  }

  it('streams events cut across TLS records, then ends cleanly when the server ends', async () => {
    const lines = [
      { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '3' } } },
      { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } },
    ];
    const text = lines.map((l) => `${JSON.stringify(l)}\n`).join('');
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      const cuts = [0, 10, 70, text.length - 3, text.length];
      cuts
        .slice(1)
        .forEach((end, i) => setTimeout(() => res.write(text.slice(cuts[i], end)), 10 * (i + 1)));
      setTimeout(() => res.end(), 60);
    };
    const w = watch(base);
    await expect(w.ended).resolves.toBe('clean end');
    expect(w.opened()).toBe(true);
    expect(w.events).toEqual(lines);
    expect(seen[0]?.url).toBe('/api/v1/pods?watch=true');
  });

  it('reports a 410 answer as a KubeApiError, without opening', async () => {
    handler = (_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(
        '{"kind":"Status","reason":"Expired","message":"too old resource version","code":410}',
      );
    };
    const w = watch(base);
    const err = await w.ended;
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(410);
    expect(w.opened()).toBe(false);
  });

  it('reports a connection lost mid-stream as an error', async () => {
    handler = (req, res) => {
      res.writeHead(200);
      res.write('{"type":"ADDED","object":{}}\n{"type":"MOD');
      setTimeout(() => req.socket.destroy(), 20);
    };
    const w = watch(base);
    const err = await w.ended;
    expect(String(err)).toMatch(/watch connection (lost|closed)/);
    expect(w.events.map((e) => e.type)).toEqual(['ADDED']);
  });

  it('aborting from an event handler, as the last byte arrives, ends quietly', async () => {
    // The source aborts on an ERROR event, which the server sends just before it ends the
    // stream: an abort in that window once crashed the process (see open() in kube-client.ts).
    handler = (_req, res) => {
      res.writeHead(200);
      res.end('{"type":"ERROR","object":{"code":410}}\n');
    };
    let aborted = false;
    const w = watch(base, (_e, abort) => {
      abort();
      aborted = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(aborted).toBe(true);
    expect(w.events).toHaveLength(1);
  });

  it('abort() closes the connection on the server', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    handler = (req, res) => {
      res.writeHead(200);
      res.write('{"type":"ADDED","object":{}}\n');
      req.socket.on('close', () => closed());
    };
    const w = watch(base, (_e, abort) => abort());
    await serverSawClose;
    expect(w.events).toHaveLength(1);
  });
});
