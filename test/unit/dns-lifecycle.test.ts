import { describe, expect, it } from 'vitest';
import {
  CgroupLifecycle,
  RETIRED_ID_BIT,
  RETIRED_POD,
  retiredId,
  UNNAMED_HOLD_MS,
  type Sighting,
} from '../../src/dns/lifecycle.js';
import { sightingOf } from '../../src/dns/sighting.js';
import { aggregateDnsStats } from '../../src/dns/aggregate.js';
import { PodSeriesBudget } from '../../src/dns/pod-budget.js';
import type { CgroupName } from '../../src/dns/stats-encode.js';
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

/**
 * What src/dns/reader.ts does with a plan, against a simulated kernel: write it (or fail to),
 * then aggregate the rows that are not held. Returns the client queries per namespace and pod.
 */
interface Kernel {
  rows: DnsStatsRow[];
  names: Map<bigint, CgroupName>;
}
function read(
  lc: CgroupLifecycle,
  kernel: Kernel,
  sight: (id: bigint) => Sighting,
  o: { failWrite?: boolean; budget?: PodSeriesBudget } = {},
) {
  const plan = lc.plan(kernel.rows, sight);
  let rows = kernel.rows;
  let committed = true;
  if (plan.nameWrites.length + plan.nameDeletes.length + plan.retire.length > 0) {
    if (o.failWrite) committed = false;
    else {
      for (const [id, n] of plan.nameWrites) kernel.names.set(id, n);
      for (const id of plan.nameDeletes) kernel.names.delete(id);
      kernel.rows = plan.rows;
      lc.committed(plan);
      rows = plan.rows;
    }
  }
  const agg = aggregateDnsStats(
    rows.filter((r) => !plan.held.has(r.cgroupId)),
    (id) => ({ namespace: plan.nameOf(id).namespace, pod: plan.nameOf(id).pod }),
    o.budget ?? new PodSeriesBudget(1_000),
  );
  const namespaces: Record<string, number> = {};
  for (const [ns, byQtype] of agg.client)
    for (const t of byQtype.values()) namespaces[ns] = (namespaces[ns] ?? 0) + t.queries;
  const pods: Record<string, number> = {};
  for (const [ns, byPod] of agg.pods)
    for (const [pod, t] of byPod) pods[`${ns}/${pod}`] = t.queries;
  return { plan, namespaces, pods, committed };
}

const uidName = (uid: string) => ({
  namespace: '_unknown',
  pod: `_uid-${uid}`,
  workloadKind: '',
  workload: '',
});
const live = (over: Partial<Sighting> = {}): Sighting => ({ gone: false, ...over });
const unnamed = (uid = 'a'): Sighting => live({ provisional: uidName(uid) });
const unindexed: Sighting = { gone: true, unindexed: true };
const named = (ns: string, pod: string): Sighting => live({ name: name(ns, pod) });

/** One step of a scripted read: time since the last read, queries added, what the sources say. */
type Step = [advanceMs: number, addQueries: number, sighting: Sighting];

describe('CgroupLifecycle: rows nobody names yet', () => {
  const H = UNNAMED_HOLD_MS;
  it.each<{ what: string; steps: Step[]; loaded?: CgroupName; ns: (string | undefined)[] }>([
    {
      what: 'named before the hold ends: held, then straight to its namespace',
      steps: [
        [0, 2, unnamed()],
        [1_000, 1, unnamed()],
        [H - 1_500, 1, named('team-a', 'web-1')],
        [H, 1, named('team-a', 'web-1')],
      ],
      ns: [undefined, undefined, 'team-a', 'team-a'],
    },
    {
      what: 'new cgroup the index has not scanned yet: held like an unnamed one',
      steps: [
        [0, 2, unindexed],
        [500, 1, named('team-a', 'web-1')],
      ],
      ns: [undefined, 'team-a'],
    },
    {
      what: 'still unnamed when the hold ends: _unknown, and a later name does not move it',
      steps: [
        [0, 2, unnamed()],
        [H - 1, 1, unnamed()],
        [1, 1, unnamed()],
        [500, 1, named('team-a', 'web-1')],
        [H, 1, named('team-a', 'web-1')],
      ],
      ns: [undefined, undefined, '_unknown', '_unknown', '_unknown'],
    },
    {
      what: 'index never finds it: _unknown/_unknown after the hold',
      steps: [
        [0, 1, unindexed],
        [H, 1, unindexed],
      ],
      ns: [undefined, '_unknown'],
    },
    {
      what: 'removed cgroup: not held, labelled at once (and sticky)',
      steps: [
        [0, 3, { gone: true, goneSinceMs: 900, provisional: uidName('a') }],
        [500, 0, { gone: true, goneSinceMs: 900, name: name('team-a', 'web-1') }],
      ],
      ns: ['_unknown', '_unknown'],
    },
    {
      what: 'name loaded from dns_cgroup_names (restart): not held',
      loaded: name('team-a', 'web-1'),
      steps: [
        [0, 2, unindexed],
        [500, 1, unnamed()],
      ],
      ns: ['team-a', 'team-a'],
    },
    {
      what: 'fallback loaded from dns_cgroup_names (restart): stays _unknown when named',
      loaded: uidName('a'),
      steps: [[0, 2, named('team-a', 'web-1')]],
      ns: ['_unknown'],
    },
  ])('$what', ({ steps, loaded, ns }) => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 60_000, now: c.now, byWorkload: false });
    const kernel: Kernel = { rows: [row(1n, 0)], names: new Map() };
    if (loaded) {
      kernel.names.set(1n, loaded);
      lc.load(kernel.names);
    }
    let total = 0;
    steps.forEach(([advance, add, sighting], i) => {
      c.advance(advance);
      total += add;
      kernel.rows = kernel.rows.map((r) => (r.cgroupId === 1n ? { ...r, queries: total } : r));
      const r = read(lc, kernel, () => sighting);
      const want = ns[i];
      // Held: nowhere; labelled: all of its queries in one namespace, none lost.
      expect(r.namespaces, `step ${i}`).toEqual(want === undefined ? {} : { [want]: total });
      expect(r.plan.held.has(1n), `step ${i} held`).toBe(want === undefined);
      if (want === undefined) expect(Object.keys(r.pods)).toEqual([]);
      else expect(Object.values(r.pods)).toEqual([total]);
    });
  });

  it('records the fallback label once the hold ends, and a restart keeps it', () => {
    const c = clock();
    const kernel: Kernel = { rows: [row(1n, 4)], names: new Map() };
    let lc = new CgroupLifecycle({ graceMs: 60_000, now: c.now, byWorkload: false });
    expect(read(lc, kernel, () => unnamed()).plan.nameWrites).toEqual([]);
    c.advance(H);
    const released = read(lc, kernel, () => unnamed());
    expect(released.plan.nameWrites).toEqual([[1n, uidName('a')]]);
    expect(released.pods).toEqual({ '_unknown/_uid-a': 4 });
    expect(read(lc, kernel, () => named('team-a', 'web-1')).plan.nameWrites).toEqual([]);
    // A restarted exporter loads the recorded label and keeps it.
    lc = new CgroupLifecycle({ graceMs: 60_000, now: c.now, byWorkload: false });
    lc.load(kernel.names);
    const after = read(lc, kernel, () => named('team-a', 'web-1'));
    expect(after.namespaces).toEqual({ _unknown: 4 });
    expect(after.plan.nameWrites).toEqual([]);
  });

  it('keeps a shown fallback label while its name write fails, and retries the write', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 60_000, now: c.now, byWorkload: false });
    const kernel: Kernel = { rows: [row(1n, 4)], names: new Map() };
    read(lc, kernel, () => unnamed());
    c.advance(H);
    const failed = read(lc, kernel, () => unnamed(), { failWrite: true });
    expect(failed.committed).toBe(false);
    expect(failed.namespaces).toEqual({ _unknown: 4 });
    const retried = read(lc, kernel, () => named('team-a', 'web-1'));
    expect(retried.namespaces).toEqual({ _unknown: 4 });
    expect(retried.plan.nameWrites).toEqual([[1n, uidName('a')]]);
  });

  it('retires a held row that is gone past the grace period into _unknown, counts and all', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 1_000, now: c.now, byWorkload: false });
    const kernel: Kernel = { rows: [row(1n, 3), row(1n, 2, { qtype: 'AAAA' })], names: new Map() };
    expect(read(lc, kernel, () => unindexed).namespaces).toEqual({});
    c.advance(1_000);
    const r = read(lc, kernel, () => unindexed);
    expect(r.plan.held.size).toBe(0);
    expect(r.namespaces).toEqual({ _unknown: 5 });
    expect(kernel.rows.every((x) => x.cgroupId & RETIRED_ID_BIT)).toBe(true);
    expect(r.plan.nameOf(kernel.rows[0]!.cgroupId)).toMatchObject({
      namespace: '_unknown',
      pod: RETIRED_POD,
    });
  });

  it('does not end the series of a retired pod because a held row shares its fallback label', () => {
    const c = clock();
    const lc = new CgroupLifecycle({ graceMs: 0, now: c.now, byWorkload: false });
    const plan = lc.plan([row(1n, 1), row(2n, 1)], (id) =>
      id === 1n ? { gone: true, goneSinceMs: 0, provisional: uidName('a') } : unnamed(),
    );
    expect(plan.held).toEqual(new Set([2n]));
    expect(plan.retiredPods).toEqual([{ namespace: '_unknown', pod: '_uid-a' }]);
  });

  // Property-style: seeded scripts of cgroups that appear, get named (or not), go away, are
  // retired, across failed writes and restarts. At every read no namespace counter is below
  // its previous value, and in the end every query is counted exactly once.
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))(
    'namespace totals never decrease over scripted sequence %i',
    (seed) => {
      let x = seed * 2654435761;
      const rnd = (n: number) => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return (x >>> 8) % n;
      };
      const c = clock();
      const t0 = c.now();
      const graceMs = rnd(3) * 4_000;
      const cgroups = Array.from({ length: 1 + rnd(6) }, (_, i) => {
        const born = t0 + rnd(20_000);
        return {
          id: BigInt(i + 1),
          uid: `u${i}`,
          born,
          indexedAt: born + rnd(3_000),
          namedAt: rnd(4) === 0 ? Infinity : born + rnd(2 * H),
          goneAt: rnd(3) === 0 ? Infinity : born + 2_000 + rnd(20_000),
          ns: `ns-${rnd(3)}`,
        };
      });
      const sight = (id: bigint): Sighting => {
        const cg = cgroups[Number(id) - 1]!;
        const t = c.now();
        const n = t >= cg.namedAt ? { name: name(cg.ns, `p-${cg.uid}`) } : {};
        if (t >= cg.goneAt)
          return {
            gone: true,
            ...(t >= cg.indexedAt ? { goneSinceMs: cg.goneAt, ...n } : { unindexed: true }),
          };
        if (t < cg.indexedAt) return unindexed;
        return { gone: false, provisional: uidName(cg.uid), ...n };
      };
      const kernel: Kernel = { rows: [], names: new Map() };
      const newLifecycle = () => {
        const lc = new CgroupLifecycle({ graceMs, now: c.now, byWorkload: false });
        lc.load(kernel.names);
        return lc;
      };
      let lc = newLifecycle();
      let made = 0;
      let prev: Record<string, number> = {};
      let lastCommitted = true;
      for (let step = 0; step < 80; step++) {
        c.advance(300 + rnd(2_700));
        const t = c.now();
        for (const cg of cgroups) {
          if (t < cg.born || t >= cg.goneAt) continue;
          const add = rnd(3);
          if (add === 0) continue;
          made += add;
          const qtype = rnd(2) === 0 ? 'A' : 'AAAA';
          const r = kernel.rows.find((y) => y.cgroupId === cg.id && y.qtype === qtype);
          if (r) r.queries += add;
          else kernel.rows.push(row(cg.id, add, { qtype }));
        }
        // A restart: only after a read whose writes went through (what a failed write had
        // not pinned yet is known to the process that showed it, not to the next one).
        if (lastCommitted && rnd(10) === 0) lc = newLifecycle();
        const r = read(lc, kernel, sight, { failWrite: rnd(6) === 0 });
        lastCommitted = r.committed;
        for (const [ns, v] of Object.entries(prev))
          expect(r.namespaces[ns] ?? 0, `${ns} at step ${step}`).toBeGreaterThanOrEqual(v);
        prev = r.namespaces;
      }
      // Long after: everything named or gone and retired, nothing held, nothing lost.
      c.advance(60_000);
      const end = read(lc, kernel, sight);
      expect(end.plan.held.size).toBe(0);
      expect(Object.values(end.namespaces).reduce((a, b) => a + b, 0)).toBe(made);
      for (const [ns, v] of Object.entries(prev))
        expect(end.namespaces[ns] ?? 0).toBeGreaterThanOrEqual(v);
    },
  );
});

describe('sightingOf', () => {
  const entry = { id: 1n, path: '/kubepods/pod-x', pod: null };
  it.each<[string, Parameters<typeof sightingOf>[1], Partial<Sighting>]>([
    ['indexed and present', entry, { gone: false }],
    [
      'removed, since when the scan missed it',
      { ...entry, removedAt: 42 },
      { gone: true, goneSinceMs: 42 },
    ],
    ['not (yet) in the index', undefined, { gone: true, unindexed: true }],
  ])('%s', (_, e, want) => {
    const s = sightingOf({ kind: 'unknown', reason: 'cgroup-not-found' }, e);
    expect(s).toEqual(want);
  });
});
