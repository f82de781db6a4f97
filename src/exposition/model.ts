// One in-memory model of what a scrape returns, rendered by prom-client (text, OpenMetrics)
// and later by the protobuf encoder, so every format carries the same numbers.
import type { Bucket } from '../dns/classic-buckets.js';

export type Labels = Record<string, string>;

export interface ScalarFamily {
  type: 'counter' | 'gauge';
  name: string;
  help: string;
  /** exemplar: counters only (OpenMetrics and protobuf), e.g. the latest timed-out lookup. */
  samples: { labels: Labels; value: number; exemplar?: Exemplar }[];
}

/**
 * One observation worth pointing at: a slow lookup, rendered on the classic bucket whose
 * range holds `value`, or a timed-out one, on its timeouts counter; in OpenMetrics and
 * protobuf. Labels are small and carry no query names: {pod, dns_id}.
 */
export interface Exemplar {
  labels: Labels;
  /** A histogram's: the observed latency in seconds; a counter's: the increment (1). */
  value: number;
  /** When it was observed, Unix seconds (fractions allowed). */
  timestampSeconds: number;
}

export interface HistogramSample {
  labels: Labels;
  buckets: Bucket[]; // cumulative, last is +Inf
  sum: number;
  count: number;
  /** The kernel's schema-2 slots behind the buckets (for native histograms). */
  slots?: readonly number[];
  /** Recent notable observations; at most one per bucket is rendered (the latest). */
  exemplars?: readonly Exemplar[];
}

export interface HistogramFamily {
  type: 'histogram';
  name: string;
  help: string;
  samples: HistogramSample[];
}

export type Family = ScalarFamily | HistogramFamily;
