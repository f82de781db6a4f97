/**
 * The latency buckets of `struct dns_stats.latency[]` (bpf/dns.h): the buckets of a
 * Prometheus native histogram with schema 2. Bucket index i holds latencies in
 * (2^((i-1)/4), 2^(i/4)] seconds; slot 0 is the zero bucket (<= 2^(LAT_MIN_INDEX/4) s),
 * slot s >= 1 is index LAT_MIN_INDEX + s, and the last slot also holds everything above
 * 2^(LAT_MAX_INDEX/4) s (the kernel clamps).
 *
 * slotForNanoseconds() mirrors bpf/lib/latency_slot.bpf.h bit for bit: change both together.
 */

export const LAT_SCHEMA = 2;
export const LAT_MIN_INDEX = -56;
export const LAT_MAX_INDEX = 32;
export const LAT_SLOTS = LAT_MAX_INDEX - LAT_MIN_INDEX + 1;
/** Schema 2: four buckets per power of two. */
const BUCKETS_PER_OCTAVE = 2 ** LAT_SCHEMA;

/** Upper bound of slot 0, the zero bucket: 2^-14 s, about 61 µs. */
export const LAT_ZERO_THRESHOLD_SECONDS = 2 ** (LAT_MIN_INDEX / BUCKETS_PER_OCTAVE);

// Constants of latency_slot.bpf.h.
const NS_CLAMP = 1n << 40n;
const ZERO_BUCKET_UNITS = 1n << 16n;
/** floor(2^(j/4) * 2^16) for j = 0..3: the quarter boundaries of a mantissa in [2^16, 2^17). */
const QUARTER_BOUNDS = [65536n, 77935n, 92681n, 110217n] as const;

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= LAT_SLOTS) {
    throw new RangeError(`latency slot ${slot} is outside 0..${LAT_SLOTS - 1}`);
  }
}

/** Slot 0 is the zero bucket of the native histogram (threshold LAT_ZERO_THRESHOLD_SECONDS). */
export const ZERO_BUCKET_SLOT = 0;

/**
 * The native-histogram index whose upper bound is the slot's upper bound: LAT_MIN_INDEX + slot.
 * For slot 0 that is only its bound: the slot is the zero bucket, [0, 2^(LAT_MIN_INDEX/4)] s,
 * not bucket LAT_MIN_INDEX.
 */
export function nativeIndexOfSlot(slot: number): number {
  checkSlot(slot);
  return LAT_MIN_INDEX + slot;
}

/**
 * Upper bound of a slot in seconds (the `le` of a classic bucket). The last slot's bound is
 * nominal: latencies above it are clamped into it, so a classic histogram should map it to +Inf.
 */
export function slotUpperBoundSeconds(slot: number): number {
  checkSlot(slot);
  return 2 ** ((LAT_MIN_INDEX + slot) / BUCKETS_PER_OCTAVE);
}

/**
 * The slot the kernel puts a latency of `ns` nanoseconds in. Exact integer mirror of
 * latency_slot(): u = floor(ns * 2^30 / 10^9), e = floor(log2 u), mantissa = u >> (e - 16),
 * slot = 4e + quarter - 64. A latency lands one slot low only within 1 ns + 15 ppm above a
 * bucket's upper bound.
 */
export function slotForNanoseconds(ns: bigint): number {
  if (ns < 0n) throw new RangeError(`latency ${ns} ns is negative`);
  const clamped = ns > NS_CLAMP ? NS_CLAMP : ns;
  const u = (clamped << 21n) / 1953125n;
  if (u <= ZERO_BUCKET_UNITS) return 0;
  const e = u.toString(2).length - 1;
  const mantissa = u >> BigInt(e - 16);
  let quarter = QUARTER_BOUNDS.findIndex((bound) => mantissa <= bound);
  if (quarter === -1) quarter = 4;
  return Math.min(4 * e + quarter - 64, LAT_SLOTS - 1);
}
