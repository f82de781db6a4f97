// Parsers of /proc/net/stat/nf_conntrack and conntrack-tools output, against files recorded on
// this machine and hand-written ones in older kernels' formats (test/fixtures/conntrack/README.md).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  parseConntrackCount,
  parseConntrackS,
  parseProcStat,
  type ConntrackStats,
} from '../../src/conntrack/index.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/conntrack/${name}`, import.meta.url), 'utf8');

const zeros = (...names: string[]): Record<string, number> =>
  Object.fromEntries(names.map((n) => [n, 0]));

/** The counters every kernel from 4.19 on prints besides its own specials. */
const COMMON = [
  'found',
  'new',
  'invalid',
  'ignore',
  'delete',
  'insert',
  'insert_failed',
  'drop',
  'early_drop',
  'error',
  'expect_new',
  'expect_create',
  'expect_delete',
  'search_restart',
];

describe('parseProcStat', () => {
  it.each<[string, string, ConntrackStats]>([
    [
      '6.18 root netns (recorded, idle)',
      'proc-6.18-root-netns.txt',
      { counters: zeros(...COMMON, 'clash_resolve', 'chaintoolong'), entries: 0, cpus: 2 },
    ],
    [
      '6.18 lab node netns after the race (recorded)',
      'proc-6.18-lab-node-after-race.txt',
      {
        counters: { ...zeros(...COMMON, 'chaintoolong'), clash_resolve: 0xab + 0x77 },
        entries: 733,
        cpus: 2,
      },
    ],
    [
      '6.1 format, full table, counters near 2^32 (hand-written)',
      'proc-6.1-handwritten-full-table.txt',
      {
        counters: {
          ...zeros(...COMMON),
          clash_resolve: 2 * 0xffffffff,
          chaintoolong: 2,
          insert_failed: 5,
          drop: 3,
          early_drop: 0x30000,
          search_restart: 0x100000000,
        },
        entries: 0x3ffff,
        cpus: 2,
      },
    ],
    [
      '5.10 format: clashres, delete_list, 4 CPUs (hand-written)',
      'proc-5.10-handwritten.txt',
      {
        counters: {
          ...zeros(...COMMON, 'delete_list'),
          clash_resolve: 500 + 291 + 10,
          found: 2,
          invalid: 21,
          insert_failed: 3,
          drop: 3,
          early_drop: 1,
          search_restart: 4,
        },
        entries: 0xc21,
        cpus: 4,
      },
    ],
    [
      '4.19/5.4 format: searched, no clash_resolve (hand-written)',
      'proc-4.19-5.4-handwritten.txt',
      {
        counters: {
          ...zeros(...COMMON, 'searched', 'delete_list'),
          found: 17,
          invalid: 5,
          ignore: 4000,
          insert_failed: 53,
          drop: 7,
          early_drop: 9,
          error: 2,
          expect_new: 1,
          expect_create: 1,
          search_restart: 7,
        },
        entries: 6699,
        cpus: 2,
      },
    ],
    [
      'older format without search_restart, trailing blank (hand-written)',
      'proc-no-search-restart-handwritten.txt',
      {
        counters: {
          ...zeros(...COMMON.filter((c) => c !== 'search_restart'), 'searched', 'delete_list'),
          found: 1,
          ignore: 2,
          insert_failed: 3,
          drop: 1,
        },
        entries: 100,
        cpus: 1,
      },
    ],
  ])('%s', (_title, file, want) => {
    expect(parseProcStat(fixture(file))).toEqual(want);
  });

  it('takes entries from the first row instead of summing it over CPUs', () => {
    const s = parseProcStat('entries  drop\n0000000a 00000001\n0000000a 00000002\n');
    expect(s).toEqual({ counters: { drop: 3 }, entries: 10, cpus: 2 });
  });

  it.each([
    ['empty file', '', /empty/],
    ['header but no CPU rows', 'entries  clashres drop\n', /no CPU rows/],
    [
      'row shorter than the header',
      'entries  clashres drop\n00000001 00000002\n',
      /row 1 has 2 values, the header 3/,
    ],
    ['value that is not hex', 'entries drop\n00000001 0000000g\n', /0000000g is not hex/],
    [
      'header that is not column names',
      '00000001 00000002\n00000001 00000002\n',
      /non-name column/,
    ],
    ['column named twice (clashres is clash_resolve)', 'clashres clash_resolve\n1 2\n', /twice/],
  ])('rejects a %s', (_title, text, err) => {
    expect(() => parseProcStat(text)).toThrow(err);
  });
});

describe('parseConntrackS', () => {
  it.each<[string, string, ConntrackStats]>([
    [
      '6.18 root netns (recorded)',
      fixture('conntrack-S-6.18-root-netns.txt'),
      {
        counters: zeros(
          'found',
          'invalid',
          'insert',
          'insert_failed',
          'drop',
          'early_drop',
          'error',
          'search_restart',
          'clash_resolve',
          'chaintoolong',
        ),
        entries: undefined,
        cpus: 2,
      },
    ],
    [
      'conntrack-tools reading /proc itself prints the procfs names',
      'cpu=0\tentries=4784 clashres=2292 found=1 icmp_error=3 insert_failed=0\n' +
        'cpu=1\tentries=4784 clashres=8 found=0 icmp_error=0 insert_failed=1\n',
      {
        counters: { clash_resolve: 2300, found: 1, error: 3, insert_failed: 1 },
        entries: 4784,
        cpus: 2,
      },
    ],
  ])('%s', (_title, text, want) => {
    expect(parseConntrackS(text)).toEqual(want);
  });

  it('agrees with procfs on every counter both show (lab node, recorded back to back)', () => {
    const viaNetlink = parseConntrackS(fixture('conntrack-S-6.18-lab-node-after-race.txt'));
    const viaProcfs = parseProcStat(fixture('proc-6.18-lab-node-after-race.txt'));
    const shared = Object.keys(viaNetlink.counters).filter((k) => k in viaProcfs.counters);
    expect(shared).toEqual(
      expect.arrayContaining(['clash_resolve', 'insert_failed', 'drop', 'chaintoolong']),
    );
    for (const k of shared) expect([k, viaNetlink.counters[k]]).toEqual([k, viaProcfs.counters[k]]);
    expect(viaNetlink.counters.clash_resolve).toBe(290);
  });

  it.each([
    [
      'an error message instead of stats',
      'conntrack v1.4.6 (conntrack-tools): Operation not permitted\n',
      /no cpu= lines/,
    ],
    ['a value that is not a number', 'cpu=0 found=x\n', /cannot parse "found=x"/],
  ])('rejects %s', (_title, text, err) => {
    expect(() => parseConntrackS(text)).toThrow(err);
  });
});

describe('parseConntrackCount', () => {
  it.each([
    [fixture('conntrack-C-6.18-lab-node-after-race.txt'), 733],
    ['0\n', 0],
  ])('%j -> %d', (text, want) => {
    expect(parseConntrackCount(text)).toBe(want);
  });

  it('rejects output that is not a count', () => {
    expect(() => parseConntrackCount('conntrack v1.4.7: Operation not permitted\n')).toThrow(
      /not a count/,
    );
  });
});
