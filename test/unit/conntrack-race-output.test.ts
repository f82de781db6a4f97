// The result line of test/lab/clients/ctrace.c, parsed by test/lab/race.ts.
import { describe, expect, it } from 'vitest';
import { parseCtraceOutput } from '../lab/race.js';

describe('parseCtraceOutput', () => {
  it.each([
    [
      'race, everything answered (as printed here)',
      'iterations=300 mode=race ok=300 lost_a=0 lost_aaaa=0 send_errors=0\n',
      { iterations: 300, mode: 'race', ok: 300, lostA: 0, lostAAAA: 0, sendErrors: 0 },
    ],
    [
      'mmsg with losses, after other output',
      'warming up\niterations=10 mode=mmsg ok=7 lost_a=1 lost_aaaa=3 send_errors=2\n',
      { iterations: 10, mode: 'mmsg', ok: 7, lostA: 1, lostAAAA: 3, sendErrors: 2 },
    ],
  ])('%s', (_t, stdout, want) => {
    expect(parseCtraceOutput(stdout)).toEqual(want);
  });

  it.each([
    [
      'no result line',
      'ctrace: socket/connect 10.96.0.10:53: Network is unreachable\n',
      /no result line/,
    ],
    [
      'a missing count',
      'iterations=3 mode=race ok=3 lost_a=0 send_errors=0\n',
      /no integer lost_aaaa/,
    ],
    [
      'an unknown mode',
      'iterations=3 mode=fast ok=3 lost_a=0 lost_aaaa=0 send_errors=0\n',
      /mode fast/,
    ],
  ])('rejects %s', (_t, stdout, err) => {
    expect(() => parseCtraceOutput(stdout)).toThrow(err);
  });
});
