import { describe, expect, it } from 'vitest';
import { addrFromBytes } from '../../src/net/addr.js';

const v4 = (a: number, b: number, c: number, d: number) => [
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  255,
  255,
  a,
  b,
  c,
  d,
];
const hex = (s: string) => Array.from(Buffer.from(s.replace(/:/g, ''), 'hex'));

describe('addrFromBytes', () => {
  it.each([
    [v4(10, 244, 0, 4), '10.244.0.4'],
    [hex('fd00:0010:0244:0000:0000:0000:0000:0004'), 'fd00:10:244::4'],
    [hex('0000:0000:0000:0000:0000:0000:0000:0001'), '::1'],
    [hex('0000:0000:0000:0000:0000:0000:0000:0000'), '::'],
    [hex('2001:0db8:0000:0001:0000:0000:0000:0001'), '2001:db8:0:1::1'],
    [hex('2001:0db8:0001:0002:0003:0004:0005:0006'), '2001:db8:1:2:3:4:5:6'],
    [hex('2001:0000:0000:0001:0000:0000:0000:0001'), '2001:0:0:1::1'],
  ])('%j -> %s', (bytes, text) => expect(addrFromBytes(bytes)).toBe(text));

  it('refuses a wrong length', () => expect(() => addrFromBytes([1, 2, 3, 4])).toThrow(/16 bytes/));
});
