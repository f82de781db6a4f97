// Parsers of bpftool 7.5 output, against fixtures recorded by test/fixtures/bpftool/record.sh.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  formatBatchLine,
  hintFor,
  jsonErrorText,
  parseAutoattachFallbacks,
  parseBatch,
  parseBtfMapSpecs,
  parseBtfStruct,
  parseCgroupShow,
  parseLinkShow,
  parseMapDumpHex,
  parseMapDumpPlain,
  parseMapShow,
  parseProgRun,
  parseProgShow,
  parseVersion,
  progRunStats,
  tooOldMessage,
  shortAttachType,
  sumPerCpu,
  type MapEntry,
} from '../../src/bpf/bpftool-output.js';
import { parseJsonBigInt } from '../../src/bpf/json-bigint.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/bpftool/${name}`, import.meta.url), 'utf8');

describe('version', () => {
  it('parses bpftool -j version', () => {
    expect(parseVersion(fixture('version.json'))).toEqual({
      version: '7.5.0',
      libbpf: '1.5',
      features: { libbfd: false, llvm: false, skeletons: false, bootstrap: false },
    });
  });

  it.each([
    ['7.5.0', '7.2.0', 1],
    ['7.1.0', '7.2.0', -1],
    ['7.2', '7.2.0', 0],
    ['7.10.0', '7.9.1', 1],
    ['6.8.0', '7.2.0', -1],
  ])('compareVersions(%s, %s) = %d', (a, b, want) => {
    expect(compareVersions(a, b)).toBe(want);
  });

  it.each([
    [
      '7.1.0',
      'bpftool 7.1.0 is too old: need ≥ 7.2 for autoattach; on Debian 12: apt-get install -t bookworm-backports bpftool',
    ],
    ['7.2.0', undefined],
    ['7.5.0', undefined],
  ])('tooOldMessage(%s, 7.2.0)', (version, want) => {
    expect(tooOldMessage(version, '7.2.0', 'autoattach')).toBe(want);
  });
});

describe('show', () => {
  it('parses prog show pinned (one object) without stats', () => {
    const [p, ...rest] = parseProgShow(fixture('prog-show-pinned.json'));
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ type: 'cgroup_skb', name: 'dns_egress' });
    expect(p!.id).toBeGreaterThan(0);
    expect(p!.map_ids.length).toBeGreaterThan(0);
    expect(progRunStats(p!)).toBeUndefined();
  });

  it('reads run_time_ns/run_cnt recorded with kernel.bpf_stats_enabled=1', () => {
    const [p] = parseProgShow(fixture('prog-show-pinned-stats.json'));
    const stats = progRunStats(p!);
    expect(stats).toBeDefined();
    expect(Number(stats!.run_cnt)).toBeGreaterThan(0);
    expect(Number(stats!.run_time_ns)).toBeGreaterThan(0);
  });

  it.each([
    ['prog-show-missing.json', parseProgShow, /prog show: bpf obj get .*No such file or directory/],
    ['prog-show-link.json', parseProgShow, /prog show: incorrect object type: link/],
    ['link-show-prog.json', parseLinkShow, /link show: incorrect object type: prog/],
  ] as const)('%s: the -j error becomes an exception', (file, parse, error) => {
    expect(() => parse(fixture(file))).toThrow(error);
  });

  it('parses link show pinned (which exits 255 although it printed the link)', () => {
    expect(parseLinkShow(fixture('link-show-pinned.json'))).toEqual([
      expect.objectContaining({
        type: 'raw_tracepoint',
        tp_name: 'kfree_skb',
        id: expect.any(Number),
      }),
    ]);
  });

  it('parses map show pinned', () => {
    expect(parseMapShow(fixture('map-show-pinned.json'))).toEqual([
      expect.objectContaining({
        type: 'hash',
        name: 'dns_stats',
        bytes_key: 16,
        max_entries: 12288,
      }),
    ]);
  });

  it('parses cgroup show with both programs attached', () => {
    const rows = parseCgroupShow(fixture('cgroup-show.json'));
    expect(rows.map((r) => [r.name, r.attach_type, r.attach_flags]).sort()).toEqual([
      ['dns_egress', 'cgroup_inet_egress', 'multi'],
      ['dns_ingress', 'cgroup_inet_ingress', 'multi'],
    ]);
    expect(rows.map((r) => shortAttachType(r.attach_type)).sort()).toEqual(['egress', 'ingress']);
  });

  it('parses the empty output of cgroup show with nothing attached', () => {
    expect(fixture('cgroup-show-empty.json').trim()).toBe('');
    expect(parseCgroupShow(fixture('cgroup-show-empty.json'))).toEqual([]);
  });

  it('turns the error of cgroup show on a missing cgroup into an exception', () => {
    expect(() => parseCgroupShow(fixture('cgroup-show-missing.json'))).toThrow(/can't open cgroup/);
  });
});

describe('map dump', () => {
  it('parses a plain dump of a hash map with struct keys/values, arrays and u64 > 2^53', () => {
    const rows = parseMapDumpPlain(fixture('map-dump-plain-stats.txt'));
    expect(rows.length).toBeGreaterThan(0);
    // The synthetic row record.sh adds: every u64 beyond 2^53 exact.
    const big = rows.find(
      (r) => (r.key as Record<string, unknown>).cgroup_id === 18446744073709551615n,
    );
    expect(big).toBeDefined();
    expect(big!.value).toMatchObject({
      queries: 9007199254740993n,
      retransmits: 1,
      responses: [2, 0, 0, 0, 0],
      latency_count: 2,
      latency_sum_ns: 18446744073709551614n,
    });
    expect((big!.key as Record<string, unknown>).pad).toEqual([0, 0, 0, 0, 0, 0]);
    for (const r of rows) expect((r.value as { latency: unknown[] }).latency).toHaveLength(89);
  });

  it('parses a plain dump of a per-CPU array as values per CPU, and sums them', () => {
    const rows = parseMapDumpPlain(fixture('map-dump-plain-health.txt'));
    expect(rows).toHaveLength(16);
    expect(rows[0]!.values?.map((v) => v.cpu)).toEqual([0, 1]);
    const summed = sumPerCpu(rows);
    expect(summed.map((r) => r.key)).toEqual([...Array(16).keys()]);
    for (const [i, r] of summed.entries()) {
      const perCpu = rows[i]!.values!.reduce((a, v) => a + Number(v.value), 0);
      expect(r.value).toBe(perCpu);
    }
  });

  it('parses empty dumps and the keyless rows of data sections', () => {
    expect(parseMapDumpPlain('[]\n')).toEqual([]);
    const bss = fixture('map-dump-plain-datasec-bss.txt');
    const [row] = parseMapDumpPlain(bss);
    expect(row!.key).toBeNull();
    expect(Object.keys(row!.value as object)).toEqual(['.bss']);
  });

  it('says "no BTF" for the hex text bpftool prints for maps without BTF', () => {
    const noBtf = fixture('map-dump-plain-nobtf.txt');
    expect(() => parseMapDumpPlain(noBtf, 'map dump X')).toThrow(
      /map dump X: .*no key\/value BTF\?.*mapDumpBytes/,
    );
  });

  it('reads the hex bpftool prints for a per-CPU map without BTF', () => {
    expect(parseMapDumpHex(fixture('map-dump-plain-nobtf.txt'))).toEqual([
      {
        key: Buffer.from([1, 0, 0, 0]),
        values: [
          { cpu: 0, value: Buffer.from([42, 0, 0, 0, 0, 0, 0, 0]) },
          { cpu: 1, value: Buffer.from([42, 0, 0, 0, 0, 0, 0, 0]) },
        ],
      },
    ]);
  });

  it.each([
    [
      'plain',
      'map-dump-missing.stderr',
      /^Error: bpf obj get \(.*no_such_map\): No such file or directory/,
    ],
    ['-j', 'map-dump-missing.json', /^bpf obj get \(.*no_such_map\): No such file or directory$/],
  ])('a dump of a missing pin (%s) says so', (_mode, file, want) => {
    const text = fixture(file);
    const error = jsonErrorText(file.endsWith('.json') ? parseJsonBigInt(text) : undefined) ?? text;
    expect(error).toMatch(want);
  });

  it.each<[string, MapEntry[], unknown]>([
    [
      'numbers',
      [
        {
          key: 1,
          values: [
            { cpu: 0, value: 2 },
            { cpu: 1, value: 3 },
          ],
        },
      ],
      5,
    ],
    [
      'past 2^53 becomes bigint',
      [
        {
          key: 1,
          values: [
            { cpu: 0, value: 2 ** 53 },
            { cpu: 1, value: 2 ** 53 },
          ],
        },
      ],
      2n ** 54n,
    ],
    [
      'bigint + number',
      [
        {
          key: 1,
          values: [
            { cpu: 0, value: 2n ** 64n },
            { cpu: 1, value: 1 },
          ],
        },
      ],
      2n ** 64n + 1n,
    ],
    [
      'structs and arrays',
      [
        {
          key: 0,
          values: [
            { cpu: 0, value: { a: 1, b: [1, 2] } },
            { cpu: 1, value: { a: 2, b: [3, 4] } },
          ],
        },
      ],
      { a: 3, b: [4, 6] },
    ],
    ['not per-CPU', [{ key: 0, value: { a: 1 } }], { a: 1 }],
  ])('sumPerCpu: %s', (_name, entries, want) => {
    expect(sumPerCpu(entries)[0]!.value).toEqual(want);
  });
});

describe('prog run', () => {
  it('parses -j prog run', () => {
    const r = parseProgRun(fixture('prog-run.json'));
    expect(r).toEqual({ retval: expect.any(Number), duration: expect.any(Number) });
    expect(r.duration).toBeGreaterThan(0);
  });

  it.each([
    ['prog-run.txt', /^Return value: \d+, duration: \d+ns\n$/],
    ['prog-run-repeat.txt', /^Return value: \d+, duration \(average\): \d+ns\n$/],
    ['prog-run-short.stderr', /^Error: failed to run program: Invalid argument\n$/],
  ])('documents the text of %s (we use -j instead)', (file, shape) => {
    expect(fixture(file)).toMatch(shape);
  });
});

describe('loadall', () => {
  it('lists the programs autoattach silently pinned instead of attaching', () => {
    expect(parseAutoattachFallbacks(fixture('loadall-autoattach.stderr')).sort()).toEqual(
      expect.arrayContaining(['dns_egress', 'dns_ingress']),
    );
    expect(parseAutoattachFallbacks(fixture('loadall.stderr'))).toEqual([]);
  });

  // Sizes per bpf/dns.h; types and max_entries as bpf/dns.bpf.o declared them when recorded.
  it.each([
    ['dns_pending', 'hash', 32, 160, 16384],
    ['dns_retry_index', 'hash', 24, 32, 16384],
    ['dns_stats', 'hash', 16, 792, 12288],
    ['dns_health', 'percpu_array', 4, 8, 16],
  ])('reads map %s of the object from its BTF', (name, type, keySize, valueSize, maxEntries) => {
    const specs = parseBtfMapSpecs(fixture('btf-dump-dns.json'));
    expect(specs.find((s) => s.name === name)).toEqual({
      name,
      type,
      keySize,
      valueSize,
      maxEntries,
    });
  });

  it('agrees with the sizes the kernel reports for the loaded map', () => {
    const spec = parseBtfMapSpecs(fixture('btf-dump-dns.json')).find((s) => s.name === 'dns_stats');
    const [info] = parseMapShow(fixture('map-show-pinned.json'));
    expect([spec!.keySize, spec!.valueSize, spec!.maxEntries, spec!.type]).toEqual([
      info!.bytes_key,
      info!.bytes_value,
      info!.max_entries,
      info!.type,
    ]);
  });

  it('finds struct layouts in BTF', () => {
    const s = parseBtfStruct(fixture('btf-dump-dns.json'), 'dns_stats_key');
    expect(s).toEqual({
      size: 16,
      members: {
        cgroup_id: { offset: 0, size: 8 },
        role: { offset: 8, size: 1 },
        qtype: { offset: 9, size: 1 },
        pad: { offset: 10, size: 6 },
      },
    });
    expect(parseBtfStruct(fixture('btf-dump-dns.json'), 'no_such_struct')).toBeUndefined();
  });
});

describe('batch', () => {
  it('parses a successful -j batch', () => {
    const rows = parseBatch(fixture('batch-ok.json'));
    expect(rows.map((r) => r.command.slice(0, 2))).toEqual([
      ['prog', 'run'],
      ['map', 'update'],
      ['prog', 'run'],
    ]);
    expect(rows[1]!.output).toBeNull();
    expect(rows[2]!.output).toEqual({ retval: expect.any(Number), duration: expect.any(Number) });
  });

  it('ends at the failing command, whose output is the error (exit 255)', () => {
    const rows = parseBatch(fixture('batch-error.json'));
    expect(rows).toHaveLength(2); // the third command never ran
    expect(jsonErrorText(rows[0]!.output)).toBeUndefined();
    expect(jsonErrorText(rows[1]!.output)).toMatch(/no_such_prog\): No such file or directory/);
    const usage = parseBatch(fixture('batch-usage-error.json'));
    expect(usage.map((r) => r.command)).toEqual([expect.any(Array), ['prog', 'bogus']]);
    expect(usage[1]!.output).toBeNull();
  });

  it('documents the plain batch: "processed N commands" only on success', () => {
    expect(fixture('batch-ok.txt')).toMatch(/processed 3 commands\n$/);
    expect(fixture('batch-error.txt')).not.toMatch(/processed/);
    expect(fixture('batch-error.stderr')).toMatch(/^Error: bpf obj get/);
  });

  it.each([
    [
      ['prog', 'run', 'pinned', '/sys/fs/bpf/x/p', 'data_in', '/tmp/a b'],
      'prog run pinned /sys/fs/bpf/x/p data_in "/tmp/a b"',
    ],
    [['map', 'show', 'pinned', 'say "hi"'], `map show pinned 'say "hi"'`],
    [['x', ''], 'x ""'],
  ])('formatBatchLine(%j)', (args, line) => {
    expect(formatBatchLine(args)).toBe(line);
  });

  it.each([
    [['map', 'show', 'pinned', '/a#b'], /'#'/],
    [['x', 'a\nb'], /line break/],
    [['x', `"'`], /both kinds of quotes/],
    [[], /empty command/],
    [Array(5000).fill('00'), /at most 4095/],
  ])('formatBatchLine rejects %#', (args, error) => {
    expect(() => formatBatchLine(args)).toThrow(error);
  });
});

describe('hints', () => {
  it.each([
    ['loadall-existing-pins.stderr', ['prog', 'loadall'], /already pinned/],
    ['loadall-reuse-pinmaps-same-dir.stderr', ['prog', 'loadall'], /already pinned/],
    ['loadall-reuse-unknown-map.stderr', ['prog', 'loadall'], /no map of that name/],
    ['loadall-missing-parent.stderr', ['prog', 'loadall'], /parent directories/],
    ['loadall-missing-object.stderr', ['prog', 'loadall'], /does not exist/],
    ['cgroup-attach-twice.stderr', ['cgroup', 'attach'], /already be attached/],
    ['cgroup-detach-not-attached.stderr', ['cgroup', 'detach'], /not attached/],
    ['cgroup-show-missing.json', ['-j', 'cgroup', 'show'], /cgroup2/],
    ['map-dump-missing.stderr', ['map', 'dump'], /nothing is pinned/],
    ['prog-show-link.json', ['-j', 'prog', 'show'], /is a BPF link/],
    ['link-show-prog.json', ['-j', 'link', 'show'], /is a program, not a link/],
    ['prog-run-short.stderr', ['prog', 'run'], /14-byte Ethernet header/],
  ])('%s', (file, args, hint) => {
    expect(hintFor(args, fixture(file))).toMatch(hint);
  });

  it('has no hint for output it does not know', () => {
    expect(hintFor(['map', 'dump'], 'Error: something new')).toBeUndefined();
  });
});
