/**
 * Kernel-level tests of bpf/dist/dns.bpf.o: crafted packets go through the real programs
 * with BPF_PROG_TEST_RUN (`bpftool prog run`), and the pinned maps are read back with
 * `bpftool map dump`, decoded with the exporter's layouts (src/bpf/map-layouts.ts).
 *
 * Test-run facts this relies on (checked on 6.18): the 14-byte Ethernet header is stripped,
 * so cgroup_skb sees the IP header at offset 0 and the sweep request at offset 0;
 * skb->data/data_end are set, so the direct-access fast path runs; and bpf_skb_cgroup_id()
 * is the cgroup of the process running bpftool (1 from the root cgroup), which lets a test
 * tell cgroups apart by running bpftool inside cgroups it created.
 *
 * Needs root and bpftool. Every pin lives under /sys/fs/bpf/dnsrace-test-* and is removed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { LAT_SLOTS, slotForNanoseconds } from '../../src/bpf/latency-buckets.js';
import { HEALTH_COUNTERS, type HealthCounter } from '../../src/bpf/dns-health.js';
import { Bpftool } from '../../src/bpf/bpftool.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const OBJECT = join(REPO, 'bpf/dist/dns.bpf.o');
const BPFFS = '/sys/fs/bpf';

// ---------------------------------------------------------------------------------------------
// dns.h mirrored: enum values and the layouts the tests build or read.

const ROLE_CLIENT = 0;
const ROLE_SERVER = 1;
const QTYPE_A = 0;
const QTYPE_AAAA = 1;
const QTYPE_OTHER = 2;
const PROTO_UDP = 0;
const PROTO_TCP = 1;
const PENDING_F_RETRY_NEW_SOCKET = 0x01;
const CAUSE_UNANSWERED = 0;
const CAUSE_NETFILTER_DROP = 1;
const CAUSE_CONNTRACK_INSERT_FAILED = 2;
/** retransmits[] / timeouts[] by enum stall_cause */
const NONE = [0, 0, 0];
const UNANSWERED_1 = [1, 0, 0];
const SWEEP_MAX_KEYS = 64;
const QNAME_LEN = 128;
const MAX_PENDING = 16384;
// The exporter's names of the dns_health slots (enum health_counter order).
const HEALTH = HEALTH_COUNTERS;
type HealthName = HealthCounter;

interface StatsRow {
  key: { cgroup_id: number; role: number; qtype: number };
  value: {
    queries: number;
    retransmits: number[]; // by enum stall_cause
    timeouts: number[];
    responses: number[];
    latency_count: number;
    latency_sum_ns: number;
    latency: number[];
  };
}

interface PendingKey {
  cgroup_id: number;
  peer: number[];
  port: number;
  id: number;
  qtype: number;
  role: number;
  proto: number;
}

interface PendingEntry {
  key: PendingKey;
  value: {
    first_ts_ns: number;
    last_ts_ns: number;
    retransmits: number;
    name_hash: number;
    qname_len: number;
    flags: number;
    cause: number;
    client_addr: number[];
    qname: number[];
  };
}

interface DroppedQuery {
  key: { client_addr: number[]; port: number; id: number; qtype: number };
  value: { ts_ns: number; cause: number };
}

interface ClientAddr {
  key: number[];
  value: { cgroup_id: number; last_seen_ns: number };
}

interface RetryEntry {
  key: { cgroup_id: number; name_hash: number; id: number; qtype: number; role: number };
  value: PendingKey;
}

// ---------------------------------------------------------------------------------------------
// Packets. Checksums are left zero: nothing on this path verifies them.

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const NEXTHDR_HOP = 0;
const NEXTHDR_ROUTING = 43;
const NEXTHDR_FRAGMENT = 44;
const NEXTHDR_DEST = 60;

function ipv4Bytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

function ipv6Bytes(addr: string): Buffer {
  const [head = '', tail] = addr.split('::');
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** BPF_PROG_TEST_RUN wants an Ethernet frame; cgroup_skb then sees what follows it. */
function ether(etherType: number, l3: Buffer): Buffer {
  const h = Buffer.alloc(14);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, l3]);
}

function ipv4(
  proto: number,
  src: string,
  dst: string,
  l4: Buffer,
  frag: { offset8?: number; more?: boolean } = {},
): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h.writeUInt16BE(((frag.more ? 1 : 0) << 13) | (frag.offset8 ?? 0), 6);
  h[8] = 64;
  h[9] = proto;
  ipv4Bytes(src).copy(h, 12);
  ipv4Bytes(dst).copy(h, 16);
  return ether(0x0800, Buffer.concat([h, l4]));
}

/** ext: extension headers as [type, body] pairs, in order; body excludes next header/length. */
function ipv6(
  proto: number,
  src: string,
  dst: string,
  l4: Buffer,
  ext: Array<[number, Buffer]> = [],
): Buffer {
  const chain: Buffer[] = [];
  ext.forEach(([, body], i) => {
    const next = i + 1 < ext.length ? ext[i + 1]![0] : proto;
    const hdr = Buffer.concat([Buffer.from([next, 0]), body]);
    if (hdr.length % 8 !== 0) throw new Error(`extension header of ${hdr.length} bytes`);
    if (ext[i]![0] !== NEXTHDR_FRAGMENT) hdr[1] = hdr.length / 8 - 1;
    chain.push(hdr);
  });
  const payload = Buffer.concat([...chain, l4]);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = ext.length ? ext[0]![0] : proto;
  h[7] = 64;
  ipv6Bytes(src).copy(h, 8);
  ipv6Bytes(dst).copy(h, 24);
  return ether(0x86dd, Buffer.concat([h, payload]));
}

/** Body of an IPv6 fragment header: offset in 8-byte units, more-fragments flag. */
function fragmentBody(offset8: number, more: boolean): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE((offset8 << 3) | (more ? 1 : 0), 0);
  b.writeUInt32BE(0x1234, 2);
  return b;
}

function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

const TCP_SYN = 0x02;
const TCP_PSH_ACK = 0x18;

function tcp(sport: number, dport: number, payload: Buffer, flags = TCP_PSH_ACK): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(1000, 4);
  h[12] = 5 << 4;
  h[13] = flags;
  h.writeUInt16BE(65535, 14);
  return Buffer.concat([h, payload]);
}

function wireName(name: string): Buffer {
  const labels = name.split('.').filter(Boolean);
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

interface DnsOptions {
  id: number;
  name?: string;
  qtype?: number;
  response?: boolean;
  rcode?: number;
  opcode?: number;
  qdcount?: number;
  /** Raw question bytes instead of name + qtype + qclass. */
  question?: Buffer;
}

function dns(o: DnsOptions): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id, 0);
  h.writeUInt16BE((o.response ? 0x8000 : 0) | ((o.opcode ?? 0) << 11) | 0x0100 | (o.rcode ?? 0), 2);
  h.writeUInt16BE(o.qdcount ?? 1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(o.qtype ?? 1, 0);
  tail.writeUInt16BE(1, 2);
  const question = o.question ?? Buffer.concat([wireName(o.name ?? 'example.com'), tail]);
  return Buffer.concat([h, question]);
}

/** DNS over TCP: 2-byte length prefix (RFC 7766). */
function tcpDns(message: Buffer): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(message.length, 0);
  return Buffer.concat([p, message]);
}

function pendingKeyBytes(k: PendingKey): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(BigInt(k.cgroup_id), 0);
  Buffer.from(k.peer).copy(b, 8);
  b.writeUInt16LE(k.port, 24);
  b.writeUInt16LE(k.id, 26);
  b.writeUInt16LE(k.qtype, 28);
  b[30] = k.role;
  b[31] = k.proto;
  return b;
}

/** Input of dns_sweep_timeouts: struct sweep_request, then the keys (dns.h). */
function sweepRequest(deadlineNs: bigint, keys: PendingKey[], count = keys.length): Buffer {
  const h = Buffer.alloc(16);
  h.writeBigUInt64LE(deadlineNs, 0);
  h.writeUInt32LE(count, 8);
  return ether(0, Buffer.concat([h, ...keys.map(pendingKeyBytes)]));
}

// ---------------------------------------------------------------------------------------------
// bpftool: load, run, dump. Kept local to this test on purpose (src/bpf owns the real module).

type Program = 'dns_egress' | 'dns_ingress' | 'dns_sweep_timeouts';

async function bpftool(args: string[], cgroup?: string): Promise<string> {
  const argv = cgroup
    ? [
        'sh',
        '-c',
        'echo $$ > "$1" && shift && exec "$@"',
        'sh',
        join(cgroup, 'cgroup.procs'),
        'bpftool',
        ...args,
      ]
    : ['bpftool', ...args];
  const r = await execa(argv[0]!, argv.slice(1), { reject: false });
  if (r.exitCode !== 0) {
    throw new Error(`bpftool ${args.join(' ')} failed (${r.exitCode}): ${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

/** Every pin directory this file made, checked at the end. */
const pinDirs: string[] = [];

class LoadedDns {
  private packets = 0;

  private constructor(
    readonly pinDir: string,
    private readonly scratchDir: string,
  ) {}

  static async load(): Promise<LoadedDns> {
    const pinDir = join(BPFFS, `dnsrace-test-${randomBytes(4).toString('hex')}`);
    const scratchDir = await mkdtemp(join(tmpdir(), 'dnsrace-test-'));
    pinDirs.push(pinDir);
    await mkdir(pinDir); // bpftool does not create the parent of its pin directories
    const loaded = new LoadedDns(pinDir, scratchDir);
    try {
      await bpftool([
        'prog',
        'loadall',
        OBJECT,
        join(pinDir, 'progs'),
        'pinmaps',
        join(pinDir, 'maps'),
      ]);
    } catch (err) {
      await loaded.close();
      throw err;
    }
    return loaded;
  }

  async close(): Promise<void> {
    await rm(this.pinDir, { recursive: true, force: true });
    await rm(this.scratchDir, { recursive: true, force: true });
  }

  async writePacket(packet: Buffer): Promise<string> {
    const file = join(this.scratchDir, `packet-${this.packets++}.bin`);
    await writeFile(file, packet);
    return file;
  }

  progPath(prog: Program): string {
    return join(this.pinDir, 'progs', prog);
  }

  /** Runs the program on one packet; returns its return value. */
  async run(prog: Program, packet: Buffer, opts: { cgroup?: string } = {}): Promise<number> {
    const file = await this.writePacket(packet);
    const out = await bpftool(
      ['prog', 'run', 'pinned', this.progPath(prog), 'data_in', file],
      opts.cgroup,
    );
    const m = /Return value: (\d+)/.exec(out);
    if (!m) throw new Error(`unexpected bpftool prog run output: ${out}`);
    return Number(m[1]);
  }

  /** Decoded with the exporter's own layouts (src/bpf/map-layouts.ts): the maps have no BTF. */
  async dump<T>(map: string): Promise<T[]> {
    return (await new Bpftool().mapDump(join(this.pinDir, 'maps', map))) as unknown as T[];
  }

  stats(): Promise<StatsRow[]> {
    return this.dump<StatsRow>('dns_stats');
  }

  pending(): Promise<PendingEntry[]> {
    return this.dump<PendingEntry>('dns_pending');
  }

  droppedQueries(): Promise<DroppedQuery[]> {
    return this.dump<DroppedQuery>('dropped_queries');
  }

  clientAddrs(): Promise<ClientAddr[]> {
    return this.dump<ClientAddr>('dns_client_addrs');
  }

  /** What the drop programs write for a dropped query (struct dropped_query_key/_val, drops.h). */
  async recordDrop(
    q: { addr: Buffer; port: number; id: number; qtype: number },
    cause: number,
  ): Promise<void> {
    const key = Buffer.alloc(24);
    q.addr.copy(key, 0);
    key.writeUInt16LE(q.port, 16);
    key.writeUInt16LE(q.id, 18);
    key.writeUInt16LE(q.qtype, 20);
    const value = Buffer.alloc(16);
    value.writeBigUInt64LE(1n, 0);
    value[8] = cause;
    const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0'));
    await bpftool([
      'map',
      'update',
      'pinned',
      join(this.pinDir, 'maps', 'dropped_queries'),
      'key',
      'hex',
      ...hex(key),
      'value',
      'hex',
      ...hex(value),
    ]);
  }

  retryIndex(): Promise<RetryEntry[]> {
    return this.dump<RetryEntry>('dns_retry_index');
  }

  /** Non-zero health counters, summed over CPUs, by name. */
  async health(): Promise<Partial<Record<HealthName, number>>> {
    const rows = await this.dump<{ key: number; values: Array<{ value: number }> }>('dns_health');
    const out: Partial<Record<HealthName, number>> = {};
    for (const r of rows) {
      const sum = r.values.reduce((a, v) => a + v.value, 0);
      const name = HEALTH[r.key];
      if (sum !== 0) {
        if (!name) throw new Error(`health counter ${r.key} = ${sum} is not in dns.h`);
        out[name] = sum;
      }
    }
    return out;
  }
}

function row(rows: StatsRow[], role: number, qtype: number, cgroupId?: number): StatsRow['value'] {
  const found = rows.filter(
    (r) =>
      r.key.role === role &&
      r.key.qtype === qtype &&
      (cgroupId === undefined || r.key.cgroup_id === cgroupId),
  );
  expect(found, `one stats row for role ${role} qtype ${qtype}`).toHaveLength(1);
  return found[0]!.value;
}

const noResponses = [0, 0, 0, 0, 0];
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** ::ffff:a.b.c.d, as the maps key IPv4 addresses. */
function mapped(v4: string): Buffer {
  return Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), ipv4Bytes(v4)]);
}
const CLIENT = '10.0.0.11';
const VIP = '10.96.0.10';

// ---------------------------------------------------------------------------------------------

// Prerequisites: fail with what to install or do, never skip.
beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'bpf-dns-testrun needs root (loading BPF, BPF_PROG_TEST_RUN, bpffs): run it as root',
    );
  }
  const v = await execa('bpftool', ['version'], { reject: false });
  if (v.exitCode !== 0) {
    throw new Error(
      'bpftool is missing: apt-get install -t bookworm-backports bpftool (7.5 or newer)',
      { cause: v },
    );
  }
  const ip = await execa('ip', ['-V'], { reject: false });
  if (ip.exitCode !== 0) {
    throw new Error('ip is missing: apt-get install iproute2', { cause: ip });
  }
  if (!existsSync(OBJECT)) throw new Error(`${OBJECT} is missing: run scripts/build-bpf.sh`);
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  if (!mounts.split('\n').some((l) => l.split(' ')[1] === BPFFS && l.split(' ')[2] === 'bpf')) {
    throw new Error(`bpffs is not mounted at ${BPFFS}: mount -t bpf bpf ${BPFFS}`);
  }
});

describe('dns.bpf.o under BPF_PROG_TEST_RUN', () => {
  let dnsObj: LoadedDns;

  beforeEach(async () => {
    dnsObj = await LoadedDns.load();
  });

  afterEach(async () => {
    await dnsObj?.close();
  });

  afterAll(() => {
    expect(
      pinDirs.filter((d) => existsSync(d)),
      'pin directories left behind',
    ).toEqual([]);
  });

  it('pairs a query with its answer: one query, one response of the right rcode, its latency', async () => {
    const t0 = process.hrtime.bigint();
    expect(
      await dnsObj.run(
        'dns_egress',
        ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 0x1234 }))),
      ),
    ).toBe(1);
    const [pending] = await dnsObj.pending();
    expect(pending?.key).toMatchObject({
      port: 40000,
      id: 0x1234,
      qtype: 1,
      role: ROLE_CLIENT,
      proto: PROTO_UDP,
    });
    expect(pending?.key.peer).toEqual(Array(16).fill(0)); // the client side keys no peer
    expect(pending?.value).toMatchObject({ retransmits: 0, flags: 0, qname_len: 13 });
    expect(pending?.value.qname.slice(0, 14)).toEqual([...wireName('example.com'), 0]);
    expect(await dnsObj.retryIndex()).toHaveLength(1);

    await sleep(30);
    const answer = dns({ id: 0x1234, response: true, rcode: 3 });
    expect(
      await dnsObj.run('dns_ingress', ipv4(IPPROTO_UDP, VIP, CLIENT, udp(53, 40000, answer))),
    ).toBe(1);
    const elapsed = process.hrtime.bigint() - t0;

    const rows = await dnsObj.stats();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key).toMatchObject({ cgroup_id: 1, role: ROLE_CLIENT, qtype: QTYPE_A });
    const s = rows[0]!.value;
    expect(s).toMatchObject({
      queries: 1,
      retransmits: NONE,
      timeouts: NONE,
      responses: [0, 1, 0, 0, 0],
      latency_count: 1,
    });
    // The kernel clock and process.hrtime are both CLOCK_MONOTONIC.
    expect(s.latency_sum_ns).toBeGreaterThanOrEqual(30_000_000);
    expect(BigInt(s.latency_sum_ns)).toBeLessThanOrEqual(elapsed);
    // One answer: the slot must be the one the TypeScript mirror computes for that latency.
    expect(s.latency).toHaveLength(LAT_SLOTS);
    const slot = slotForNanoseconds(BigInt(s.latency_sum_ns));
    expect(s.latency[slot]).toBe(1);
    expect(s.latency.reduce((a, b) => a + b, 0)).toBe(1);

    expect(await dnsObj.pending()).toEqual([]);
    expect(await dnsObj.retryIndex()).toEqual([]);
    expect(await dnsObj.health()).toEqual({ dns_packets: 2 });
  });

  it.each([
    ['NOERROR', 0, 0],
    ['SERVFAIL', 2, 2],
    ['REFUSED', 5, 3],
    ['NOTIMP (other)', 4, 4],
  ])('counts a %s answer in its rcode class', async (_name, rcode, rclass) => {
    await dnsObj.run('dns_egress', ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 7 }))));
    await dnsObj.run(
      'dns_ingress',
      ipv4(IPPROTO_UDP, VIP, CLIENT, udp(53, 40000, dns({ id: 7, response: true, rcode }))),
    );
    const responses = [...noResponses];
    responses[rclass] = 1;
    expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A).responses).toEqual(responses);
  });

  it.each([
    ['A', 1, QTYPE_A],
    ['AAAA', 28, QTYPE_AAAA],
    ['MX (other)', 15, QTYPE_OTHER],
  ])('keys %s queries by their qtype class', async (_name, qtype, qclass) => {
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 7, qtype }))),
    );
    expect(row(await dnsObj.stats(), ROLE_CLIENT, qclass).queries).toBe(1);
    expect((await dnsObj.pending())[0]?.key.qtype).toBe(qtype);
  });

  it('counts a re-sent query on the same socket as a retransmit, not a query', async () => {
    const query = ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 99, qtype: 28 })));
    await dnsObj.run('dns_egress', query);
    await dnsObj.run('dns_egress', query);
    expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_AAAA)).toMatchObject({
      queries: 1,
      retransmits: UNANSWERED_1,
    });
    const [p] = await dnsObj.pending();
    expect(p?.value.retransmits).toBe(1);
    expect(p?.value.flags).toBe(0);
    expect(p!.value.last_ts_ns).toBeGreaterThan(p!.value.first_ts_ns);
  });

  it('moves a query re-sent from a new socket (same id and question) and times it from the first send', async () => {
    await dnsObj.run(
      'dns_egress',
      ipv4(
        IPPROTO_UDP,
        CLIENT,
        VIP,
        udp(40000, 53, dns({ id: 555, name: 'web.default.svc.cluster.local' })),
      ),
    );
    const [first] = await dnsObj.pending();
    await sleep(20);
    // glibc single-request-reopen: same id and question from a new port
    await dnsObj.run(
      'dns_egress',
      ipv4(
        IPPROTO_UDP,
        CLIENT,
        VIP,
        udp(40002, 53, dns({ id: 555, name: 'web.default.svc.cluster.local' })),
      ),
    );

    expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
      queries: 1,
      retransmits: UNANSWERED_1,
    });
    const pending = await dnsObj.pending();
    expect(pending).toHaveLength(1);
    expect(pending[0]!.key.port).toBe(40002);
    expect(pending[0]!.value).toMatchObject({
      first_ts_ns: first!.value.first_ts_ns,
      retransmits: 1,
      flags: PENDING_F_RETRY_NEW_SOCKET,
      name_hash: first!.value.name_hash,
    });
    const index = await dnsObj.retryIndex();
    expect(index).toHaveLength(1);
    expect(index[0]!.value).toEqual(pending[0]!.key);

    // An answer on the old socket finds nothing; the one on the new socket pairs.
    await dnsObj.run(
      'dns_ingress',
      ipv4(
        IPPROTO_UDP,
        VIP,
        CLIENT,
        udp(53, 40000, dns({ id: 555, name: 'web.default.svc.cluster.local', response: true })),
      ),
    );
    await dnsObj.run(
      'dns_ingress',
      ipv4(
        IPPROTO_UDP,
        VIP,
        CLIENT,
        udp(53, 40002, dns({ id: 555, name: 'web.default.svc.cluster.local', response: true })),
      ),
    );
    const s = row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A);
    expect(s).toMatchObject({
      queries: 1,
      retransmits: UNANSWERED_1,
      responses: [1, 0, 0, 0, 0],
      latency_count: 1,
    });
    expect(s.latency_sum_ns).toBeGreaterThanOrEqual(20_000_000); // from the first send
    expect(await dnsObj.health()).toMatchObject({ unmatched_answers: 1 });
    expect(await dnsObj.pending()).toEqual([]);
    expect(await dnsObj.retryIndex()).toEqual([]);
  });

  it.each([
    ['another id', { id: 556 }],
    ['another name', { id: 555, name: 'db.prod.svc.cluster.local' }],
    ['another qtype', { id: 555, qtype: 28 }],
  ])('counts the same from a new socket with %s as a new query', async (_name, second) => {
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 555 }))),
    );
    await dnsObj.run('dns_egress', ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40002, 53, dns(second))));
    const rows = await dnsObj.stats();
    const total = rows.reduce((a, r) => a + r.value.queries, 0);
    const retransmits = rows.reduce((a, r) => a + sum(r.value.retransmits), 0);
    expect([total, retransmits]).toEqual([2, 0]);
    expect(await dnsObj.pending()).toHaveLength(2);
  });

  it('counts an answer without a query as unmatched and nothing else', async () => {
    await dnsObj.run(
      'dns_ingress',
      ipv4(IPPROTO_UDP, VIP, CLIENT, udp(53, 40000, dns({ id: 1, response: true }))),
    );
    expect(await dnsObj.stats()).toEqual([]);
    expect(await dnsObj.health()).toEqual({ dns_packets: 1, unmatched_answers: 1 });
  });

  it('counts a duplicate answer once', async () => {
    await dnsObj.run('dns_egress', ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 1 }))));
    const answer = ipv4(IPPROTO_UDP, VIP, CLIENT, udp(53, 40000, dns({ id: 1, response: true })));
    await dnsObj.run('dns_ingress', answer);
    await dnsObj.run('dns_ingress', answer);
    expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
      queries: 1,
      responses: [1, 0, 0, 0, 0],
      latency_count: 1,
    });
    expect(await dnsObj.health()).toEqual({ dns_packets: 3, unmatched_answers: 1 });
  });

  it('pairs the server side, keyed by the client address (IPv4 as ::ffff:a.b.c.d)', async () => {
    const dnsPod = '10.244.0.21';
    await dnsObj.run(
      'dns_ingress',
      ipv4(IPPROTO_UDP, CLIENT, dnsPod, udp(40000, 53, dns({ id: 42 }))),
    );
    const [p] = await dnsObj.pending();
    expect(p?.key).toMatchObject({ role: ROLE_SERVER, port: 40000, id: 42 });
    expect(p?.key.peer).toEqual([...Array(10).fill(0), 0xff, 0xff, 10, 0, 0, 11]);
    // Another client asking the same question with the same id is no retry of the first.
    await dnsObj.run(
      'dns_ingress',
      ipv4(IPPROTO_UDP, '10.0.0.12', dnsPod, udp(40002, 53, dns({ id: 42 }))),
    );
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_UDP, dnsPod, CLIENT, udp(53, 40000, dns({ id: 42, response: true }))),
    );
    expect(row(await dnsObj.stats(), ROLE_SERVER, QTYPE_A)).toMatchObject({
      queries: 2,
      retransmits: NONE,
      responses: [1, 0, 0, 0, 0],
      latency_count: 1,
    });
    const left = await dnsObj.pending();
    expect(left.map((e) => e.key.peer.slice(12))).toEqual([[10, 0, 0, 12]]);
  });

  it('pairs IPv6 on both sides', async () => {
    const client = 'fd00:10:244::11';
    const server = 'fd00:96::10';
    await dnsObj.run(
      'dns_egress',
      ipv6(IPPROTO_UDP, client, server, udp(41000, 53, dns({ id: 6, qtype: 28 }))),
    );
    await dnsObj.run(
      'dns_ingress',
      ipv6(IPPROTO_UDP, server, client, udp(53, 41000, dns({ id: 6, qtype: 28, response: true }))),
    );
    await dnsObj.run(
      'dns_ingress',
      ipv6(IPPROTO_UDP, client, server, udp(41000, 53, dns({ id: 6, qtype: 28 }))),
    );
    const [serverSide] = await dnsObj.pending();
    expect(serverSide?.key.peer).toEqual([...ipv6Bytes(client)]);
    await dnsObj.run(
      'dns_egress',
      ipv6(IPPROTO_UDP, server, client, udp(53, 41000, dns({ id: 6, qtype: 28, response: true }))),
    );
    const rows = await dnsObj.stats();
    expect(row(rows, ROLE_CLIENT, QTYPE_AAAA)).toMatchObject({
      queries: 1,
      responses: [1, 0, 0, 0, 0],
    });
    expect(row(rows, ROLE_SERVER, QTYPE_AAAA)).toMatchObject({
      queries: 1,
      responses: [1, 0, 0, 0, 0],
    });
    expect(await dnsObj.health()).toEqual({ dns_packets: 4 });
  });

  it('walks IPv6 extension headers and the first fragment to the UDP header', async () => {
    const ext: Array<[number, Buffer]> = [
      [NEXTHDR_HOP, Buffer.alloc(6)],
      [NEXTHDR_DEST, Buffer.alloc(14)],
      [NEXTHDR_FRAGMENT, fragmentBody(0, true)],
    ];
    await dnsObj.run(
      'dns_egress',
      ipv6(IPPROTO_UDP, 'fd00::11', 'fd00::53', udp(41000, 53, dns({ id: 8 })), ext),
    );
    expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A).queries).toBe(1);
  });

  it('pairs DNS over TCP (length prefix) and ignores segments without payload', async () => {
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_TCP, CLIENT, VIP, tcp(40100, 53, Buffer.alloc(0), TCP_SYN)),
    );
    await dnsObj.run(
      'dns_ingress',
      ipv4(IPPROTO_TCP, VIP, CLIENT, tcp(53, 40100, Buffer.alloc(0))),
    );
    expect(await dnsObj.health()).toEqual({});

    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_TCP, CLIENT, VIP, tcp(40100, 53, tcpDns(dns({ id: 77 })))),
    );
    const [p] = await dnsObj.pending();
    expect(p?.key).toMatchObject({ proto: PROTO_TCP, port: 40100, id: 77 });
    await dnsObj.run(
      'dns_ingress',
      ipv4(IPPROTO_TCP, VIP, CLIENT, tcp(53, 40100, tcpDns(dns({ id: 77, response: true })))),
    );
    expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
      queries: 1,
      responses: [1, 0, 0, 0, 0],
    });
    expect(await dnsObj.health()).toEqual({ dns_packets: 2 });
  });

  it('keeps TCP and UDP queries with the same port and id apart', async () => {
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40100, 53, dns({ id: 77, name: 'a.example' }))),
    );
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_TCP, CLIENT, VIP, tcp(40100, 53, tcpDns(dns({ id: 77, name: 'b.example' })))),
    );
    expect((await dnsObj.pending()).map((e) => e.key.proto).sort()).toEqual([PROTO_UDP, PROTO_TCP]);
  });

  /** count distinct queries (source ports from 1024) as one bpftool batch, in cgroup if given. */
  async function queryBatch(count: number, cgroup?: string): Promise<void> {
    const prog = dnsObj.progPath('dns_egress');
    const files = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        dnsObj.writePacket(ipv4(IPPROTO_UDP, CLIENT, VIP, udp(1024 + i, 53, dns({ id: i })))),
      ),
    );
    const lines = files.map((f) => `prog run pinned ${prog} data_in ${f}`);
    // One bpftool process for all of them (about 12 us per run here).
    const batch = await dnsObj.writePacket(Buffer.from(lines.join('\n') + '\n'));
    await bpftool(['batch', 'file', batch], cgroup);
  }

  it("tracks one cgroup's queries beyond its share only while dns_pending is less than half full, and still tells its re-sends", async () => {
    const half = MAX_PENDING / 2;
    const extra = 5;
    await withCgroups(2, async ([a, b]) => {
      await queryBatch(half + extra, a);
      const inodeA = (await stat(a!)).ino;
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A, inodeA).queries).toBe(half + extra);
      expect(await dnsObj.health()).toEqual({
        dns_packets: half + extra,
        pending_share_full: extra,
      });
      expect(await dnsObj.pending()).toHaveLength(half);
      // Over its share, a re-send of a tracked query is still a retransmit, not a new query.
      await dnsObj.run(
        'dns_egress',
        ipv4(IPPROTO_UDP, CLIENT, VIP, udp(1024, 53, dns({ id: 0 }))),
        { cgroup: a },
      );
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A, inodeA)).toMatchObject({
        queries: half + extra,
        retransmits: UNANSWERED_1,
      });
      // Another cgroup, under its share, is tracked although the map is half full.
      await dnsObj.run(
        'dns_egress',
        ipv4(IPPROTO_UDP, CLIENT, VIP, udp(1024, 53, dns({ id: 0 }))),
        { cgroup: b },
      );
      const pending = await dnsObj.pending();
      const inodeB = (await stat(b!)).ino;
      expect(pending).toHaveLength(half + 1);
      expect(pending.filter((e) => e.key.cgroup_id === inodeB)).toHaveLength(1);
      expect((await dnsObj.health()).pending_share_full).toBe(extra);
    });
  });

  it('still counts queries that do not fit in dns_pending, and says so', async () => {
    // Eight cgroups fill it with their shares; the ninth finds no room.
    const share = MAX_PENDING / 8;
    const extra = 5;
    await withCgroups(9, async (dirs) => {
      for (const d of dirs.slice(0, 8)) await queryBatch(share, d);
      await queryBatch(extra, dirs[8]);
      const last = (await stat(dirs[8]!)).ino;
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A, last).queries).toBe(extra);
      expect(await dnsObj.health()).toEqual({
        dns_packets: MAX_PENDING + extra,
        pending_full: extra,
      });
      expect(await dnsObj.pending()).toHaveLength(MAX_PENDING);
      expect(await dnsObj.retryIndex()).toHaveLength(MAX_PENDING);
    });
  });

  it('keeps the full 255-byte name limit and stores the first 128 bytes', async () => {
    const name = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
    expect(wireName(name)).toHaveLength(255);
    await dnsObj.run(
      'dns_egress',
      ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 3, name }))),
    );
    const [p] = await dnsObj.pending();
    expect(p?.value.qname_len).toBe(QNAME_LEN);
    expect(p?.value.qname).toEqual([...wireName(name).subarray(0, QNAME_LEN)]);
    expect(await dnsObj.health()).toEqual({ dns_packets: 1 });
  });

  it('attributes packets to the cgroup of their socket', async () => {
    await withCgroups(2, async ([a, b]) => {
      const query = ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 9 })));
      await dnsObj.run('dns_egress', query, { cgroup: a });
      await dnsObj.run('dns_egress', query, { cgroup: b });
      await dnsObj.run(
        'dns_ingress',
        ipv4(IPPROTO_UDP, VIP, CLIENT, udp(53, 40000, dns({ id: 9, response: true }))),
        { cgroup: a },
      );
      const [inodeA, inodeB] = [(await stat(a!)).ino, (await stat(b!)).ino];
      const rows = await dnsObj.stats();
      expect(row(rows, ROLE_CLIENT, QTYPE_A, inodeA)).toMatchObject({
        queries: 1,
        latency_count: 1,
      });
      expect(row(rows, ROLE_CLIENT, QTYPE_A, inodeB)).toMatchObject({
        queries: 1,
        latency_count: 0,
      });
      expect((await dnsObj.pending()).map((e) => e.key.cgroup_id)).toEqual([inodeB]);
    });
  });

  it.each([
    ['UDP to 443', ipv4(IPPROTO_UDP, CLIENT, '1.1.1.1', udp(40000, 443, dns({ id: 1 })))],
    [
      'TCP to 80 with payload',
      ipv4(IPPROTO_TCP, CLIENT, '1.1.1.1', tcp(40000, 80, Buffer.from('GET / HTTP/1.1\r\n\r\n'))),
    ],
    ['IPv6 UDP to 123', ipv6(IPPROTO_UDP, 'fd00::1', 'fd00::2', udp(123, 123, Buffer.alloc(48)))],
    ['ICMP', ipv4(1, CLIENT, VIP, Buffer.alloc(16))],
    [
      'IPv6 routing header then TCP to 443',
      ipv6(IPPROTO_TCP, 'fd00::1', 'fd00::2', tcp(40000, 443, Buffer.alloc(10)), [
        [NEXTHDR_ROUTING, Buffer.alloc(6)],
      ]),
    ],
    // Test-run refuses an IPv4 frame shorter than an IP header, so the runt comes as another type.
    [
      'a runt (8 bytes that start like IPv4)',
      ether(0x88b5, Buffer.from([0x45, 0, 0, 8, 0, 0, 0, 0])),
    ],
    ['not IP at all', ether(0x0806, Buffer.alloc(28))],
  ])('leaves %s alone', async (_name, packet) => {
    expect(await dnsObj.run('dns_egress', packet)).toBe(1);
    expect(await dnsObj.run('dns_ingress', packet)).toBe(1);
    expect(await dnsObj.stats()).toEqual([]);
    expect(await dnsObj.pending()).toEqual([]);
    expect(await dnsObj.health()).toEqual({});
  });

  const q = (payload: Buffer) => ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, payload));
  const header = (qdcount: number) => dns({ id: 1, qdcount, question: Buffer.alloc(0) });
  it.each([
    ['an empty UDP payload', q(Buffer.alloc(0)), { parse_truncated: 1 }],
    ['half a DNS header', q(Buffer.alloc(6)), { parse_truncated: 1 }],
    ['a header without its question', q(header(1)), { dns_packets: 1, parse_truncated: 1 }],
    [
      'a name running past the end',
      q(Buffer.concat([header(1), Buffer.from('\x07exam', 'latin1')])),
      { dns_packets: 1, parse_truncated: 1 },
    ],
    [
      'a question without QTYPE',
      q(Buffer.concat([header(1), wireName('example.com')])),
      { dns_packets: 1, parse_truncated: 1 },
    ],
    ['two questions', q(dns({ id: 1, qdcount: 2 })), { dns_packets: 1, parse_bad_question: 1 }],
    ['no question', q(dns({ id: 1, qdcount: 0 })), { dns_packets: 1, parse_bad_question: 1 }],
    [
      'a compression pointer',
      q(Buffer.concat([header(1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])),
      { dns_packets: 1, parse_bad_question: 1 },
    ],
    [
      'a reserved label type',
      q(Buffer.concat([header(1), Buffer.from([0x41, 0x61, 0, 0, 1, 0, 1])])),
      { dns_packets: 1, parse_bad_question: 1 },
    ],
    [
      'a 256-byte name',
      q(
        dns({
          id: 1,
          name: ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62)].join('.'),
        }),
      ),
      { dns_packets: 1, parse_bad_question: 1 },
    ],
    [
      'an IPv4 non-first fragment',
      ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 1 })), { offset8: 185 }),
      { parse_fragment: 1 },
    ],
    [
      'an IPv6 non-first fragment',
      ipv6(IPPROTO_UDP, 'fd00::1', 'fd00::53', Buffer.alloc(64), [
        [NEXTHDR_FRAGMENT, fragmentBody(185, false)],
      ]),
      { parse_fragment: 1 },
    ],
    [
      'five IPv6 extension headers',
      ipv6(
        IPPROTO_UDP,
        'fd00::1',
        'fd00::53',
        udp(40000, 53, dns({ id: 1 })),
        Array(5).fill([NEXTHDR_DEST, Buffer.alloc(6)]),
      ),
      { parse_ipv6_ext: 1 },
    ],
    [
      'a TCP segment in the middle of a message',
      ipv4(IPPROTO_TCP, CLIENT, VIP, tcp(40100, 53, Buffer.from('\x41'.repeat(40), 'latin1'))),
      { parse_tcp_not_start: 1 },
    ],
    [
      'a TCP segment with only the length prefix',
      ipv4(IPPROTO_TCP, CLIENT, VIP, tcp(40100, 53, Buffer.from([0, 29]))),
      { parse_tcp_not_start: 1 },
    ],
    ['a NOTIFY (opcode 4)', q(dns({ id: 1, opcode: 4 })), { dns_packets: 1 }],
    ['an answer sent to port 53', q(dns({ id: 1, response: true })), { dns_packets: 1 }],
  ])('counts %s in the health counters only', async (_name, packet, health) => {
    expect(await dnsObj.run('dns_egress', packet)).toBe(1);
    expect(await dnsObj.health()).toEqual(health);
    expect(await dnsObj.stats()).toEqual([]);
    expect(await dnsObj.pending()).toEqual([]);
  });

  describe('the join with dropped_queries (records as the drop programs write them)', () => {
    const AAAA = 28;
    const query = (port = 40000, id = 77) =>
      ipv4(IPPROTO_UDP, CLIENT, VIP, udp(port, 53, dns({ id, qtype: AAAA })));
    const drop = (cause: number, port = 40000, id = 77) =>
      dnsObj.recordDrop({ addr: mapped(CLIENT), port, id, qtype: AAAA }, cause);
    const aaaa = async () => row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_AAAA);

    it('keeps the client address in the pending query: the source on the client side, the peer on the server side', async () => {
      await dnsObj.run('dns_egress', query());
      await dnsObj.run(
        'dns_ingress',
        ipv4(IPPROTO_UDP, '10.0.0.12', '10.244.0.21', udp(40001, 53, dns({ id: 5 }))),
      );
      await dnsObj.run(
        'dns_egress',
        ipv6(IPPROTO_UDP, 'fd00:10:244::11', 'fd00:96::10', udp(41000, 53, dns({ id: 6 }))),
      );
      const byPort = new Map((await dnsObj.pending()).map((e) => [e.key.port, e.value]));
      expect(byPort.get(40000)).toMatchObject({
        client_addr: [...mapped(CLIENT)],
        cause: CAUSE_UNANSWERED,
      });
      expect(byPort.get(40001)?.client_addr).toEqual([...mapped('10.0.0.12')]);
      expect(byPort.get(41000)?.client_addr).toEqual([...ipv6Bytes('fd00:10:244::11')]);
    });

    it('learns client pod addresses from new client queries only, and refreshes them at most once a second', async () => {
      await dnsObj.run('dns_egress', query());
      const [first] = await dnsObj.clientAddrs();
      expect(first?.key).toEqual([...mapped(CLIENT)]);
      expect(first?.value.cgroup_id).toBe(1); // bpftool runs in the root cgroup
      expect(first?.value.last_seen_ns).toBeGreaterThan(0);
      await dnsObj.run('dns_egress', query()); // a retransmit
      await dnsObj.run('dns_egress', query(40001, 78)); // a new query within the second
      await dnsObj.run(
        'dns_ingress',
        ipv4(IPPROTO_UDP, '10.0.0.12', '10.244.0.21', udp(40001, 53, dns({ id: 5 }))),
      );
      expect(await dnsObj.clientAddrs()).toEqual([first]);
      await sleep(1100);
      await dnsObj.run('dns_egress', query(40002, 79));
      const [later] = await dnsObj.clientAddrs();
      expect(later!.value.last_seen_ns).toBeGreaterThan(first!.value.last_seen_ns);
    });

    it('moves an address to the cgroup that queried from it last', async () => {
      await withCgroups(1, async ([other]) => {
        await dnsObj.run('dns_egress', query());
        await dnsObj.run('dns_egress', query(40001, 78), { cgroup: other });
        const [a] = await dnsObj.clientAddrs();
        expect(a?.value.cgroup_id).toBe((await stat(other!)).ino);
      });
    });

    it('counts a same-socket retransmit of a dropped query under the cause of the drop, and consumes the record', async () => {
      await dnsObj.run('dns_egress', query());
      await drop(CAUSE_NETFILTER_DROP);
      await dnsObj.run('dns_egress', query());
      expect(await aaaa()).toMatchObject({ queries: 1, retransmits: [0, 1, 0] });
      expect((await dnsObj.pending())[0]?.value.cause).toBe(CAUSE_NETFILTER_DROP);
      expect(await dnsObj.droppedQueries()).toEqual([]);

      // The pending query keeps its cause; an insert failure seen later wins over it, and
      // a netfilter drop seen after that does not take it back.
      await dnsObj.run('dns_egress', query());
      await drop(CAUSE_CONNTRACK_INSERT_FAILED);
      await dnsObj.run('dns_egress', query());
      await drop(CAUSE_NETFILTER_DROP);
      await dnsObj.run('dns_egress', query());
      expect((await aaaa()).retransmits).toEqual([0, 2, 2]);
      expect((await dnsObj.pending())[0]?.value).toMatchObject({
        cause: CAUSE_CONNTRACK_INSERT_FAILED,
        retransmits: 4,
      });
    });

    it('carries the cause of a dropped send over to a retry from a new socket', async () => {
      await dnsObj.run('dns_egress', query(40000));
      await drop(CAUSE_CONNTRACK_INSERT_FAILED, 40000);
      await dnsObj.run('dns_egress', query(40002));
      expect(await aaaa()).toMatchObject({ queries: 1, retransmits: [0, 0, 1] });
      const [p] = await dnsObj.pending();
      expect(p?.key.port).toBe(40002);
      expect(p?.value).toMatchObject({
        cause: CAUSE_CONNTRACK_INSERT_FAILED,
        flags: PENDING_F_RETRY_NEW_SOCKET,
      });
      expect(await dnsObj.droppedQueries()).toEqual([]);
    });

    it('times out a query whose last send was dropped and never re-sent under the cause of the drop', async () => {
      await dnsObj.run('dns_egress', query());
      await drop(CAUSE_NETFILTER_DROP);
      const [p] = await dnsObj.pending();
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [p!.key]));
      expect(await aaaa()).toMatchObject({ retransmits: NONE, timeouts: [0, 1, 0] });
      expect(await dnsObj.droppedQueries()).toEqual([]);
    });

    it('times out a re-sent query under the cause its pending entry carries', async () => {
      await dnsObj.run('dns_egress', query());
      await drop(CAUSE_CONNTRACK_INSERT_FAILED);
      await dnsObj.run('dns_egress', query());
      const [p] = await dnsObj.pending();
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [p!.key]));
      expect(await aaaa()).toMatchObject({ retransmits: [0, 0, 1], timeouts: [0, 0, 1] });
    });

    it.each([
      ['another id', { port: 40000, id: 78, addr: CLIENT }],
      ['another port', { port: 40001, id: 77, addr: CLIENT }],
      ['another address', { port: 40000, id: 77, addr: '10.0.0.12' }],
    ])('ignores the drop of %s', async (_name, other) => {
      await dnsObj.run('dns_egress', query());
      await dnsObj.recordDrop(
        { addr: mapped(other.addr), port: other.port, id: other.id, qtype: AAAA },
        CAUSE_NETFILTER_DROP,
      );
      await dnsObj.run('dns_egress', query());
      const [p] = await dnsObj.pending();
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [p!.key]));
      expect(await aaaa()).toMatchObject({ retransmits: UNANSWERED_1, timeouts: UNANSWERED_1 });
      expect(await dnsObj.droppedQueries()).toHaveLength(1);
    });

    it('answers end a dropped-then-re-sent query as a response, whatever its cause', async () => {
      await dnsObj.run('dns_egress', query());
      await drop(CAUSE_NETFILTER_DROP);
      await dnsObj.run('dns_egress', query());
      await dnsObj.run(
        'dns_ingress',
        ipv4(
          IPPROTO_UDP,
          VIP,
          CLIENT,
          udp(53, 40000, dns({ id: 77, qtype: AAAA, response: true })),
        ),
      );
      expect(await aaaa()).toMatchObject({
        retransmits: [0, 1, 0],
        timeouts: NONE,
        responses: [1, 0, 0, 0, 0],
      });
    });
  });

  describe('dns_sweep_timeouts', () => {
    async function oneQuery(id = 11): Promise<PendingKey> {
      await dnsObj.run('dns_egress', ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id }))));
      const [p] = await dnsObj.pending();
      if (!p) throw new Error('the query was not tracked');
      return p.key;
    }
    const answer = (id = 11) =>
      ipv4(IPPROTO_UDP, VIP, CLIENT, udp(53, 40000, dns({ id, response: true })));

    it('times out an expired query exactly once; its late answer is unmatched', async () => {
      const key = await oneQuery();
      expect(await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [key]))).toBe(1);
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
        queries: 1,
        timeouts: UNANSWERED_1,
      });
      expect(await dnsObj.pending()).toEqual([]);
      expect(await dnsObj.retryIndex()).toEqual([]);

      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [key]));
      await dnsObj.run('dns_ingress', answer());
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
        timeouts: UNANSWERED_1,
        responses: noResponses,
        latency_count: 0,
      });
      expect(await dnsObj.health()).toEqual({
        dns_packets: 2,
        sweep_runs: 2,
        unmatched_answers: 1,
      });
    });

    it('leaves a query younger than the deadline pending, and its answer still pairs', async () => {
      const key = await oneQuery();
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n << 62n, [key]));
      expect(await dnsObj.pending()).toHaveLength(1);
      await dnsObj.run('dns_ingress', answer());
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
        timeouts: NONE,
        responses: [1, 0, 0, 0, 0],
      });
    });

    it('does not count an answered query as a timeout', async () => {
      const key = await oneQuery();
      await dnsObj.run('dns_ingress', answer());
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [key]));
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
        timeouts: NONE,
        latency_count: 1,
      });
    });

    it('runs from the last send: a retransmit postpones the deadline', async () => {
      const key = await oneQuery();
      await sleep(300);
      await dnsObj.run(
        'dns_egress',
        ipv4(IPPROTO_UDP, CLIENT, VIP, udp(40000, 53, dns({ id: 11 }))),
      );
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(250_000_000n, [key]));
      expect(await dnsObj.pending()).toHaveLength(1);
      await sleep(300);
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(250_000_000n, [key]));
      expect(await dnsObj.pending()).toEqual([]);
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A)).toMatchObject({
        queries: 1,
        retransmits: UNANSWERED_1,
        timeouts: UNANSWERED_1,
      });
    });

    it(`examines at most ${SWEEP_MAX_KEYS} keys per run, and many runs fit in one bpftool batch`, async () => {
      const queries = Array.from(
        { length: SWEEP_MAX_KEYS + 1 },
        (_, i) => `prog run pinned ${dnsObj.progPath('dns_egress')} data_in %FILE${i}%`,
      );
      const files = await Promise.all(
        queries.map((_, i) =>
          dnsObj.writePacket(ipv4(IPPROTO_UDP, CLIENT, VIP, udp(20000 + i, 53, dns({ id: i })))),
        ),
      );
      const batch = join(await mkdtemp(join(tmpdir(), 'dnsrace-test-')), 'batch');
      try {
        await writeFile(
          batch,
          queries.map((l, i) => l.replace(`%FILE${i}%`, files[i]!)).join('\n') + '\n',
        );
        await bpftool(['batch', 'file', batch]);
        const keys = (await dnsObj.pending()).map((e) => e.key);
        expect(keys).toHaveLength(SWEEP_MAX_KEYS + 1);

        await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, keys));
        expect(await dnsObj.pending()).toHaveLength(1);
        expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A).timeouts).toEqual([
          SWEEP_MAX_KEYS,
          0,
          0,
        ]);

        // Two sweep runs (one key each, the second one already gone) in one process.
        const last = keys[SWEEP_MAX_KEYS]!;
        const f1 = await dnsObj.writePacket(sweepRequest(1n, [last]));
        const f2 = await dnsObj.writePacket(sweepRequest(1n, [keys[0]!]));
        const sweep = dnsObj.progPath('dns_sweep_timeouts');
        await writeFile(
          batch,
          `prog run pinned ${sweep} data_in ${f1}\nprog run pinned ${sweep} data_in ${f2}\n`,
        );
        await bpftool(['batch', 'file', batch]);
        expect(await dnsObj.pending()).toEqual([]);
        expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A).timeouts).toEqual([
          SWEEP_MAX_KEYS + 1,
          0,
          0,
        ]);
        expect((await dnsObj.health()).sweep_runs).toBe(3);
        expect(await dnsObj.retryIndex()).toEqual([]);
      } finally {
        await rm(join(batch, '..'), { recursive: true, force: true });
      }
    });

    it('ignores keys that are not pending and a request shorter than it claims', async () => {
      const key = await oneQuery();
      const other = { ...key, id: key.id + 1 };
      await dnsObj.run('dns_sweep_timeouts', sweepRequest(1n, [other, key], 3));
      expect(row(await dnsObj.stats(), ROLE_CLIENT, QTYPE_A).timeouts).toEqual(UNANSWERED_1);
      expect(await dnsObj.pending()).toEqual([]);
    });
  });
});

/** Where cgroup2 is mounted (/sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid). */
async function cgroup2Mount(): Promise<string> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  const line = mounts.split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
  if (!line) throw new Error('no cgroup2 mount: mount -t cgroup2 none /sys/fs/cgroup/unified');
  return line.split(' ')[1]!;
}

/** Runs fn with n fresh cgroups of this test (removed after, also on failure). */
async function withCgroups(n: number, fn: (dirs: string[]) => Promise<void>): Promise<void> {
  const base = join(await cgroup2Mount(), `dnsrace-test-${randomBytes(4).toString('hex')}`);
  const dirs = Array.from({ length: n }, (_, i) => join(base, `c${i}`));
  for (const d of dirs) await mkdir(d, { recursive: true });
  try {
    await fn(dirs);
  } finally {
    for (const d of dirs) await rmdir(d).catch(() => undefined);
    await rmdir(base).catch(() => undefined);
  }
}

/**
 * A DNS client and server over loopback: UDP on 127.0.0.1 and ::1, then DNS over TCP (one
 * connection, one message per segment). Runs inside the test's netns and cgroup.
 */
const LOOPBACK_DNS = `
import dgram from 'node:dgram';
import net from 'node:net';
const n = Number(process.env.DNS_ROUNDS);
const name = Buffer.from('\\x03web\\x07default\\x03svc\\x07cluster\\x05local\\x00', 'latin1');
const query = (id) => {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0); h.writeUInt16BE(0x0100, 2); h.writeUInt16BE(1, 4);
  return Buffer.concat([h, name, Buffer.from([0, 1, 0, 1])]);
};
const answer = (q) => { const a = Buffer.from(q); a[2] |= 0x80; return a; };
const prefixed = (m) => { const p = Buffer.alloc(2); p.writeUInt16BE(m.length); return Buffer.concat([p, m]); };
async function udp(type, addr) {
  const srv = dgram.createSocket(type);
  await new Promise((r) => srv.bind(53, addr, r));
  srv.on('message', (m, from) => srv.send(answer(m), from.port, from.address));
  const cli = dgram.createSocket(type);
  for (let i = 0; i < n; i++) {
    await new Promise((r) => { cli.once('message', r); cli.send(query(i), 53, addr); });
  }
  cli.close(); srv.close();
}
async function tcp() {
  const srv = net.createServer((s) => {
    s.setNoDelay(true);
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + m.length);
        s.write(prefixed(answer(m)));
      }
    });
  });
  await new Promise((r) => srv.listen(53, '127.0.0.1', r));
  const c = net.connect(53, '127.0.0.1');
  c.setNoDelay(true);
  await new Promise((r) => c.once('connect', r));
  for (let i = 0; i < n; i++) {
    await new Promise((r) => { c.once('data', r); c.write(prefixed(query(1000 + i))); });
  }
  await new Promise((r) => c.end(r));
  await new Promise((r) => srv.close(r));
}
await udp('udp4', '127.0.0.1');
await udp('udp6', '::1');
await tcp();
`;

describe('dns.bpf.o attached to a cgroup, on real loopback traffic', () => {
  it('pairs UDP (IPv4, IPv6) and TCP on both the client and the server side', async () => {
    const rounds = 20;
    const tag = `dnsrace-test-${randomBytes(4).toString('hex')}`;
    const cgroup = join(await cgroup2Mount(), tag);
    const netns = tag;
    const dnsObj = await LoadedDns.load();
    const attached: string[] = [];
    let netnsMade = false;
    await mkdir(cgroup);
    try {
      await execa('ip', ['netns', 'add', netns]);
      netnsMade = true;
      await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      for (const [dir, prog] of [
        ['egress', 'dns_egress'],
        ['ingress', 'dns_ingress'],
      ] as const) {
        await bpftool(['cgroup', 'attach', cgroup, dir, 'pinned', dnsObj.progPath(prog), 'multi']);
        attached.push(dir);
      }
      await execa(
        'sh',
        [
          '-c',
          'echo $$ > "$1" && shift && exec "$@"',
          'sh',
          join(cgroup, 'cgroup.procs'),
          'ip',
          'netns',
          'exec',
          netns,
          process.execPath,
          '--input-type=module',
          '-e',
          LOOPBACK_DNS,
        ],
        { env: { DNS_ROUNDS: String(rounds) }, timeout: 60_000 },
      );

      const inode = (await stat(cgroup)).ino;
      const rows = await dnsObj.stats();
      expect(rows.map((r) => r.key.cgroup_id)).toEqual([inode, inode]);
      for (const role of [ROLE_CLIENT, ROLE_SERVER]) {
        expect(row(rows, role, QTYPE_A, inode), `role ${role}`).toMatchObject({
          queries: 3 * rounds,
          retransmits: NONE,
          timeouts: NONE,
          responses: [3 * rounds, 0, 0, 0, 0],
          latency_count: 3 * rounds,
        });
      }
      expect(await dnsObj.pending()).toEqual([]);
      expect(await dnsObj.retryIndex()).toEqual([]);
      // Handshake, ACK and FIN segments carry no payload: not DNS, not an error.
      expect(await dnsObj.health()).toEqual({ dns_packets: 12 * rounds });
    } finally {
      for (const dir of attached) {
        const prog = dir === 'egress' ? 'dns_egress' : 'dns_ingress';
        await bpftool(['cgroup', 'detach', cgroup, dir, 'pinned', dnsObj.progPath(prog)]);
      }
      if (netnsMade) await execa('ip', ['netns', 'del', netns]);
      await rmdir(cgroup);
      await dnsObj.close();
    }
  });
});
