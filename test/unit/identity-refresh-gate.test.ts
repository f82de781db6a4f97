import { describe, expect, it } from 'vitest';
import { ExpiringSet, RefreshGate } from '../../src/identity/refresh-gate.js';

function clock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('RefreshGate', () => {
  it('starts at most one refresh per interval and reports its start time', async () => {
    const c = clock();
    let runs = 0;
    const gate = new RefreshGate(async () => void runs++, { minIntervalMs: 1_000, now: c.now });
    await expect(gate.request()).resolves.toBe(1_000);
    c.advance(999);
    await expect(gate.request()).resolves.toBeUndefined();
    expect(runs).toBe(1);
    c.advance(1);
    await expect(gate.request()).resolves.toBe(2_000);
    expect(runs).toBe(2);
    expect(gate.runs).toBe(2);
  });

  it('lets concurrent callers share the refresh in flight', async () => {
    const c = clock();
    let runs = 0;
    let release!: () => void;
    const gate = new RefreshGate(
      async () => {
        runs++;
        await new Promise<void>((r) => (release = r));
      },
      { minIntervalMs: 0, now: c.now },
    );
    const a = gate.request();
    const b = gate.request();
    c.advance(5);
    const d = gate.request();
    release();
    await expect(Promise.all([a, b, d])).resolves.toEqual([1_000, 1_000, 1_000]);
    expect(runs).toBe(1);
  });

  it('refreshNow ignores the rate limit and rejects with the failure; request swallows it', async () => {
    const c = clock();
    const errors: unknown[] = [];
    let fail = true;
    const gate = new RefreshGate(
      async () => {
        if (fail) throw new Error('walk failed');
      },
      { minIntervalMs: 60_000, now: c.now, onError: (e) => errors.push(e) },
    );
    await expect(gate.request()).resolves.toBeUndefined();
    expect(gate.lastError).toBeInstanceOf(Error);
    await expect(gate.refreshNow()).rejects.toThrow('walk failed');
    fail = false;
    await expect(gate.refreshNow()).resolves.toBeUndefined();
    expect(gate.lastError).toBeUndefined();
    expect(errors).toHaveLength(2);
    expect(gate.runs).toBe(3);
  });
});

describe('ExpiringSet', () => {
  it('forgets a key at its expiry', () => {
    const s = new ExpiringSet<string>(100);
    s.add('a', 0);
    expect(s.has('a', 99)).toBe(true);
    expect(s.has('a', 100)).toBe(false);
    expect(s.size).toBe(0);
  });

  it('stays bounded, dropping the oldest key first', () => {
    const s = new ExpiringSet<number>(1_000, 3);
    for (let i = 0; i < 5; i++) s.add(i, i);
    expect(s.size).toBe(3);
    expect([0, 1, 2, 3, 4].map((k) => s.has(k, 10))).toEqual([false, false, true, true, true]);
  });

  it('prune drops only expired keys', () => {
    const s = new ExpiringSet<number>(10);
    s.add(1, 0);
    s.add(2, 5);
    s.prune(12);
    expect(s.size).toBe(1);
    expect(s.has(2, 12)).toBe(true);
  });
});
