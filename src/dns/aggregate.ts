// Where kernel rows become per-namespace and per-pod numbers: each dns_stats row (one
// cgroup, role and qtype) is named by the identity resolver and summed. Pure.
import { OTHER_PODS, type QtypeLabel } from '../metrics/names.js';
import type { DnsStatsRow } from './stats-row.js';
import { addRow, emptyTotals, type Totals } from './totals.js';
import type { PodSeriesBudget } from './pod-budget.js';
import { RETIRED_POD } from './lifecycle.js';

export interface PodName {
  namespace: string;
  pod: string;
  /** Only with --workload-label: e.g. "deployment/web"; the per-namespace families gain it. */
  workload?: string;
}

export interface DnsAggregate {
  /** Client side (lookups made by pods), group -> qtype -> totals (groupLabels() names a group). */
  client: Map<string, Map<QtypeLabel, Totals>>;
  /** Server side (queries answered by DNS server pods), group -> qtype -> totals. */
  server: Map<string, Map<QtypeLabel, Totals>>;
  /** Client side per pod (all qtypes), namespace -> pod -> totals; bounded by the budget. */
  pods: Map<string, Map<string, Totals>>;
}

const SEP = '\u0000';

/** The per-namespace families' group: the namespace, or the namespace and workload. */
export function groupKey(name: PodName): string {
  return name.workload === undefined ? name.namespace : `${name.namespace}${SEP}${name.workload}`;
}

export function groupLabels(key: string): Record<string, string> {
  const i = key.indexOf(SEP);
  return i < 0 ? { namespace: key } : { namespace: key.slice(0, i), workload: key.slice(i + 1) };
}

function slot<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

export function aggregateDnsStats(
  rows: readonly DnsStatsRow[],
  nameOf: (cgroupId: bigint) => PodName,
  budget: PodSeriesBudget,
): DnsAggregate {
  const agg: DnsAggregate = { client: new Map(), server: new Map(), pods: new Map() };
  for (const row of rows) {
    const name = nameOf(row.cgroupId);
    const { namespace, pod } = name;
    const byQtype = slot(
      row.role === 'server' ? agg.server : agg.client,
      groupKey(name),
      () => new Map(),
    );
    addRow(slot(byQtype, row.qtype, emptyTotals), row);
    // Retired rows (pods gone past their grace period) count for the namespace only.
    if (row.role === 'client' && pod !== RETIRED_POD) {
      const podLabel = budget.admit(namespace, pod) ? pod : OTHER_PODS;
      addRow(
        slot(
          slot(agg.pods, namespace, () => new Map()),
          podLabel,
          emptyTotals,
        ),
        row,
      );
    }
  }
  return agg;
}
