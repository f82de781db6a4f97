import { describe, expect, it } from 'vitest';

import {
  LAT_MAX_INDEX,
  LAT_MIN_INDEX,
  LAT_SCHEMA,
  LAT_SLOTS,
  LAT_ZERO_THRESHOLD_SECONDS,
  nativeIndexOfSlot,
  slotForNanoseconds,
  slotUpperBoundSeconds,
  ZERO_BUCKET_SLOT,
} from '../../src/bpf/latency-buckets.js';

const MS = 1_000_000n;
const S = 1_000_000_000n;

/** Deterministic PRNG (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('latency buckets (schema-2 native histogram, bpf/dns.h)', () => {
  it('has the dimensions of dns.h', () => {
    expect([LAT_SCHEMA, LAT_MIN_INDEX, LAT_MAX_INDEX, LAT_SLOTS]).toEqual([2, -56, 32, 89]);
    expect(LAT_ZERO_THRESHOLD_SECONDS).toBe(2 ** -14);
  });

  it.each([
    ['nothing', 0n, 0],
    ['1 µs', 1000n, 0],
    ['just under 2^-14 s (61035.16 ns)', 61_035n, 0],
    ['2 ns above 2^-14 s', 61_037n, 1],
    ['1 ms', 1n * MS, 17],
    ['2 ms', 2n * MS, 21],
    ['exactly 1 s (upper bounds are inclusive)', 1n * S, 56],
    ['1 s + 20 µs', 1n * S + 20_000n, 57],
    ['a 5 s stall', 5n * S, 66],
    ['a 10 s stall', 10n * S, 70],
    ['a 15 s stall', 15n * S, 72],
    ['256 s, the last bound', 256n * S, 88],
    ['1000 s (clamped)', 1000n * S, 88],
    ['2^64 - 1 ns (clamped)', (1n << 64n) - 1n, 88],
  ])('puts %s (%s ns) in slot %s', (_name, ns, slot) => {
    expect(slotForNanoseconds(ns)).toBe(slot);
  });

  it('keeps 5, 10 and 15 s stalls, and 1 ms from 2 ms, apart', () => {
    const slots = [5n * S, 10n * S, 15n * S].map(slotForNanoseconds);
    expect(new Set(slots).size).toBe(3);
    expect(slotForNanoseconds(1n * MS)).not.toBe(slotForNanoseconds(2n * MS));
  });

  it('maps slots to native bucket indexes and upper bounds', () => {
    expect(nativeIndexOfSlot(ZERO_BUCKET_SLOT)).toBe(LAT_MIN_INDEX);
    expect(nativeIndexOfSlot(1)).toBe(-55);
    expect(nativeIndexOfSlot(56)).toBe(0);
    expect(nativeIndexOfSlot(LAT_SLOTS - 1)).toBe(LAT_MAX_INDEX);
    expect(slotUpperBoundSeconds(0)).toBe(LAT_ZERO_THRESHOLD_SECONDS);
    expect(slotUpperBoundSeconds(56)).toBe(1);
    expect(slotUpperBoundSeconds(LAT_SLOTS - 1)).toBe(256);
    expect(slotUpperBoundSeconds(57)).toBeCloseTo(2 ** 0.25, 15);
  });

  it.each([-1, LAT_SLOTS, 1.5, Number.NaN])('rejects slot %s', (slot) => {
    expect(() => slotUpperBoundSeconds(slot)).toThrow(RangeError);
    expect(() => nativeIndexOfSlot(slot)).toThrow(RangeError);
  });

  it('rejects a negative latency', () => {
    expect(() => slotForNanoseconds(-1n)).toThrow(RangeError);
  });

  it('puts the upper bound of every slot in that slot and just above it in the next', () => {
    for (let slot = 1; slot < LAT_SLOTS; slot++) {
      const boundNs = slotUpperBoundSeconds(slot) * 1e9;
      expect(slotForNanoseconds(BigInt(Math.floor(boundNs))), `bound of slot ${slot}`).toBe(slot);
      // Above the bound by more than the documented error (1 ns + 2^-16 relative).
      const above = BigInt(Math.ceil(boundNs * (1 + 2 ** -15))) + 2n;
      expect(slotForNanoseconds(above), `above slot ${slot}`).toBe(
        Math.min(slot + 1, LAT_SLOTS - 1),
      );
    }
  });

  it('agrees with ceil(4 log2(seconds)) except within the documented error above a bound', () => {
    const next = random(20251126);
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      // log-uniform from 10 µs to 500 s
      const ns = BigInt(Math.round(10 ** (4 + next() * 7.7)));
      const seconds = Number(ns) / 1e9;
      const index = Math.ceil(4 * Math.log2(seconds));
      const expected = Math.max(0, Math.min(index - LAT_MIN_INDEX, LAT_SLOTS - 1));
      const actual = slotForNanoseconds(ns);
      if (actual !== expected) {
        // Only allowed one slot low, for a latency just above the bound of that slot.
        expect(actual, `${ns} ns`).toBe(expected - 1);
        const bound = slotUpperBoundSeconds(actual);
        expect(seconds - bound, `${ns} ns`).toBeLessThanOrEqual(bound * 2 ** -16 + 1e-9);
      } else {
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(19_900);
  });

  it('never decreases as the latency grows', () => {
    let previous = 0;
    for (let ns = 1n; ns < 300n * S; ns = (ns * 1001n) / 1000n + 1n) {
      const slot = slotForNanoseconds(ns);
      expect(slot).toBeGreaterThanOrEqual(previous);
      expect(slot - previous).toBeLessThanOrEqual(1);
      previous = slot;
    }
    expect(previous).toBe(LAT_SLOTS - 1);
  });
});
