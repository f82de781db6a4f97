// Where kernel rows become per-namespace and per-pod numbers: each dns_stats row (one
// cgroup, role and qtype) is named by the identity resolver and summed. Pure.
import { OTHER_PODS, type QtypeLabel } from '../metrics/names.js';
import type { DnsStatsRow } from './stats-row.js';
import { addRow, emptyTotals, type Totals } from './totals.js';
import type { PodSeriesBudget } from './pod-budget.js';

export interface PodName {
  namespace: string;
  pod: string;
}

export interface DnsAggregate {
  /** Client side (lookups made by pods), namespace -> qtype -> totals. */
  client: Map<string, Map<QtypeLabel, Totals>>;
  /** Server side (queries answered by DNS server pods), namespace -> qtype -> totals. */
  server: Map<string, Map<QtypeLabel, Totals>>;
  /** Client side per pod (all qtypes), namespace -> pod -> totals; bounded by the budget. */
  pods: Map<string, Map<string, Totals>>;
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
    const { namespace, pod } = nameOf(row.cgroupId);
    const byQtype = slot(
      row.role === 'server' ? agg.server : agg.client,
      namespace,
      () => new Map(),
    );
    addRow(slot(byQtype, row.qtype, emptyTotals), row);
    if (row.role === 'client') {
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
