import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJsonBigInt } from '../../src/bpf/json-bigint.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/bpftool/${name}`, import.meta.url), 'utf8');

describe('parseJsonBigInt', () => {
  it.each([
    ['9007199254740991', 9007199254740991], // 2^53 - 1: still a number
    ['9007199254740992', 9007199254740992n], // 2^53: not a safe integer
    ['9007199254740993', 9007199254740993n], // JSON.parse would give ...992
    ['18446744073709551615', 18446744073709551615n], // u64 max
    ['-9223372036854775808', -9223372036854775808n], // s64 min
    ['1234567890123456', 1234567890123456], // 16 digits, safe: slow path, still a number
    ['0', 0],
    ['-0', -0],
    ['1.5e3', 1500],
    ['12345678901234567.5', 12345678901234568], // not an integer: a float, as JSON.parse
    ['1E400', Infinity],
  ])('number %s', (text, want) => {
    expect(parseJsonBigInt(`[${text}, 12345678901234567890]`)).toEqual([
      want,
      12345678901234567890n,
    ]);
  });

  it.each([
    [
      'digits inside a string stay text',
      '{"s": "12345678901234567890", "n": 12345678901234567890}',
      { s: '12345678901234567890', n: 12345678901234567890n },
    ],
    [
      'escaped quote does not end a string',
      '{"a\\"b": "x\\"12345678901234567890\\"", "n": 1}',
      { 'a"b': 'x"12345678901234567890"', n: 1 },
    ],
    [
      'unicode and control escapes',
      '["\\u00e9\\n\\t\\\\", 99999999999999999]',
      ['é\n\t\\', 99999999999999999n],
    ],
    [
      'nesting and literals',
      ' { "a" : [ true , false , null , { } , [ ] ] , "b":18446744073709551615 } ',
      { a: [true, false, null, {}, []], b: 18446744073709551615n },
    ],
    [
      '__proto__ is a plain key',
      '{"__proto__": 1, "n": 18446744073709551615}',
      Object.defineProperty({ n: 18446744073709551615n }, '__proto__', {
        value: 1,
        enumerable: true,
        writable: true,
        configurable: true,
      }),
    ],
  ])('%s', (_name, text, want) => {
    expect(parseJsonBigInt(text)).toEqual(want);
  });

  it('gives JSON.parse results for text without long numbers (fast path)', () => {
    const text = fixture('map-dump-plain-health.txt');
    expect(parseJsonBigInt(text)).toEqual(JSON.parse(text));
  });

  it('agrees with JSON.parse on a recorded dump, except for the digits JSON.parse loses', () => {
    const text = fixture('map-dump-plain-stats.txt');
    const exact = parseJsonBigInt(text);
    const lossy = JSON.parse(text) as unknown;
    const normalise = (v: unknown): unknown =>
      JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)));
    expect(normalise(exact)).toEqual(lossy);
    expect(
      JSON.stringify(exact, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)),
    ).toContain('"18446744073709551614n"');
  });

  it.each([
    ['[12345678901234567890,', /unexpected end of input/],
    ['[1,], 12345678901234567890', /unexpected character at offset 3/],
    ['{"a" 1, "b": 12345678901234567890}', /expected ':'/],
    ['[01, 12345678901234567890]', /leading zero/],
    ['[1.e5, 12345678901234567890]', /digit after the decimal point/],
    ['["abc, 12345678901234567890]', /unterminated string/],
    ['["\\x", 12345678901234567890]', /bad escape/],
    ['[1] x 12345678901234567890', /unexpected text after the JSON value/],
    ['{"a": 12345678901234567890', /expected ',' or '}'/],
  ])('rejects %j', (text, error) => {
    expect(() => parseJsonBigInt(text)).toThrow(error);
  });

  it('rejects bad JSON on the fast path too', () => {
    expect(() => parseJsonBigInt('[1,]')).toThrow(SyntaxError);
  });
});
