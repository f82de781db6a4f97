// The protobuf exposition: encode -> decode round trips with the vendored schema, agreement
// with the text exposition of the same model, native spans/deltas that decode back to the
// kernel's slots, exemplars, and content negotiation.
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { pino } from 'pino';
import {
  decodeProtobuf,
  encodeProtobuf,
  PROTOBUF_CONTENT_TYPE,
} from '../../src/exposition/protobuf.js';
import { renderText } from '../../src/exposition/prom-text.js';
import {
  nativeBucketsOfSlots,
  slotsOfNativeBuckets,
  type NativeBuckets,
} from '../../src/exposition/native-histogram.js';
import type { Exemplar, Family, HistogramSample } from '../../src/exposition/model.js';
import {
  cumulativeBuckets,
  leSeconds,
  NAMESPACE_LE_INDICES,
  POD_LE_INDICES,
} from '../../src/dns/classic-buckets.js';
import {
  LAT_MIN_INDEX,
  LAT_SLOTS,
  LAT_ZERO_THRESHOLD_SECONDS,
} from '../../src/bpf/latency-buckets.js';
import { createApp, listen, negotiateFormat } from '../../src/http/server.js';
import { parsePromText } from '../support/prom-text.js';

// Decoded shapes (keepCase field names of metrics.proto; int64 as numbers, enums as names).
interface LabelPairMsg {
  name: string;
  value: string;
}
interface ExemplarMsg {
  label: LabelPairMsg[];
  value: number;
  timestamp: { seconds: number; nanos: number };
}
interface BucketMsg {
  cumulative_count: number;
  upper_bound: number;
  exemplar?: ExemplarMsg;
}
interface HistogramMsg {
  sample_count: number;
  sample_sum: number;
  bucket: BucketMsg[];
  schema?: number;
  zero_threshold?: number;
  zero_count?: number;
  positive_span?: { offset: number; length: number }[];
  positive_delta?: number[];
  exemplars?: ExemplarMsg[];
}
interface MetricMsg {
  label: LabelPairMsg[];
  counter?: { value: number; exemplar?: ExemplarMsg };
  gauge?: { value: number };
  histogram?: HistogramMsg;
}
interface FamilyMsg {
  name: string;
  help: string;
  type: string;
  metric: MetricMsg[];
}

function decode(body: Uint8Array): FamilyMsg[] {
  return decodeProtobuf(body) as unknown as FamilyMsg[];
}

function labelsOf(pairs: LabelPairMsg[]): Record<string, string> {
  return Object.fromEntries(pairs.map((p) => [p.name, p.value]));
}

/** Slots from (native bucket index, count) pairs; index 'zero' is the zero bucket. */
function slotsOf(byIndex: [number | 'zero', number][]): number[] {
  const slots = new Array<number>(LAT_SLOTS).fill(0);
  for (const [i, n] of byIndex) slots[i === 'zero' ? 0 : i - LAT_MIN_INDEX] = n;
  return slots;
}

function histogramSample(
  labels: Record<string, string>,
  slots: number[],
  leIndices: readonly number[],
  withSlots = true,
  exemplars?: Exemplar[],
): HistogramSample {
  const count = slots.reduce((a, c) => a + c, 0);
  return {
    labels,
    buckets: cumulativeBuckets(slots, leIndices),
    sum: count * 0.25,
    count,
    ...(withSlots && { slots }),
    ...(exemplars && { exemplars }),
  };
}

const STALLED = slotsOf([
  ['zero', 3],
  [-40, 60],
  [-39, 2],
  [10, 40],
  [32, 1], // the last slot: 256 s and everything the kernel clamped above it
]);
const FAST = slotsOf([
  [-40, 900],
  [-27, 95],
  [-19, 5],
]);

function model(): Family[] {
  return [
    {
      type: 'counter',
      name: 'dnsrace_dns_queries_total',
      help: 'DNS queries sent by pods.',
      samples: [
        { labels: { namespace: 'team-a', qtype: 'A' }, value: 106 },
        { labels: { namespace: 'team-b', qtype: 'AAAA' }, value: 1000 },
      ],
    },
    {
      type: 'gauge',
      name: 'dnsrace_bpf_map_entries',
      help: 'Entries in each BPF map at the last read.',
      samples: [{ labels: { map: 'dns_pending' }, value: 2 }],
    },
    { type: 'counter', name: 'dnsrace_empty_total', help: 'No samples.', samples: [] },
    {
      type: 'histogram',
      name: 'dnsrace_dns_query_duration_seconds',
      help: 'DNS lookup latency seen by pods.',
      samples: [
        histogramSample({ namespace: 'team-a', qtype: 'A' }, STALLED, NAMESPACE_LE_INDICES),
        histogramSample({ namespace: 'team-b', qtype: 'AAAA' }, FAST, NAMESPACE_LE_INDICES),
      ],
    },
    {
      type: 'histogram',
      name: 'dnsrace_dns_pod_query_duration_seconds',
      help: 'DNS lookup latency of the pod (coarse buckets).',
      samples: [
        histogramSample({ namespace: 'team-a', pod: 'web-1' }, STALLED, POD_LE_INDICES, false),
      ],
    },
  ];
}

describe('protobuf exposition: encode -> decode', () => {
  const decoded = decode(encodeProtobuf(model()));
  const family = (name: string) => {
    const f = decoded.find((x) => x.name === name);
    if (!f) throw new Error(`no family ${name} in ${decoded.map((x) => x.name).join(', ')}`);
    return f;
  };

  it('keeps every family with samples, in order, and leaves empty ones out', () => {
    expect(decoded.map((f) => [f.name, f.type])).toEqual([
      ['dnsrace_dns_queries_total', 'COUNTER'],
      ['dnsrace_bpf_map_entries', 'GAUGE'],
      ['dnsrace_dns_query_duration_seconds', 'HISTOGRAM'],
      ['dnsrace_dns_pod_query_duration_seconds', 'HISTOGRAM'],
    ]);
  });

  it('writes counters with their _total name (as client_golang does), help, labels and value', () => {
    const f = family('dnsrace_dns_queries_total');
    expect(f.help).toBe('DNS queries sent by pods.');
    expect(f.metric.map((m) => [labelsOf(m.label), m.counter?.value])).toEqual([
      [{ namespace: 'team-a', qtype: 'A' }, 106],
      [{ namespace: 'team-b', qtype: 'AAAA' }, 1000],
    ]);
    expect(family('dnsrace_bpf_map_entries').metric[0]!.gauge?.value).toBe(2);
  });

  it('writes the classic buckets of the model, +Inf included, with count and sum', () => {
    const m = model()[3]!;
    if (m.type !== 'histogram') throw new Error('fixture');
    const f = family('dnsrace_dns_query_duration_seconds');
    f.metric.forEach((metric, i) => {
      const s = m.samples[i]!;
      const h = metric.histogram!;
      expect(labelsOf(metric.label)).toEqual(s.labels);
      expect(h.sample_count).toBe(s.count);
      expect(h.sample_sum).toBe(s.sum);
      expect(h.bucket.map((b) => [b.upper_bound, b.cumulative_count])).toEqual(
        s.buckets.map((b) => [b.le, b.count]),
      );
    });
  });

  it('adds the native fields: schema 2, zero bucket 2^-14 s, spans and deltas of the slots', () => {
    const [a, b] = family('dnsrace_dns_query_duration_seconds').metric.map((m) => m.histogram!);
    expect(a!.schema).toBe(2);
    expect(a!.zero_threshold).toBe(2 ** -14);
    expect(a!.zero_threshold).toBe(LAT_ZERO_THRESHOLD_SECONDS);
    expect(a!.zero_count).toBe(3);
    // Indices -40 and -39 are adjacent; 10 and 32 start new spans (gaps > 2 buckets).
    expect(a!.positive_span).toEqual([
      { offset: -40, length: 2 },
      { offset: 48, length: 1 },
      { offset: 21, length: 1 },
    ]);
    expect(a!.positive_delta).toEqual([60, -58, 38, -39]);
    expect(slotsOfNativeBuckets(nativeOf(a!))).toEqual(STALLED);
    expect(slotsOfNativeBuckets(nativeOf(b!))).toEqual(FAST);
  });

  it('leaves a histogram without slots classic (no native field Prometheus would see)', () => {
    const h = family('dnsrace_dns_pod_query_duration_seconds').metric[0]!.histogram!;
    expect(h.bucket).toHaveLength(POD_LE_INDICES.length + 1);
    expect(h.schema ?? null).toBeNull();
    expect(h.zero_threshold ?? null).toBeNull();
    expect(h.positive_span ?? []).toEqual([]);
  });

  it('writes native fields for no sample of a family where one sample has no slots', () => {
    // Prometheus decides native-or-classic per family from its first sample.
    const mixed: Family = {
      type: 'histogram',
      name: 'h_seconds',
      help: 'h',
      samples: [
        histogramSample({ n: 'a' }, STALLED, NAMESPACE_LE_INDICES),
        histogramSample({ n: 'b' }, FAST, NAMESPACE_LE_INDICES, false),
      ],
    };
    for (const m of decode(encodeProtobuf([mixed]))[0]!.metric)
      expect(m.histogram!.zero_threshold ?? null).toBeNull();
  });

  it('raises sample_count to the slots total when a map read caught count behind a slot', () => {
    const s = histogramSample({ n: 'a' }, FAST, NAMESPACE_LE_INDICES);
    const h = decode(
      encodeProtobuf([
        { type: 'histogram', name: 'h_seconds', help: 'h', samples: [{ ...s, count: 999 }] },
      ]),
    )[0]!.metric[0]!.histogram!;
    expect(h.sample_count).toBe(1000);
  });

  it('frames each family with its varint length (bytes checked by hand, not by protobufjs)', () => {
    const body = encodeProtobuf([
      { type: 'counter', name: 'a_total', help: 'h', samples: [{ labels: {}, value: 1 }] },
    ]);
    const counter = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]; // field 1, fixed64: 1.0
    const metric = [0x1a, counter.length, ...counter]; // Metric.counter = 3
    const fam = [
      ...[0x0a, 7, ...Buffer.from('a_total')], // name = 1
      ...[0x12, 1, ...Buffer.from('h')], // help = 2
      ...[0x18, 0], // type = 3: COUNTER
      ...[0x22, metric.length, ...metric], // metric = 4
    ];
    expect([...body]).toEqual([fam.length, ...fam]);
  });
});

function nativeOf(h: HistogramMsg): NativeBuckets {
  return {
    schema: h.schema!,
    zeroThreshold: h.zero_threshold!,
    zeroCount: h.zero_count!,
    positiveSpans: h.positive_span ?? [],
    positiveDeltas: h.positive_delta ?? [],
  };
}

describe('native buckets of the kernel slots', () => {
  const every = Array.from({ length: LAT_SLOTS }, (_, i) => i + 1);
  it.each<[string, number[]]>([
    ['empty', slotsOf([])],
    ['zero bucket only', slotsOf([['zero', 7]])],
    ['first slot after the zero bucket', slotsOf([[LAT_MIN_INDEX + 1, 1]])],
    ['last slot', slotsOf([[32, 4]])],
    [
      'gap of one',
      slotsOf([
        [0, 1],
        [2, 5],
      ]),
    ],
    [
      'gap of two',
      slotsOf([
        [0, 1],
        [3, 5],
      ]),
    ],
    [
      'gap of three',
      slotsOf([
        [0, 5],
        [4, 1],
      ]),
    ],
    ['every slot', every],
    ['falling counts', every.map((c) => 1000 - c)],
  ])('%s decodes back to the slots', (_name, slots) => {
    const n = nativeBucketsOfSlots(slots);
    expect(slotsOfNativeBuckets(n)).toEqual(slots);
    // A span never starts or ends on an empty bucket.
    const rebuilt = slotsOfNativeBuckets(n);
    let index = 0;
    let d = 0;
    let count = 0;
    for (const span of n.positiveSpans) {
      index += span.offset;
      for (let k = 0; k < span.length; k++, index++) {
        count += n.positiveDeltas[d++]!;
        expect(rebuilt[index - LAT_MIN_INDEX]).toBe(count);
      }
      expect(rebuilt[index - span.length - LAT_MIN_INDEX]).toBeGreaterThan(0);
      expect(rebuilt[index - 1 - LAT_MIN_INDEX]).toBeGreaterThan(0);
    }
  });

  it('maps slot s to bucket index LAT_MIN_INDEX + s, whose upper bound is 2^(i/4) s', () => {
    const n = nativeBucketsOfSlots(slotsOf([[10, 1]]));
    expect(n.positiveSpans).toEqual([{ offset: 10, length: 1 }]);
    // A 5 s lookup: index 10 covers (2^(9/4), 2^(10/4)] = (4.76, 5.66] s.
    expect(leSeconds(9)).toBeLessThan(5);
    expect(leSeconds(10)).toBeGreaterThanOrEqual(5);
  });

  it.each<[string, Partial<NativeBuckets>, RegExp]>([
    ['another schema', { schema: 3 }, /schema 3/],
    ['another zero threshold', { zeroThreshold: 2 ** -10 }, /zero threshold/],
    ['an index below the slots', { positiveSpans: [{ offset: -56, length: 1 }] }, /outside/],
    ['an index above the slots', { positiveSpans: [{ offset: 33, length: 1 }] }, /outside/],
    ['too few deltas', { positiveDeltas: [] }, /fewer deltas/],
    ['too many deltas', { positiveDeltas: [1, 1] }, /more deltas/],
  ])('refuses %s', (_name, change, message) => {
    const n = { ...nativeBucketsOfSlots(slotsOf([[0, 1]])), ...change };
    expect(() => slotsOfNativeBuckets(n)).toThrow(message);
  });
});

describe('text and protobuf expositions of the same model agree', () => {
  it('on every counter, gauge, bucket, count and sum', async () => {
    const families = model();
    const text = parsePromText(await renderText(families, 'prometheus'));
    const fromText = new Map(
      text.map((s) => [`${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`, s.value]),
    );
    const key = (name: string, labels: Record<string, string>) =>
      `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    let compared = 0;
    for (const f of decode(encodeProtobuf(families)))
      for (const m of f.metric) {
        const labels = labelsOf(m.label);
        const expectSame = (name: string, l: Record<string, string>, v: number) => {
          expect(fromText.get(key(name, l)), `${name} ${JSON.stringify(l)}`).toBe(v);
          compared++;
        };
        if (m.counter) expectSame(f.name, labels, m.counter.value);
        if (m.gauge) expectSame(f.name, labels, m.gauge.value);
        const h = m.histogram;
        if (!h) continue;
        expectSame(`${f.name}_count`, labels, h.sample_count);
        expectSame(`${f.name}_sum`, labels, h.sample_sum);
        for (const b of h.bucket) {
          const le = b.upper_bound === Infinity ? '+Inf' : String(b.upper_bound);
          expectSame(`${f.name}_bucket`, { ...labels, le }, b.cumulative_count);
        }
      }
    expect(compared).toBe(text.length);
  });

  it('on the classic buckets as sums of the native buckets at every le', () => {
    for (const slots of [STALLED, FAST]) {
      const s = histogramSample({}, slots, NAMESPACE_LE_INDICES);
      const h = decode(
        encodeProtobuf([{ type: 'histogram', name: 'h_seconds', help: 'h', samples: [s] }]),
      )[0]!.metric[0]!.histogram!;
      const native = slotsOfNativeBuckets(nativeOf(h));
      for (const b of h.bucket) {
        // Native bucket index i lies wholly below le when its upper bound 2^(i/4) <= le.
        const below = native.reduce(
          (acc, c, slot) =>
            slot === 0 || leSeconds(LAT_MIN_INDEX + slot) <= b.upper_bound ? acc + c : acc,
          0,
        );
        expect(below, `le ${b.upper_bound}`).toBe(b.cumulative_count);
      }
    }
  });
});

describe('exemplars on the classic buckets', () => {
  const ts = 1_700_000_000.25;
  const slow: Exemplar = {
    labels: { pod: 'web-1', dns_id: '4242' },
    value: 5.01,
    timestampSeconds: ts,
  };
  const families = (exemplars: Exemplar[]): Family[] => [
    {
      type: 'histogram',
      name: 'dnsrace_dns_query_duration_seconds',
      help: 'h',
      samples: [
        histogramSample({ namespace: 'team-a' }, STALLED, NAMESPACE_LE_INDICES, true, exemplars),
      ],
    },
  ];
  const fiveSecondLe = String(leSeconds(10)); // 5.65685424949238

  it('renders OpenMetrics exemplars on the bucket holding the value, and none in text 0.0.4', async () => {
    const om = await renderText(families([slow]), 'openmetrics');
    const withExemplar = om.split('\n').filter((l) => l.includes(' # {'));
    expect(withExemplar).toEqual([
      `dnsrace_dns_query_duration_seconds_bucket{namespace="team-a",le="${fiveSecondLe}"} 105 # {pod="web-1",dns_id="4242"} 5.01 ${ts}`,
    ]);
    expect(await renderText(families([slow]), 'prometheus')).not.toContain('#  {');
    expect(await renderText(families([slow]), 'prometheus')).not.toContain('dns_id');
  });

  it('writes the same exemplar into the protobuf bucket and the native exemplars', () => {
    const h = decode(encodeProtobuf(families([slow])))[0]!.metric[0]!.histogram!;
    const withExemplar = h.bucket.filter((b) => b.exemplar);
    expect(withExemplar.map((b) => b.upper_bound)).toEqual([leSeconds(10)]);
    const expected = {
      label: [
        { name: 'pod', value: 'web-1' },
        { name: 'dns_id', value: '4242' },
      ],
      value: 5.01,
      timestamp: { seconds: 1_700_000_000, nanos: 250_000_000 },
    };
    expect(withExemplar[0]!.exemplar).toEqual(expected);
    expect(h.exemplars).toEqual([expected]);
  });

  it('keeps the latest exemplar per bucket and drops unusable ones', async () => {
    const older = { ...slow, labels: { pod: 'web-2', dns_id: '1' }, timestampSeconds: ts - 10 };
    const fast = { labels: { pod: 'web-3', dns_id: '2' }, value: 0.0009, timestampSeconds: ts };
    const tooLong = {
      ...slow,
      labels: { pod: 'p'.repeat(130), dns_id: '3' },
      timestampSeconds: ts + 1,
    };
    const nan = { ...slow, value: NaN, timestampSeconds: ts + 1 };
    const h = decode(encodeProtobuf(families([older, slow, fast, tooLong, nan])))[0]!.metric[0]!
      .histogram!;
    expect(
      h.bucket.flatMap((b) =>
        b.exemplar ? [[b.upper_bound, labelsOf(b.exemplar.label).pod]] : [],
      ),
    ).toEqual([
      [leSeconds(-40), 'web-3'],
      [leSeconds(10), 'web-1'],
    ]);
    const om = await renderText(families([older, slow, fast, tooLong, nan]), 'openmetrics');
    expect(om.match(/ # \{/g)).toHaveLength(2);
  });
});

describe('exemplars on counters (timed-out lookups)', () => {
  const ts = 1_700_000_100.5;
  const timedOut: Exemplar = {
    labels: { pod: 'web-2', dns_id: '77' },
    value: 1,
    timestampSeconds: ts,
  };
  const families = (exemplar?: Exemplar): Family[] => [
    {
      type: 'counter',
      name: 'dnsrace_dns_timeouts_total',
      help: 't',
      samples: [
        {
          labels: { namespace: 'a', cause: 'netfilter_drop' },
          value: 3,
          ...(exemplar && { exemplar }),
        },
        { labels: { namespace: 'a', cause: 'unanswered' }, value: 0 },
      ],
    },
    {
      type: 'gauge',
      name: 'g',
      help: 'gauges carry none',
      samples: [{ labels: {}, value: 1, ...(exemplar && { exemplar }) }],
    },
  ];

  it('renders it in OpenMetrics on its sample only, and never in text 0.0.4', async () => {
    const om = await renderText(families(timedOut), 'openmetrics');
    expect(om.split('\n').filter((l) => l.includes(' # {'))).toEqual([
      `dnsrace_dns_timeouts_total{namespace="a",cause="netfilter_drop"} 3 # {pod="web-2",dns_id="77"} 1 ${ts}`,
    ]);
    expect(await renderText(families(timedOut), 'prometheus')).not.toContain('dns_id');
  });

  it('writes it into the protobuf Counter, and the counters agree across formats', async () => {
    const [counter, gauge] = decode(encodeProtobuf(families(timedOut)));
    expect(counter!.metric.map((m) => m.counter)).toEqual([
      {
        value: 3,
        exemplar: {
          label: [
            { name: 'pod', value: 'web-2' },
            { name: 'dns_id', value: '77' },
          ],
          value: 1,
          timestamp: { seconds: 1_700_000_100, nanos: 500_000_000 },
        },
      },
      { value: 0 },
    ]);
    expect(gauge!.metric[0]!.gauge).toEqual({ value: 1 });
    const text = await renderText(families(timedOut), 'prometheus');
    expect(text).toContain('dnsrace_dns_timeouts_total{namespace="a",cause="netfilter_drop"} 3');
  });

  it('leaves out an unusable one', () => {
    const bad = { ...timedOut, labels: { pod: 'p'.repeat(130), dns_id: '1' } };
    const [counter] = decode(encodeProtobuf(families(bad)));
    expect(counter!.metric[0]!.counter).toEqual({ value: 3 });
  });
});

describe('content negotiation', () => {
  const PROM_242_NATIVE =
    'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  const PROM_242 =
    'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  it.each([
    [PROM_242_NATIVE, 'protobuf'],
    [PROM_242, 'openmetrics'],
    [undefined, 'prometheus'],
    ['text/plain', 'prometheus'],
    [
      'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
      'protobuf',
    ],
    [
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text',
      'prometheus',
    ],
    ['application/vnd.google.protobuf;encoding=delimited', 'prometheus'],
    [
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0',
      'openmetrics',
    ],
    [
      'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0',
      'prometheus',
    ],
  ])('%s -> %s', (accept, format) => expect(negotiateFormat(accept)).toBe(format));

  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('serves protobuf over HTTP to a Prometheus with native histograms', async () => {
    const app = createApp({
      families: model,
      readiness: () => ({ ready: true, reason: 'ready' }),
      log: pino({ level: 'silent' }),
    });
    server = await listen(app, '127.0.0.1', 0);
    const a = server.address();
    const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/metrics`;
    const r = await fetch(url, { headers: { accept: PROM_242_NATIVE } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(PROTOBUF_CONTENT_TYPE);
    expect(r.headers.get('vary')).toBe('Accept');
    const body = new Uint8Array(await r.arrayBuffer());
    expect([...body]).toEqual([...encodeProtobuf(model())]);
    const text = await fetch(url);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

/** A node with 110 pods in 20 namespaces, every slot of every histogram non-zero: the worst case. */
function node110(): Family[] {
  const every = Array.from({ length: LAT_SLOTS }, (_, i) => i + 1);
  const hist = (
    name: string,
    leIndices: readonly number[],
    withSlots: boolean,
    per: Record<string, string>[],
  ) => ({
    type: 'histogram' as const,
    name,
    help: 'h',
    samples: per.map((l) => histogramSample(l, every, leIndices, withSlots)),
  });
  const nsq = Array.from({ length: 20 }, (_, n) =>
    ['A', 'AAAA', 'other'].map((qtype) => ({ namespace: `ns-${n}`, qtype })),
  ).flat();
  const pods = Array.from({ length: 110 }, (_, p) => ({
    namespace: `ns-${p % 20}`,
    pod: `pod-${p}`,
  }));
  const counter = (name: string, per: Record<string, string>[]) => ({
    type: 'counter' as const,
    name,
    help: 'c',
    samples: per.map((labels, i) => ({ labels, value: i })),
  });
  return [
    counter('dnsrace_dns_queries_total', nsq),
    counter(
      'dnsrace_dns_responses_total',
      nsq.flatMap((l) =>
        ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other'].map((rcode) => ({ ...l, rcode })),
      ),
    ),
    hist('dnsrace_dns_query_duration_seconds', NAMESPACE_LE_INDICES, true, nsq),
    hist('dnsrace_dns_server_duration_seconds', NAMESPACE_LE_INDICES, true, nsq),
    counter('dnsrace_dns_pod_queries_total', pods),
    hist('dnsrace_dns_pod_query_duration_seconds', POD_LE_INDICES, false, pods),
  ];
}

describe('cost', () => {
  it('encodes a 110-pod node in well under a scrape budget', () => {
    const families = node110();
    encodeProtobuf(families); // warm-up: protobufjs generates its encoders on first use
    const runs = 20;
    const t0 = performance.now();
    let bytes = 0;
    for (let i = 0; i < runs; i++) bytes = encodeProtobuf(families).length;
    const ms = (performance.now() - t0) / runs;
    expect(bytes).toBeGreaterThan(0);
    expect(decode(encodeProtobuf(families))).toHaveLength(families.length);
    // Generous on a loaded 2-core CI machine; measured a few ms here (see the report).
    expect(ms).toBeLessThan(100);
  });
});
