// One in-memory model of what a scrape returns, rendered by prom-client (text, OpenMetrics)
// and later by the protobuf encoder, so every format carries the same numbers.
import type { Bucket } from '../dns/classic-buckets.js';

export type Labels = Record<string, string>;

export interface ScalarFamily {
  type: 'counter' | 'gauge';
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
}

export interface HistogramSample {
  labels: Labels;
  buckets: Bucket[]; // cumulative, last is +Inf
  sum: number;
  count: number;
  /** The kernel's schema-2 slots behind the buckets (for native histograms). */
  slots?: readonly number[];
}

export interface HistogramFamily {
  type: 'histogram';
  name: string;
  help: string;
  samples: HistogramSample[];
}

export type Family = ScalarFamily | HistogramFamily;
