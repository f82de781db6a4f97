// The drill-down API over a recorded state (a snapshot, rings of lookups, a probe result):
// shapes, ranking by trouble, exemplar lookups, and what it refuses (token, names, methods).
import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listen } from '../../src/http/server.js';
import { LAT_MIN_INDEX } from '../../src/bpf/latency-buckets.js';
import { emptyTotals, type Totals } from '../../src/dns/totals.js';
import { createDrilldownApp, POD_PAGE_PATTERN, podPagePath } from '../../src/drilldown/index.js';
import type { Lookup } from '../../src/drilldown/lookup.js';
import { EventRings } from '../../src/drilldown/rings.js';
import type { DrilldownDeps } from '../../src/drilldown/router.js';
import { exemplarIndex, quantileSeconds } from '../../src/drilldown/views.js';
import { parseResolvConf } from '../../src/drilldown/resolv-conf.js';
import type { Snapshot } from '../../src/snapshot.js';

const silent = { debug() {}, info() {}, warn() {} };
const slot = (index: number) => index - LAT_MIN_INDEX;

function totals(over: Partial<Totals> & { lat?: [number, number][] }): Totals {
  const t = { ...emptyTotals(), ...over };
  for (const [index, n] of over.lat ?? []) {
    t.latency[slot(index)] = n;
    t.latencyCount += n;
  }
  return t;
}

/** cgroup ids: 1 checkout, 2 cart, 3 web (namespace shop), 4 api (namespace team-a), 9 coredns. */
const PODS: Record<string, { namespace: string; pod: string }> = {
  '1': { namespace: 'shop', pod: 'checkout' },
  '2': { namespace: 'shop', pod: 'cart' },
  '3': { namespace: 'shop', pod: 'web' },
  '4': { namespace: 'team-a', pod: 'api' },
  '9': { namespace: 'kube-system', pod: 'coredns-0' },
};
const nameOf = (id: bigint) => PODS[String(id)] ?? { namespace: '_unknown', pod: '_unknown' };

function snapshot(): Snapshot {
  const checkout = totals({
    queries: 4,
    responses: [3, 0, 0, 0, 0],
    timeouts: [0, 1, 0],
    retransmits: [0, 2, 0],
    lat: [[-39, 3]],
  });
  const cart = totals({ queries: 24, responses: [6, 18, 0, 0, 0], lat: [[-50, 24]] });
  const web = totals({ queries: 2, responses: [2, 0, 0, 0, 0], lat: [[3, 2]] });
  const api = totals({ queries: 10, responses: [10, 0, 0, 0, 0], lat: [[-40, 10]] });
  const ns = (...ts: Totals[]) => {
    const sum = emptyTotals();
    for (const t of ts) {
      sum.queries += t.queries;
      sum.latencyCount += t.latencyCount;
      t.timeouts.forEach((v, i) => (sum.timeouts[i]! += v));
      t.retransmits.forEach((v, i) => (sum.retransmits[i]! += v));
      t.responses.forEach((v, i) => (sum.responses[i]! += v));
      t.latency.forEach((v, i) => (sum.latency[i]! += v));
    }
    return new Map([['A' as const, sum]]);
  };
  return {
    dns: {
      client: new Map([
        ['shop', ns(checkout, cart, web)],
        ['team-a', ns(api)],
      ]),
      server: new Map(),
      pods: new Map([
        [
          'shop',
          new Map([
            ['checkout', checkout],
            ['cart', cart],
            ['web', web],
          ]),
        ],
        ['team-a', new Map([['api', api]])],
      ]),
    },
    health: {},
    maps: [],
    readDurationSeconds: 0.01,
    readTimestampSeconds: 1_700_000_100,
    podSeriesOverflow: 0,
    drops: {
      agg: {
        netfilter: new Map([
          [
            'x',
            {
              labels: {
                namespace: 'shop',
                pod: 'checkout',
                protocol: 'udp',
                port_class: 'dns',
                reason: 'netfilter_drop',
              },
              value: 3,
            },
          ],
        ]),
        dnsQueries: new Map(),
        dnsAnswers: new Map(),
      },
      health: {},
    },
  };
}

let seq = 0;
function lookup(over: Partial<Lookup>): Lookup {
  seq++;
  return {
    seq,
    kind: 'slow',
    role: 'client',
    cgroupId: 3n,
    name: 'example.com',
    nameTruncated: false,
    qtype: 'A',
    qtypeClass: 'A',
    rcode: 'NOERROR',
    cause: 'unanswered',
    diagnosis: 'slow_server',
    latencySeconds: 1.5,
    retransmits: 0,
    retriedFromNewSocket: false,
    socket: 'connected',
    server: '10.96.0.10',
    client: '10.244.0.6',
    clientPort: 40000 + seq,
    dnsId: seq,
    serverSideSeconds: 1.49,
    serverRcode: 'NOERROR',
    serverCgroupId: 9n,
    atUnixSeconds: 1_700_000_000 + seq,
    firstSentUnixSeconds: 1_700_000_000 + seq - 1.5,
    ...over,
  };
}

function rings(): EventRings {
  const r = new EventRings({ perCgroup: 3, maxCgroups: 10 });
  for (const l of [
    lookup({}),
    lookup({ qtype: 'AAAA', qtypeClass: 'AAAA' }),
    lookup({
      cgroupId: 1n,
      kind: 'retransmit',
      name: 'api.example.org',
      qtype: 'AAAA',
      qtypeClass: 'AAAA',
      rcode: null,
      cause: 'netfilter_drop',
      diagnosis: 'netfilter_drop',
      latencySeconds: 5,
      retransmits: 1,
      serverSideSeconds: null,
      serverCgroupId: undefined,
    }),
    lookup({
      cgroupId: 1n,
      kind: 'timeout',
      name: 'api.example.org',
      qtype: 'AAAA',
      qtypeClass: 'AAAA',
      rcode: null,
      cause: 'netfilter_drop',
      diagnosis: 'netfilter_drop',
      latencySeconds: 15.6,
      retransmits: 2,
      serverSideSeconds: null,
      serverCgroupId: undefined,
    }),
    lookup({
      cgroupId: 2n,
      kind: 'nxdomain',
      name: 'api.example.org.shop.svc.cluster.local',
      rcode: 'NXDOMAIN',
      diagnosis: 'nxdomain',
      latencySeconds: 0.0001,
      socket: 'unconnected',
    }),
    lookup({ latencySeconds: 2.5 }),
  ])
    r.add(l);
  return r;
}

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function start(over: Partial<DrilldownDeps> = {}): Promise<string> {
  const deps: DrilldownDeps = {
    snapshot,
    rings: rings(),
    nameOf,
    probe: async () => ({
      resolv: {
        conf: parseResolvConf(
          'nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n',
        ),
        source: 'test',
      },
    }),
    health: async () => ({ reader: { running: true } }),
    slowThresholdSeconds: 1,
    log: silent,
    ...over,
  };
  server = await listen(createDrilldownApp(deps), '127.0.0.1', 0);
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
async function json(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url, init);
  return { status: r.status, body: await r.json().catch(() => undefined), headers: r.headers };
}

describe('drill-down API', () => {
  it('lists namespaces by trouble, with the worst pod and its cause', async () => {
    const base = await start();
    const r = await json(`${base}/api/v1/namespaces`);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body.namespaces.map((n: any) => n.namespace)).toEqual(['shop', 'team-a']);
    const shop = r.body.namespaces[0];
    expect(shop).toMatchObject({
      namespace: 'shop',
      queries: 30,
      timeouts: 1,
      retransmits: 2,
      drops: 3,
      worstPod: { pod: 'checkout', headline: 'netfilter_drop', href: '/pods/shop/checkout' },
      headline: { cause: 'netfilter_drop' },
    });
    expect(shop.topCauses[0]).toEqual({ cause: 'nxdomain', count: 18 });
    expect(shop.topCauses).toContainEqual({ cause: 'netfilter_drop', count: 3 });
    const filtered = await json(`${base}/api/v1/namespaces?namespace=team-a,nope`);
    expect(filtered.body.namespaces.map((n: any) => n.namespace)).toEqual(['team-a']);
  });

  it('ranks pods by trouble with the cause first', async () => {
    const base = await start();
    const r = await json(`${base}/api/v1/namespaces/shop/pods`);
    expect(r.body.pods.map((p: any) => [p.pod, p.headline.cause])).toEqual([
      ['checkout', 'netfilter_drop'],
      ['web', 'slow_server'],
      ['cart', 'search_amplification'],
    ]);
    expect(r.body.pods[0].headline.text).toBe(
      '3 DNS packets dropped by netfilter on this node → 1 timeout, 2 re-sends',
    );
    expect(r.body.pods[0].troubleScore).toBe(100 + 90 + 40 + 10);
    expect(r.body.pods[2].amplification).toBe(4);
  });

  it('details a pod: histogram, codes, recent lookups newest first with server pods, doctor', async () => {
    const base = await start();
    const r = await json(`${base}/api/v1/pods/shop/web?limit=2`);
    expect(r.status).toBe(200);
    expect(r.body.summary).toMatchObject({
      pod: 'web',
      queries: 2,
      headline: { cause: 'slow_server' },
    });
    expect(r.body.histogram).toEqual([{ le: 2 ** (3 / 4), count: 2 }]);
    expect(r.body.rcodes).toMatchObject({ NOERROR: 2, NXDOMAIN: 0 });
    expect(r.body.qtypes).toBeNull(); // no dns_stats rows given: snapshot totals only
    // perCgroup 3: the oldest of web's four lookups fell out.
    expect(r.body.recent.map((l: any) => l.latencySeconds)).toEqual([2.5, 1.5]);
    expect(r.body.recent[0]).toMatchObject({
      serverPod: 'kube-system/coredns-0',
      diagnosis: 'slow_server',
      name: 'example.com',
    });
    expect(r.body.doctor.findings[0].id).toBe('slow_server');
    expect(r.body.doctor.resolvConf.ndots).toBe(5);
  });

  it('refuses without the token, in constant time, and answers with it', async () => {
    const base = await start({ token: 's3cret' });
    const no = await json(`${base}/api/v1/namespaces`);
    expect(no.status).toBe(401);
    expect(no.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(
      (await json(`${base}/api/v1/namespaces`, { headers: { Authorization: 'Bearer wrong' } }))
        .status,
    ).toBe(401);
    expect(
      (await json(`${base}/api/v1/namespaces`, { headers: { Authorization: 'Basic czNjcmV0' } }))
        .status,
    ).toBe(401);
    expect(
      (await json(`${base}/api/v1/namespaces`, { headers: { Authorization: 'Bearer s3cret' } }))
        .status,
    ).toBe(200);
    // The page shell holds no data and loads without the token; it asks for one.
    const page = await fetch(`${base}/pods/shop/checkout`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(
      /default-src 'none'; script-src 'self'/,
    );
    expect(await page.text()).toMatch(/<script src="\/static\/app\.js" defer><\/script>/);
  });

  it.each([
    ['/api/v1/pods/shop/%3Cscript%3E', 400, /pod must be a Kubernetes name/],
    [`/api/v1/namespaces/${'a'.repeat(254)}/pods`, 400, /namespace must be/],
    ['/api/v1/namespaces?namespace=a&namespace=b', 400, /given once/],
    ['/api/v1/namespaces?namespace=..%2F', 400, /namespace must be/],
    ['/api/v1/pods/shop/web?limit=0', 400, /limit/],
    ['/api/v1/pods/shop/web?limit=1e3', 400, /limit/],
    ['/api/v1/pods/shop/nobody', 404, /no DNS traffic of pod shop\/nobody/],
    ['/api/v1/pods/%E0%A4%A', 404, /no such API endpoint/],
    ['/api/v1/pods/shop/%E0%A4%A', 400, /.+/],
    [`/api/v1/namespaces?x=${'y'.repeat(3000)}`, 414, /too long/],
    ['/api/v2/anything', 404, /.+/],
  ])('GET %# -> %i', async (path, status, message) => {
    const base = await start();
    const r = await fetch(`${base}${path}`);
    expect(r.status).toBe(status);
    expect(await r.text()).toMatch(message);
  });

  it('is read-only', async () => {
    const base = await start();
    const r = await fetch(`${base}/api/v1/namespaces`, { method: 'DELETE' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, HEAD');
  });

  it('serves the page for every view, and its script and style', async () => {
    const base = await start();
    for (const p of ['/', '/namespaces/shop', podPagePath('shop', 'checkout')])
      expect((await fetch(`${base}${p}`)).headers.get('content-type')).toMatch(/^text\/html/);
    expect((await fetch(`${base}/static/app.js`)).headers.get('content-type')).toMatch(
      /^text\/javascript/,
    );
    expect((await fetch(`${base}/static/app.css`)).headers.get('content-type')).toMatch(
      /^text\/css/,
    );
  });
});

describe('exemplar lookups and helpers', () => {
  it('exemplarIndex slow: answered slow lookups of a namespace and qtype, newest first, bounded', () => {
    const r = rings();
    const slow = (ns: string, qtype: 'A' | 'AAAA', limit = 10) =>
      exemplarIndex(r, nameOf, limit).get(ns, qtype, 'slow');
    expect(slow('shop', 'A')).toEqual(
      [
        { pod: 'web', latencySeconds: 2.5 },
        { pod: 'web', latencySeconds: 1.5 },
      ].map((e) => ({
        ...e,
        dnsId: expect.any(Number),
        atUnixSeconds: expect.any(Number),
        cause: 'unanswered',
      })),
    );
    const [newest, older] = slow('shop', 'A');
    expect(newest!.atUnixSeconds).toBeGreaterThan(older!.atUnixSeconds);
    expect(slow('shop', 'A', 1)).toHaveLength(1);
    // timeouts and retransmits have no latency to place in the histogram
    expect(slow('shop', 'AAAA').map((e) => e.pod)).toEqual(['web']);
    expect(slow('team-a', 'A')).toEqual([]);
  });

  it('exemplarIndex timeout: timed-out lookups only, with their cause', () => {
    const r = rings();
    const timedOut = exemplarIndex(r, nameOf, 10).get('shop', 'AAAA', 'timeout');
    expect(timedOut).toEqual([
      {
        pod: 'checkout',
        dnsId: expect.any(Number),
        latencySeconds: 15.6,
        atUnixSeconds: expect.any(Number),
        cause: 'netfilter_drop',
      },
    ]);
    expect(exemplarIndex(r, nameOf, 10).get('shop', 'A', 'timeout')).toEqual([]);
  });

  it('exemplarIndex names each cgroup once, and only cgroups with slow or timed-out lookups', () => {
    const r = rings();
    const named: bigint[] = [];
    const index = exemplarIndex(
      r,
      (id) => {
        named.push(id);
        return nameOf(id);
      },
      10,
    );
    expect(named.length).toBeGreaterThan(0);
    expect(new Set(named).size).toBe(named.length);
    expect(index.get('shop', 'A', 'slow')).toHaveLength(2);
    expect(index.get('shop', 'AAAA', 'timeout')).toHaveLength(1);
  });

  it('the pod page pattern is stable and escapes names', () => {
    expect(POD_PAGE_PATTERN).toBe('/pods/{namespace}/{pod}');
    expect(podPagePath('shop', 'a/b')).toBe('/pods/shop/a%2Fb');
  });

  it('bounds the rings: per cgroup and cgroups, forgetting the quietest', () => {
    const r = new EventRings({ perCgroup: 2, maxCgroups: 2 });
    for (const id of [1n, 2n, 1n, 3n]) r.add(lookup({ cgroupId: id }));
    expect([...r.all()].map((x) => x.cgroupId)).toEqual([1n, 3n]);
    expect(r.evictedCgroups).toBe(1);
    for (let i = 0; i < 5; i++) r.add(lookup({ cgroupId: 3n }));
    expect(r.get(3n)!.lookups).toHaveLength(2);
    expect(r.get(3n)!.tally.byKind.slow).toBe(6);
  });

  it('quantiles come from the kernel buckets', () => {
    const t = totals({
      lat: [
        [-40, 99],
        [10, 1],
      ],
    });
    expect(quantileSeconds(t.latency, 0.5)).toBe(2 ** -10);
    expect(quantileSeconds(t.latency, 0.999)).toBe(2 ** 2.5);
    expect(quantileSeconds(emptyTotals().latency, 0.5)).toBeNull();
  });
});
