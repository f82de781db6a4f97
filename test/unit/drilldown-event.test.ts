// Drill-down events: the kernel's struct dns_event as bpftool's plain event_pipe output shows
// it (recorded from bpftool 7.5 on 6.18: an NXDOMAIN answer fed through dns_egress and
// dns_ingress with BPF_PROG_TEST_RUN, slow_ns 0), the config the exporter writes, names.
import { describe, expect, it } from 'vitest';
import { EventPipeTextParser, type EventPipeRecord } from '../../src/bpf/bpftool.js';
import {
  DNS_EVENT_SIZE,
  decodeDnsEvent,
  decodeQname,
  encodeEventConfig,
  monotonicToUnixSeconds,
  qtypeName,
  rcodeName,
} from '../../src/drilldown/event.js';
import { diagnose, toLookup } from '../../src/drilldown/lookup.js';

const RECORDED = `== @4354.783861044 CPU: 1 index: 1 =====
01 00 00 00 00 00 00 00  fe 2c 30 ed f5 03 00 00
fe 2c 30 ed f5 03 00 00  54 bf 47 ed f5 03 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 ff ff 0a 60 00 0a  00 00 00 00 00 00 00 00
00 00 ff ff 0a f4 00 05  40 9c 34 12 01 00 00 00
03 00 00 11 00 00 00 00  00 ff 00 00 00 00 00 00
00 00 00 00 00 00 00 00  03 61 70 69 07 65 78 61
6d 70 6c 65 03 6f 72 67  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00  00 00 00 00
`;

function parse(text: string, sampleBytes?: number): EventPipeRecord[] {
  const out: EventPipeRecord[] = [];
  const p = new EventPipeTextParser((r) => out.push(r), sampleBytes);
  for (const line of text.split('\n')) p.line(line);
  p.end();
  return out;
}

function recordedSample(): Uint8Array {
  const [r] = parse(RECORDED);
  if (r?.kind !== 'sample') throw new Error('no sample in the recording');
  return r.data;
}

describe('bpftool event_pipe plain output', () => {
  it('parses a recorded sample: header, 16-byte hex lines, padded to size + 4', () => {
    const records = parse(RECORDED);
    expect(records).toHaveLength(1);
    const r = records[0]!;
    expect(r).toMatchObject({ kind: 'sample', cpu: 1, index: 1 });
    if (r.kind === 'sample') expect(r.data.length).toBe(DNS_EVENT_SIZE + 4);
  });

  it('emits a sample as soon as its short last line arrives, without waiting for the next', () => {
    const out: EventPipeRecord[] = [];
    const p = new EventPipeTextParser((r) => out.push(r));
    const lines = RECORDED.split('\n');
    for (const l of lines) p.line(l);
    expect(out).toHaveLength(1); // no end() needed
  });

  it.each([
    [
      'two samples and a loss',
      `== @1.000000001 CPU: 0 index: 0 =====\n01 02  03\n== @1.2 CPU: 1 index: 1 =====\n04\nlost 7 events\n`,
      [
        { kind: 'sample', cpu: 0, index: 0, data: Uint8Array.from([1, 2, 3]) },
        { kind: 'sample', cpu: 1, index: 1, data: Uint8Array.from([4]) },
        { kind: 'lost', count: 7 },
      ],
    ],
    [
      'a full last line ends at the next header',
      `== @1.1 CPU: 0 index: 0 =====\n00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f\n== @1.2 CPU: 0 index: 0 =====\nff\n`,
      [
        { kind: 'sample', cpu: 0, index: 0, data: Uint8Array.from({ length: 16 }, (_, i) => i) },
        { kind: 'sample', cpu: 0, index: 0, data: Uint8Array.from([255]) },
      ],
    ],
    [
      'noise and a stray hex line are ignored',
      `Stopping...\nab cd\nunknown event type=3 size=8\n`,
      [],
    ],
  ])('%s', (_name, text, want) => {
    expect(parse(text)).toEqual(want);
  });

  it('ends a sample at sampleBytes when its size is a multiple of 16', () => {
    const out: EventPipeRecord[] = [];
    const p = new EventPipeTextParser((r) => out.push(r), 16);
    p.line('== @1.1 CPU: 0 index: 0 =====');
    p.line('00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f');
    expect(out).toHaveLength(1);
  });
});

describe('struct dns_event', () => {
  it('decodes the recorded event', () => {
    const e = decodeDnsEvent(recordedSample());
    expect(e).toMatchObject({
      cgroupId: 1n,
      kind: 'slow',
      role: 'client',
      rcode: 3,
      cause: 'unanswered',
      serverAddr: '10.96.0.10',
      clientAddr: '10.244.0.5',
      port: 40000,
      id: 0x1234,
      qtype: 1,
      retransmits: 0,
      proto: 'udp',
      connectedSocket: false, // test runs have no socket
      serverRcode: undefined,
      serverCgroupId: 0n,
      name: 'api.example.org',
      nameTruncated: false,
    });
    expect(e.endNs - e.firstNs).toBe(0x3f5ed47bf54n - 0x3f5ed302cfen);
    expect(diagnose(e)).toBe('slow_answer');
  });

  it('refuses a short sample, naming the layout', () => {
    expect(() => decodeDnsEvent(new Uint8Array(100))).toThrow(/100 bytes, need 232/);
  });

  it('turns kernel times into wall-clock times', () => {
    const e = decodeDnsEvent(recordedSample());
    const l = toLookup(e, 1, {
      monotonicNs: () => e.endNs + 2_000_000_000n,
      unixMs: () => 1_700_000_010_000,
    });
    expect(l.atUnixSeconds).toBeCloseTo(1_700_000_008, 6);
    expect(l.latencySeconds).toBeCloseTo(Number(e.endNs - e.firstNs) / 1e9, 9);
    expect(l).toMatchObject({
      qtype: 'A',
      qtypeClass: 'A',
      rcode: 'NXDOMAIN',
      socket: 'unconnected',
    });
    expect(monotonicToUnixSeconds(0n, 1_000_000_000n, 5000)).toBe(4);
  });
});

const wire = (...labels: (string | number[])[]) =>
  Uint8Array.from(
    labels.flatMap((l) => {
      const b = typeof l === 'string' ? [...Buffer.from(l)] : l;
      return [b.length, ...b];
    }),
  );

describe('decodeQname', () => {
  it.each([
    ['a name', Uint8Array.from([...wire('api', 'example', 'org'), 0]), 'api.example.org', false],
    ['the root', Uint8Array.from([0]), '.', false],
    [
      'a dot and a backslash in a label',
      Uint8Array.from([...wire('a.b\\c'), 0]),
      'a\\.b\\\\c',
      false,
    ],
    [
      'markup and control bytes',
      Uint8Array.from([...wire('<b>', [0, 10]), 0]),
      '\\060b\\062.\\000\\010',
      false,
    ],
    ['a name cut at QNAME_LEN', wire('api', 'exam'), 'api.exam', true],
    ['a cut label', Uint8Array.from([3, 0x61, 0x70]), 'ap', true],
    ['a compression pointer', Uint8Array.from([0xc0, 12]), '', true],
  ])('%s', (_n, bytes, name, truncated) => {
    expect(decodeQname(bytes)).toEqual({ name, truncated });
  });
});

describe('names and config', () => {
  it.each([
    [1, 'A'],
    [28, 'AAAA'],
    [65, 'HTTPS'],
    [99, 'TYPE99'],
  ])('qtype %i is %s', (q, n) => expect(qtypeName(q)).toBe(n));

  it.each([
    [0, 'NOERROR'],
    [2, 'SERVFAIL'],
    [3, 'NXDOMAIN'],
    [9, 'RCODE9'],
  ])('rcode %i is %s', (r, n) => expect(rcodeName(r)).toBe(n));

  it('encodes struct dns_event_config as the kernel reads it', () => {
    const b = encodeEventConfig({
      slowNs: 1_000_000_000n,
      ratePerSecond: 20,
      burst: 40,
      kinds: ['slow', 'timeout', 'nxdomain'],
      serverJoin: true,
    });
    expect(Buffer.from(b).toString('hex')).toBe(
      '00ca9a3b00000000' + '14000000' + '28000000' + '15000000' + '01000000',
    );
  });
});
