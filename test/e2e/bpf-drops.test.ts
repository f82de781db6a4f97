/**
 * The drop attribution on this kernel, end to end: the loader attaches dns.bpf.o to a lab's
 * pod cgroups and the drop programs to kfree_skb, real resolvers in lab pods lose queries to
 * real netfilter rules in the lab's node netns, and the maps must say which pod lost what,
 * and why its DNS queries were re-sent or timed out.
 *
 * The kfree_skb program sees the drops of every netns on the host, including other tests'
 * labs, whose pods have the same addresses: counts in packet_drops and drop_health are
 * therefore checked as "at least", and rows are told apart by what only this test makes.
 * dns_stats rows are keyed by this lab's pod cgroups and are checked exactly.
 *
 * Needs root, bpftool, and the lab's tools (the lab's preflight names what to install).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bpftool } from '../../src/bpf/bpftool.js';
import type { JsonObject } from '../../src/bpf/bpftool-output.js';
import { DnsProgramLoader, type LoadedPrograms } from '../../src/bpf/loader.js';
import type { PendingKey } from '../../src/bpf/sweep-request.js';
import { createLab, type Lab, type Pod } from '../lab/index.js';

const DNS_OBJ = fileURLToPath(new URL('../../bpf/dist/dns.bpf.o', import.meta.url));

// bpf/dns.h and bpf/drops.h mirrored.
const ROLE_CLIENT = 0;
const QTYPE_AAAA = 1;
const QTYPE_OTHER = 2;
const QTYPE_CLASSES = 3;
const CAUSE_NETFILTER_DROP = 1;
const DROP_NETFILTER = 0;
const PORT_OTHER = 0;
const PORT_DNS = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const DROP_HEALTH = { events: 0, unattributed: 1, unattrNetfilter: 5 } as const;

/** A TCP port the node netns drops (INPUT): connections from pods to it stall in SYN_SENT. */
const DROPPED_TCP_PORT = 9;

interface DropRow {
  key: {
    pod_addr: number[];
    proto: number;
    port_class: number;
    qtype: number;
    reason: number;
    direction: number;
  };
  value: number;
}

const bpftool = new Bpftool();
let lab: Lab;
let loader: DnsProgramLoader;
let loaded: LoadedPrograms;
let muslPod: Pod;
let glibcPod: Pod;
let quietPod: Pod;

function mapped(v4: string): number[] {
  return [...Array<number>(10).fill(0), 0xff, 0xff, ...v4.split('.').map(Number)];
}

async function dump<T>(map: string): Promise<T[]> {
  return (await bpftool.mapDump(loaded.maps[map]!)) as unknown as T[];
}

async function dropRows(addr: string | number[]): Promise<DropRow[]> {
  const want = JSON.stringify(typeof addr === 'string' ? mapped(addr) : addr);
  return (await dump<DropRow>('packet_drops')).filter(
    (r) => JSON.stringify(r.key.pod_addr) === want,
  );
}

/** Enters addr in dns_client_addrs, as dns_egress does for a pod's query (cgroup id 1). */
async function knowAddress(addr: number[]): Promise<void> {
  const value = Buffer.alloc(16); // struct client_addr_val: cgroup_id, last_seen_ns
  value.writeBigUInt64LE(1n, 0);
  await bpftool.mapUpdate(loaded.maps.dns_client_addrs!, Uint8Array.from(addr), value);
}

async function dropHealth(): Promise<number[]> {
  const rows = await bpftool.mapDump(loaded.maps.drop_health!, { perCpu: 'sum' });
  return rows.map((r) => Number(r.value));
}

/** The dns_stats row of (pod, client role, AAAA), or undefined. */
async function aaaaStats(pod: Pod): Promise<JsonObject | undefined> {
  const rows = await bpftool.mapDump(loaded.maps.dns_stats!);
  const row = rows.find((r) => {
    const k = r.key as JsonObject;
    return (
      BigInt(k.cgroup_id as number) === pod.cgroupId &&
      k.role === ROLE_CLIENT &&
      k.qtype === QTYPE_AAAA
    );
  });
  return row?.value as JsonObject | undefined;
}

async function pendingOf(pod: Pod): Promise<Array<{ key: JsonObject; value: JsonObject }>> {
  return (await bpftool.mapDump(loaded.maps.dns_pending!))
    .filter((e) => BigInt((e.key as JsonObject).cgroup_id as number) === pod.cgroupId)
    .map((e) => ({ key: e.key as JsonObject, value: e.value as JsonObject }));
}

function sweepKey(k: JsonObject): PendingKey {
  return {
    cgroupId: BigInt(k.cgroup_id as number),
    peer: Uint8Array.from(k.peer as number[]),
    port: k.port as number,
    id: k.id as number,
    qtype: k.qtype as number,
    role: k.role as number,
    proto: k.proto as number,
  };
}

/** A TCP connect from the pod to the node's dropped port: SYNs that netfilter drops. */
async function connectToDroppedPort(pod: Pod): Promise<void> {
  const r = await pod.exec([
    'python3',
    '-c',
    'import socket,sys\n' +
      'try:\n' +
      `  socket.create_connection(("${lab.net.gateway4}", ${DROPPED_TCP_PORT}), timeout=1.5)\n` +
      '  sys.exit("connected, but the port should be dropped")\n' +
      'except socket.timeout:\n' +
      '  pass\n',
  ]);
  expect(r.exitCode, `python3 in the pod: ${r.stderr}`).toBe(0);
}

beforeAll(async () => {
  expect(process.getuid?.(), 'bpf-drops needs root (BPF, netns, iptables)').toBe(0);
  await bpftool.requireVersion('7.2.0');
  expect(existsSync(DNS_OBJ), `${DNS_OBJ} is missing: run scripts/build-bpf.sh`).toBe(true);
  lab = await createLab({
    pods: [
      { namespace: 'team-a', name: 'musl-client' },
      { namespace: 'team-a', name: 'glibc-client' },
      { namespace: 'team-b', name: 'quiet' },
    ],
  });
  [muslPod, glibcPod, quietPod] = lab.pods as [Pod, Pod, Pod];
  loader = new DnsProgramLoader({
    bpftool,
    objPath: DNS_OBJ,
    cgroupDir: lab.cgroupDir,
    bpffsDir: join(lab.bpffsDir, 'dnsrace'),
  });
  loaded = await loader.start();
  const r = await lab.nodeNsenter([
    'iptables',
    '-I',
    'INPUT',
    '-p',
    'tcp',
    '--dport',
    String(DROPPED_TCP_PORT),
    '-j',
    'DROP',
  ]);
  expect(r.exitCode, r.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  try {
    await loader?.stop({ purge: true });
  } finally {
    await lab?.destroy(); // the node netns, with its rules, goes too
  }
  expect(existsSync(join(lab.bpffsDir, 'dnsrace'))).toBe(false);
});

describe('drop attribution on this kernel (tracepoint mode)', () => {
  it('selects the kfree_skb raw tracepoint: the host refuses fexit with EPERM', () => {
    expect(loaded.dropAttribution.mode).toBe('tracepoint');
    expect(loaded.dropAttribution.fallbacks).toEqual([
      expect.stringMatching(/^fexit: conntrack_fexit\.bpf\.o: .*Operation not permitted/),
    ]);
    expect(Object.keys(loaded.dropAttribution.links)).toEqual(['drops_kfree_skb']);
  });

  it("a netfilter drop of a pod's AAAA query: a packet_drops row, a dropped_queries record, and musl's retransmit and timeout joined to it in dns_stats", async () => {
    const undo = await lab.dropQueries({ qtype: 'AAAA', fromPod: muslPod });
    let r;
    try {
      r = await muslPod.musl('web');
    } finally {
      await undo();
    }
    // musl re-sends the AAAA once on the same socket after 2.5 s and gives up at 5 s.
    expect(r.stderr).toContain('getaddrinfo: -3');

    const rows = await dropRows(muslPod.ipv4);
    const aaaaDrops = rows.find(
      (x) =>
        x.key.proto === IPPROTO_UDP &&
        x.key.port_class === PORT_DNS &&
        x.key.qtype === QTYPE_AAAA &&
        x.key.reason === DROP_NETFILTER &&
        x.key.direction === 0,
    );
    expect(aaaaDrops?.value, JSON.stringify(rows)).toBeGreaterThanOrEqual(2);

    // The pod's address is known, as its cgroup's.
    const addrs = await dump<{ key: number[]; value: { cgroup_id: number } }>('dns_client_addrs');
    const known = addrs.find((a) => JSON.stringify(a.key) === JSON.stringify(mapped(muslPod.ipv4)));
    expect(BigInt(known?.value.cgroup_id ?? -1)).toBe(muslPod.cgroupId);

    // The query is still pending; the drop of its last send waits in dropped_queries.
    const pending = (await pendingOf(muslPod)).filter((p) => p.key.qtype === 28);
    expect(pending).toHaveLength(1);
    const [p] = pending;
    expect(p!.value).toMatchObject({
      retransmits: 1,
      cause: CAUSE_NETFILTER_DROP,
      client_addr: mapped(muslPod.ipv4),
    });
    const records = await dump<{ key: JsonObject; value: JsonObject }>('dropped_queries');
    expect(records).toContainEqual({
      key: {
        client_addr: mapped(muslPod.ipv4),
        port: p!.key.port,
        id: p!.key.id,
        qtype: 28,
        pad: 0,
      },
      value: expect.objectContaining({ cause: CAUSE_NETFILTER_DROP }),
    });
    expect(await aaaaStats(muslPod)).toMatchObject({
      queries: 1,
      retransmits: [0, 1, 0],
      timeouts: [0, 0, 0],
    });

    // The exporter's sweep ends it as a timeout, because of the drop.
    await loader.sweepTimeouts([sweepKey(p!.key)], 1_000_000_000n);
    expect(await aaaaStats(muslPod)).toMatchObject({
      queries: 1,
      retransmits: [0, 1, 0],
      timeouts: [0, 1, 0],
    });
    expect(await pendingOf(muslPod)).toEqual([]);
    const left = await dump<{ key: JsonObject }>('dropped_queries');
    expect(left.filter((d) => d.key.port === p!.key.port && d.key.id === p!.key.id)).toEqual([]);
  }, 30_000);

  it("glibc's retransmit of a dropped AAAA counts under the netfilter drop; the answer to it ends the query", async () => {
    const undo = await lab.dropQueries({ qtype: 'AAAA', count: 1, fromPod: glibcPod });
    let r;
    try {
      r = await glibcPod.getent('web');
    } finally {
      await undo();
    }
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.durationMs).toBeGreaterThanOrEqual(4500);
    const s = await aaaaStats(glibcPod);
    expect(s).toMatchObject({ retransmits: [0, 1, 0], timeouts: [0, 0, 0] });
    expect((s!.responses as number[]).reduce((a, b) => a + b, 0)).toBe(s!.queries);
    expect(await pendingOf(glibcPod)).toEqual([]);
  }, 30_000);

  it('a non-DNS netfilter drop of a pod that asked DNS before lands in packet_drops as port class other', async () => {
    const before = (await dropRows(muslPod.ipv4)).find(
      (x) => x.key.proto === IPPROTO_TCP && x.key.port_class === PORT_OTHER,
    );
    await connectToDroppedPort(muslPod);
    const rows = await dropRows(muslPod.ipv4);
    const syn = rows.find((x) => x.key.proto === IPPROTO_TCP && x.key.port_class === PORT_OTHER);
    expect(syn?.key, JSON.stringify(rows)).toEqual({
      pod_addr: mapped(muslPod.ipv4),
      proto: IPPROTO_TCP,
      port_class: PORT_OTHER,
      qtype: QTYPE_CLASSES,
      reason: DROP_NETFILTER,
      direction: 0,
      pad: [0, 0, 0],
    });
    expect(syn!.value).toBeGreaterThan(before?.value ?? 0);
  }, 15_000);

  it('drops of an address no pod asked DNS from only count in drop_health', async () => {
    const before = await dropHealth();
    await connectToDroppedPort(quietPod);
    const after = await dropHealth();
    expect(after[DROP_HEALTH.unattributed]).toBeGreaterThan(before[DROP_HEALTH.unattributed]!);
    expect(after[DROP_HEALTH.unattrNetfilter]).toBeGreaterThan(
      before[DROP_HEALTH.unattrNetfilter]!,
    );
    expect(after[DROP_HEALTH.events]).toBeGreaterThan(before[DROP_HEALTH.events]!);
    const rows = await dropRows(quietPod.ipv4);
    expect(rows.filter((x) => x.key.port_class === PORT_OTHER)).toEqual([]);
  }, 15_000);

  it('parses IPv6, other qtypes, and DNS over TCP (counted without its question: TCP payload is not linear)', async () => {
    // A scratch netns of this test: queries over loopback dropped in OUTPUT.
    const netns = `dnsrace-test-drops-${randomBytes(4).toString('hex')}`;
    const inNetns = (argv: string[]) =>
      execa('ip', ['netns', 'exec', netns, ...argv], { reject: false });
    await execa('ip', ['netns', 'add', netns]);
    try {
      await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      for (const rule of [
        ['ip6tables', '-A', 'OUTPUT', '-p', 'udp', '--dport', '53', '-j', 'DROP'],
        ['iptables', '-A', 'OUTPUT', '-p', 'udp', '--dport', '53', '-j', 'DROP'],
        // the handshake passes, the segment with the query does not
        [
          'iptables',
          '-A',
          'OUTPUT',
          '-p',
          'tcp',
          '--dport',
          '53',
          '-m',
          'length',
          '--length',
          '70:65535',
          '-j',
          'DROP',
        ],
      ]) {
        const r = await inNetns(rule);
        expect(r.exitCode, `${rule.join(' ')}: ${r.stderr}`).toBe(0);
      }
      const dig = (args: string[]) =>
        inNetns(['dig', '+tries=1', '+timeout=1', ...args, 'example.com']);
      // A DNS query from an address no pod asked from: the drop programs see the whole host, so
      // such a drop is counted as unattributed, never as a row of its own.
      const unattributed = (await dropHealth())[DROP_HEALTH.unattributed]!;
      await dig(['-t', 'MX', '@127.0.0.1', '-b', '127.0.0.3#41997']);
      expect(await dropRows('127.0.0.3')).toEqual([]);
      expect((await dropHealth())[DROP_HEALTH.unattributed]).toBeGreaterThan(unattributed);
      // The digs below come from this test's cgroup, where dns_egress does not run (and an
      // OUTPUT drop comes before it): say that their addresses are a pod's.
      for (const addr of [[...Array<number>(15).fill(0), 1], mapped('127.0.0.1')])
        await knowAddress(addr);
      await dig(['-t', 'AAAA', '@::1', '-b', '::1#41999']);
      await dig(['-t', 'MX', '@127.0.0.1', '-b', '127.0.0.1#41998']);
      const server = execa(
        'ip',
        [
          'netns',
          'exec',
          netns,
          'python3',
          '-c',
          'import socket,time\ns=socket.socket(); s.bind(("127.0.0.1",53)); s.listen(1)\nprint("up", flush=True); time.sleep(3)',
        ],
        { reject: false },
      );
      await new Promise<void>((resolve) => server.stdout?.once('data', () => resolve()));
      await dig(['+tcp', '-t', 'A', '@127.0.0.1']);
      server.kill();
      await server;
    } finally {
      await execa('ip', ['netns', 'del', netns]);
    }

    const v6 = await dropRows([...Array<number>(15).fill(0), 1]);
    expect(v6.map((r) => r.key)).toContainEqual(
      expect.objectContaining({
        proto: IPPROTO_UDP,
        port_class: PORT_DNS,
        qtype: QTYPE_AAAA,
        reason: DROP_NETFILTER,
      }),
    );
    const v4 = (await dropRows('127.0.0.1')).map((r) => r.key);
    expect(v4).toContainEqual(
      expect.objectContaining({ proto: IPPROTO_UDP, port_class: PORT_DNS, qtype: QTYPE_OTHER }),
    );
    expect(v4).toContainEqual(
      expect.objectContaining({ proto: IPPROTO_TCP, port_class: PORT_DNS, qtype: QTYPE_CLASSES }),
    );
    const records = (await dump<{ key: JsonObject; value: JsonObject }>('dropped_queries')).map(
      (r) => [r.key.port, r.key.qtype, r.value.cause],
    );
    expect(records).toContainEqual([41999, 28, CAUSE_NETFILTER_DROP]);
    expect(records).toContainEqual([41998, 15, CAUSE_NETFILTER_DROP]);
  }, 20_000);
});
