import { describe, expect, it } from 'vitest';
import { aggregateDnsStats } from '../../src/dns/aggregate.js';
import { PodSeriesBudget } from '../../src/dns/pod-budget.js';
import {
  cumulativeBuckets,
  leSeconds,
  NAMESPACE_LE_INDICES,
} from '../../src/dns/classic-buckets.js';
import { decodeDnsStatsRow, type DnsStatsRow } from '../../src/dns/stats-row.js';
import { LAT_MIN_INDEX, LAT_SLOTS } from '../../src/bpf/latency-buckets.js';

/** The slot of native index i (bpf/dns.h: slot s >= 1 is index LAT_MIN_INDEX + s). */
const slotOf = (index: number) => index - LAT_MIN_INDEX;

function row(cgroupId: bigint, over: Partial<DnsStatsRow> = {}): DnsStatsRow {
  return {
    cgroupId,
    role: 'client',
    qtype: 'A',
    queries: 0,
    retransmits: [0, 0, 0],
    timeouts: [0, 0, 0],
    responses: [0, 0, 0, 0, 0],
    latencyCount: 0,
    latencySumSeconds: 0,
    latencySumNs: 0n,
    latency: new Array<number>(LAT_SLOTS).fill(0),
    ...over,
  };
}

describe('cumulativeBuckets', () => {
  it('puts 5 s, 10 s and 15 s stalls in different buckets, exactly', () => {
    const latency = new Array<number>(LAT_SLOTS).fill(0);
    // 5 s -> index ceil(4*log2 5) = 10; 10 s -> 14; 15 s -> 16; 1 ms -> -39; 2 ms -> -35
    for (const [index, n] of [
      [10, 3],
      [14, 2],
      [16, 1],
      [-39, 7],
      [-35, 5],
    ] as const)
      latency[slotOf(index)] = n;
    const b = cumulativeBuckets(latency, NAMESPACE_LE_INDICES);
    const at = (seconds: number) => b.find((x) => Math.abs(x.le - seconds) < 1e-12)?.count;
    expect(at(leSeconds(-40))).toBe(0); // 0.98 ms
    expect(at(leSeconds(-36))).toBe(7); // 1.95 ms: the 1 ms lookups only
    expect(at(leSeconds(-32))).toBe(12);
    expect(at(4)).toBe(12);
    expect(at(leSeconds(10))).toBe(15); // 5.66 s
    expect(at(8)).toBe(15);
    expect(at(leSeconds(14))).toBe(17); // 11.3 s
    expect(at(16)).toBe(18);
    expect(b.at(-1)).toEqual({ le: Infinity, count: 18 });
  });

  it('counts the zero bucket (slot 0) in every bucket and the clamp slot only in +Inf', () => {
    const latency = new Array<number>(LAT_SLOTS).fill(0);
    latency[0] = 4;
    latency[LAT_SLOTS - 1] = 1;
    const b = cumulativeBuckets(latency, NAMESPACE_LE_INDICES);
    expect(b[0]?.count).toBe(4);
    expect(b.at(-2)?.count).toBe(4);
    expect(b.at(-1)?.count).toBe(5);
  });

  it('refuses a bound finer than the kernel has', () => {
    expect(() => cumulativeBuckets(new Array(LAT_SLOTS).fill(0), [LAT_MIN_INDEX - 1])).toThrow(
      /below/,
    );
  });
});

describe('decodeDnsStatsRow', () => {
  it('decodes a BTF-formatted row, keeping big sums exact enough', () => {
    const latency = new Array(LAT_SLOTS).fill(0);
    latency[3] = 2;
    const r = decodeDnsStatsRow({
      key: { cgroup_id: 12345678901234567890n, role: 1, qtype: 1, pad: [0, 0, 0, 0, 0, 0] },
      value: {
        queries: 3,
        retransmits: [0, 1, 0],
        timeouts: [1, 0, 0],
        responses: [1, 1, 0, 0, 0],
        latency_count: 2,
        latency_sum_ns: 9007199254740993n, // 2^53 + 1 ns
        latency,
      },
    });
    expect(r.cgroupId).toBe(12345678901234567890n);
    expect(r.role).toBe('server');
    expect(r.qtype).toBe('AAAA');
    expect(r.responses).toEqual([1, 1, 0, 0, 0]);
    expect(r.latencySumSeconds).toBeCloseTo(9007199.254740993, 5);
    expect(r.latency[3]).toBe(2);
  });

  it.each([
    [{ value: {} }, /no field 'key'/],
    [
      { key: { cgroup_id: 1, role: 0, qtype: 0 }, value: { queries: 'x' } },
      /latency_sum_ns|queries/,
    ],
  ])('names what is wrong in a malformed row %#', (entry, message) => {
    expect(() => decodeDnsStatsRow(entry)).toThrow(message);
  });
});

describe('aggregateDnsStats', () => {
  const names: Record<string, { namespace: string; pod: string }> = {
    '1': { namespace: 'team-a', pod: 'web-1' },
    '2': { namespace: 'team-a', pod: 'web-1' }, // second container of the same pod
    '3': { namespace: 'team-b', pod: 'api-1' },
    '4': { namespace: 'kube-system', pod: 'coredns-0' },
  };
  const nameOf = (id: bigint) => names[String(id)] ?? { namespace: '_unknown', pod: '_unknown' };

  it('sums containers into pods and pods into namespaces, per role and qtype', () => {
    const rows = [
      row(1n, { queries: 2, responses: [2, 0, 0, 0, 0] }),
      row(2n, { queries: 3, timeouts: [0, 1, 0] }),
      row(2n, { qtype: 'AAAA', queries: 5 }),
      row(3n, { queries: 7 }),
      row(4n, { role: 'server', queries: 11 }),
    ];
    const agg = aggregateDnsStats(rows, nameOf, new PodSeriesBudget(10));
    expect(agg.client.get('team-a')?.get('A')?.queries).toBe(5);
    expect(agg.client.get('team-a')?.get('A')?.timeouts).toEqual([0, 1, 0]);
    expect(agg.client.get('team-a')?.get('AAAA')?.queries).toBe(5);
    expect(agg.client.get('team-b')?.get('A')?.queries).toBe(7);
    expect(agg.client.has('kube-system')).toBe(false);
    expect(agg.server.get('kube-system')?.get('A')?.queries).toBe(11);
    expect(agg.pods.get('team-a')?.get('web-1')?.queries).toBe(10);
  });

  it('sums pods beyond the budget into _other, and keeps admission sticky', () => {
    const budget = new PodSeriesBudget(1);
    const rows = [row(1n, { queries: 1 }), row(3n, { queries: 2 })];
    const agg = aggregateDnsStats(rows, nameOf, budget);
    expect([...agg.pods.get('team-a')!.keys()]).toEqual(['web-1']);
    expect([...agg.pods.get('team-b')!.keys()]).toEqual(['_other']);
    // Reversed order next time: web-1 keeps its series, api-1 stays in _other.
    const again = aggregateDnsStats([...rows].reverse(), nameOf, budget);
    expect([...again.pods.get('team-b')!.keys()]).toEqual(['_other']);
    expect([...again.pods.get('team-a')!.keys()]).toEqual(['web-1']);
    expect(budget.overflowCount).toBe(1);
  });
});

describe('leSeconds', () => {
  it.each([
    [0, 1],
    [4, 2],
    [-4, 0.5],
    [10, 5.65685424949238],
    [14, 11.31370849898476],
    [-44, 0.00048828125],
    [1, 1.189207115002721],
  ])('index %i -> %f s (Prometheus schema-2 bounds)', (i, s) => expect(leSeconds(i)).toBe(s));
});
