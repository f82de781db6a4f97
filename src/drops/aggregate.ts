// Where a dropped packet becomes a per-pod number: the pod address of each packet_drops
// row is mapped to the cgroup that last sent DNS from it, then named like DNS rows. Pure.
import type { PodName } from '../dns/aggregate.js';
import type { PodSeriesBudget } from '../dns/pod-budget.js';
import { OTHER_PODS } from '../metrics/names.js';
import { RETIRED_POD } from '../dns/lifecycle.js';
import type { PacketDropRow } from './drop-rows.js';

export const UNKNOWN_ADDRESS_POD: PodName = { namespace: '_unknown', pod: '_unknown' };

export interface DropAggregate {
  /** Netfilter-level drops (netfilter_drop, conntrack_insert_failed) per pod. */
  netfilter: Map<string, { labels: Record<string, string>; value: number }>;
  /** Dropped DNS queries per namespace, qtype and reason. */
  dnsQueries: Map<string, { labels: Record<string, string>; value: number }>;
  /** Dropped DNS answers on their way to pods, per namespace and reason. */
  dnsAnswers: Map<string, { labels: Record<string, string>; value: number }>;
}

function add(map: DropAggregate['netfilter'], labels: Record<string, string>, n: number): void {
  const key = JSON.stringify(labels);
  const cur = map.get(key);
  if (cur) cur.value += n;
  else map.set(key, { labels, value: n });
}

export function aggregateDrops(
  rows: readonly PacketDropRow[],
  podOfAddress: (addr: string) => PodName,
  budget: PodSeriesBudget,
): DropAggregate {
  const agg: DropAggregate = { netfilter: new Map(), dnsQueries: new Map(), dnsAnswers: new Map() };
  for (const r of rows) {
    const { namespace, pod } = podOfAddress(r.podAddr);
    if (r.reason === 'netfilter_drop' || r.reason === 'conntrack_insert_failed') {
      // Retired pods (deleted past their grace period) keep one series per namespace.
      const podLabel = pod === RETIRED_POD || budget.admit(namespace, pod) ? pod : OTHER_PODS;
      add(
        agg.netfilter,
        {
          namespace,
          pod: podLabel,
          protocol: r.protocol,
          port_class: r.portClass,
          reason: r.reason,
        },
        r.count,
      );
    }
    if (r.portClass !== 'dns') continue;
    if (r.direction === 'from_pod' && r.qtype)
      add(agg.dnsQueries, { namespace, qtype: r.qtype, reason: r.reason }, r.count);
    else if (r.direction === 'to_pod')
      add(agg.dnsAnswers, { namespace, reason: r.reason }, r.count);
  }
  return agg;
}
