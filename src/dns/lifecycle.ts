// Rows of cgroups that are gone: named from the pinned dns_cgroup_names map (so a restarted
// exporter still knows whose they were), and once gone for the grace period, summed into one
// retired row per namespace (a synthetic cgroup id) and deleted. Namespace counters never go
// backwards; per-pod series of a deleted pod end a grace period after it is gone; dns_stats
// stays bounded by the pods alive now. Planning is pure (time comes from opts.now); the
// exporter writes the plan with one bpftool batch.
//
// A row is labelled once and keeps its label: a new pod's first lookups reach dns_stats
// before any source names its cgroup, and a row shown under namespace="_unknown" that later
// moved to its namespace would make the _unknown counters go backwards. So a live row nobody
// names yet is held out of the aggregates (plan.held) for a short while; named in time, it
// goes straight to its namespace; still unnamed, its fallback label is recorded like a name
// (pinned, so a restart keeps it) and a later name no longer moves it.
import { HOST_NAMESPACE, UNKNOWN_NAMESPACE, UNKNOWN_POD } from '../identity/labels.js';
import type { DnsStatsRow } from './stats-row.js';
import { addRow, emptyTotals, type Totals } from './totals.js';
import type { CgroupName, StatsKey } from './stats-encode.js';

/** bpf/dns.h RETIRED_ID_BIT: no cgroup inode has the top bit set. */
export const RETIRED_ID_BIT = 1n << 63n;
export const RETIRED_POD = '_retired';

/**
 * How long a live row nobody names is held out of the aggregates, from the read that first
 * saw its cgroup unnamed. The sources name a new pod within about a second (/var/log/pods is
 * re-read on a miss at most once per second; the API watch is quicker), but a pod log
 * directory that appears just after a miss is not looked for again for 5 s
 * (pod-log-directory.ts): 10 s covers that, and only unnamed rows wait.
 */
export const UNNAMED_HOLD_MS = 10_000;

/** What the identity sources say about one cgroup id right now. */
export interface Sighting {
  /** Set when a source named the cgroup (a pod or the host): worth persisting. */
  name?: CgroupName;
  /** A fallback label when nobody names it (a pod known only by its UID). */
  provisional?: CgroupName;
  /** The cgroup directory no longer exists, since this time (ms, monotonic) if known. */
  gone: boolean;
  goneSinceMs?: number;
  /**
   * The cgroup index does not know the id (yet): gone for retirement, but not known to be
   * removed: a new pod's cgroup looks like this until the rescan its miss triggers finds it.
   */
  unindexed?: boolean;
}

export interface LifecyclePlan {
  /** Rows as they will be after the plan is written: live rows and updated retired rows. */
  rows: DnsStatsRow[];
  nameOf: (cgroupId: bigint) => CgroupName;
  /**
   * Live cgroups nobody names yet, within the hold: their rows stay in dns_stats (and in
   * rows) but are left out of every aggregate and per-pod series until they are labelled.
   */
  held: ReadonlySet<bigint>;
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

/** A fallback label recorded as a row's name (namespace "_unknown" is never a real one). */
const isFallback = (n: CgroupName | undefined) => n?.namespace === UNKNOWN_NAMESPACE;

export class CgroupLifecycle {
  private names = new Map<bigint, CgroupName>();
  private readonly firstMissing = new Map<bigint, number>();
  /** When a read first saw a live cgroup that nobody named. */
  private readonly firstUnnamed = new Map<bigint, number>();
  /**
   * Fallback labels already shown (the hold ended unnamed): sticky even while their name
   * write has not gone through, since the aggregates used them.
   */
  private readonly fallbacks = new Map<bigint, CgroupName>();
  private readonly holdMs: number;

  constructor(
    private readonly opts: {
      graceMs: number;
      now: () => number;
      byWorkload: boolean;
      /** How long a live unnamed row is held out of the aggregates (default UNNAMED_HOLD_MS). */
      unnamedHoldMs?: number;
    },
  ) {
    this.holdMs = opts.unnamedHoldMs ?? UNNAMED_HOLD_MS;
  }

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
    const held = new Set<bigint>();
    const ids = new Set(rows.map((r) => r.cgroupId));
    for (const m of [this.firstUnnamed, this.fallbacks])
      for (const id of m.keys()) if (!ids.has(id)) m.delete(id);
    const record = (id: bigint, name: CgroupName) => {
      if (sameName(names.get(id), name)) return;
      names.set(id, name);
      nameWrites.push([id, name]);
    };
    for (const id of ids) {
      if (id & RETIRED_ID_BIT) {
        labels.set(id, names.get(id) ?? UNKNOWN);
        continue;
      }
      const s = sight(id);
      if (!s.gone) this.firstMissing.delete(id);
      else {
        const since = s.goneSinceMs ?? this.firstMissing.get(id) ?? now;
        if (!this.firstMissing.has(id)) this.firstMissing.set(id, since);
        if (now - since >= this.opts.graceMs) dead.add(id);
      }
      // A fallback label once shown stays: a later name would move the counts out of _unknown.
      const sticky =
        this.fallbacks.get(id) ?? (isFallback(names.get(id)) ? names.get(id) : undefined);
      if (sticky) {
        if (!dead.has(id)) record(id, sticky);
        labels.set(id, sticky);
        continue;
      }
      if (s.name) record(id, s.name);
      const named = s.name ?? names.get(id);
      if (named) {
        this.firstUnnamed.delete(id);
        labels.set(id, named);
        continue;
      }
      const fallback = s.provisional ?? UNKNOWN;
      labels.set(id, fallback);
      const since = this.firstUnnamed.get(id) ?? now;
      this.firstUnnamed.set(id, since);
      const removed = s.gone && !s.unindexed;
      if (!removed && !dead.has(id) && now - since < this.holdMs) held.add(id);
      else {
        // Shown under its fallback from now on: also if the write retiring a dead row fails
        // and the cgroup turns out to be alive (a grace shorter than the hold).
        this.fallbacks.set(id, fallback);
        if (!dead.has(id)) record(id, fallback);
      }
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
    // A pod with one dead and one live container keeps its series (a held row has no pod yet).
    for (const r of out) {
      const n = held.has(r.cgroupId) ? undefined : labels.get(r.cgroupId);
      if (n) retiredPods.delete(`${n.namespace}/${n.pod}`);
    }
    return {
      rows: out,
      nameOf: (id) => labels.get(id) ?? names.get(id) ?? UNKNOWN,
      held,
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
      this.firstUnnamed.delete(id);
      this.fallbacks.delete(id);
    }
  }

  get knownNames(): number {
    return this.names.size;
  }
}
