import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/identity/kube-backoff.js';

describe('Backoff', () => {
  it.each([
    ['no jitter at the top of the range', 1, [100, 200, 400, 800, 1000, 1000]],
    ['half the nominal delay at the bottom of the range', 0, [50, 100, 200, 400, 500, 500]],
  ])('doubles up to the cap: %s', (_what, r, want) => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => r });
    expect(want.map(() => b.next())).toEqual(want);
    expect(b.retries).toBe(want.length);
  });

  it('draws each delay from [d/2, d] with the injected random source', () => {
    const draws = [0.25, 0.75, 0.5];
    const b = new Backoff({ initialMs: 400, maxMs: 10_000, random: () => draws.shift() ?? 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([250, 700, 1200]);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000, jitter: 0 });
    b.next();
    b.next();
    expect(b.next()).toBe(40);
    b.reset();
    expect(b.retries).toBe(0);
    expect(b.next()).toBe(10);
  });

  it('stays at the cap however many retries pile up', () => {
    const b = new Backoff({ initialMs: 1, maxMs: 30_000, jitter: 0 });
    let last = 0;
    for (let i = 0; i < 5_000; i++) last = b.next();
    expect(last).toBe(30_000);
  });

  it.each([
    [0, 10],
    [100, 10],
    [Number.NaN, 10],
  ])('refuses initialMs=%s maxMs=%s', (initialMs, maxMs) => {
    expect(() => new Backoff({ initialMs, maxMs })).toThrow(/0 < initialMs <= maxMs/);
  });
});
