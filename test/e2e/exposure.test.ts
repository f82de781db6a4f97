// Exposure: what the exporter shows, to whom, and how it takes hostile requests.
// - /metrics (text, OpenMetrics with exemplars, protobuf) carries no query name, while the
//   drill-down API (with its token) does show the same names: proof they were seen.
// - The drill-down listens only where --drilldown-listen-address says, and its API answers
//   only with the bearer token (DNSRACE_DRILLDOWN_TOKEN).
// - Oversized and malformed requests to every route of both listeners get clean 4xx answers
//   (or 431 and a close for a header overflow); slowloris connections are closed after the
//   headers timeout while scrapes keep answering.
// - A seeded fuzz of a few thousand requests (DNSRACE_FUZZ_SEED, DNSRACE_FUZZ_REQUESTS):
//   no 5xx, no hang, no API data without the token, no query name outside the API, and the
//   exporter keeps serving with its descriptors and memory where they were.
//
// Run: npx vitest run --project e2e test/e2e/exposure.test.ts   (root; about 1 min)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Lab, type Pod } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { parsePromText } from '../support/prom-text.js';
import { parseConfig } from '../../src/config.js';
import { HEADERS_TIMEOUT_MS } from '../../src/http/server.js';
import { generateCases, type FuzzCase } from '../load/http-fuzz.js';
import { partialRequest, rawRequest, type RawResponse } from '../load/raw-http.js';
import { exporterPid, MiB, sampleProc } from '../load/proc-stats.js';

const TOKEN = `t-${randomBytes(16).toString('hex')}`;
/** Query names carry this: it must show in the drill-down API and nowhere else. */
const CANARY = `zq${randomBytes(5).toString('hex')}`;
const DRILLDOWN_HOST = '127.0.0.3'; // not the default: shows the flag is honoured
const PROTOBUF_ACCEPT =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited';
const FUZZ_SEED = Number(process.env.DNSRACE_FUZZ_SEED ?? 0x5eed);
const FUZZ_REQUESTS = Number(process.env.DNSRACE_FUZZ_REQUESTS ?? 3000);

let lab: Lab;
let exporter: ExporterProcess;
let leaky: Pod;
let pid: number;
let metricsPort: number;
let drilldownPort: number;
const auth = { authorization: `Bearer ${TOKEN}` };

const metricsUrl = (p: string) => `http://127.0.0.1:${metricsPort}${p}`;
const drillUrl = (p: string) => `http://${DRILLDOWN_HOST}:${drilldownPort}${p}`;

async function body(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { headers });
  return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
}

/** Resolves 'refused' when nothing listens on host:port, 'open' when something does. */
function probe(host: string, port: number): Promise<'open' | 'refused' | string> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve(e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? e.message)),
    );
  });
}

async function stillServing(): Promise<void> {
  expect((await body(metricsUrl('/healthz'))).status).toBe(200);
  const m = await body(metricsUrl('/metrics'));
  expect(m.status).toBe(200);
  expect(parsePromText(m.bytes.toString()).length).toBeGreaterThan(50);
  expect((await body(drillUrl('/api/v1/namespaces'), auth)).status).toBe(200);
}

const ENDPOINTS: { server: 'metrics' | 'drilldown'; path: string }[] = [
  ...['/metrics', '/healthz', '/readyz', '/', '/nope'].map((path) => ({
    server: 'metrics' as const,
    path,
  })),
  ...[
    '/',
    '/namespaces/leak-test',
    '/pods/leak-test/leaky',
    '/static/app.js',
    '/static/app.css',
    '/api/v1/namespaces',
    '/api/v1/namespaces/leak-test/pods',
    '/api/v1/pods/leak-test/leaky',
    '/api/v1/health',
    '/api/v1/qtypes',
  ].map((path) => ({ server: 'drilldown' as const, path })),
];

const send = (server: 'metrics' | 'drilldown', request: Buffer | string, timeoutMs = 5_000) =>
  server === 'metrics'
    ? rawRequest('127.0.0.1', metricsPort, request, timeoutMs)
    : rawRequest(DRILLDOWN_HOST, drilldownPort, request, timeoutMs);

beforeAll(async () => {
  lab = await Lab.create({});
  leaky = await lab.addPod({ namespace: 'leak-test', name: 'leaky' });
  process.env.DNSRACE_DRILLDOWN_TOKEN = TOKEN; // the variable, as docs/drilldown.md advises
  try {
    exporter = new ExporterProcess({
      cgroupRoot: lab.cgroupDir,
      bpffsDir: `${lab.bpffsDir}/exporter`,
      podLogDir: lab.varLogPods,
      extraArgs: [
        '--kube-api',
        'off',
        '--drilldown-listen-address',
        `${DRILLDOWN_HOST}:0`,
        '--slow-lookup-threshold',
        '1s',
        '--log-level',
        'info',
      ],
    });
    await exporter.start();
  } finally {
    delete process.env.DNSRACE_DRILLDOWN_TOKEN;
  }
  metricsPort = exporter.port;
  // /readyz turns ready after the first map read; the drill-down listener starts just after.
  let m: RegExpExecArray | null = null;
  for (let i = 0; i < 150 && !m; i++) {
    m = /"drilldownAddress":"127\.0\.0\.3:(\d+)"/.exec(exporter.logs);
    if (!m) await new Promise((r) => setTimeout(r, 100));
  }
  if (!m) throw new Error(`the exporter did not log its drill-down address:\n${exporter.logs}`);
  drilldownPort = Number(m[1]);
  pid = await exporterPid(`${lab.bpffsDir}/exporter`);

  // Lookups of names that carry the canary: fast NXDOMAINs, a search-list walk, a slow one.
  expect((await leaky.dig(`${CANARY}.leak-test.svc.cluster.local`)).status).toBe('NXDOMAIN');
  await leaky.getent(`${CANARY}-walk`);
  const undo = await lab.setUpstreamDelay(1300);
  try {
    const slow = await leaky.dig(`${CANARY}-slow.example.net`, {
      options: ['+tries=1', '+time=5'],
    });
    expect(slow.status).toBe('NXDOMAIN');
  } finally {
    await undo();
  }
  // The drill-down saw them (else "not in /metrics" would prove nothing).
  const end = Date.now() + 20_000;
  let seen = '';
  while (Date.now() < end) {
    seen = (await body(drillUrl('/api/v1/pods/leak-test/leaky'), auth)).bytes.toString();
    if (seen.includes(`${CANARY}-slow`) && seen.includes(`${CANARY}.leak-test`)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(seen).toContain(`${CANARY}-slow`);
  expect(seen).toContain(`${CANARY}.leak-test`);
}, 120_000);

afterAll(async () => {
  await exporter?.stop();
  await lab?.destroy();
}, 60_000);

describe('exposure (real exporter on the lab)', () => {
  it('/metrics carries no query name in any format, exemplars included', async () => {
    await exporter.freshScrape();
    const formats = {
      text: {},
      openmetrics: { accept: 'application/openmetrics-text; version=1.0.0' },
      protobuf: { accept: PROTOBUF_ACCEPT },
    };
    for (const [format, headers] of Object.entries(formats)) {
      const r = await body(metricsUrl('/metrics'), headers);
      expect(r.status, format).toBe(200);
      expect(r.bytes.length, format).toBeGreaterThan(1000);
      expect(r.bytes.toString('latin1').toLowerCase(), format).not.toContain(CANARY);
    }
    // The slow lookup is an exemplar: by pod and DNS id, not by name.
    const om = (await body(metricsUrl('/metrics'), formats.openmetrics)).bytes.toString();
    expect(om).toMatch(
      /dnsrace_dns_query_duration_seconds_bucket\{[^}]*namespace="leak-test"[^}]*\} \d+ # \{[^}]*pod="leaky"/,
    );
    for (const p of ['/', '/healthz', '/readyz', '/nope'])
      expect((await body(metricsUrl(p))).bytes.toString().toLowerCase()).not.toContain(CANARY);
    // Nor do the exporter's own logs at the default level.
    expect(exporter.logs.toLowerCase()).not.toContain(CANARY);
  });

  it('the drill-down listens only on its address, and its API only answers the token', async () => {
    expect(parseConfig([], {}).help).toBe(false);
    const defaults = parseConfig([], {});
    if (defaults.help) throw new Error('unreachable');
    expect([defaults.config.drilldownHost, defaults.config.drilldownPort]).toEqual([
      '127.0.0.1',
      9854,
    ]);
    expect(await probe(DRILLDOWN_HOST, drilldownPort)).toBe('open');
    for (const other of ['127.0.0.1', '127.0.0.2', '::1'])
      expect(await probe(other, drilldownPort), `drill-down on ${other}`).toBe('refused');
    expect(
      await probe(DRILLDOWN_HOST, metricsPort),
      '/metrics is not on the drill-down address',
    ).toBe('refused');

    const api = [
      '/api/v1/namespaces',
      '/api/v1/namespaces/leak-test/pods',
      '/api/v1/pods/leak-test/leaky',
      '/api/v1/health',
      '/api/v1/qtypes',
      '/api/v1/nothing-here',
      '/API/V1/namespaces',
    ];
    const refused: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: 'Bearer' },
      { authorization: `bearer ${TOKEN}` },
      { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` },
      { authorization: `Bearer ${'x'.repeat(4000)}` },
      { cookie: `token=${TOKEN}` },
    ];
    for (const p of api) {
      for (const headers of refused) {
        const r = await body(drillUrl(p), headers);
        expect(r.status, `${p} ${JSON.stringify(headers).slice(0, 60)}`).toBe(401);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
        expect(r.bytes.toString()).not.toContain(CANARY);
      }
      expect((await body(drillUrl(`${p}?token=${TOKEN}`))).status).toBe(401);
    }
    expect((await body(drillUrl('/api/v1/qtypes'), auth)).status).toBe(200);
    // The page shell loads without the token and holds no data.
    for (const p of ['/', '/namespaces/leak-test', '/pods/leak-test/leaky', '/static/app.js']) {
      const r = await body(drillUrl(p));
      expect(r.status, p).toBe(200);
      expect(r.bytes.toString()).not.toContain(CANARY);
    }
  });

  it.each(ENDPOINTS)(
    'hostile requests to $server $path get clean 4xx answers',
    async ({ server, path }) => {
      const host = 'Host: 127.0.0.1\r\nConnection: close\r\n';
      const plain = (await send(server, `GET ${path} HTTP/1.1\r\n${host}\r\n`)).status!;
      expect(plain).toBeLessThan(500);
      const cases: { what: string; req: string; want: number[]; closed?: boolean }[] = [
        {
          what: 'URL of 3 KiB',
          req: `GET ${path}?q=${'a'.repeat(3000)} HTTP/1.1\r\n${host}\r\n`,
          want: [414],
        },
        {
          what: 'URL of 20 KiB',
          req: `GET ${path}?q=${'a'.repeat(20_000)} HTTP/1.1\r\n${host}\r\n`,
          want: [431],
          closed: true,
        },
        {
          what: 'header of 20 KiB',
          req: `GET ${path} HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
          want: [431],
          closed: true,
        },
        {
          // Node keeps the first 2000 (maxHeadersCount) and serves the request as usual.
          what: '3000 small headers',
          req: `GET ${path} HTTP/1.1\r\n${host}${'X-N: 1\r\n'.repeat(3000)}\r\n`,
          want: [plain],
        },
        {
          what: 'GET with a 1 MiB body',
          req: `GET ${path} HTTP/1.1\r\n${host}Content-Length: 1048576\r\n\r\n${'x'.repeat(65536)}`,
          want: [413],
          closed: true,
        },
        {
          what: 'GET with a lying length',
          req: `GET ${path} HTTP/1.1\r\n${host}Content-Length: 999999999\r\n\r\nabc`,
          want: [413],
          closed: true,
        },
        {
          what: 'chunked GET',
          req: `GET ${path} HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
          want: [413],
        },
        {
          what: 'POST with a body',
          req: `POST ${path} HTTP/1.1\r\n${host}Content-Length: 5\r\n\r\nhello`,
          want: [405],
        },
        ...['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND'].map((m) => ({
          what: m,
          req: `${m} ${path} HTTP/1.1\r\n${host}\r\n`,
          want: [405],
        })),
        { what: 'CONNECT', req: `CONNECT 127.0.0.1:22 HTTP/1.1\r\n${host}\r\n`, want: [405] },
        { what: 'unknown method', req: `BREW ${path} HTTP/1.1\r\n${host}\r\n`, want: [400] },
        {
          what: 'control byte in the target',
          req: `GET ${path}\x01 HTTP/1.1\r\n${host}\r\n`,
          want: [400],
        },
        { what: 'space in the target', req: `GET ${path} x HTTP/1.1\r\n${host}\r\n`, want: [400] },
        { what: 'no Host', req: `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`, want: [400] },
        {
          what: 'smuggling shape',
          req: `GET ${path} HTTP/1.1\r\n${host}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
          want: [400],
        },
        {
          what: 'obsolete line folding',
          req: `GET ${path} HTTP/1.1\r\n${host}X-A: b\r\n c\r\n\r\n`,
          want: [400],
        },
        { what: 'bare LF', req: `GET ${path} HTTP/1.1\nHost: x\n\n`, want: [400] },
        { what: 'HTTP/2 preface', req: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', want: [400] },
        { what: 'TLS hello', req: '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', want: [400] },
      ];
      for (const c of cases) {
        const r: RawResponse = await send(server, c.req);
        expect(r.status, `${c.what}: ${r.error ?? ''} closed=${r.closed}`).toBeOneOf(c.want);
        expect(r.closed, `${c.what}: the server closes`).toBe(true);
        expect(r.body.toString('latin1')).not.toMatch(/root:x:0:0|at \w+ \(|node_modules/);
      }
      await stillServing();
    },
  );

  it.each([
    ['metrics', '/static/../../../../etc/passwd'],
    ['metrics', '/..%2f..%2f..%2fetc%2fpasswd'],
    ['drilldown', '/static/../../../../etc/passwd'],
    ['drilldown', '/static/..%2f..%2f..%2fpackage.json'],
    ['drilldown', '/static/%2e%2e/%2e%2e/package.json'],
    ['drilldown', '/pods/..%2F..%2F/etc'],
    ['drilldown', '/api/v1/pods/..%2F..%2Fetc/passwd'],
    ['drilldown', '/api/v1/pods/leak-test/%zz'],
    ['drilldown', '/api/v1/pods/leak-test/leaky?limit=abc'],
    ['drilldown', '/api/v1/pods/leak-test/leaky?limit=51'],
    ['drilldown', '/api/v1/pods/leak-test/leaky?limit=1&limit=2'],
    // `limit[]` is not `limit` (the simple query parser): ignored, the default applies
    ['drilldown', '/api/v1/pods/leak-test/leaky?limit[]=1', 200],
    ['drilldown', '/api/v1/namespaces?namespace=a&namespace=b'],
    ['drilldown', '/api/v1/namespaces?namespace=..%2F'],
    ['drilldown', '/api/v1/namespaces?namespace[x]=1', 200],
    ['drilldown', `/namespaces/${'a'.repeat(300)}`],
    ['drilldown', '/pods/leak-test/%3Cscript%3E'],
  ] as [string, string, number?][])(
    '%s %s: 4xx, nothing from the disk',
    async (server, target, want) => {
      const r = await send(
        server as 'metrics' | 'drilldown',
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
      );
      if (want) expect(r.status).toBe(want);
      else {
        expect(r.status).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
      }
      expect(r.body.toString()).not.toMatch(/root:x:0:0|"devDependencies"|"name": "dnsrace"/);
    },
  );

  it('invalid Accept headers on /metrics fall back to a valid text exposition', async () => {
    for (const accept of [
      ';;;',
      '*/*;q=NaN',
      'text/plain;q=-1',
      'application/vnd.google.protobuf;proto=;encoding=',
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=abc',
      ',,,,,',
      'a'.repeat(8000),
      '\u00ff\u00fe',
    ]) {
      const r = await send(
        'metrics',
        Buffer.from(
          `GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: ${accept}\r\nConnection: close\r\n\r\n`,
          'latin1',
        ),
      );
      expect(r.status, accept.slice(0, 40)).toBe(200);
      expect(r.headers['content-type']).toMatch(/^text\/plain|^application\/openmetrics-text/);
    }
  });

  it('slowloris: half-sent requests are closed after the headers timeout while scrapes go on', async () => {
    const slow: Promise<RawResponse>[] = [];
    for (const [host, port] of [
      ['127.0.0.1', metricsPort],
      [DRILLDOWN_HOST, drilldownPort],
    ] as const) {
      for (let i = 0; i < 10; i++) {
        slow.push(partialRequest(host, port, '', 0)); // connects, sends nothing
        slow.push(partialRequest(host, port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n', 1000)); // trickles
      }
    }
    // Meanwhile the exporter answers as usual.
    for (let i = 0; i < 5; i++) {
      await stillServing();
      await new Promise((r) => setTimeout(r, 500));
    }
    const closed = await Promise.all(slow);
    for (const c of closed) {
      expect(c.closed, 'closed by the server').toBe(true);
      expect(c.status).toBe(408);
      expect(c.ms).toBeLessThan(HEADERS_TIMEOUT_MS + 4_000);
    }
    console.log(
      `slowloris: ${closed.length} connections closed after ${Math.min(...closed.map((c) => c.ms)).toFixed(0)}..${Math.max(...closed.map((c) => c.ms)).toFixed(0)} ms with 408`,
    );
    await stillServing();
  }, 60_000);

  it(`fuzz: ${FUZZ_REQUESTS} seeded requests (seed ${FUZZ_SEED}): no 5xx, no hang, no data without the token`, async () => {
    const before = await sampleProc(pid);
    const logStart = exporter.logs.length;
    const cases = generateCases(FUZZ_SEED, FUZZ_REQUESTS, {
      token: TOKEN,
      namespaces: ['leak-test', 'kube-system', '_host', '_unknown'],
      pods: [
        ['leak-test', 'leaky'],
        ['kube-system', 'coredns-0'],
      ],
    });
    const outcomes = new Map<string, number>();
    const problems: string[] = [];
    const judge = (c: FuzzCase, r: RawResponse) => {
      const key = r.status === undefined ? (r.closed ? 'closed' : 'hang') : String(r.status);
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      const what = `#${c.index} ${c.server} ${JSON.stringify(c.method)} ${JSON.stringify(c.target)}`;
      if (r.status === undefined && !r.closed) problems.push(`${what}: no answer within 5 s`);
      if (r.status === undefined && r.closed && c.request.length < 16_000)
        problems.push(`${what}: closed without an answer`);
      if (r.status !== undefined && r.status >= 500) problems.push(`${what}: ${r.status}`);
      const json = /json/.test(r.headers['content-type'] ?? '');
      if (c.server === 'drilldown' && r.status! < 300 && json && !c.rightToken)
        problems.push(`${what}: API data without the token`);
      if (!(json && c.rightToken) && r.body.toString('latin1').includes(CANARY))
        problems.push(`${what}: a query name outside the token-protected API`);
    };
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < cases.length) {
          const c = cases[next++]!;
          judge(c, await send(c.server, c.request));
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const after = await sampleProc(pid);
    console.log(
      `fuzz seed ${FUZZ_SEED}: ${cases.length} requests in ${seconds.toFixed(1)} s; outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}; ` +
        `RSS ${(before.rssBytes / MiB).toFixed(0)} -> ${(after.rssBytes / MiB).toFixed(0)} MiB, fds ${before.fds} -> ${after.fds}`,
    );
    expect(problems.slice(0, 20)).toEqual([]);
    await stillServing();
    expect(after.fds).toBeLessThanOrEqual(before.fds + 8);
    expect(after.rssBytes - before.rssBytes).toBeLessThan(128 * MiB);
    const logs = exporter.logs.slice(logStart);
    expect(logs).not.toMatch(/"level":(50|60)/);
    expect(logs).not.toMatch(/request failed|rendering \/metrics failed/);
  }, 180_000);
});
