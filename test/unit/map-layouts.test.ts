/**
 * The TypeScript layouts of src/bpf/map-layouts.ts against the C headers they mirror (BTF of
 * bpf/dns.h and bpf/drops.h compiled on the spot) and against the map sizes declared in the
 * objects the exporter loads; and the plain-mode hex dump parser against bpftool's formats.
 */
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';

import {
  isStaleBatchErrno,
  parseBtfMapSpecs,
  parseBtfStruct,
  parseMapDumpHex,
  splitPlainDumps,
} from '../../src/bpf/bpftool-output.js';
import {
  decodeBytes,
  decodeRawEntries,
  MAP_LAYOUTS,
  memberOffsets,
  sizeAndAlign,
  STRUCTS,
  type StructName,
} from '../../src/bpf/map-layouts.js';
import { parseIteratorRecords } from '../../src/bpf/map-reader.js';
import { headerBtf } from '../support/header-btf.js';

const NAMES = Object.keys(STRUCTS) as StructName[];

describe('map layouts', () => {
  let btf: string;
  beforeAll(async () => {
    btf = await headerBtf(NAMES);
  }, 60_000);

  it.each(NAMES)('struct %s has the size and member offsets of the C header', (name) => {
    const c = parseBtfStruct(btf, name);
    expect(c, `struct ${name} not in the headers' BTF`).toBeDefined();
    expect(sizeAndAlign({ struct: STRUCTS[name] }).size).toBe(c!.size);
    expect(memberOffsets(STRUCTS[name])).toEqual(c!.members);
  });

  it.each(['dns.bpf.o', 'drops.bpf.o', 'conntrack_fexit.bpf.o'])(
    'every map of %s that the exporter reads has the declared key and value sizes, and no key/value BTF',
    async (file) => {
      const obj = path.resolve('bpf/dist', file);
      const r = await execa('bpftool', ['-j', 'btf', 'dump', 'file', obj], { reject: false });
      expect(r.exitCode, `bpftool btf dump (install bpftool >= 7.2): ${r.stderr}`).toBe(0);
      const specs = parseBtfMapSpecs(r.stdout);
      expect(specs.length).toBeGreaterThan(0);
      for (const spec of specs) {
        // A map declared with __type() makes bpftool fetch its BTF by ID: CAP_SYS_ADMIN.
        expect(spec.keySize, `${file} ${spec.name}: declare it with key_size`).toBeDefined();
        const layout = MAP_LAYOUTS[spec.name];
        if (!layout) continue;
        expect(sizeAndAlign(layout.key).size, `${spec.name} key`).toBe(spec.keySize);
        expect(sizeAndAlign(layout.value).size, `${spec.name} value`).toBe(spec.valueSize);
      }
    },
  );
});

describe('parseMapDumpHex', () => {
  // Recorded from bpftool 7.5 (maps without key/value BTF).
  const HASH = [
    'key:',
    '01 00 00 00 00 00 00 00  01 02 00 00 00 00 00 00',
    'value:',
    '00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f',
    '10 11',
    'key:',
    '02 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00',
    'value:',
    '<no entry>',
    'Found 2 elements',
    '',
  ].join('\n');
  const SMALL = 'key: 01 00 00 00  value: 02 00 00 00 00 00 00 01\nFound 1 element\n';
  const PERCPU = [
    'key:',
    '00 00 00 00',
    'value (CPU 00): 05 00 00 00 00 00 00 00',
    'value (CPU 01): 07 00 00 00 00 00 00 00',
    'key:',
    '01 00 00 00',
    'value (CPU 00): 00 00 00 00 00 00 00 80',
    'value (CPU 01): 00 00 00 00 00 00 00 80',
    'Found 2 elements',
    '',
  ].join('\n');

  it('reads keys and values across lines and leaves out entries deleted mid-dump', () => {
    const rows = parseMapDumpHex(HASH);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key).toEqual(Buffer.from('01000000000000000102000000000000', 'hex'));
    expect(rows[0]!.value).toEqual(Buffer.from([...Array(18).keys()]));
  });

  it('reads the one-line form of small maps', () => {
    const [row] = parseMapDumpHex(SMALL);
    expect(row!.key).toEqual(Buffer.from([1, 0, 0, 0]));
    expect(row!.value).toEqual(Buffer.from([2, 0, 0, 0, 0, 0, 0, 1]));
  });

  it('reads one value per CPU', () => {
    const rows = parseMapDumpHex(PERCPU);
    expect(rows.map((r) => r.values?.map((v) => v.cpu))).toEqual([
      [0, 1],
      [0, 1],
    ]);
    const decoded = decodeRawEntries(rows, 'dns_health', 'x');
    expect(decoded[0]!.values!.map((v) => v.value)).toEqual([5, 7]);
    // Beyond 2^53 a u64 is a bigint.
    expect(decoded[1]!.values![0]!.value).toBe(1n << 63n);
  });

  it.each([
    ['an empty dump', 'Found 0 elements\n', 0],
    ['no trailer', 'key: 01 00 00 00  value: 02 00 00 00\n', 'no "Found N elements"'],
    ['a stray line first', 'Error: something\nFound 0 elements\n', 'unexpected line'],
  ])('%s', (_name, text, want) => {
    if (typeof want === 'number') expect(parseMapDumpHex(text)).toHaveLength(want);
    else expect(() => parseMapDumpHex(text, 'map dump X')).toThrow(want);
  });
});

describe('batched plain dumps', () => {
  it('splits after each "Found N elements" line, empty dumps included', () => {
    const one = 'key: 01 00 00 00  value: 02 00 00 00\nFound 1 element\n';
    const empty = 'Found 0 elements\n';
    const parts = splitPlainDumps(one + empty + one);
    expect(parts).toEqual([one.trimEnd(), empty.trimEnd(), one.trimEnd()]);
    expect(parts.map((p) => parseMapDumpHex(p).length)).toEqual([1, 0, 1]);
    expect(splitPlainDumps('[{"key": 1}]')).toEqual([]);
  });

  it.each([
    ['Error: reading batch file failed: Bad file descriptor\n', true],
    ['Error: reading batch file failed: Input/output error', false],
    ['Error: bpf obj get (/x): No such file or directory', false],
  ])('isStaleBatchErrno(%j) = %s', (text, stale) => {
    expect(isStaleBatchErrno(text)).toBe(stale);
  });
});

describe('decoding with the layouts', () => {
  it('gives a dns_stats row the shape of the BTF-formatted view', () => {
    const key = Buffer.alloc(16);
    key.writeBigUInt64LE(77n, 0);
    key[8] = 1;
    key[9] = 2;
    const value = Buffer.alloc(824);
    value.writeBigUInt64LE(3n, 0); // queries
    value.writeBigUInt64LE(9n, 8 * 13); // latency_sum_ns
    value.writeBigUInt64LE(2n, 8 * 14 + 8 * 88); // latency[88]
    const [row] = decodeRawEntries([{ key, value }], 'dns_stats', 'x');
    expect(row!.key).toEqual({ cgroup_id: 77, role: 1, qtype: 2, pad: [0, 0, 0, 0, 0, 0] });
    const v = row!.value as Record<string, unknown>;
    expect(v.queries).toBe(3);
    expect(v.latency_sum_ns).toBe(9);
    expect((v.latency as number[])[88]).toBe(2);
    expect(v.retransmits).toEqual([0, 0, 0]);
  });

  it('reads char arrays up to their NUL as UTF-8', () => {
    const b = Buffer.alloc(512);
    b.write('kube-system', 0);
    b.write('coredns-é', 64);
    expect(decodeBytes(b, MAP_LAYOUTS.dns_cgroup_names!.value, 'x')).toEqual({
      namespace: 'kube-system',
      pod: 'coredns-é',
      workload_kind: '',
      workload: '',
    });
  });

  it('names the map and the fix when a value has another size', () => {
    expect(() =>
      decodeRawEntries([{ key: Buffer.alloc(16), value: Buffer.alloc(8) }], 'dns_stats', 'dump P'),
    ).toThrow(/dump P entry 0 value: 8 bytes where the layout has 824 .*--reset-maps/);
  });

  it('keeps the bytes of a map it has no layout for', () => {
    const [row] = decodeRawEntries(
      [{ key: Buffer.from([1, 2]), value: Buffer.from([3]) }],
      'unknown',
      'x',
    );
    expect(row).toEqual({ key: [1, 2], value: [3] });
  });
});

describe('parseIteratorRecords (pinned map iterators)', () => {
  it('splits key and value bytes entry after entry', () => {
    const buf = Buffer.from([1, 2, 10, 11, 12, 3, 4, 13, 14, 15]);
    expect(parseIteratorRecords(buf, 2, 3, 'it')).toEqual([
      { key: Buffer.from([1, 2]), value: Buffer.from([10, 11, 12]) },
      { key: Buffer.from([3, 4]), value: Buffer.from([13, 14, 15]) },
    ]);
    expect(parseIteratorRecords(Buffer.alloc(0), 2, 3, 'it')).toEqual([]);
  });

  it('refuses a length that is not whole entries, naming the iterator', () => {
    expect(() => parseIteratorRecords(Buffer.alloc(7), 2, 3, 'iterator /p')).toThrow(
      /iterator \/p: 7 bytes is not a whole number of 5-byte entries/,
    );
  });
});
