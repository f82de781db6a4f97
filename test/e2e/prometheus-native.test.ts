// The exposition formats against a real Prometheus (2.42 here, native histograms enabled):
// the real HTTP app serves a model with two namespaces, a stalled one (lookups around 5 s)
// and a fast one (< 100 ms). Job "native" lets Prometheus negotiate (protobuf); job
// "classic" gets the Accept header of a Prometheus without native histograms (OpenMetrics).
// The PromQL of docs/native-histograms.md must then tell the two namespaces apart, and the
// native and classic quantiles must agree within one classic bucket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { createApp, listen } from '../../src/http/server.js';
import type { Family, HistogramSample } from '../../src/exposition/model.js';
import {
  cumulativeBuckets,
  leSeconds,
  NAMESPACE_LE_INDICES,
} from '../../src/dns/classic-buckets.js';
import { LAT_MIN_INDEX, LAT_SLOTS } from '../../src/bpf/latency-buckets.js';
import { METRIC } from '../../src/metrics/names.js';
import { Prometheus } from '../support/prometheus.js';

const H = METRIC.dnsQueryDuration;
const OPENMETRICS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** Slots from (native bucket index, count) pairs: index i holds (2^((i-1)/4), 2^(i/4)] s. */
function slotsOf(byIndex: [number, number][]): number[] {
  const slots = new Array<number>(LAT_SLOTS).fill(0);
  for (const [i, n] of byIndex) slots[i - LAT_MIN_INDEX] = n;
  return slots;
}

// Stalled: 60 % answered within 1 ms (bucket -40 = (0.84, 0.98] ms), 40 % after a 5 s
// retry (bucket 10 = (4.76, 5.66] s).
const STALLED = slotsOf([
  [-40, 60],
  [10, 40],
]);
// Fast, all < 0.1 s: 90 % within 1 ms, 9.5 % in (7.8, 9.3] ms (bucket -27), 0.5 % in
// (31, 37] ms (bucket -19); so p99 lies in bucket -27.
const FAST = slotsOf([
  [-40, 900],
  [-27, 95],
  [-19, 5],
]);
const EXEMPLAR_TS = Math.floor(Date.now() / 1000);

function sample(namespace: string, slots: number[], scale: number): HistogramSample {
  const scaled = slots.map((c) => c * scale);
  let count = 0;
  let sum = 0;
  scaled.forEach((c, slot) => {
    count += c;
    sum += c * (slot === 0 ? 0 : leSeconds(LAT_MIN_INDEX + slot));
  });
  return {
    labels: { namespace, qtype: 'A' },
    buckets: cumulativeBuckets(scaled, NAMESPACE_LE_INDICES),
    sum,
    count,
    slots: scaled,
    ...(namespace === 'stalled' && {
      exemplars: [
        { labels: { pod: 'web-1', dns_id: '4242' }, value: 5.01, timestampSeconds: EXEMPLAR_TS },
      ],
    }),
  };
}

/** The model after `scale` scrapes: the same shape, counts growing so that rate() has data. */
function model(scale: number): Family[] {
  return [
    {
      type: 'histogram',
      name: H,
      help: 'DNS lookup latency seen by pods.',
      samples: [sample('stalled', STALLED, scale), sample('fast', FAST, scale)],
    },
    {
      type: 'counter',
      name: METRIC.dnsTimeouts,
      help: 'DNS queries of pods never answered.',
      samples: [
        {
          labels: { namespace: 'stalled', qtype: 'A', cause: 'netfilter_drop' },
          value: scale,
          exemplar: {
            labels: { pod: 'web-2', dns_id: '77' },
            value: 1,
            timestampSeconds: EXEMPLAR_TS,
          },
        },
      ],
    },
    {
      type: 'counter',
      name: METRIC.dnsQueries,
      help: 'DNS queries sent by pods.',
      samples: [
        { labels: { namespace: 'stalled', qtype: 'A' }, value: 100 * scale },
        { labels: { namespace: 'fast', qtype: 'A' }, value: 1000 * scale },
      ],
    },
  ];
}

let prometheus: Prometheus | undefined;
let server: Server | undefined;
const seenAccept = new Map<string, string>();
const scrapes = new Map<string, number>();

beforeAll(async () => {
  const scaled = (job: string) => () => {
    const n = (scrapes.get(job) ?? 0) + 1;
    scrapes.set(job, n);
    return model(n);
  };
  const log = pino({ level: 'silent' });
  const readiness = () => ({ ready: true, reason: 'ready' });
  const outer = express();
  outer.use('/native', (req, _res, next) => {
    seenAccept.set('native', req.get('accept') ?? '');
    next();
  });
  outer.use('/native', createApp({ families: scaled('native'), readiness, log }));
  outer.use('/classic', (req, _res, next) => {
    seenAccept.set('classic', req.get('accept') ?? '');
    req.headers.accept = OPENMETRICS_ACCEPT;
    next();
  });
  outer.use('/classic', createApp({ families: scaled('classic'), readiness, log }));
  server = await listen(outer, '127.0.0.1', 0);
  const a = server.address();
  const target = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  prometheus = await Prometheus.start({
    features: ['native-histograms', 'exemplar-storage'],
    jobs: [
      { job: 'native', target, metricsPath: '/native/metrics' },
      { job: 'classic', target, metricsPath: '/classic/metrics' },
    ],
  });
  // rate() over [10s] needs a few scrapes of both jobs.
  await prometheus.until('6 scrapes of each job', async () =>
    (scrapes.get('native') ?? 0) >= 6 && (scrapes.get('classic') ?? 0) >= 6 ? true : undefined,
  );
});

afterAll(async () => {
  await prometheus?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
});

const NATIVE_P99 = `histogram_quantile(0.99, sum by (namespace) (rate(${H}{job="native"}[10s])))`;
const CLASSIC_P99 = `histogram_quantile(0.99, sum by (namespace, le) (rate(${H}_bucket{job="classic"}[10s])))`;

async function byNamespace(expr: string): Promise<Record<string, number>> {
  const r = await prometheus!.query(expr);
  return Object.fromEntries(r.map((s) => [s.metric.namespace ?? '', Number(s.value?.[1])]));
}

/** Index of the classic bucket (NAMESPACE_LE_INDICES, then +Inf) whose range holds v. */
function classicBucketOf(v: number): number {
  const i = NAMESPACE_LE_INDICES.findIndex((le) => v <= leSeconds(le));
  return i === -1 ? NAMESPACE_LE_INDICES.length : i;
}

describe('a real Prometheus scraping the exposition', () => {
  it('negotiates protobuf with a native-histogram Prometheus and scrapes both jobs cleanly', async () => {
    expect(seenAccept.get('native')).toMatch(
      /^application\/vnd\.google\.protobuf;proto=io\.prometheus\.client\.MetricFamily;encoding=delimited/,
    );
    const targets = await prometheus!.targets();
    expect(targets.map((t) => [t.job, t.health, t.lastError]).sort()).toEqual([
      ['classic', 'up', ''],
      ['native', 'up', ''],
    ]);
  });

  it('stores native histograms from the protobuf scrape', async () => {
    const r = await prometheus!.query(`${H}{job="native"}`);
    expect(r.map((s) => s.metric.namespace).sort()).toEqual(['fast', 'stalled']);
    for (const s of r) expect(s.histogram?.[1].count).toBeDefined();
    const counts = await byNamespace(`histogram_count(${H}{job="native"})`);
    const n = scrapes.get('native')!;
    // The last stored scrape is one of the last few served; counts are whole multiples.
    expect(counts.stalled! % 100).toBe(0);
    expect(counts.stalled! / 100).toBeGreaterThan(0);
    expect(counts.stalled! / 100).toBeLessThanOrEqual(n);
    expect(counts.fast! / counts.stalled!).toBe(10);
    // The native buckets are the kernel slots: the stalled 5 s bucket is (2^(9/4), 2^(10/4)].
    const stalled = r.find((s) => s.metric.namespace === 'stalled')!.histogram![1];
    const top = stalled.buckets!.at(-1)!;
    expect(Number(top[1])).toBeCloseTo(2 ** (9 / 4), 12);
    expect(Number(top[2])).toBeCloseTo(2 ** (10 / 4), 12);
    expect(Number(top[3]) / Number(stalled.count)).toBeCloseTo(0.4, 12);
  });

  it('tells the stalled namespace from the fast one, native and classic within one bucket', async () => {
    const native = await byNamespace(NATIVE_P99);
    const classic = await byNamespace(CLASSIC_P99);
    expect(native.stalled).toBeGreaterThanOrEqual(5);
    expect(classic.stalled).toBeGreaterThanOrEqual(5);
    expect(native.fast).toBeLessThan(0.1);
    expect(classic.fast).toBeLessThan(0.1);
    for (const ns of ['stalled', 'fast'])
      expect(
        Math.abs(classicBucketOf(native[ns]!) - classicBucketOf(classic[ns]!)),
        `${ns}: native p99 ${native[ns]} vs classic ${classic[ns]}`,
      ).toBeLessThanOrEqual(1);
  });

  it('the dashboard pattern "native or classic" yields one p99 per namespace, native first', async () => {
    const native = await byNamespace(NATIVE_P99);
    const either = await byNamespace(
      `histogram_quantile(0.99, sum by (namespace) (rate(${H}[10s])))` +
        ` or histogram_quantile(0.99, sum by (namespace, le) (rate(${H}_bucket[10s])))`,
    );
    expect(Object.keys(either).sort()).toEqual(['fast', 'stalled']);
    expect(either.stalled).toBeCloseTo(native.stalled!, 6);
    expect(either.fast).toBeCloseTo(native.fast!, 6);
  });

  it('keeps the slow-lookup exemplar with pod and dns_id, in OpenMetrics and protobuf', async () => {
    const now = Date.now() / 1000;
    for (const [job, series] of [
      ['classic', `${H}_bucket{job="classic"}`],
      ['native', `${H}{job="native"}`],
    ] as const) {
      const found = await prometheus!.exemplars(series, now - 600, now + 60);
      const ex = found.flatMap((s) => s.exemplars.map((e) => ({ series: s.seriesLabels, ...e })));
      expect(ex.length, `${job}: ${JSON.stringify(found)}`).toBeGreaterThan(0);
      expect(ex[0]!.labels).toEqual({ pod: 'web-1', dns_id: '4242' });
      expect(Number(ex[0]!.value)).toBe(5.01);
      expect(ex[0]!.timestamp).toBe(EXEMPLAR_TS);
      expect(ex[0]!.series.namespace).toBe('stalled');
    }
  });

  it('keeps the timed-out lookup exemplar on the timeouts counter, in OpenMetrics and protobuf', async () => {
    const now = Date.now() / 1000;
    for (const job of ['classic', 'native']) {
      const found = await prometheus!.exemplars(
        `${METRIC.dnsTimeouts}{job="${job}"}`,
        now - 600,
        now + 60,
      );
      const ex = found.flatMap((s) => s.exemplars.map((e) => ({ series: s.seriesLabels, ...e })));
      expect(ex.length, `${job}: ${JSON.stringify(found)}`).toBeGreaterThan(0);
      expect(ex[0]!.labels).toEqual({ pod: 'web-2', dns_id: '77' });
      expect(Number(ex[0]!.value)).toBe(1);
      expect(ex[0]!.timestamp).toBe(EXEMPLAR_TS);
      expect(ex[0]!.series).toMatchObject({ namespace: 'stalled', cause: 'netfilter_drop' });
    }
  });
});
