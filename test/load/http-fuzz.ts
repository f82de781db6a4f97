// Seeded generator of hostile HTTP/1.1 requests for the exporter's two listeners: every
// route template, with segments, query strings, methods, versions, headers and bodies drawn
// from lists of edge cases (traversal, bad escapes, markup, long and unicode names, lying
// lengths, invalid header bytes, huge values). The same seed gives the same requests.

export type ServerName = 'metrics' | 'drilldown';

export interface FuzzCase {
  index: number;
  server: ServerName;
  method: string;
  target: string;
  /** The request carried the right bearer token. */
  rightToken: boolean;
  request: Buffer;
}

export interface FuzzOptions {
  token: string;
  /** Namespaces and pods that exist, so that some requests reach real data. */
  namespaces: string[];
  pods: [string, string][];
}

/** mulberry32: small, fast, and good enough to spread choices; reproducible from its seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUTES: Record<ServerName, string[]> = {
  metrics: ['/metrics', '/healthz', '/readyz', '/', '/{x}'],
  drilldown: [
    '/',
    '/namespaces/{ns}',
    '/pods/{ns}/{pod}',
    '/static/app.js',
    '/static/app.css',
    '/static/{x}',
    '/api/v1/namespaces',
    '/api/v1/namespaces/{ns}/pods',
    '/api/v1/pods/{ns}/{pod}',
    '/api/v1/health',
    '/api/v1/qtypes',
    '/api/v1/{x}',
    '/API/V1/namespaces',
    '/api/v2/{x}',
  ],
};

const HOSTILE_SEGMENTS = [
  '',
  '..',
  '.',
  '%2e%2e',
  '%252e%252e',
  '..%2f..%2f..%2fetc%2fpasswd',
  '....//....//etc/passwd',
  '..\\..\\windows',
  '%zz',
  '%',
  '%00',
  '%E0%A4%A',
  '%ff%fe',
  '%3Cscript%3Ealert(1)%3C%2Fscript%3E',
  '%22onmouseover%3Dx',
  encodeURIComponent('naïve-ß-😀'),
  '_host',
  '_unknown',
  '_uid-0000',
  '_other',
  '-leading-dash',
  'UPPER.case_ok',
  '__proto__',
  'constructor',
];

const QUERY_KEYS = [
  'limit',
  'namespace',
  'token',
  'access_token',
  'q',
  'limit[]',
  'namespace[a]',
  '__proto__',
  'constructor[prototype]',
  '%zz',
];
const QUERY_VALUES = [
  '',
  '1',
  '0',
  '50',
  '51',
  '-1',
  '1e3',
  '0x10',
  'abc',
  '%zz',
  'a,b,c',
  '..%2f..%2f',
  '%00',
  'x'.repeat(300),
];

const ACCEPTS = [
  'application/json',
  '*/*',
  'text/html',
  'text/plain;version=0.0.4',
  'application/openmetrics-text; version=1.0.0',
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited',
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=2, text/plain;q=NaN',
  'application/vnd.google.protobuf;proto=;encoding=',
  ';;;',
  'q=abc',
  '*/*;q=NaN',
  'text/plain;q=-1',
  ',,,,',
  'application/openmetrics-text;version=9.9.9;escaping=allow-utf-8',
  'a'.repeat(8000),
];

const METHODS: [string, number][] = [
  ['GET', 55],
  ['HEAD', 10],
  ['POST', 6],
  ['PUT', 4],
  ['DELETE', 4],
  ['PATCH', 3],
  ['OPTIONS', 4],
  ['TRACE', 3],
  ['CONNECT', 2],
  ['get', 2],
  ['FOO', 3],
  ['G\x01T', 2],
  ['PROPFIND', 2],
];

const VERSIONS: [string, number][] = [
  ['HTTP/1.1', 90],
  ['HTTP/1.0', 5],
  ['HTTP/2.0', 2],
  ['HTTP/1.1 extra', 1],
  ['HTTP/0.9', 2],
];

export function generateCases(seed: number, count: number, o: FuzzOptions): FuzzCase[] {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => rnd() < p;
  const weighted = (xs: readonly [string, number][]): string => {
    let r = rnd() * xs.reduce((a, [, w]) => a + w, 0);
    for (const [x, w] of xs) if ((r -= w) < 0) return x;
    return xs[0]![0];
  };
  const word = (max: number) =>
    Array.from({ length: 1 + int(max) }, () =>
      pick([...'abcdefghijklmnopqrstuvwxyz0123456789-']),
    ).join('');
  const segment = (kind: 'ns' | 'pod' | 'x'): string => {
    const r = rnd();
    if (r < 0.35 && kind !== 'x') {
      const [ns, pod] = pick(o.pods);
      return kind === 'ns' ? pick([ns, pick(o.namespaces)]) : pod;
    }
    if (r < 0.55) return word(20);
    if (r < 0.62) return 'a'.repeat(250 + int(150));
    return pick(HOSTILE_SEGMENTS);
  };

  const out: FuzzCase[] = [];
  for (let index = 0; index < count; index++) {
    const server: ServerName = chance(0.35) ? 'metrics' : 'drilldown';
    let path = pick(ROUTES[server]).replace(/\{(ns|pod|x)\}/g, (_, k: 'ns' | 'pod' | 'x') =>
      segment(k),
    );
    if (chance(0.1))
      path += pick(['/', '//', '/..', '/%2e%2e/', '/.', ';jsessionid=1', '%20', '\\']);
    if (chance(0.05)) path = `http://127.0.0.1${path}`; // absolute-form
    if (chance(0.02)) path += 'a'.repeat(pick([2100, 5000, 20_000]));
    if (chance(0.35)) {
      const params = Array.from(
        { length: 1 + int(3) },
        () => `${pick(QUERY_KEYS)}=${pick(QUERY_VALUES)}`,
      );
      path += `?${params.join('&')}`;
    }
    const method = weighted(METHODS);
    const version = weighted(VERSIONS);
    const headers: string[] = [];
    if (!chance(0.03)) headers.push('Host: 127.0.0.1');
    headers.push('Connection: close');
    let rightToken = false;
    const auth = rnd();
    if (auth < 0.4) {
      headers.push(`Authorization: Bearer ${o.token}`);
      rightToken = true;
    } else if (auth < 0.5) headers.push(`Authorization: Bearer ${o.token}x`);
    else if (auth < 0.55) headers.push('Authorization: Bearer ');
    else if (auth < 0.6)
      headers.push(`Authorization: Basic ${Buffer.from(`u:${o.token}`).toString('base64')}`);
    else if (auth < 0.63) headers.push(`Authorization: bearer ${o.token}`);
    else if (auth < 0.66) headers.push(`Authorization: Bearer ${'t'.repeat(600)}`);
    else if (auth < 0.68) headers.push(`Cookie: token=${o.token}`);
    if (chance(0.6)) headers.push(`Accept: ${pick(ACCEPTS)}`);
    for (let i = int(4); i > 0; i--) headers.push(`X-${word(12)}: ${word(40)}`);
    if (chance(0.02)) headers.push(`X-Bad: a\x01b`);
    if (chance(0.02)) headers.push(`Bad Name: x`);
    if (chance(0.02)) headers.push(`X-Huge: ${'h'.repeat(17_000)}`);
    if (chance(0.01)) for (let i = 0; i < 2500; i++) headers.push(`X-M${i}: 1`);
    let body = '';
    const b = rnd();
    if (b < 0.05) {
      body = 'x'.repeat(int(5000));
      headers.push(`Content-Length: ${body.length}`);
    } else if (b < 0.07) {
      body = '5\r\nhello\r\n0\r\n\r\n';
      headers.push('Transfer-Encoding: chunked');
    } else if (b < 0.09) {
      body = 'short';
      headers.push(`Content-Length: ${1_000_000 + int(1e8)}`); // lies: far more than sent
    } else if (b < 0.1) {
      headers.push('Content-Length: 3', 'Transfer-Encoding: chunked'); // smuggling shape
      body = '0\r\n\r\n';
    }
    const head = `${method} ${path} ${version}\r\n${headers.join('\r\n')}\r\n\r\n`;
    out.push({
      index,
      server,
      method,
      target: path.length > 120 ? `${path.slice(0, 120)}…(${path.length})` : path,
      rightToken,
      request: Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body, 'latin1')]),
    });
  }
  return out;
}
