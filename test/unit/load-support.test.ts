// The pure parts of the load-test support (test/load/): trend check, fuzz generator,
// raw HTTP response parsing, /proc status fields, flood summary parsing.
import { describe, expect, it } from 'vitest';
import { quantile, thirdsTrend, withinTrend } from '../load/series-stats.js';
import { generateCases, mulberry32 } from '../load/http-fuzz.js';
import { parseResponse } from '../load/raw-http.js';
import { statusField } from '../load/proc-stats.js';
import { parseFloodResult } from '../load/native.js';

describe('thirdsTrend / withinTrend', () => {
  it.each([
    ['flat', [5, 5, 5, 5, 5, 5], 0, 0, true],
    ['noise within the margin', [100, 110, 95, 105, 112, 108], 0.1, 0, true],
    ['steady growth', [100, 110, 120, 130, 140, 150], 0.1, 0, false],
    ['growth absorbed by the absolute margin', [2, 2, 2, 3, 3, 3], 0, 1, true],
    ['a falling series', [300, 290, 280, 200, 190, 180], 0, 0, true],
  ] as const)('%s', (_what, values, relative, absolute, ok) => {
    expect(withinTrend(thirdsTrend(values), relative, absolute)).toBe(ok);
  });

  it('needs three samples', () => {
    expect(() => thirdsTrend([1, 2])).toThrow(/at least 3/);
  });

  it('takes the nearest-rank quantile', () => {
    expect(quantile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95)).toBe(10);
  });
});

describe('generateCases', () => {
  const opts = { token: 'tok', namespaces: ['ns'], pods: [['ns', 'pod']] as [string, string][] };

  it('is reproducible from its seed and differs between seeds', () => {
    const a = generateCases(7, 200, opts).map((c) => c.request.toString('latin1'));
    const b = generateCases(7, 200, opts).map((c) => c.request.toString('latin1'));
    const c = generateCases(8, 200, opts).map((x) => x.request.toString('latin1'));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('covers both listeners, several methods, and marks the requests carrying the token', () => {
    const cases = generateCases(1, 2000, opts);
    expect(new Set(cases.map((c) => c.server))).toEqual(new Set(['metrics', 'drilldown']));
    expect(new Set(cases.map((c) => c.method)).size).toBeGreaterThan(8);
    for (const c of cases)
      expect(c.request.includes('Authorization: Bearer tok\r\n')).toBe(c.rightToken);
  });

  it('spreads a PRNG over [0, 1)', () => {
    const r = mulberry32(42);
    const xs = Array.from({ length: 1000 }, r);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.filter((x) => x < 0.5).length).toBeGreaterThan(400);
  });
});

describe('parseResponse', () => {
  it.each([
    ['HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n', 431, ''],
    ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n', 200, 'ok\n'],
    ['', undefined, ''],
    ['garbage', undefined, ''],
  ] as const)('%j', (raw, status, body) => {
    const r = parseResponse(Buffer.from(raw, 'latin1'));
    expect(r.status).toBe(status);
    expect(r.body.toString()).toBe(body);
  });

  it('lower-cases header names', () => {
    expect(
      parseResponse(Buffer.from('HTTP/1.1 401 x\r\nWWW-Authenticate: Bearer\r\n\r\n')).headers,
    ).toEqual({ 'www-authenticate': 'Bearer' });
  });
});

describe('statusField', () => {
  const status = 'Name:\tnode\nVmHWM:\t  262144 kB\nVmRSS:\t  204800 kB\n';
  it.each([
    ['VmRSS', 204800 * 1024],
    ['VmHWM', 262144 * 1024],
  ])('%s', (field, bytes) => expect(statusField(status, field)).toBe(bytes));
  it('names a missing field', () => expect(() => statusField(status, 'VmSwap')).toThrow(/VmSwap/));
});

describe('parseFloodResult', () => {
  it('reads the last line', () => {
    expect(
      parseFloodResult('warming up\n{"sent":10,"answered":9,"lost":1,"seconds":1.0,"qps":10}\n'),
    ).toEqual({ sent: 10, answered: 9, lost: 1, seconds: 1, qps: 10 });
  });
  it('names what it got when there is no summary', () => {
    expect(() => parseFloodResult('Segmentation fault')).toThrow(/no summary/);
  });
});
