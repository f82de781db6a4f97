// The resolver doctor on recorded inputs: resolv.conf files as the kubelet writes them, ELF
// headers, /proc stat lines, and the counters and events of a musl pod walking its search
// list and of a glibc pod whose AAAA queries are dropped (numbers from the lab, test/e2e/drilldown.test.ts).
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inferLibc, runDoctor, searchWalk, type DoctorInput } from '../../src/drilldown/doctor.js';
import { elfInterpreter, libcOfInterpreter } from '../../src/drilldown/elf.js';
import type { Lookup } from '../../src/drilldown/lookup.js';
import { parseProcStat, PodProbe } from '../../src/drilldown/pod-probe.js';
import { parseResolvConf } from '../../src/drilldown/resolv-conf.js';

const KUBELET = `nameserver 10.96.0.10
search shop.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
`;

describe('parseResolvConf', () => {
  it.each([
    [
      'the kubelet ClusterFirst file',
      KUBELET,
      {
        nameservers: ['10.96.0.10'],
        search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
        ndots: 5,
        timeout: 5,
        attempts: 2,
        flags: [],
      },
    ],
    [
      'options on several lines, comments, clamping',
      'nameserver 1.1.1.1 # primary\n; a comment\noptions ndots:20 timeout:1\noptions attempts:3 single-request-reopen edns0\n',
      {
        nameservers: ['1.1.1.1'],
        search: [],
        ndots: 15,
        timeout: 1,
        attempts: 3,
        flags: ['single-request-reopen', 'edns0'],
      },
    ],
    [
      'the last search or domain line wins',
      'search a b\ndomain c.d\n',
      { search: ['c.d'], ndots: 1 },
    ],
    ['garbage values keep the defaults', 'options ndots:x timeout:-1\n', { ndots: 1, timeout: 5 }],
  ])('%s', (_n, text, want) => {
    expect(parseResolvConf(text)).toMatchObject(want);
  });
});

/** A minimal ELF64 little-endian executable header with one program header. */
function elf64(interp: string | null): Uint8Array {
  const b = new Uint8Array(256);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, 1, true); // e_phnum
  v.setUint32(64, interp === null ? 1 : 3, true); // PT_LOAD or PT_INTERP
  if (interp !== null) {
    const s = Buffer.from(`${interp}\0`);
    v.setBigUint64(64 + 8, 128n, true);
    v.setBigUint64(64 + 32, BigInt(s.length), true);
    b.set(s, 128);
  }
  return b;
}

describe('ELF interpreter', () => {
  it.each([
    ['/lib64/ld-linux-x86-64.so.2', 'glibc'],
    ['/lib/ld-musl-x86_64.so.1', 'musl'],
    ['/lib/ld-linux-aarch64.so.1', 'glibc'],
    ['/nix/store/x-foo/bin/loader', 'other'],
  ])('%s -> %s', (interp, libc) => {
    const got = elfInterpreter(elf64(interp));
    expect(got).toBe(interp);
    expect(libcOfInterpreter(got!)).toBe(libc);
  });

  it('says static for a static executable and undefined for no ELF', () => {
    expect(elfInterpreter(elf64(null))).toBeNull();
    expect(libcOfInterpreter(null)).toBe('static');
    expect(elfInterpreter(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(80)))).toBeUndefined();
  });
});

describe('parseProcStat', () => {
  it('reads the comm (even with spaces and parentheses) and the start time', () => {
    const line =
      '8048 (sleep (x) y) S 8040 8048 8048 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 435532 5505024 224 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ comm: 'sleep (x) y', start: 435532 });
  });
});

let seq = 0;
function lookup(over: Partial<Lookup>): Lookup {
  return {
    seq: ++seq,
    kind: 'nxdomain',
    role: 'client',
    cgroupId: 7n,
    name: 'x',
    nameTruncated: false,
    qtype: 'A',
    qtypeClass: 'A',
    rcode: 'NXDOMAIN',
    cause: 'unanswered',
    diagnosis: 'nxdomain',
    latencySeconds: 0.0001,
    retransmits: 0,
    retriedFromNewSocket: false,
    socket: 'unconnected',
    server: '10.96.0.10',
    client: '10.244.0.5',
    clientPort: 40000,
    dnsId: 1,
    serverSideSeconds: 0.00005,
    serverRcode: 'NXDOMAIN',
    serverCgroupId: 9n,
    atUnixSeconds: 1_700_000_000,
    firstSentUnixSeconds: 1_700_000_000,
    ...over,
  };
}

const SEARCH = ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];
const zeroCauses = { unanswered: 0, netfilter_drop: 0, conntrack_insert_failed: 0 };

function muslPod(): DoctorInput {
  const recent = SEARCH.flatMap((s) =>
    ['A', 'AAAA'].map((q) => lookup({ name: `api.example.org.${s}`, qtype: q })),
  ).reverse();
  return {
    resolv: { conf: parseResolvConf(KUBELET), source: '/proc/8060/root/etc/resolv.conf' },
    interpreter: {
      path: '/lib/ld-musl-x86_64.so.1',
      libc: 'musl',
      source: 'pid 8060 (sleeper-musl)',
    },
    counters: {
      queries: 24,
      noerror: 6,
      nxdomain: 18,
      servfail: 0,
      retransmits: { ...zeroCauses },
      timeouts: { ...zeroCauses },
    },
    drops: { netfilter_drop: 0, conntrack_insert_failed: 0 },
    shape: { connected: 0, unconnected: 18, firstRetryDelays: [] },
    recent,
  };
}

function glibcPodWithDrops(): DoctorInput {
  return {
    resolv: { conf: parseResolvConf(KUBELET), source: '/proc/8048/root/etc/resolv.conf' },
    interpreter: { path: '/lib64/ld-linux-x86-64.so.2', libc: 'glibc', source: 'pid 8048 (sleep)' },
    counters: {
      queries: 4,
      noerror: 3,
      nxdomain: 0,
      servfail: 0,
      retransmits: { ...zeroCauses, netfilter_drop: 2 },
      timeouts: { ...zeroCauses, netfilter_drop: 1 },
    },
    drops: { netfilter_drop: 3, conntrack_insert_failed: 0 },
    shape: { connected: 3, unconnected: 0, firstRetryDelays: [5.0] },
    recent: [
      lookup({
        kind: 'timeout',
        name: 'api.example.org',
        qtype: 'AAAA',
        rcode: null,
        cause: 'netfilter_drop',
        diagnosis: 'netfilter_drop',
        socket: 'connected',
        retransmits: 2,
      }),
    ],
  };
}

describe('runDoctor', () => {
  it('measures the musl pod: ×4 from its counters, the walk from its NXDOMAINs, and fixes without single-request-reopen', () => {
    const r = runDoctor(muslPod());
    expect(r.libc.verdict).toBe('musl');
    expect(r.amplification).toEqual({
      factor: 4,
      queries: 24,
      noerror: 6,
      nxdomain: 18,
      walk: { name: 'api.example.org', tried: SEARCH.map((s) => `api.example.org.${s}`) },
    });
    expect(r.findings.map((f) => f.id)).toEqual(['search_amplification']);
    const f = r.findings[0]!;
    expect(f.severity).toBe('warning');
    expect(f.title).toBe(
      'Each answered query costs ×4 queries: the search list is walked (ndots:5, 3 search domains)',
    );
    expect(f.fixes.join('\n')).toMatch(/trailing dot \(api\.example\.org\.\)/);
    expect(f.fixes.join('\n')).toMatch(/ndots/);
    expect(f.fixes.join('\n')).toMatch(/autopath/);
    expect(JSON.stringify(r)).not.toMatch(/single-request-reopen/);
  });

  it('puts drops first for the glibc pod and offers single-request-reopen', () => {
    const r = runDoctor(glibcPodWithDrops());
    expect(r.libc.verdict).toBe('glibc');
    expect(r.findings.map((f) => f.id)).toEqual(['dropped_queries', 'long_timeout']);
    expect(r.findings[0]!.detail).toMatch(
      /^3 packet\(s\) of this pod dropped; 2 re-send\(s\) and 1 timeout\(s\) followed/,
    );
    expect(r.findings[0]!.fixes[0]).toMatch(/^Add `options single-request-reopen` \(glibc only\)/);
    expect(r.amplification.factor).toBe(1.33);
  });

  it('tells a musl pod with drops not to use single-request-reopen, and flags it when set', () => {
    const input = muslPod();
    input.drops = { netfilter_drop: 2, conntrack_insert_failed: 0 };
    input.resolv = {
      conf: parseResolvConf(`${KUBELET}options single-request-reopen\n`),
      source: 'x',
    };
    const r = runDoctor(input);
    const drop = r.findings.find((f) => f.id === 'dropped_queries')!;
    expect(drop.fixes[0]).toMatch(/^Do not add single-request-reopen: musl ignores it/);
    expect(drop.detail).toMatch(/musl re-sends after 2\.5 s/);
    expect(r.findings.some((f) => f.id === 'reopen_on_musl')).toBe(true);
  });

  it('names a slow server with the server-side share, and says when resolv.conf is unreadable', () => {
    const r = runDoctor({
      resolv: { error: 'no process runs in the cgroups of shop/web right now' },
      counters: undefined,
      drops: { netfilter_drop: 0, conntrack_insert_failed: 0 },
      shape: { connected: 2, unconnected: 0, firstRetryDelays: [] },
      recent: [
        lookup({
          kind: 'slow',
          name: 'example.com',
          rcode: 'NOERROR',
          diagnosis: 'slow_server',
          latencySeconds: 1.52,
          serverSideSeconds: 1.5,
          socket: 'connected',
        }),
      ],
    });
    expect(r.findings.map((f) => f.id)).toEqual(['slow_server', 'no_resolv_conf']);
    expect(r.findings[0]!.detail).toMatch(
      /example\.com A took 1\.52 s, 1\.5 s of it in the server/,
    );
    expect(r.resolvConf).toBeNull();
    expect(r.libc.verdict).toBe('glibc');
  });
});

describe('inferLibc', () => {
  const base = (): DoctorInput => ({
    resolv: { error: 'x' },
    counters: undefined,
    drops: { netfilter_drop: 0, conntrack_insert_failed: 0 },
    shape: { connected: 0, unconnected: 0, firstRetryDelays: [] },
    recent: [],
  });

  it.each([
    ['nothing seen', {}, undefined, 'unknown'],
    ['a 2.5 s first re-send', { firstRetryDelays: [2.5, 2.51] }, undefined, 'musl'],
    ['a 5 s first re-send', { firstRetryDelays: [5.01] }, undefined, 'glibc'],
    [
      'connected sockets, musl main process (a sidecar resolves)',
      { connected: 4 },
      'musl',
      'mixed',
    ],
    ['a static main process and unconnected sockets', { unconnected: 2 }, 'static', 'musl'],
    ['only the interpreter', {}, 'glibc', 'glibc'],
  ] as const)('%s', (_n, shape, interp, verdict) => {
    const input = base();
    Object.assign(input.shape, shape);
    if (interp)
      input.interpreter = {
        path: interp === 'static' ? null : `/lib/ld-${interp}.so`,
        libc: interp,
        source: 'pid 1 (app)',
      };
    expect(inferLibc(input, undefined).verdict).toBe(verdict);
  });
});

describe('searchWalk', () => {
  it('strips the search suffixes and keeps the name tried most', () => {
    const recent = [
      lookup({ name: 'db.shop.svc.cluster.local' }),
      lookup({ name: 'api.example.org.svc.cluster.local' }),
      lookup({ name: 'api.example.org.shop.svc.cluster.local' }),
      lookup({ name: 'unrelated.example' }),
      lookup({ name: 'x.cluster.local', role: 'server' }),
    ];
    expect(searchWalk(recent, SEARCH)).toEqual({
      name: 'api.example.org',
      tried: ['api.example.org.shop.svc.cluster.local', 'api.example.org.svc.cluster.local'],
    });
  });
});

describe('PodProbe (fake /proc and cgroup tree)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads resolv.conf and the interpreter through the oldest process of the pod', async () => {
    dir = await mkdtemp(join(tmpdir(), 'dnsrace-test-probe-'));
    const cg = join(dir, 'cgroup/kubepods/podX/ctr');
    await mkdir(cg, { recursive: true });
    await writeFile(join(cg, 'cgroup.procs'), '200\n100\n');
    for (const [pid, start, conf, interp] of [
      ['100', 500, KUBELET, '/lib/ld-musl-x86_64.so.1'],
      ['200', 900, 'nameserver 9.9.9.9\n', '/lib64/ld-linux-x86-64.so.2'],
    ] as const) {
      const p = join(dir, 'proc', pid);
      await mkdir(join(p, 'root/etc'), { recursive: true });
      await writeFile(
        join(p, 'stat'),
        `${pid} (app) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0\n`,
      );
      await writeFile(join(p, 'root/etc/resolv.conf'), conf);
      await writeFile(join(p, 'exe.bin'), elf64(interp));
      await symlink(join(p, 'exe.bin'), join(p, 'exe'));
    }
    const probe = new PodProbe({
      cgroupRoot: join(dir, 'cgroup'),
      procRoot: join(dir, 'proc'),
      nameOf: () => ({ namespace: 'shop', pod: 'cart' }),
    });
    const r = await probe.probe('shop', 'cart');
    expect(r.process).toMatchObject({ pid: 100, comm: 'app' });
    expect(r.resolv).toMatchObject({ conf: { ndots: 5, search: SEARCH } });
    expect(r.interpreter).toMatchObject({ libc: 'musl', path: '/lib/ld-musl-x86_64.so.1' });
    const none = await new PodProbe({
      cgroupRoot: join(dir, 'cgroup'),
      procRoot: join(dir, 'proc'),
      nameOf: () => ({ namespace: 'other', pod: 'x' }),
    }).probe('shop', 'cart');
    expect(none.resolv).toEqual({ error: `no cgroup of shop/cart under ${join(dir, 'cgroup')}` });
  });
});
