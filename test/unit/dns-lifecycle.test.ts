import { describe, expect, it } from 'vitest';
import {
  CgroupLifecycle,
  RETIRED_ID_BIT,
  RETIRED_POD,
  retiredId,
  type Sighting,
} from '../../src/dns/lifecycle.js';
import { planCommands } from '../../src/dns/lifecycle-commands.js';
import {
  CGROUP_NAME_SIZE,
  DNS_STATS_KEY_SIZE,
  DNS_STATS_VALUE_SIZE,
  decodeCgroupNames,
  encodeCgroupName,
  encodeStatsValue,
} from '../../src/dns/stats-encode.js';
import { emptyTotals } from '../../src/dns/totals.js';
import type { DnsStatsRow } from '../../src/dns/stats-row.js';
import { parseBtfStruct } from '../../src/bpf/bpftool-output.js';
import { headerBtf } from '../support/header-btf.js';

const name = (namespace: string, pod: string) => ({
  namespace,
  pod,
  workloadKind: 'Deployment',
  workload: 'web',
});
const row = (cgroupId: bigint, queries: number, over: Partial<DnsStatsRow> = {}): DnsStatsRow => ({
  ...emptyTotals(),
  cgroupId,
  role: 'client',
  qtype: 'A',
  queries,
  ...over,
});

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('CgroupLifecycle', () => {
  it('names rows, persists new names once, and keeps naming a gone cgroup from the store', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 60_000, now: c.now, byWorkload: false });
    const alive: Record<string, Sighting> = { '1': { name: name('team-a', 'web-1'), gone: false } };
    let plan = lc.plan([row(1n, 3)], (id) => alive[String(id)]!);
    expect(plan.nameWrites).toEqual([[1n, name('team-a', 'web-1')]]);
    lc.committed(plan);
    expect(lc.plan([row(1n, 4)], (id) => alive[String(id)]!).nameWrites).toEqual([]);
    // The cgroup is gone and the sources forgot it: the stored name still names its rows.
    plan = lc.plan([row(1n, 4)], () => ({ gone: true }));
    expect(plan.nameOf(1n)).toEqual(name('team-a', 'web-1'));
    expect(plan.retire).toEqual([]);
  });

  it('folds the rows of a cgroup gone past the grace period into its namespace, exactly and once', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 10_000, now: c.now, byWorkload: false });
    lc.load(
      new Map([
        [7n, name('payments', 'checkout-1')],
        [8n, name('payments', 'checkout-2')],
      ]),
    );
    const sight = (id: bigint): Sighting =>
      id === 7n
        ? { gone: true, goneSinceMs: 500 }
        : { name: name('payments', 'checkout-2'), gone: false };
    const rows = [
      row(7n, 5, { retransmits: [1, 2, 0], latencyCount: 5, latencySumNs: 10n }),
      row(7n, 2, { qtype: 'AAAA' }),
      row(8n, 9),
    ];
    c.advance(20_000);
    const plan = lc.plan(rows, sight);
    const rid = retiredId(name('payments', 'x'), false);
    expect(rid & RETIRED_ID_BIT).toBe(RETIRED_ID_BIT);
    expect(plan.retire.map((g) => [g.key, g.totals.queries, g.deletes])).toEqual([
      [
        { cgroupId: rid, role: 'client', qtype: 'A' },
        5,
        [{ cgroupId: 7n, role: 'client', qtype: 'A' }],
      ],
      [
        { cgroupId: rid, role: 'client', qtype: 'AAAA' },
        2,
        [{ cgroupId: 7n, role: 'client', qtype: 'AAAA' }],
      ],
    ]);
    expect(plan.retire[0]!.totals.retransmits).toEqual([1, 2, 0]);
    expect(plan.retire[0]!.totals.latencySumNs).toBe(10n);
    expect(plan.retiredPods).toEqual([{ namespace: 'payments', pod: 'checkout-1' }]);
    expect(plan.nameDeletes).toEqual([7n]);
    expect(plan.nameOf(rid)).toMatchObject({ namespace: 'payments', pod: RETIRED_POD });
    // The namespace sum is unchanged by retirement.
    const sum = (rs: DnsStatsRow[]) => rs.reduce((a, r) => a + r.queries, 0);
    expect(sum(plan.rows)).toBe(sum(rows));
    lc.committed(plan);

    // Next time: the dump has the retired rows; a second pod retires into the same rows.
    const next = [...plan.rows];
    c.advance(1_000);
    const plan2 = lc.plan(next, (id) =>
      id === 8n ? { gone: true, goneSinceMs: 0 } : { gone: false },
    );
    const a = plan2.retire.find((g) => g.key.qtype === 'A')!;
    expect(a.totals.queries).toBe(14);
    expect(a.deletes).toEqual([{ cgroupId: 8n, role: 'client', qtype: 'A' }]);
  });

  it('starts the grace period at the first read that misses a cgroup the index never knew', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 5_000, now: c.now, byWorkload: false });
    lc.load(new Map([[3n, name('ns', 'p')]]));
    expect(lc.plan([row(3n, 1)], () => ({ gone: true })).retire).toEqual([]);
    c.advance(4_000);
    expect(lc.plan([row(3n, 1)], () => ({ gone: true })).retire).toEqual([]);
    c.advance(1_000);
    expect(lc.plan([row(3n, 1)], () => ({ gone: true })).retire).toHaveLength(1);
  });

  it('keeps a pod series while one of its containers lives, and groups by workload when asked', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 0, now: c.now, byWorkload: true });
    const plan = lc.plan([row(1n, 1), row(2n, 1)], (id) => ({
      name: name('ns', 'p'),
      gone: id === 1n,
      goneSinceMs: 0,
    }));
    expect(plan.retiredPods).toEqual([]);
    expect(plan.retire[0]!.key.cgroupId).toBe(retiredId(name('ns', 'q'), true));
    expect(retiredId(name('ns', 'q'), true)).not.toBe(
      retiredId({ ...name('ns', 'q'), workload: 'api' }, true),
    );
  });

  it('writes each retired sum right before the deletes folded into it', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 0, now: c.now, byWorkload: false });
    lc.load(new Map([[9n, name('ns', 'p')]]));
    const plan = lc.plan([row(9n, 1), row(9n, 1, { qtype: 'AAAA' })], () => ({
      gone: true,
      goneSinceMs: 0,
    }));
    const cmds = planCommands(plan, { dns_stats: '/p/s', dns_cgroup_names: '/p/n' }).map(
      (a) => `${a[0]} ${a[1]} ${a[3]}`,
    );
    expect(cmds).toEqual([
      'map update /p/n', // the retired row's name
      'map update /p/s',
      'map delete /p/s',
      'map update /p/s',
      'map delete /p/s',
      'map delete /p/n',
    ]);
  });
});

describe('byte layouts written to the pinned maps', () => {
  it('match the BTF of bpf/dns.h', async () => {
    const r = { stdout: await headerBtf(['dns_stats', 'dns_stats_key', 'cgroup_name']) };
    expect(parseBtfStruct(r.stdout, 'dns_stats')?.size).toBe(DNS_STATS_VALUE_SIZE);
    expect(parseBtfStruct(r.stdout, 'dns_stats_key')?.size).toBe(DNS_STATS_KEY_SIZE);
    const cn = parseBtfStruct(r.stdout, 'cgroup_name');
    expect(cn?.size).toBe(CGROUP_NAME_SIZE);
    expect(cn?.members.pod).toEqual({ offset: 64, size: 256 });
    const stats = parseBtfStruct(r.stdout, 'dns_stats')!;
    expect(stats.members.latency_sum_ns?.offset).toBe(8 * 13);
    const t = emptyTotals();
    t.latencySumNs = 258n;
    expect(encodeStatsValue(t).readBigUInt64LE(stats.members.latency_sum_ns!.offset)).toBe(258n);
  });

  it('truncates long names on a character boundary and decodes what bpftool prints', () => {
    const long = 'é'.repeat(200);
    const b = encodeCgroupName({ namespace: 'ns', pod: long, workloadKind: '', workload: '' });
    expect(b.length).toBe(CGROUP_NAME_SIZE);
    const pod = b.subarray(64, 320);
    expect(pod[255]).toBe(0);
    const text = pod.subarray(0, pod.indexOf(0)).toString('utf8');
    expect(text).toBe('é'.repeat(127));
    const decoded = decodeCgroupNames([
      { key: 5, value: { namespace: 'ns', pod: 'p', workload_kind: 'Job', workload: 'j' } },
    ]);
    expect(decoded.get(5n)).toEqual({
      namespace: 'ns',
      pod: 'p',
      workloadKind: 'Job',
      workload: 'j',
    });
  });
});
