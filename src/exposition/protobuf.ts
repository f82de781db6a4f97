// Renders the model in the Prometheus protobuf exposition format: a stream of
// io.prometheus.client.MetricFamily messages, each preceded by its varint length. It is the
// only format that carries native histograms to Prometheus 2.x, so each histogram sample
// with kernel slots gets BOTH its classic buckets and the native fields in one Histogram
// message; a server that ignores native histograms still reads the classic buckets.
import path from 'node:path';
import protobuf from 'protobufjs';
import { PACKAGE_ROOT } from '../config.js';
import { exemplarsPerBucket, usable } from './exemplars.js';
import type { Exemplar, Family, HistogramSample, Labels } from './model.js';
import { nativeBucketsOfSlots } from './native-histogram.js';

export const PROTOBUF_CONTENT_TYPE =
  'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

/** The vendored schema (see proto/README.md), read from the source tree under tsx and from dist. */
export const METRICS_PROTO_PATH = path.join(
  PACKAGE_ROOT,
  'src',
  'exposition',
  'proto',
  'metrics.proto',
);

function loadMetricFamily(file: string): protobuf.Type {
  try {
    // keepCase: the objects below use the field names of metrics.proto as written.
    const root = new protobuf.Root().loadSync(file, { keepCase: true });
    return root.lookupType('io.prometheus.client.MetricFamily');
  } catch (err) {
    throw new Error(`cannot load the protobuf exposition schema ${file}`, { cause: err });
  }
}

/** Parsed once at start-up: a missing or broken schema stops the exporter before it listens. */
export const MetricFamily = loadMetricFamily(METRICS_PROTO_PATH);

/** Values of enum io.prometheus.client.MetricType. */
const METRIC_TYPE = { counter: 0, gauge: 1, histogram: 4 } as const;

interface TimestampMsg {
  seconds: number;
  nanos: number;
}

function labelPairs(labels: Labels) {
  return Object.entries(labels).map(([name, value]) => ({ name, value }));
}

/** Millisecond resolution, what Prometheus keeps of an exemplar's timestamp. */
function timestamp(unixSeconds: number): TimestampMsg {
  const ms = Math.round(unixSeconds * 1000);
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

function exemplarMsg(e: Exemplar) {
  return { label: labelPairs(e.labels), value: e.value, timestamp: timestamp(e.timestampSeconds) };
}

function histogramMsg(s: HistogramSample, native: boolean) {
  const exemplars = exemplarsPerBucket(s);
  const msg: Record<string, unknown> = {
    sample_count: s.count,
    sample_sum: s.sum,
    // The +Inf bucket is optional in the format; kept so that every format shows the
    // model's own +Inf count, not one derived from sample_count.
    bucket: s.buckets.map((b, i) => {
      const e = exemplars[i];
      return {
        cumulative_count: b.count,
        upper_bound: b.le,
        ...(e && { exemplar: exemplarMsg(e) }),
      };
    }),
  };
  if (!native || !s.slots) return msg;
  const n = nativeBucketsOfSlots(s.slots);
  const inBuckets = n.zeroCount + s.slots.slice(1).reduce((a, c) => a + c, 0);
  // The kernel bumps latency_count and the slot in separate atomic adds, so a map read can
  // land between them; Prometheus refuses a native histogram whose count is below the sum
  // of its buckets.
  if (inBuckets > s.count) msg.sample_count = inBuckets;
  Object.assign(msg, {
    schema: n.schema,
    zero_threshold: n.zeroThreshold,
    zero_count: n.zeroCount,
    positive_span: n.positiveSpans,
    positive_delta: n.positiveDeltas,
    // Newer Prometheus versions read a native histogram's exemplars from here (timestamps
    // required); 2.42 reads the bucket exemplars above, for native histograms too.
    exemplars: exemplars.flatMap((e) => (e ? [exemplarMsg(e)] : [])),
  });
  return msg;
}

function familyMsg(f: Family) {
  if (f.type !== 'histogram')
    return {
      name: f.name,
      help: f.help,
      type: METRIC_TYPE[f.type],
      metric: f.samples.map((s) => ({
        label: labelPairs(s.labels),
        [f.type]: {
          value: s.value,
          ...(f.type === 'counter' &&
            s.exemplar &&
            usable(s.exemplar) && { exemplar: exemplarMsg(s.exemplar) }),
        },
      })),
    };
  // Prometheus decides "native or classic" once per family, from its first sample: native
  // fields go out only when every sample has slots, so no sample is read the wrong way.
  const native = f.samples.every((s) => s.slots !== undefined);
  return {
    name: f.name,
    help: f.help,
    type: METRIC_TYPE.histogram,
    metric: f.samples.map((s) => ({
      label: labelPairs(s.labels),
      histogram: histogramMsg(s, native),
    })),
  };
}

/**
 * The families as one delimited protobuf body. Counter names keep their `_total`, as
 * client_golang writes them. Families without samples are left out (Prometheus skips them).
 */
export function encodeProtobuf(families: readonly Family[]): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const f of families) {
    if (f.samples.length === 0) continue;
    MetricFamily.encodeDelimited(familyMsg(f), writer);
  }
  return writer.finish();
}

/** Reads a delimited body back into plain objects (int64 as numbers), for tests and tools. */
export function decodeProtobuf(body: Uint8Array): Record<string, unknown>[] {
  const reader = protobuf.Reader.create(body);
  const out: Record<string, unknown>[] = [];
  while (reader.pos < reader.len)
    out.push(
      MetricFamily.toObject(MetricFamily.decodeDelimited(reader), { longs: Number, enums: String }),
    );
  return out;
}
