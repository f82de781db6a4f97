// readDnsSnapshot with its map dumps given: what a read makes of rows the lifecycle holds.
import { describe, expect, it } from 'vitest';
import { readDnsSnapshot, type DnsReaderDeps } from '../../src/dns/reader.js';
import { CgroupLifecycle, type Sighting } from '../../src/dns/lifecycle.js';
import { PodSeriesBudget } from '../../src/dns/pod-budget.js';
import { AddressBook } from '../../src/drops/address-book.js';
import { LAT_SLOTS } from '../../src/bpf/latency-buckets.js';
import type { MapEntry } from '../../src/bpf/bpftool-output.js';

const POD_ADDR = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 244, 0, 9];

/** One dns_stats row of cgroup 7 (client, A) and a netfilter drop of its address. */
const maps = (queries: number): MapEntry[][] => [
  [
    {
      key: { cgroup_id: 7, role: 0, qtype: 0, pad: [0, 0, 0, 0, 0, 0] },
      value: {
        queries,
        retransmits: [0, 0, 0],
        timeouts: [0, 0, 0],
        responses: [queries, 0, 0, 0, 0],
        latency_count: 0,
        latency_sum_ns: 0,
        latency: new Array<number>(LAT_SLOTS).fill(0),
      },
    },
  ],
  [],
  [],
  [{ key: POD_ADDR, value: { cgroup_id: 7, last_seen_ns: 1 } }],
  [
    {
      key: {
        pod_addr: POD_ADDR,
        proto: 17,
        port_class: 1,
        qtype: 1,
        reason: 0,
        direction: 0,
        pad: [0, 0, 0],
      },
      value: 3,
    },
  ],
  [],
];

describe('readDnsSnapshot', () => {
  it("holds back a cgroup nobody names yet, its DNS rows and its address's drops, then shows them with everything they counted", async () => {
    let now = 0;
    let queries = 2;
    let sighting: Sighting = { gone: false };
    const deps: DnsReaderDeps = {
      dump: () => Promise.resolve([]),
      dumpMany: () => Promise.resolve(maps(queries)),
      sweep: () => Promise.resolve(),
      pins: {
        dns_pending: 'p',
        dns_retry_index: 'r',
        dns_stats: 's',
        dns_health: 'h',
        dns_client_addrs: 'c',
      },
      dropPins: { packet_drops: 'd', drop_health: 'dh' },
      addressBook: new AddressBook(),
      maxEntries: {},
      lifecycle: new CgroupLifecycle({ graceMs: 60_000, now: () => now, byWorkload: false }),
      sight: () => sighting,
      writePlan: () => Promise.resolve(),
      onWriteFailure: (err) => {
        throw err;
      },
      byWorkload: false,
      budget: new PodSeriesBudget(100),
      deadlineNs: 5_000_000_000n,
      monotonicNs: () => 0n,
      wallSeconds: () => 0,
    };
    const held = await readDnsSnapshot(deps);
    expect([...held.dns.client.keys()]).toEqual([]);
    expect([...held.dns.pods.keys()]).toEqual([]);
    expect([...held.drops!.agg.netfilter.values()]).toEqual([]);

    now = 1_000;
    queries = 5;
    sighting = {
      gone: false,
      name: { namespace: 'team-a', pod: 'web-1', workloadKind: '', workload: '' },
    };
    const shown = await readDnsSnapshot(deps);
    expect(shown.dns.client.get('team-a')?.get('A')?.queries).toBe(5);
    expect(shown.dns.pods.get('team-a')?.get('web-1')?.queries).toBe(5);
    expect([...shown.drops!.agg.netfilter.values()]).toEqual([
      { labels: expect.objectContaining({ namespace: 'team-a', pod: 'web-1' }), value: 3 },
    ]);
  });
});
