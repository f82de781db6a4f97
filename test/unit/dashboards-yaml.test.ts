// The small YAML writer behind the rule files: what it quotes, how it writes blocks.
import { describe, expect, it } from 'vitest';
import { toYaml } from '../../dashboards/rules/yaml.js';

describe('toYaml', () => {
  it.each([
    ['a name stays plain', { alert: 'DnsraceDNSStalls' }, 'alert: DnsraceDNSStalls\n'],
    ['a record name stays plain', { record: 'ns:x:rate5m' }, 'record: ns:x:rate5m\n'],
    ['a duration is quoted', { for: '10m' }, 'for: "10m"\n'],
    ['a number-like string is quoted', { quantile: '0.99' }, 'quantile: "0.99"\n'],
    ['a YAML word is quoted', { v: 'yes' }, 'v: "yes"\n'],
    ['PromQL with quotes is quoted', { expr: 'x{a="b"} > 0' }, 'expr: "x{a=\\"b\\"} > 0"\n'],
    ['a number stays a number', { n: 1 }, 'n: 1\n'],
    ['empty list and map', { a: [], b: {} }, 'a: []\nb: {}\n'],
    ['multi-line text becomes a literal block', { expr: 'a\nor\nb' }, 'expr: |-\n  a\n  or\n  b\n'],
    [
      'a list of maps',
      { rules: [{ record: 'r', expr: 'x' }] },
      'rules:\n  - record: r\n    expr: x\n',
    ],
    [
      'a block inside a list',
      { rules: [{ expr: 'a\nb' }] },
      'rules:\n  - expr: |-\n      a\n      b\n',
    ],
  ])('%s', (_what, value, yaml) => {
    expect(toYaml(value)).toBe(yaml);
  });

  it('puts a comment first', () => {
    expect(toYaml({ a: 'b' }, 'one\ntwo')).toBe('# one\n# two\na: b\n');
  });

  it('refuses trailing blanks in a block, which YAML would keep', () => {
    expect(() => toYaml({ expr: 'a \nb' })).toThrow(/trailing blank/);
  });
});
