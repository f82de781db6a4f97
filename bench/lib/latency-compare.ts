// Puts a capture tool's DNS response times into dnsrace's latency slots (schema-2 buckets,
// src/bpf/latency-buckets.ts) and compares two slot histograms. Pure.
import {
  LAT_SLOTS,
  slotForNanoseconds,
  slotUpperBoundSeconds,
} from '../../src/bpf/latency-buckets.js';

/** tshark `-T fields -e dns.time` output: one value in seconds per line ("0.000045000"). */
export function parseDnsTimes(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const v = line.trim();
    if (v === '') continue;
    const s = Number(v);
    if (!Number.isFinite(s) || s < 0) throw new Error(`tshark printed '${v}' as dns.time`);
    out.push(s);
  }
  return out;
}

/** Counts per latency slot, each value bucketed exactly as the kernel buckets nanoseconds. */
export function slotHistogram(seconds: readonly number[]): number[] {
  const h = new Array<number>(LAT_SLOTS).fill(0);
  for (const s of seconds) h[slotForNanoseconds(BigInt(Math.round(s * 1e9)))]! += 1;
  return h;
}

/** The slot holding quantile q: the first slot whose cumulative count reaches q of the total. */
export function quantileSlot(hist: readonly number[], q: number): number {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) throw new Error('quantileSlot: empty histogram');
  const want = Math.max(1, Math.ceil(q * total));
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    cum += hist[i]!;
    if (cum >= want) return i;
  }
  return hist.length - 1;
}

/** Exact quantile of raw values (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile: no values');
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export interface SlotQuantile {
  slot: number;
  /** the slot's upper bound in µs (slot 0 is the zero bucket, 0 up to this bound) */
  leUs: number;
}

export interface DistributionSummary {
  count: number;
  p50: SlotQuantile;
  p90: SlotQuantile;
  p99: SlotQuantile;
}

export const QUANTILES = { p50: 0.5, p90: 0.9, p99: 0.99 } as const;

export function summarizeSlots(hist: readonly number[]): DistributionSummary {
  const at = (q: number): SlotQuantile => {
    const slot = quantileSlot(hist, q);
    return { slot, leUs: slotUpperBoundSeconds(slot) * 1e6 };
  };
  return {
    count: hist.reduce((a, b) => a + b, 0),
    p50: at(QUANTILES.p50),
    p90: at(QUANTILES.p90),
    p99: at(QUANTILES.p99),
  };
}

export interface Agreement {
  /** b.count - a.count */
  countDiff: number;
  /** slot of b minus slot of a, per quantile */
  slotDiff: Record<keyof typeof QUANTILES, number>;
  /** p50 and p99 in the same or an adjacent bucket */
  withinOneBucket: boolean;
  /** largest difference of the two cumulative distributions over the slots (0..1) */
  maxCdfDiff: number;
}

export function compareSlots(a: readonly number[], b: readonly number[]): Agreement {
  const sa = summarizeSlots(a);
  const sb = summarizeSlots(b);
  let ca = 0;
  let cb = 0;
  let maxCdfDiff = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    ca += a[i] ?? 0;
    cb += b[i] ?? 0;
    maxCdfDiff = Math.max(maxCdfDiff, Math.abs(ca / sa.count - cb / sb.count));
  }
  const slotDiff = {
    p50: sb.p50.slot - sa.p50.slot,
    p90: sb.p90.slot - sa.p90.slot,
    p99: sb.p99.slot - sa.p99.slot,
  };
  return {
    countDiff: sb.count - sa.count,
    slotDiff,
    withinOneBucket: Math.abs(slotDiff.p50) <= 1 && Math.abs(slotDiff.p99) <= 1,
    maxCdfDiff,
  };
}

/** Element-wise after - before of two slot arrays (counters of one dns_stats row). */
export function slotDelta(after: readonly number[], before: readonly number[]): number[] {
  return after.map((v, i) => v - (before[i] ?? 0));
}
