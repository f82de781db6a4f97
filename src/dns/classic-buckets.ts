// Classic histogram buckets cut from the kernel's schema-2 latency slots. Every `le` is a
// slot boundary 2^(i/4) s, so each cumulative count is exact: no interpolation, no invented
// precision. The set separates 5 s, 10 s and 15 s stalls: (4, 5.66], (8, 11.3], (11.3, 16].
import { LAT_MIN_INDEX, LAT_SLOTS, nativeIndexOfSlot } from '../bpf/latency-buckets.js';

/** Native indices i of the namespace histograms' upper bounds 2^(i/4) s: 0.49 ms ... 32 s. */
export const NAMESPACE_LE_INDICES = [
  -44, -40, -36, -32, -28, -24, -20, -16, -12, -8, -4, 0, 4, 8, 10, 12, 14, 16, 20,
] as const;

/**
 * The per-pod drill-down histogram is coarser to keep the per-pod series budget small:
 * 15.6 ms, 125 ms, 1 s, 4 s, 8 s, 16 s (still one bucket per 5 s-class stall).
 */
export const POD_LE_INDICES = [-24, -12, 0, 8, 12, 16] as const;

// Prometheus's own table of schema-2 bounds (model/histogram: nativeHistogramBounds[2]);
// bound(i) = table[i mod 4] * 2^(floor(i/4) + 1) is exactly the value Prometheus computes,
// where Math.pow(2, i/4) can differ in the last digit.
const SCHEMA2_FRACTIONS = [
  0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144,
] as const;

export function leSeconds(index: number): number {
  const octave = Math.floor(index / 4);
  return SCHEMA2_FRACTIONS[index - 4 * octave]! * Math.pow(2, octave + 1);
}

export interface Bucket {
  le: number; // seconds; Infinity for +Inf
  count: number; // cumulative
}

/** Cumulative counts at each upper bound, plus +Inf. Slot 0 (the zero bucket) counts everywhere. */
export function cumulativeBuckets(
  latency: readonly number[],
  leIndices: readonly number[],
): Bucket[] {
  const out: Bucket[] = [];
  let slot = 0;
  let running = 0;
  for (const le of leIndices) {
    if (le < LAT_MIN_INDEX) throw new Error(`le index ${le} is below the kernel's first slot`);
    while (slot < LAT_SLOTS && slotIndex(slot) <= le) running += latency[slot++] ?? 0;
    out.push({ le: leSeconds(le), count: running });
  }
  while (slot < LAT_SLOTS) running += latency[slot++] ?? 0;
  out.push({ le: Infinity, count: running });
  return out;
}

function slotIndex(slot: number): number {
  return slot === 0 ? LAT_MIN_INDEX : nativeIndexOfSlot(slot);
}
