// Rows of cgroups that are gone: named from the pinned dns_cgroup_names map (so a restarted
// exporter still knows whose they were), and once gone for the grace period, summed into one
// retired row per namespace (a synthetic cgroup id) and deleted. Namespace counters never go
// backwards; per-pod series of a deleted pod end a grace period after it is gone; dns_stats
// stays bounded by the pods alive now. Planning is pure; the exporter writes the plan with
// one bpftool batch.
import { HOST_NAMESPACE, UNKNOWN_NAMESPACE, UNKNOWN_POD } from '../identity/labels.js';
import type { DnsStatsRow } from './stats-row.js';
import { addRow, emptyTotals, type Totals } from './totals.js';
import type { CgroupName, StatsKey } from './stats-encode.js';

/** bpf/dns.h RETIRED_ID_BIT: no cgroup inode has the top bit set. */
export const RETIRED_ID_BIT = 1n << 63n;
export const RETIRED_POD = '_retired';

/** What the identity sources say about one cgroup id right now. */
export interface Sighting {
  /** Set when a source named the cgroup (a pod or the host): worth persisting. */
  name?: CgroupName;
  /** A fallback label when nobody names it (a pod known only by its UID). */
  provisional?: CgroupName;
  /** The cgroup directory no longer exists, since this time (ms, monotonic) if known. */
  gone: boolean;
  goneSinceMs?: number;
}

export interface LifecyclePlan {
  /** Rows as they will be after the plan is written: live rows and updated retired rows. */
  rows: DnsStatsRow[];
  nameOf: (cgroupId: bigint) => CgroupName;
  nameWrites: [bigint, CgroupName][];
  nameDeletes: bigint[];
  /**
   * One group per retired row: its new sum, and the dead rows folded into it. Written group
   * by group (sum, then deletes) so that a batch that stops half-way leaves every group
   * either done or untouched, and the next plan, made from a fresh dump, finishes the rest.
   */
  retire: { key: StatsKey; totals: Totals; deletes: StatsKey[] }[];
  /** Pods whose last rows were retired: their per-pod series end now. */
  retiredPods: { namespace: string; pod: string }[];
}

const UNKNOWN: CgroupName = {
  namespace: UNKNOWN_NAMESPACE,
  pod: UNKNOWN_POD,
  workloadKind: '',
  workload: '',
};

function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/** The synthetic id of a namespace's retired rows (per workload when that label is on). */
export function retiredId(name: CgroupName, byWorkload: boolean): bigint {
  const key = byWorkload
    ? `${name.namespace}\0${name.workloadKind}\0${name.workload}`
    : name.namespace;
  return RETIRED_ID_BIT | (fnv1a64(key) & (RETIRED_ID_BIT - 1n));
}

const sameName = (a: CgroupName | undefined, b: CgroupName) =>
  a !== undefined &&
  a.namespace === b.namespace &&
  a.pod === b.pod &&
  a.workloadKind === b.workloadKind &&
  a.workload === b.workload;

export class CgroupLifecycle {
  private names = new Map<bigint, CgroupName>();
  private readonly firstMissing = new Map<bigint, number>();

  constructor(private readonly opts: { graceMs: number; now: () => number; byWorkload: boolean }) {}

  /** The names pinned by an earlier run (dns_cgroup_names). */
  load(names: ReadonlyMap<bigint, CgroupName>): void {
    this.names = new Map(names);
  }

  plan(rows: readonly DnsStatsRow[], sight: (cgroupId: bigint) => Sighting): LifecyclePlan {
    const now = this.opts.now();
    const names = new Map(this.names);
    const nameWrites: [bigint, CgroupName][] = [];
    const labels = new Map<bigint, CgroupName>();
    const dead = new Set<bigint>();
    for (const id of new Set(rows.map((r) => r.cgroupId))) {
      if (id & RETIRED_ID_BIT) {
        labels.set(id, names.get(id) ?? UNKNOWN);
        continue;
      }
      const s = sight(id);
      if (s.name && !sameName(names.get(id), s.name)) {
        names.set(id, s.name);
        nameWrites.push([id, s.name]);
      }
      labels.set(id, s.name ?? names.get(id) ?? s.provisional ?? UNKNOWN);
      if (!s.gone) {
        this.firstMissing.delete(id);
        continue;
      }
      const since = s.goneSinceMs ?? this.firstMissing.get(id) ?? now;
      if (!this.firstMissing.has(id)) this.firstMissing.set(id, since);
      if (now - since >= this.opts.graceMs) dead.add(id);
    }

    const kept: DnsStatsRow[] = [];
    const retired = new Map<
      string,
      { key: StatsKey; totals: Totals; name: CgroupName; deletes: StatsKey[] }
    >();
    const slot = (name: CgroupName, r: DnsStatsRow) => {
      const id = retiredId(name, this.opts.byWorkload);
      const k = `${id}/${r.role}/${r.qtype}`;
      let e = retired.get(k);
      if (!e) {
        const key: StatsKey = { cgroupId: id, role: r.role, qtype: r.qtype };
        e = { key, totals: emptyTotals(), name, deletes: [] };
        retired.set(k, e);
      }
      return e;
    };
    for (const r of rows) {
      if (dead.has(r.cgroupId)) {
        const e = slot(labels.get(r.cgroupId)!, r);
        addRow(e.totals, r);
        e.deletes.push({ cgroupId: r.cgroupId, role: r.role, qtype: r.qtype });
      } else kept.push(r);
    }
    // Existing retired rows start the sums of the rows retired into them.
    const out: DnsStatsRow[] = [];
    for (const r of kept) {
      const e =
        r.cgroupId & RETIRED_ID_BIT ? retired.get(`${r.cgroupId}/${r.role}/${r.qtype}`) : undefined;
      if (e) addRow(e.totals, r);
      else out.push(r);
    }
    for (const e of retired.values()) {
      out.push({ ...e.totals, ...e.key });
      const name: CgroupName = { ...e.name, pod: RETIRED_POD };
      labels.set(e.key.cgroupId, name);
      if (!sameName(names.get(e.key.cgroupId), name)) {
        names.set(e.key.cgroupId, name);
        nameWrites.push([e.key.cgroupId, name]);
      }
    }
    // Names of retired cgroups, and names left behind by a batch that stopped before them.
    const ids = new Set(rows.map((r) => r.cgroupId));
    const nameDeletes = [
      ...dead,
      ...[...names.keys()].filter(
        (id) => !ids.has(id) && !(id & RETIRED_ID_BIT) && !labels.has(id),
      ),
    ];
    const retiredPods = new Map<string, { namespace: string; pod: string }>();
    for (const id of dead) {
      const n = labels.get(id)!;
      retiredPods.set(`${n.namespace}/${n.pod}`, { namespace: n.namespace, pod: n.pod });
    }
    // A pod with one dead and one live container keeps its series.
    for (const r of out) {
      const n = labels.get(r.cgroupId);
      if (n) retiredPods.delete(`${n.namespace}/${n.pod}`);
    }
    return {
      rows: out,
      nameOf: (id) => labels.get(id) ?? names.get(id) ?? UNKNOWN,
      nameWrites,
      nameDeletes,
      retire: [...retired.values()].map(({ key, totals, deletes }) => ({ key, totals, deletes })),
      retiredPods: [...retiredPods.values()].filter((p) => p.namespace !== HOST_NAMESPACE),
    };
  }

  /** The plan was written: remember its names, forget the retired cgroups. */
  committed(plan: LifecyclePlan): void {
    for (const [id, name] of plan.nameWrites) this.names.set(id, name);
    for (const id of plan.nameDeletes) {
      this.names.delete(id);
      this.firstMissing.delete(id);
    }
  }

  get knownNames(): number {
    return this.names.size;
  }
}
