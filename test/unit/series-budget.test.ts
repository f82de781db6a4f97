// The per-node series budget, stated in README and enforced here: a change that adds
// series per pod or per namespace must update both.
import { describe, expect, it } from 'vitest';
import { aggregateDnsStats } from '../../src/dns/aggregate.js';
import { PodSeriesBudget } from '../../src/dns/pod-budget.js';
import { emptyTotals } from '../../src/dns/totals.js';
import type { DnsStatsRow } from '../../src/dns/stats-row.js';
import { buildFamilies } from '../../src/exposition/families.js';
import { renderText } from '../../src/exposition/prom-text.js';
import { QTYPE_LABELS } from '../../src/metrics/names.js';
import { parsePromText } from '../support/prom-text.js';

/** Series per namespace with client traffic: 3 qtypes x (queries, retransmits, timeouts, 5 rcodes, 19 le + +Inf + sum + count). */
const PER_CLIENT_NAMESPACE = 3 * (3 + 5 + 22);
/** Series per namespace hosting DNS servers: 3 qtypes x (queries, timeouts, 5 rcodes, 22 histogram series). */
const PER_SERVER_NAMESPACE = 3 * (2 + 5 + 22);
/** Series per pod (or per namespace's _other): 3 counters + 6 le + +Inf + sum + count. */
const PER_POD = 3 + 9;
/** Self-health series, independent of pods. */
const FIXED = 40;

function seriesBudget(
  pods: number,
  namespaces: number,
  serverNamespaces: number,
  podLimit: number,
): number {
  return (
    PER_CLIENT_NAMESPACE * namespaces +
    PER_SERVER_NAMESPACE * serverNamespaces +
    PER_POD * (Math.min(pods, podLimit) + namespaces) +
    FIXED
  );
}

function rowsFor(
  pods: number,
  namespaces: number,
): { rows: DnsStatsRow[]; names: Map<bigint, { namespace: string; pod: string }> } {
  const rows: DnsStatsRow[] = [];
  const names = new Map<bigint, { namespace: string; pod: string }>();
  for (let p = 0; p < pods; p++) {
    // Two containers per pod, every qtype, both roles: the worst case for the exporter.
    for (const c of [0, 1]) {
      const id = BigInt(1000 + p * 2 + c);
      names.set(id, { namespace: `ns-${p % namespaces}`, pod: `pod-${p}` });
      for (const qtype of QTYPE_LABELS)
        for (const role of ['client', 'server'] as const)
          rows.push({ ...emptyTotals(), cgroupId: id, role, qtype, queries: 1 });
    }
  }
  return { rows, names };
}

describe('series budget per node', () => {
  it.each([
    [110, 20, 250],
    [110, 20, 50],
    [500, 40, 250],
  ])(
    '%i pods in %i namespaces with --pod-series-limit %i stay within the stated budget',
    async (pods, namespaces, limit) => {
      const { rows, names } = rowsFor(pods, namespaces);
      const agg = aggregateDnsStats(rows, (id) => names.get(id)!, new PodSeriesBudget(limit));
      const text = await renderText(
        buildFamilies({
          attached: true,
          bpftoolFailures: new Map([['stats_dump', 1]]),
          build: { version: 'x', node: 'n', kernel: 'k', bpftool: 'b' },
          snapshot: {
            dns: agg,
            health: {},
            maps: [
              { map: 'dns_pending', entries: 0, maxEntries: 1 },
              { map: 'dns_retry_index', entries: 0, maxEntries: 1 },
              { map: 'dns_stats', entries: 0, maxEntries: 1 },
            ],
            readDurationSeconds: 0,
            readTimestampSeconds: 0,
            podSeriesOverflow: 0,
          },
        }),
        'prometheus',
      );
      const series = parsePromText(text).length;
      const budget = seriesBudget(pods, namespaces, namespaces, limit);
      expect(series).toBeLessThanOrEqual(budget);
      // The budget is tight enough to mean something: within 10 % of what is really served.
      expect(series).toBeGreaterThan(budget * 0.9);
      const podSeries = parsePromText(text).filter((s) =>
        s.name.startsWith('dnsrace_dns_pod_'),
      ).length;
      expect(podSeries).toBeLessThanOrEqual(PER_POD * (Math.min(pods, limit) + namespaces));
    },
  );

  it('110 pods in 20 namespaces: about 4,900 series with every namespace hosting clients and servers', () => {
    expect(seriesBudget(110, 20, 20, 250)).toBe(90 * 20 + 87 * 20 + 12 * 130 + 40);
  });
});
