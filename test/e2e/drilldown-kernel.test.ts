// The kernel half of the drill-down on the real kernel: crafted packets through the real
// dns_egress / dns_ingress (BPF_PROG_TEST_RUN), events read back through the exporter's own
// `bpftool map event_pipe` reader. Checks that events are off until configured, the per-cgroup
// token bucket and its low priority for NXDOMAIN, the server-side join, the IPv6 server
// address, and retransmit and timeout events with their drop cause.
//
// Test runs execute in the cgroup of the process running bpftool, so every packet here has
// the same cgroup id: one token bucket.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bpftool, type EventPipe } from '../../src/bpf/bpftool.js';
import { encodeSweepRequests, pendingKeyFromDump } from '../../src/bpf/sweep-request.js';
import {
  DNS_EVENT_SIZE,
  decodeDnsEvent,
  encodeEventConfig,
  type EventConfig,
  type RawDnsEvent,
} from '../../src/drilldown/event.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBJECT = path.join(ROOT, 'bpf/dist/dns.bpf.o');
const PIN = `/sys/fs/bpf/dnsrace-test-ddk-${randomBytes(3).toString('hex')}`;
const bpftool = new Bpftool();
let work: string;
let pipe: EventPipe;
const events: RawDnsEvent[] = [];
let lost = 0;

const CLIENT = '10.244.0.5';
const VIP = '10.96.0.10';

function v4(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}
function v6(a: string): Buffer {
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}
function wire(name: string): Buffer {
  return Buffer.concat([
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
}
function dns(o: { id: number; name: string; qtype?: number; answer?: boolean; rcode?: number }) {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id, 0);
  h.writeUInt16BE(o.answer ? 0x8180 | (o.rcode ?? 0) : 0x0100, 2);
  h.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(o.qtype ?? 1, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, wire(o.name), tail]);
}
function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}
/** 14 bytes of Ethernet header (test-run strips them), then the IP packet. */
function ipv4(src: string, dst: string, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h[8] = 64;
  h[9] = 17;
  v4(src).copy(h, 12);
  v4(dst).copy(h, 16);
  return Buffer.concat([Buffer.alloc(14), h, l4]);
}
function ipv6(src: string, dst: string, l4: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(l4.length, 4);
  h[6] = 17;
  h[7] = 64;
  v6(src).copy(h, 8);
  v6(dst).copy(h, 24);
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x86dd, 12);
  return Buffer.concat([eth, h, l4]);
}

const query = (id: number, name = 'api.example.org', qtype = 1, port = 40000) =>
  ipv4(CLIENT, VIP, udp(port, 53, dns({ id, name, qtype })));
const answer = (id: number, rcode = 0, name = 'api.example.org', qtype = 1, port = 40000) =>
  ipv4(VIP, CLIENT, udp(53, port, dns({ id, name, qtype, answer: true, rcode })));

let files = 0;
/** Runs [program, packet] pairs in one bpftool process. */
async function run(steps: ['dns_egress' | 'dns_ingress', Buffer][]): Promise<void> {
  const lines: string[][] = [];
  for (const [prog, data] of steps) {
    const f = path.join(work, `in-${files++}`);
    await writeFile(f, data);
    lines.push(['prog', 'run', 'pinned', `${PIN}/progs/${prog}`, 'data_in', f]);
  }
  await bpftool.batch(lines);
}

async function configure(c: Partial<EventConfig>): Promise<void> {
  const full: EventConfig = {
    slowNs: 0n,
    ratePerSecond: 1000,
    burst: 1000,
    kinds: ['slow', 'failed', 'timeout', 'retransmit', 'nxdomain'],
    serverJoin: true,
    ...c,
  };
  await bpftool.mapUpdate(
    `${PIN}/maps/dns_event_config`,
    new Uint8Array(4),
    encodeEventConfig(full),
  );
}

async function health(): Promise<{ sent: number; rateLimited: number; outputFailed: number }> {
  const rows = await bpftool.mapDump(`${PIN}/maps/dns_health`, { perCpu: 'sum' });
  const at = (i: number) => Number(rows.find((r) => Number(r.key) === i)?.value ?? 0);
  return { sent: at(11), rateLimited: at(12), outputFailed: at(13) };
}

/** Waits until `n` events arrived since `from` (the reader is asynchronous) and returns them. */
async function eventsSince(from: number, n: number): Promise<RawDnsEvent[]> {
  const end = Date.now() + 3000;
  while (events.length - from < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100)); // and no more than n
  return events.slice(from);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'dnsrace-test-ddk-'));
  await bpftool.loadAll(OBJECT, `${PIN}/progs`, { mapPinDir: `${PIN}/maps` });
  pipe = bpftool.eventPipe(
    `${PIN}/maps/dns_events`,
    (r) => {
      if (r.kind === 'lost') lost += r.count;
      else events.push(decodeDnsEvent(r.data));
    },
    { sampleBytes: DNS_EVENT_SIZE },
  );
  await new Promise((r) => setTimeout(r, 300)); // bpftool opens its perf buffers
}, 30_000);

afterAll(async () => {
  await pipe?.stop();
  await rm(PIN, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

describe('drill-down events in the kernel', () => {
  it('sends nothing until the exporter writes dns_event_config', async () => {
    await run([
      ['dns_egress', query(1)],
      ['dns_ingress', answer(1, 2)], // SERVFAIL
    ]);
    expect(await health()).toEqual({ sent: 0, rateLimited: 0, outputFailed: 0 });
    expect(events).toHaveLength(0);
  });

  it('limits each cgroup to its token bucket, counting what it holds back', async () => {
    await configure({ ratePerSecond: 5, burst: 10 });
    const from = events.length;
    const steps: ['dns_egress' | 'dns_ingress', Buffer][] = [];
    for (let id = 100; id < 130; id++)
      steps.push(['dns_egress', query(id)], ['dns_ingress', answer(id)]);
    const started = Date.now();
    await run(steps);
    const seconds = (Date.now() - started) / 1000;
    const h = await health();
    // a full bucket of 10, plus what 5/s refilled while the batch ran
    expect(h.sent).toBeGreaterThanOrEqual(10);
    expect(h.sent).toBeLessThanOrEqual(10 + Math.ceil(5 * seconds));
    expect(h.sent + h.rateLimited).toBe(30);
    const got = await eventsSince(from, h.sent);
    expect(got).toHaveLength(h.sent);
    expect(
      got.every((e) => e.kind === 'slow' && e.rcode === 0 && e.name === 'api.example.org'),
    ).toBe(true);
    expect(lost).toBe(0);
  });

  it('gives NXDOMAIN events only the upper half of the bucket, keeping the rest for slow lookups', async () => {
    // Refill the bucket: a fast rate, and an event to apply it (the bucket refills lazily).
    await configure({ ratePerSecond: 1000, burst: 10, slowNs: 10_000_000_000n });
    await new Promise((r) => setTimeout(r, 50));
    await run([
      ['dns_egress', query(199)],
      ['dns_ingress', answer(199, 2)],
    ]);
    await configure({ ratePerSecond: 1, burst: 10, slowNs: 10_000_000_000n });
    const before = await health();
    const from = events.length;
    const steps: ['dns_egress' | 'dns_ingress', Buffer][] = [];
    for (let id = 200; id < 220; id++)
      steps.push(['dns_egress', query(id)], ['dns_ingress', answer(id, 3)]);
    steps.push(['dns_egress', query(300)], ['dns_ingress', answer(300, 2)]); // SERVFAIL after them
    await run(steps);
    const got = await eventsSince(from, 5);
    const nx = got.filter((e) => e.kind === 'nxdomain');
    // 9 tokens left: NXDOMAIN takes one while at least 6 are left, so about 4 of 20 go
    expect(nx.length).toBeGreaterThanOrEqual(3);
    expect(nx.length).toBeLessThanOrEqual(5);
    // and the SERVFAIL after them still finds its token
    expect(got.filter((e) => e.kind === 'failed').map((e) => e.id)).toEqual([300]);
    const after = await health();
    expect(after.rateLimited - before.rateLimited).toBe(20 - nx.length);
  });

  it('joins a local server pod answer to the client event, and names the ClusterIP', async () => {
    await configure({});
    const from = events.length;
    await run([
      ['dns_egress', query(400)], // the client pod sends
      ['dns_ingress', query(400)], // the server pod receives it
      ['dns_egress', answer(400)], // the server pod answers
      ['dns_ingress', answer(400)], // the client pod gets it
    ]);
    const got = await eventsSince(from, 2);
    const client = got.find((e) => e.role === 'client')!;
    const server = got.find((e) => e.role === 'server')!;
    expect(client).toMatchObject({
      kind: 'slow',
      serverAddr: VIP,
      clientAddr: CLIENT,
      id: 400,
      serverRcode: 0,
    });
    expect(client.serverCgroupId).toBeGreaterThan(0n);
    expect(client.serverNs).toBeGreaterThan(0n);
    expect(client.serverNs).toBeLessThanOrEqual(client.endNs - client.firstNs);
    expect(server).toMatchObject({ kind: 'slow', clientAddr: CLIENT, serverAddr: '::' });
  });

  it('reads an IPv6 server address from the answer', async () => {
    const from = events.length;
    const c6 = 'fd00:10:244::5';
    const s6 = 'fd00:10:96::a';
    await run([
      [
        'dns_egress',
        ipv6(
          c6,
          s6,
          udp(40001, 53, dns({ id: 500, name: 'dual.default.svc.cluster.local', qtype: 28 })),
        ),
      ],
      [
        'dns_ingress',
        ipv6(
          s6,
          c6,
          udp(
            53,
            40001,
            dns({ id: 500, name: 'dual.default.svc.cluster.local', qtype: 28, answer: true }),
          ),
        ),
      ],
    ]);
    const [e] = await eventsSince(from, 1);
    expect(e).toMatchObject({
      serverAddr: s6,
      clientAddr: c6,
      qtype: 28,
      name: 'dual.default.svc.cluster.local',
    });
  });

  it('sends a retransmit after a drop and a timeout, both with the cause', async () => {
    const from = events.length;
    // what drops.bpf.c records for a dropped query: (client addr, port, id, qtype) -> cause
    const key = Buffer.alloc(24);
    key[10] = 0xff;
    key[11] = 0xff;
    v4(CLIENT).copy(key, 12);
    key.writeUInt16LE(40000, 16);
    key.writeUInt16LE(600, 18);
    key.writeUInt16LE(28, 20);
    const val = Buffer.alloc(16);
    val[8] = 1; // CAUSE_NETFILTER_DROP
    await run([['dns_egress', query(600, 'api.example.org', 28)]]);
    await bpftool.mapUpdate(`${PIN}/maps/dropped_queries`, key, val);
    await run([['dns_egress', query(600, 'api.example.org', 28)]]); // the re-send
    const pending = await bpftool.mapDump(`${PIN}/maps/dns_pending`);
    const keys = pending
      .filter((p) => Number((p.key as Record<string, unknown>).id) === 600)
      .map((p) => pendingKeyFromDump(p.key));
    expect(keys).toHaveLength(1);
    await bpftool.progRunMany(`${PIN}/progs/dns_sweep_timeouts`, encodeSweepRequests(keys, 0n));
    const got = await eventsSince(from, 2);
    expect(got.map((e) => [e.kind, e.cause, e.retransmits, e.qtype])).toEqual([
      ['retransmit', 'netfilter_drop', 1, 28],
      ['timeout', 'netfilter_drop', 1, 28],
    ]);
    expect(got[1]!.rcode).toBeUndefined();
    expect(got[1]!.serverAddr).toBe(VIP);
  });
});
