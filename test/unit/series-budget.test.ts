// The per-node series budget, stated in README and enforced here: a change that adds
// series per pod or per namespace must update both.
import { readProcessStats } from '../../src/process-stats.js';
import { assessCapabilities } from '../../src/capabilities.js';
import { describe, expect, it } from 'vitest';
import { aggregateDnsStats } from '../../src/dns/aggregate.js';
import { PodSeriesBudget } from '../../src/dns/pod-budget.js';
import { emptyTotals } from '../../src/dns/totals.js';
import type { DnsStatsRow } from '../../src/dns/stats-row.js';
import { buildFamilies } from '../../src/exposition/families.js';
import { renderText } from '../../src/exposition/prom-text.js';
import { DROP_REASON_LABELS, QTYPE_LABELS } from '../../src/metrics/names.js';
import { aggregateDrops } from '../../src/drops/aggregate.js';
import { DROP_HEALTH_COUNTERS } from '../../src/drops/drop-health.js';
import type { PacketDropRow } from '../../src/drops/drop-rows.js';
import { parsePromText } from '../support/prom-text.js';

/**
 * Series per namespace with client traffic: 3 qtypes x (queries, 3 retransmit causes,
 * 3 timeout causes, 5 rcodes, 19 le + +Inf + sum + count), plus dropped DNS queries
 * (3 qtypes x 5 reasons) and answers (5 reasons) when drops happen.
 */
const PER_CLIENT_NAMESPACE = 3 * (1 + 3 + 3 + 5 + 22) + 15 + 5;
/** Series per namespace hosting DNS servers: 3 qtypes x (queries, timeouts, 5 rcodes, 22 histogram series). */
const PER_SERVER_NAMESPACE = 3 * (2 + 5 + 22);
/**
 * Series per pod (or per namespace's _other): 3 counters + 6 le + +Inf + sum + count, plus
 * netfilter drops (3 protocols x 2 port classes x 2 reasons) when drops happen.
 */
const PER_POD = 3 + 9 + 12;
/** Self-health series, independent of pods. */
const FIXED = 60;

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

/** Every drop row the kernel can produce for each pod: the worst case. */
function dropRowsFor(pods: number): PacketDropRow[] {
  const out: PacketDropRow[] = [];
  for (let p = 0; p < pods; p++) {
    const podAddr = `10.0.${p >> 8}.${p & 255}`;
    for (const protocol of ['udp', 'tcp', 'other'] as const)
      for (const portClass of ['dns', 'other'] as const)
        for (const reason of DROP_REASON_LABELS)
          for (const direction of ['from_pod', 'to_pod'] as const)
            for (const qtype of [...QTYPE_LABELS, undefined])
              out.push({ podAddr, protocol, portClass, qtype, reason, direction, count: 1 });
  }
  return out;
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
      const budget = new PodSeriesBudget(limit);
      const agg = aggregateDnsStats(rows, (id) => names.get(id)!, budget);
      const drops = aggregateDrops(
        dropRowsFor(pods),
        (addr) => {
          const [, , hi, lo] = addr.split('.').map(Number);
          const p = hi! * 256 + lo!;
          return { namespace: `ns-${p % namespaces}`, pod: `pod-${p}` };
        },
        budget,
      );
      const text = await renderText(
        buildFamilies({
          attached: true,
          dropMode: 'fexit',
          eventStats: () => undefined,
          processStats: readProcessStats,
          exemplars: () => [],
          identitySources: () => [
            { source: 'kube-api', state: 'connected' },
            { source: 'pod-log-dir', state: 'connected' },
          ],
          conntrack: {
            source: 'procfs',
            counters: {
              insert_failed: 1,
              drop: 1,
              early_drop: 1,
              clash_resolve: 1,
              search_restart: 1,
              chaintoolong: 1,
            },
            entries: 5,
            max: 262144,
            cpus: 2,
          },
          // Every requirement that applies on a pre-5.11 kernel: the most capability series.
          capabilities: assessCapabilities(
            0n,
            { major: 5, minor: 10 },
            { memlockUnlimited: false },
          ),
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
            drops: {
              agg: drops,
              health: Object.fromEntries(DROP_HEALTH_COUNTERS.map((k) => [k, 1])),
            },
          },
        }),
        'prometheus',
      );
      const series = parsePromText(text).length;
      const stated = seriesBudget(pods, namespaces, namespaces, limit);
      expect(series).toBeLessThanOrEqual(stated);
      // The budget is tight enough to mean something: within 10 % of what is really served.
      expect(series).toBeGreaterThan(stated * 0.9);
      const podSeries = parsePromText(text).filter((s) =>
        s.name.startsWith('dnsrace_dns_pod_'),
      ).length;
      expect(podSeries).toBeLessThanOrEqual(PER_POD * (Math.min(pods, limit) + namespaces));
      const nfSeries = parsePromText(text).filter(
        (s) => s.name === 'dnsrace_netfilter_drops_total',
      ).length;
      expect(nfSeries).toBeGreaterThan(0);
    },
  );

  it('110 pods in 20 namespaces, DNS servers in one: at most 5,707 series', () => {
    expect(seriesBudget(110, 20, 1, 250)).toBe(122 * 20 + 87 * 1 + 24 * 130 + 60);
  });
});
