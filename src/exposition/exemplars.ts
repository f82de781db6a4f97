// Places a histogram sample's exemplars on its classic buckets, for both the OpenMetrics
// and the protobuf renderer: each format carries at most one exemplar per bucket (and per
// counter sample).
import type { Exemplar, HistogramSample } from './model.js';

/** OpenMetrics: the label names and values of an exemplar hold at most 128 characters. */
export const EXEMPLAR_LABELS_MAX_CHARS = 128;

function labelChars(e: Exemplar): number {
  let n = 0;
  for (const [k, v] of Object.entries(e.labels)) n += [...k].length + [...v].length;
  return n;
}

/** Unusable exemplars (NaN, negative, labels too long for OpenMetrics) are left out. */
export function usable(e: Exemplar): boolean {
  return (
    Number.isFinite(e.value) &&
    e.value >= 0 &&
    Number.isFinite(e.timestampSeconds) &&
    labelChars(e) <= EXEMPLAR_LABELS_MAX_CHARS
  );
}

/**
 * The exemplar to show on each bucket of `s.buckets` (same indices), or undefined. An
 * exemplar belongs to the first bucket whose upper bound holds its value; when several
 * do, the latest wins (a scrape shows the freshest stall). Unusable ones (NaN, negative,
 * labels too long for OpenMetrics) are left out rather than failing the scrape.
 */
export function exemplarsPerBucket(s: HistogramSample): (Exemplar | undefined)[] {
  const out: (Exemplar | undefined)[] = s.buckets.map(() => undefined);
  for (const e of s.exemplars ?? []) {
    if (!usable(e)) continue;
    const i = s.buckets.findIndex((b) => e.value <= b.le);
    if (i === -1) continue;
    const held = out[i];
    if (!held || e.timestampSeconds > held.timestampSeconds) out[i] = e;
  }
  return out;
}
