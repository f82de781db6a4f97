// The kernel's latency slots as the buckets of a Prometheus native histogram. No
// conversion of counts: slot 0 is the zero bucket, slot s >= 1 is bucket index
// LAT_MIN_INDEX + s of schema 2, whose range is (2^((i-1)/4), 2^(i/4)] seconds (the key
// client_golang computes and the upper bound its getLe() returns for schema > 0).
import {
  LAT_MIN_INDEX,
  LAT_SCHEMA,
  LAT_SLOTS,
  LAT_ZERO_THRESHOLD_SECONDS,
  ZERO_BUCKET_SLOT,
} from '../bpf/latency-buckets.js';

export interface BucketSpan {
  /** First span: index of its first bucket. Later spans: empty buckets since the previous one. */
  offset: number;
  length: number;
}

export interface NativeBuckets {
  schema: number;
  zeroThreshold: number;
  zeroCount: number;
  positiveSpans: BucketSpan[];
  /** Count of each bucket in the spans, as a difference to the previous bucket (first: to 0). */
  positiveDeltas: number[];
}

/**
 * Gaps of up to this many empty buckets stay inside a span as zero deltas rather than
 * starting a new span (what client_golang's makeBuckets does: it is the smaller encoding).
 */
const MAX_GAP_IN_SPAN = 2;

export function nativeBucketsOfSlots(slots: readonly number[]): NativeBuckets {
  if (slots.length > LAT_SLOTS)
    throw new RangeError(`${slots.length} latency slots; the kernel has ${LAT_SLOTS}`);
  const spans: BucketSpan[] = [];
  const deltas: number[] = [];
  let previousCount = 0;
  let nextIndex = 0; // the bucket index after the last one written
  for (let slot = ZERO_BUCKET_SLOT + 1; slot < slots.length; slot++) {
    const count = slots[slot] ?? 0;
    if (count === 0) continue;
    const index = LAT_MIN_INDEX + slot;
    const gap = index - nextIndex;
    const span = spans.at(-1);
    if (!span || gap > MAX_GAP_IN_SPAN) {
      spans.push({ offset: gap, length: 0 });
    } else {
      for (let k = 0; k < gap; k++) {
        deltas.push(-previousCount); // an empty bucket
        previousCount = 0;
      }
      span.length += gap;
    }
    spans.at(-1)!.length++;
    deltas.push(count - previousCount);
    previousCount = count;
    nextIndex = index + 1;
  }
  return {
    schema: LAT_SCHEMA,
    zeroThreshold: LAT_ZERO_THRESHOLD_SECONDS,
    zeroCount: slots[ZERO_BUCKET_SLOT] ?? 0,
    positiveSpans: spans,
    positiveDeltas: deltas,
  };
}

/**
 * The inverse: the slots a native histogram of this exporter's layout stands for. Throws
 * when the histogram does not fit the layout (other schema or threshold, index outside
 * the kernel's slots, spans and deltas of different lengths).
 */
export function slotsOfNativeBuckets(n: NativeBuckets): number[] {
  if (n.schema !== LAT_SCHEMA || n.zeroThreshold !== LAT_ZERO_THRESHOLD_SECONDS)
    throw new Error(
      `native histogram schema ${n.schema}, zero threshold ${n.zeroThreshold}: not the kernel's layout`,
    );
  const slots = new Array<number>(LAT_SLOTS).fill(0);
  slots[ZERO_BUCKET_SLOT] = n.zeroCount;
  let d = 0;
  let count = 0;
  let index = 0;
  for (const span of n.positiveSpans) {
    index += span.offset;
    for (let k = 0; k < span.length; k++, index++) {
      if (d >= n.positiveDeltas.length)
        throw new Error('native histogram has fewer deltas than spans');
      count += n.positiveDeltas[d++]!;
      const slot = index - LAT_MIN_INDEX;
      if (slot <= ZERO_BUCKET_SLOT || slot >= LAT_SLOTS)
        throw new RangeError(`native bucket index ${index} is outside the kernel's slots`);
      slots[slot] = count;
    }
  }
  if (d !== n.positiveDeltas.length) throw new Error('native histogram has more deltas than spans');
  return slots;
}
