// One namespace: its pods ranked by timeouts and latency, its latency distribution, the
// split by rcode and qtype (A vs AAAA), and why its queries timed out.
import { METRIC } from '../src/metrics/names.js';
import { buildDashboard } from './lib/dashboard.js';
import { dataLink, POD_ROW_LINK, UID } from './lib/links.js';
import { latencyHeatmap, stat, table, timeseries } from './lib/panels.js';
import { histogram, STALL_SECONDS, sumRate } from './lib/promql.js';
import {
  clusterVariable,
  datasourceVariable,
  namespaceVariable,
  NODE_SCOPE,
  nodeVariable,
  podVariable,
} from './lib/variables.js';

const NS: readonly string[] = [...NODE_SCOPE, 'namespace="$namespace"'];
const PODS: readonly string[] = [...NS, 'pod=~"$pod"'];
const R = '$__rate_interval';
const RANGE = '$__range';
const H = METRIC.dnsQueryDuration;
const PH = METRIC.podQueryDuration;

export function namespaceDashboard() {
  return buildDashboard({
    uid: UID.namespace,
    title: 'dnsrace / Namespace',
    description:
      "One namespace's DNS lookups: which pods stall or time out, the latency distribution, A vs AAAA, rcodes, and the causes of its timeouts.",
    variables: [
      datasourceVariable(),
      clusterVariable(),
      nodeVariable(),
      namespaceVariable({ multi: false }),
      podVariable({ multi: true }),
    ],
    rows: [
      {
        title: 'Namespace $namespace',
        panels: [
          stat({
            title: 'Lookups/s',
            description:
              'DNS queries sent by pods of the namespace (first sends), per second, now.',
            unit: 'reqps',
            query: { expr: sumRate(METRIC.dnsQueries, NS, [], R) },
          }),
          stat({
            title: 'p99 latency',
            description: 'First send to answer, over the time range.',
            unit: 's',
            query: { expr: histogram.quantile(0.99, H, NS, [], RANGE) },
            redFrom: 1,
          }),
          stat({
            title: 'Timed-out queries',
            description: 'Queries never answered, over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.dnsTimeouts, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: '5 s-class stalls',
            description: `Answers that came more than ${STALL_SECONDS} s after the first send, over the time range.`,
            unit: 'short',
            query: { expr: histogram.slowerThanStall(H, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Retransmits',
            description: 'Queries re-sent after a resolver timeout, over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.dnsRetransmits, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'DNS queries dropped on the node',
            description:
              'DNS queries of the namespace dropped on the node (any reason), over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.dnsQueryDrops, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          table({
            title: 'Pods ranked by timeouts',
            description:
              'Per-pod drill-down families (dnsrace_dns_pod_*), over the time range. p99 comes from the coarse per-pod histogram (15.6 ms, 125 ms, 1 s, 4 s, 8 s, 16 s). Pods beyond --pod-series-limit are summed into pod="_other". Click a row for the pod dashboard.',
            queries: [
              {
                expr: sumRate(METRIC.podTimeouts, PODS, ['pod'], RANGE, 'increase'),
                column: 'Timeouts',
                unit: 'short',
              },
              {
                expr: sumRate(METRIC.podRetransmits, PODS, ['pod'], RANGE, 'increase'),
                column: 'Retransmits',
                unit: 'short',
              },
              {
                expr: sumRate(METRIC.podQueries, PODS, ['pod'], RANGE, 'increase'),
                column: 'Lookups',
                unit: 'short',
              },
              {
                expr: histogram.quantile(0.99, PH, PODS, ['pod'], RANGE),
                column: 'p99',
                unit: 's',
              },
            ],
            sortBy: 'Timeouts',
            links: [dataLink('Pod dashboard', POD_ROW_LINK)],
          }),
          table({
            title: 'Pods ranked by p99 latency',
            description:
              'The slowest pods over the time range (coarse per-pod histogram: a p99 in (4, 8] s means 5 s stalls).',
            queries: [
              {
                expr: `topk(25, ${histogram.quantile(0.99, PH, PODS, ['pod'], RANGE)})`,
                column: 'p99',
                unit: 's',
              },
            ],
            sortBy: 'p99',
            links: [dataLink('Pod dashboard', POD_ROW_LINK)],
          }),
          latencyHeatmap({
            title: 'Latency distribution',
            description:
              'Answers per latency bucket over time (first send to answer). Bands at 5 s, 10 s and 15 s are resolver timeouts.',
            expr: histogram.heatmap(H, NS, R),
          }),
          timeseries({
            title: 'Latency p50 / p95 / p99',
            description:
              'First send to answer, across the chosen nodes. Exemplar points on p99 name the pod and DNS id of recent slow lookups.',
            unit: 's',
            queries: [0.5, 0.95, 0.99].map((q) => ({
              expr: histogram.quantile(q, H, NS, [], R),
              legend: `p${q * 100}`,
              // The stalled lookups behind a p99 spike, as points naming their pod.
              ...(q === 0.99 && { exemplar: true }),
            })),
          }),
        ],
      },
      {
        title: 'A vs AAAA, rcodes',
        panels: [
          timeseries({
            title: 'Lookups/s by qtype',
            description:
              'A and AAAA go out together from one socket (glibc, musl): the pair that races in conntrack.',
            unit: 'reqps',
            queries: [{ expr: sumRate(METRIC.dnsQueries, NS, ['qtype'], R), legend: '{{qtype}}' }],
            size: { width: 8 },
          }),
          timeseries({
            title: 'p99 latency by qtype',
            description: 'When only AAAA (or only A) stalls, one query of the pair is being lost.',
            unit: 's',
            queries: [
              { expr: histogram.quantile(0.99, H, NS, ['qtype'], R), legend: 'p99 {{qtype}}' },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: 'Answers/s by rcode',
            description:
              'NXDOMAIN-heavy traffic is usually the ndots:5 search-list walk: each short name is tried with every search domain first.',
            unit: 'reqps',
            queries: [
              { expr: sumRate(METRIC.dnsResponses, NS, ['rcode'], R), legend: '{{rcode}}' },
            ],
            size: { width: 8 },
          }),
        ],
      },
      {
        title: 'Why queries time out',
        panels: [
          timeseries({
            title: 'Timeouts/s by cause',
            description:
              'netfilter_drop: the node dropped the query (kfree_skb); conntrack_insert_failed: an exact conntrack insert failure (fexit mode only); unanswered: nothing seen on the node, so the server or the network lost it. Exemplar points name the pod and DNS id of the latest timed-out lookup per cause.',
            unit: 'reqps',
            queries: [
              {
                expr: sumRate(METRIC.dnsTimeouts, NS, ['qtype', 'cause'], R),
                legend: '{{qtype}} {{cause}}',
                exemplar: true,
              },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: 'Retransmits/s by cause',
            description:
              'Re-sends after a resolver timeout, by what the node saw happen to the original.',
            unit: 'reqps',
            queries: [
              {
                expr: sumRate(METRIC.dnsRetransmits, NS, ['qtype', 'cause'], R),
                legend: '{{qtype}} {{cause}}',
              },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: 'DNS queries dropped on the node, by reason',
            description:
              'The drops themselves, by qtype and reason (netfilter_drop, conntrack_insert_failed, no_socket, socket_rcvbuff, other).',
            unit: 'pps',
            queries: [
              {
                expr: sumRate(METRIC.dnsQueryDrops, NS, ['qtype', 'reason'], R),
                legend: '{{qtype}} {{reason}}',
              },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: 'Timeouts/s by pod',
            description: 'Per-pod drill-down family dnsrace_dns_pod_timeouts_total.',
            unit: 'reqps',
            queries: [{ expr: sumRate(METRIC.podTimeouts, PODS, ['pod'], R), legend: '{{pod}}' }],
          }),
          timeseries({
            title: 'Netfilter drops by pod',
            description:
              'Packets of the pods dropped by netfilter or conntrack, by protocol and port class.',
            unit: 'pps',
            queries: [
              {
                expr: sumRate(
                  METRIC.netfilterDrops,
                  PODS,
                  ['pod', 'reason', 'protocol', 'port_class'],
                  R,
                ),
                legend: '{{pod}} {{reason}} {{protocol}}/{{port_class}}',
              },
            ],
          }),
        ],
      },
    ],
  });
}
