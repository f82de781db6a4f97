// The kernel-matrix lane's pure parts: apt output, bzImage header, module lists, qemu
// arguments, guest reports and the verdict against the expectation table. No root, no VM.
import { describe, expect, it } from 'vitest';
import { bzImagePayload } from './bzimage.js';
import { conntrackStat } from './conntrack-stat.js';
import { buildQuery, encodeName, parseResponseHeader, qtypeBitOffsetInUdp } from './dns-query.js';
import { hasInterpreter } from './elf.js';
import { EXPECTATIONS, evaluate, TRAFFIC } from './expectations.js';
import {
  abiFromDepends,
  debVersion,
  DEFAULT_MIRRORS,
  kernelSpec,
  mirrorsFromIndexTargets,
  sourcesFile,
} from './kernels.js';
import { failedObjects, logTail } from './load-log.js';
import { insmodPaths } from './prepare.js';
import { chooseAccel, isEmulatedTextPokeOops, qemuArgs, type GuestSpec } from './qemu.js';
import {
  dropRowFromDump,
  formatAddr,
  parseReport,
  resultLine,
  summarizeRow,
  type GuestReport,
  type RowSummary,
} from './report.js';

describe('apt', () => {
  it.each([
    ['6.1', 'linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n', '6.1.0-56-amd64'],
    [
      '6.12',
      'linux-image-amd64\n  Depends: linux-image-6.12.95+deb12-amd64\n',
      '6.12.95+deb12-amd64',
    ],
    ['5.10', 'linux-image-amd64\n |Depends: linux-image-5.10.0-46-amd64\n', '5.10.0-46-amd64'],
  ] as const)('abiFromDepends(%s)', (id, out, abi) => {
    expect(abiFromDepends(out, id)).toBe(abi);
  });

  it.each([
    ['6.1', 'linux-image-amd64\n  Depends: linux-image-6.12.95+deb12-amd64\n', /moved to another/],
    ['6.1', 'linux-image-amd64\n', /names no linux-image/],
  ] as const)('abiFromDepends(%s) refuses %j', (id, out, error) => {
    expect(() => abiFromDepends(out, id)).toThrow(error);
  });

  it.each([
    [
      'http://deb.debian.org/debian-security/ bookworm-security main deb\n' +
        'http://deb.debian.org/debian/ bookworm main deb\n',
      { main: 'http://deb.debian.org/debian', security: 'http://deb.debian.org/debian-security' },
    ],
    [
      'http://mirror.example/debian/ bookworm\nhttp://sec.example/debian-security bookworm-security\n',
      { main: 'http://mirror.example/debian', security: 'http://sec.example/debian-security' },
    ],
    ['', DEFAULT_MIRRORS],
    ['https://deb.nodesource.com/node_20.x/ nodistro\n', DEFAULT_MIRRORS],
  ])('mirrorsFromIndexTargets(%j)', (out, mirrors) => {
    expect(mirrorsFromIndexTargets(out)).toEqual(mirrors);
  });

  it('sourcesFile: one deb822 stanza per archive, the suites of that kernel only', () => {
    const text = sourcesFile(kernelSpec('5.10'), DEFAULT_MIRRORS);
    expect(text).toContain('Suites: bullseye bullseye-updates\n');
    expect(text).toContain(
      'URIs: http://deb.debian.org/debian-security\nSuites: bullseye-security',
    );
    expect(text).not.toContain('bookworm');
  });

  it.each([
    ['linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb', '6.1.0-56-amd64', '6.1.192-2'],
    [
      'debs/linux-image-6.12.95+deb12-amd64_6.12.95-1~bpo12+1_amd64.deb',
      '6.12.95+deb12-amd64',
      '6.12.95-1~bpo12+1',
    ],
    ['linux-headers-6.1.0-56-amd64_6.1.192-2_amd64.deb', '6.1.0-56-amd64', undefined],
  ])('debVersion(%s)', (file, abi, version) => {
    expect(debVersion(file, abi)).toBe(version);
  });
});

describe('bzImage', () => {
  function image(setupSects: number, magic: number[], payloadLen = 64): Buffer {
    const b = Buffer.alloc((setupSects + 1) * 512 + 0x100 + payloadLen);
    b[0x1f1] = setupSects;
    b.write('HdrS', 0x202, 'latin1');
    b.writeUInt16LE(0x20f, 0x206);
    b.writeUInt32LE(0x100, 0x248); // payload_offset
    b.writeUInt32LE(payloadLen, 0x24c);
    const start = (setupSects + 1) * 512 + 0x100;
    magic.forEach((x, i) => (b[start + i] = x));
    b.writeUInt32LE(123456, start + payloadLen - 4); // size_append
    return b;
  }

  it.each([
    ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ['gzip', [0x1f, 0x8b, 0x08]],
  ])('finds the %s payload and the uncompressed size', (format, magic) => {
    const p = bzImagePayload(image(30, magic));
    expect(p).toEqual({
      format,
      start: 31 * 512 + 0x100,
      end: 31 * 512 + 0x100 + 60,
      uncompressedSize: 123456,
    });
  });

  it('setup_sects 0 means 4', () => {
    const b = image(4, [0x28, 0xb5, 0x2f, 0xfd]);
    b[0x1f1] = 0;
    expect(bzImagePayload(b).start).toBe(5 * 512 + 0x100);
  });

  it.each([
    ['no boot header', Buffer.alloc(0x300), /no x86 boot header/],
    ['lz4 payload', image(30, [0x02, 0x21, 0x4c, 0x18]), /not zstd, xz or gzip/],
  ])('refuses %s', (_what, b, error) => {
    expect(() => bzImagePayload(b)).toThrow(error);
  });
});

describe('ELF', () => {
  function elf(phTypes: number[]): Buffer {
    const b = Buffer.alloc(64 + 56 * phTypes.length);
    b.write('\x7fELF', 0, 'latin1');
    b[4] = 2; // 64-bit
    b[5] = 1; // little-endian
    b.writeBigUInt64LE(64n, 0x20);
    b.writeUInt16LE(56, 0x36);
    b.writeUInt16LE(phTypes.length, 0x38);
    phTypes.forEach((t, i) => b.writeUInt32LE(t, 64 + 56 * i));
    return b;
  }
  it.each([
    ['static (LOAD, NOTE)', [1, 4], false],
    ['dynamic (PHDR, INTERP, LOAD)', [6, 3, 1], true],
  ])('hasInterpreter: %s', (_what, types, dynamic) => {
    expect(hasInterpreter(elf(types))).toBe(dynamic);
  });
  it('refuses a script', () => {
    expect(() => hasInterpreter(Buffer.from('#!/bin/sh\n'))).toThrow(/not a 64-bit/);
  });
});

describe('modules and qemu', () => {
  it('insmodPaths: load order, builtins skipped, duplicates once', () => {
    const out =
      'builtin virtio_pci\ninsmod /k/netfs.ko.xz \ninsmod /k/9pnet.ko.xz \n' +
      'insmod /k/9pnet_virtio.ko.xz \ninsmod /k/netfs.ko.xz \ninsmod /k/9p.ko.xz \n';
    expect(insmodPaths(out)).toEqual([
      '/k/netfs.ko.xz',
      '/k/9pnet.ko.xz',
      '/k/9pnet_virtio.ko.xz',
      '/k/9p.ko.xz',
    ]);
  });

  it.each([
    [undefined, 'flags\t\t: fpu vme sse2 vmx\n', true, 'kvm'],
    [undefined, 'flags\t\t: fpu vme sse2 svm\n', true, 'kvm'],
    [undefined, 'flags\t\t: fpu vme sse2 hypervisor\n', true, 'tcg'], // PVM /dev/kvm
    [undefined, 'flags\t\t: vmx\n', false, 'tcg'],
    ['auto', 'flags\t\t: vmx\n', true, 'kvm'],
    ['tcg', 'flags\t\t: vmx\n', true, 'tcg'],
    ['kvm', 'flags\t\t: sse2\n', false, 'kvm'],
  ])('chooseAccel(%s, %j, kvm %s) = %s', (request, cpuinfo, kvm, accel) => {
    expect(chooseAccel(request, cpuinfo, kvm)).toBe(accel);
  });

  it('chooseAccel refuses an unknown accelerator', () => {
    expect(() => chooseAccel('hvf', '', false)).toThrow(/auto, kvm or tcg/);
  });

  const guest: GuestSpec = {
    accel: 'tcg',
    memory: '1G',
    cpus: 2,
    image: '/c/vmlinux',
    initrd: '/c/initrd.img',
    reportPath: '/c/logs/6.1.report.json',
    params: { km_init: '/repo/test/kernel-matrix/guest-init.sh', km_kernel: '6.1' },
  };

  it('qemuArgs: TCG, the report on the second serial port, km_* on the command line', () => {
    const args = qemuArgs(guest);
    expect(args.slice(0, 4)).toEqual(['-accel', 'tcg,thread=multi', '-cpu', 'max']);
    expect(args[args.indexOf('-smp') + 1]).toBe('2');
    expect(args).toContain('file,id=report,path=/c/logs/6.1.report.json');
    expect(args[args.indexOf('-append') + 1]).toMatch(
      /^console=ttyS0 .* km_init=\/repo\/test\/kernel-matrix\/guest-init.sh km_kernel=6.1$/,
    );
    expect(qemuArgs({ ...guest, accel: 'kvm' }).slice(0, 4)).toEqual([
      '-accel',
      'kvm',
      '-cpu',
      'host',
    ]);
  });

  it.each([
    [{ km_path: '/a b' }, /cannot go on a kernel command line/],
    [{ 'km.x': '1' }, /cannot go on a kernel command line/],
    [{ km_empty: '' }, /cannot go on a kernel command line/],
  ])('qemuArgs refuses %j', (params, error) => {
    expect(() => qemuArgs({ ...guest, params })).toThrow(error);
  });
});

describe('DNS wire and guest parsers', () => {
  it('buildQuery and the QTYPE offset nft matches', () => {
    const q = buildQuery(0x4b01, 'drop.km.test', 28);
    expect(encodeName('drop.km.test').length).toBe(14);
    expect(q.readUInt16BE(12 + 14)).toBe(28);
    expect(qtypeBitOffsetInUdp('drop.km.test')).toBe((8 + 12 + 14) * 8);
    expect(parseResponseHeader(Buffer.from('4b0181830001000000000000', 'hex'))).toEqual({
      id: 0x4b01,
      isResponse: true,
      rcode: 3,
      answers: 0,
    });
  });

  it('conntrackStat sums a column over the CPUs', () => {
    const text =
      'entries  clashres found new invalid ignore delete chainlength insert insert_failed drop\n' +
      '00000003  00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000025 00000025\n' +
      '00000003  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000070 00000070\n';
    expect(conntrackStat(text, 'insert_failed')).toBe(0x25 + 0x70);
    expect(conntrackStat(text, 'clashres')).toBe(1);
    expect(() => conntrackStat(text, 'nope')).toThrow(/no column nope/);
  });

  it.each([
    [
      'scalar counters (older dns.bpf.o)',
      {
        queries: 2,
        retransmits: 1,
        timeouts: 0,
        responses: [1, 1, 0, 0, 0],
        latency_count: 2,
        latency_sum_ns: 9,
      },
      { retransmits: 1, timeouts: 0 },
    ],
    [
      'counters per stall cause',
      {
        queries: 1,
        retransmits: [0, 1, 0],
        timeouts: [0, 1, 0],
        responses: [0, 0, 0, 0, 0],
        latency_count: 0,
        latency_sum_ns: 0,
      },
      { retransmits: 1, retransmitsByCause: [0, 1, 0], timeouts: 1, timeoutsByCause: [0, 1, 0] },
    ],
  ])('summarizeRow: %s', (_what, value, expected) => {
    expect(summarizeRow(value)).toMatchObject(expected);
  });

  it('dropRowFromDump', () => {
    const key = {
      pod_addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1],
      proto: 17,
      port_class: 1,
      qtype: 1,
      reason: 0,
      direction: 0,
      pad: [0, 0, 0],
    };
    expect(dropRowFromDump(key, 2)).toEqual({
      podAddr: '127.0.0.1',
      proto: 17,
      portClass: 1,
      qtype: 1,
      reason: 0,
      direction: 0,
      packets: 2,
    });
    expect(formatAddr([0xfd, 0, ...Array(13).fill(0), 1])).toBe('fd00:0:0:0:0:0:0:1');
  });

  it.each([
    ['', /wrote no report/],
    ['garbage\n{"kernel": "6.1",', /unreadable report/],
    ['{"fatal":"initramfs: cannot mount the host root over 9p"}\n', /cannot mount/],
  ])('parseReport(%j) is fatal', (text, fatal) => {
    expect(parseReport(text, '6.1').fatal).toMatch(fatal);
  });

  it('failedObjects and logTail pick the verifier reason', () => {
    expect(
      failedObjects([
        "fexit: conntrack_fexit.bpf.o: libbpf: prog 'ct_confirm_exit': failed to load: -22",
        'tracepoint: drops.bpf.o: libbpf: ...',
        'fexit: not tried (choice: tracepoint)',
      ]),
    ).toEqual(['conntrack_fexit.bpf.o', 'drops.bpf.o']);
    const stderr =
      'libbpf: loading\n-- BEGIN PROG LOAD LOG --\n0: (b7) r1 = 0\ninfinite loop detected at insn 84\n' +
      'processed 63 insns\n-- END PROG LOAD LOG --\nlibbpf: failed to load object\n';
    expect(logTail(stderr, 2)).toEqual(['infinite loop detected at insn 84', 'processed 63 insns']);
    expect(logTail('libbpf: failed to find kernel BTF type ID\nError: x\n', 5)).toEqual([
      'libbpf: failed to find kernel BTF type ID',
      'Error: x',
    ]);
  });
});

describe('evaluate against the expectation table', () => {
  const row = (o: Partial<RowSummary>): RowSummary => ({
    queries: 0,
    retransmits: 0,
    timeouts: 0,
    responses: [0, 0, 0, 0, 0],
    latencyCount: 0,
    latencySumNs: 0,
    ...o,
  });
  const answered = row({
    queries: 2,
    responses: [1, 1, 0, 0, 0],
    latencyCount: 2,
    latencySumNs: 8e6,
  });

  /** What a guest that keeps every promise reports. */
  function goodReport(kernel: '6.12' | '6.1' | '5.10'): GuestReport {
    const exp = EXPECTATIONS[kernel];
    const cause = [0, 0, 0];
    cause[exp.aaaaCause === 'netfilter_drop' ? 1 : 0] = 1;
    const fexit = exp.dropMode === 'fexit';
    return {
      kernel,
      release: `${kernel}.0-1-amd64`,
      steps: [{ name: 'loader.start', ok: true, seconds: 3 }],
      runCounts: {
        dns_egress: 6,
        dns_ingress: 4,
        drops_kfree_skb: 90,
        ...(fexit ? { ct_confirm_exit: 5 } : {}),
      },
      dns: {
        attached: ['dns_egress:cgroup_inet_egress', 'dns_ingress:cgroup_inet_ingress'],
        client: {
          A: answered,
          AAAA: row({
            queries: 1,
            retransmits: 1,
            retransmitsByCause: cause,
            timeouts: 1,
            timeoutsByCause: cause,
          }),
        },
        server: { A: answered },
        health: { unmatched_answers: 0, pending_full: 0, sweep_runs: 1 },
        answers: {},
        nftDropped: TRAFFIC.clientAAAA.dropped,
        sweepKeys: 1,
        detachedAfterStop: true,
      },
      drops: {
        mode: exp.dropMode,
        fallbacks: fexit
          ? []
          : [
              "fexit: conntrack_fexit.bpf.o: libbpf: prog 'ct_confirm_exit': failed to find kernel BTF type ID of '__nf_conntrack_confirm': -3",
            ],
        links: exp.links,
        diagnosis: [],
        rows: [
          {
            podAddr: '127.0.0.1',
            proto: 17,
            portClass: 1,
            qtype: 1,
            reason: fexit ? 0 : 4,
            direction: 0,
            packets: 2,
          },
        ],
        health: [2],
        ...(fexit
          ? {
              race: {
                rowsMoved: [],
                iterations: 300,
                sendErrors: 7,
                insertFailed: 7,
                confirmDrops: 7,
                insertFailedRows: 7,
                netfilterRows: 0,
              },
            }
          : {}),
      },
    };
  }

  it.each(['6.12', '6.1', '5.10'] as const)('a guest keeping every promise passes on %s', (k) => {
    const v = evaluate(goodReport(k));
    expect(v.failures).toEqual([]);
    expect(resultLine(v)).toMatch(new RegExp(`^KM-RESULT kernel=${k} release=\\S+ PASS mode=`));
  });

  const broken: [string, '6.12' | '6.1' | '5.10', (r: GuestReport) => void, RegExp][] = [
    [
      'the retransmit counted as a new query (EEXIST)',
      '6.1',
      (r) => {
        r.dns!.client.AAAA = row({
          queries: 2,
          timeouts: 1,
          timeoutsByCause: [1, 0, 0],
          retransmitsByCause: [0, 0, 0],
        });
      },
      /client AAAA: queries 2 \(want 1\), retransmits 0 \(want 1\)/,
    ],
    [
      'fexit fell back',
      '6.12',
      (r) => {
        r.drops!.mode = 'tracepoint';
        r.drops!.links = ['drops_kfree_skb'];
      },
      /mode tracepoint, want fexit/,
    ],
    [
      '5.10 took fexit',
      '5.10',
      (r) => {
        r.drops!.mode = 'fexit';
        r.drops!.fallbacks = [];
      },
      /mode fexit, want tracepoint/,
    ],
    [
      'double count of an insert failure',
      '6.1',
      (r) => {
        r.drops!.race!.netfilterRows = 1;
      },
      /SYNs refused, but \d+ insert failures \+ 1 netfilter drops counted/,
    ],
    [
      'fexit missed insert failures',
      '6.12',
      (r) => {
        r.drops!.race!.confirmDrops = 5;
      },
      /fexit saw 5 confirm drops, kernel insert_failed 7/,
    ],
    [
      'the AAAA drop counted with another reason',
      '6.1',
      (r) => {
        r.drops!.rows[0]!.reason = 4;
      },
      /counted 0 dropped AAAA queries as netfilter_drop/,
    ],
    [
      'stop left programs attached',
      '5.10',
      (r) => {
        r.dns!.detachedAfterStop = false;
      },
      /still attached after loader.stop/,
    ],
    [
      'a failed step',
      '5.10',
      (r) => {
        r.steps.push({ name: 'cgroup show', ok: false, seconds: 1, error: 'exit 255' });
      },
      /step cgroup show: exit 255/,
    ],
    [
      'no report at all',
      '6.1',
      (r) => {
        delete r.dns;
        delete r.drops;
        r.fatal = 'the guest wrote no report';
      },
      /guest: the guest wrote no report/,
    ],
  ];
  it.each(broken)('fails when %s', (_what, kernel, breakIt, reason) => {
    const r = goodReport(kernel);
    breakIt(r);
    const v = evaluate(r);
    expect(v.pass).toBe(false);
    expect(v.failures.join('; ')).toMatch(reason);
  });
});

describe('isEmulatedTextPokeOops', () => {
  it.each([
    ['[   24.017985] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI', true],
    ['[    5.1] Oops: general protection fault, probably for non-canonical address', false],
    ['[    5.1] BUG: kernel NULL pointer dereference, address: 0000000000000010', false],
    ['km-probe[3.0]: create cgroups: ok', false],
  ])('%s -> %s', (line, retry) => {
    expect(isEmulatedTextPokeOops(`boot\n${line}\nmore`)).toBe(retry);
  });
});
