// DNS overview of a cluster: which namespaces look up how much, how slowly, how often they
// stall or time out, and what the nodes' conntrack and netfilter say about it.
import { CONNTRACK_METRIC, METRIC } from '../src/metrics/names.js';
import { buildDashboard } from './lib/dashboard.js';
import { dataLink, NAMESPACE_ROW_LINK, UID } from './lib/links.js';
import { stat, table, timeseries } from './lib/panels.js';
import {
  conntrackStallDrops,
  histogram,
  NODE_KEY,
  sel,
  STALL_SECONDS,
  sumRate,
  withNodeName,
} from './lib/promql.js';
import {
  clusterVariable,
  datasourceVariable,
  namespaceVariable,
  NODE_SCOPE,
  nodeVariable,
} from './lib/variables.js';

const NS: readonly string[] = [...NODE_SCOPE, 'namespace=~"$namespace"'];
const R = '$__rate_interval';
const RANGE = '$__range';
const H = METRIC.dnsQueryDuration;
const BY_NS = ['namespace'];
const NODE = [...NODE_KEY];

function quantiles(by: string[], legendPrefix: string) {
  return [0.5, 0.95, 0.99].map((q) => ({
    expr: histogram.quantile(q, H, NS, by, R),
    legend: `p${q * 100} ${legendPrefix}`,
  }));
}

export function overviewDashboard() {
  return buildDashboard({
    uid: UID.overview,
    title: 'dnsrace / DNS overview',
    description:
      "Pods' DNS lookups as the nodes saw them: rates, latency, 5 s stalls and timeouts per namespace, and the conntrack and netfilter drops behind them per node.",
    variables: [
      datasourceVariable(),
      clusterVariable(),
      nodeVariable(),
      namespaceVariable({ multi: true }),
    ],
    rows: [
      {
        title: 'Lookups',
        panels: [
          stat({
            title: 'Lookups/s',
            description: 'DNS queries sent by pods (first sends), per second, now.',
            unit: 'reqps',
            query: { expr: sumRate(METRIC.dnsQueries, NS, [], R) },
          }),
          stat({
            title: 'Timed-out queries',
            description:
              'Queries never answered within --timeout-deadline of their last send, over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.dnsTimeouts, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: '5 s-class stalls',
            description: `Answers that came more than ${STALL_SECONDS} s after the first send, over the time range: the lookup waited out a resolver timeout (5 s with glibc) before a re-send was answered.`,
            unit: 'short',
            query: { expr: histogram.slowerThanStall(H, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Retransmits',
            description:
              'Queries re-sent by pods over the time range: resolvers re-send only after their timeout, so each one is a stall.',
            unit: 'short',
            query: { expr: sumRate(METRIC.dnsRetransmits, NS, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Conntrack drops',
            description:
              'Packets lost to conntrack on the chosen nodes over the time range, kernel-aware: insert_failed on 5.10+, drop before (docs/conntrack.md).',
            unit: 'short',
            query: {
              expr: `sum(${conntrackStallDrops(NODE_SCOPE, RANGE, 'increase')})`,
            },
            redFrom: 1,
          }),
          stat({
            title: 'DNS queries dropped by netfilter',
            description:
              "Pods' DNS queries dropped on the node by netfilter or a conntrack insert failure, over the time range.",
            unit: 'short',
            query: {
              expr: sumRate(
                METRIC.dnsQueryDrops,
                [...NS, 'reason=~"netfilter_drop|conntrack_insert_failed"'],
                [],
                RANGE,
                'increase',
              ),
            },
            redFrom: 1,
          }),
          timeseries({
            title: 'Lookups/s by namespace',
            description: 'DNS queries sent by pods (first sends), per namespace.',
            unit: 'reqps',
            queries: [{ expr: sumRate(METRIC.dnsQueries, NS, BY_NS, R), legend: '{{namespace}}' }],
          }),
          timeseries({
            title: 'Latency p50 / p95 / p99 by namespace',
            description:
              'First send to answer, per namespace, across the chosen nodes. A p99 near 5 s, 10 s or 15 s is the resolver-timeout signature.',
            unit: 's',
            queries: quantiles(BY_NS, '{{namespace}}'),
          }),
          timeseries({
            title: 'Timeouts/s by namespace',
            description: 'Queries of pods never answered, per namespace.',
            unit: 'reqps',
            queries: [{ expr: sumRate(METRIC.dnsTimeouts, NS, BY_NS, R), legend: '{{namespace}}' }],
            size: { width: 8 },
          }),
          timeseries({
            title: 'Retransmits/s by namespace',
            description: 'Queries re-sent by pods after a resolver timeout, per namespace.',
            unit: 'reqps',
            queries: [
              { expr: sumRate(METRIC.dnsRetransmits, NS, BY_NS, R), legend: '{{namespace}}' },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: '5 s-class stalls/s by namespace',
            description: `Answers that came more than ${STALL_SECONDS} s after the first send, per namespace.`,
            unit: 'reqps',
            queries: [
              { expr: histogram.slowerThanStall(H, NS, BY_NS, R), legend: '{{namespace}}' },
            ],
            size: { width: 8 },
          }),
          table({
            title: 'Top namespaces by timeouts',
            description:
              'Namespaces ranked by timed-out queries over the time range, with their lookups and 5 s-class stalls. Click a row for the namespace dashboard.',
            queries: [
              {
                expr: sumRate(METRIC.dnsTimeouts, NS, BY_NS, RANGE, 'increase'),
                column: 'Timeouts',
                unit: 'short',
              },
              {
                expr: sumRate(METRIC.dnsRetransmits, NS, BY_NS, RANGE, 'increase'),
                column: 'Retransmits',
                unit: 'short',
              },
              {
                expr: sumRate(METRIC.dnsQueries, NS, BY_NS, RANGE, 'increase'),
                column: 'Lookups',
                unit: 'short',
              },
            ],
            sortBy: 'Timeouts',
            links: [dataLink('Namespace dashboard', NAMESPACE_ROW_LINK)],
            size: { width: 24 },
          }),
        ],
      },
      {
        title: 'Nodes: conntrack and netfilter',
        panels: [
          timeseries({
            title: 'Conntrack drops per node (kernel-aware) and timeouts',
            description:
              'Packets conntrack dropped: insert_failed on kernels >= 5.10 (each one a lost packet), drop on older kernels, where insert_failed also counts clashes resolved without loss (docs/conntrack.md). Timeouts of the same nodes beside: the two move together when the insert race costs answers.',
            unit: 'pps',
            queries: [
              {
                expr: withNodeName(conntrackStallDrops(NODE_SCOPE, R), NODE_SCOPE),
                legend: 'conntrack drops {{node}}',
              },
              {
                expr: withNodeName(sumRate(METRIC.dnsTimeouts, NS, NODE, R), NODE_SCOPE),
                legend: 'DNS timeouts {{node}}',
              },
            ],
          }),
          timeseries({
            title: 'Conntrack insert_failed and drop per node (raw)',
            description:
              'The raw counters. Since 5.10 insert_failed counts only clashes that dropped the packet; before 5.10 it counts every clash, resolved or not, and drop is the loss signal.',
            unit: 'pps',
            queries: [
              {
                expr: withNodeName(
                  sumRate(CONNTRACK_METRIC.insertFailed, NODE_SCOPE, NODE, R),
                  NODE_SCOPE,
                ),
                legend: 'insert_failed {{node}}',
              },
              {
                expr: withNodeName(sumRate(CONNTRACK_METRIC.drop, NODE_SCOPE, NODE, R), NODE_SCOPE),
                legend: 'drop {{node}}',
              },
            ],
          }),
          timeseries({
            title: 'Clashes absorbed by the kernel (clash_resolve) per node',
            description:
              'Informational: insert clashes (parallel A and AAAA from one socket) that the kernel resolved without a drop. Not a stall, but proof that clients race. No series on a node: kernel < 5.10, where clashes are not counted separately.',
            unit: 'ops',
            queries: [
              {
                expr: withNodeName(
                  sumRate(CONNTRACK_METRIC.clashResolve, NODE_SCOPE, NODE, R),
                  NODE_SCOPE,
                ),
                legend: '{{node}}',
              },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: 'Conntrack table fill per node',
            description:
              'Entries over nf_conntrack_max. Near 1, conntrack evicts unreplied entries (early_drop) and then drops new flows.',
            unit: 'percentunit',
            queries: [
              {
                expr: withNodeName(
                  `max by (${NODE.join(', ')}) (${sel(CONNTRACK_METRIC.entries, NODE_SCOPE)} / ${sel(CONNTRACK_METRIC.max, NODE_SCOPE)})`,
                  NODE_SCOPE,
                ),
                legend: '{{node}}',
              },
            ],
            size: { width: 8 },
          }),
          timeseries({
            title: 'Netfilter drops of pods per node, by reason',
            description:
              'Packets of pods dropped by netfilter (netfilter_drop) or by a conntrack insert failure (conntrack_insert_failed, fexit mode), per node. DNS ones are port_class="dns".',
            unit: 'pps',
            queries: [
              {
                expr: withNodeName(
                  sumRate(METRIC.netfilterDrops, NS, [...NODE, 'reason', 'port_class'], R),
                  NODE_SCOPE,
                ),
                legend: '{{node}} {{reason}} {{port_class}}',
              },
            ],
            size: { width: 8 },
          }),
        ],
      },
      {
        title: 'Exporter health',
        panels: [
          stat({
            title: 'Nodes with programs attached',
            description:
              'Exporters whose DNS programs are attached (dnsrace_bpf_programs_attached).',
            unit: 'short',
            query: { expr: `sum(${sel(METRIC.up, NODE_SCOPE)})` },
          }),
          stat({
            title: 'Nodes without programs',
            description: 'Exporters running but blind: their DNS programs are not attached.',
            unit: 'short',
            query: { expr: `count(${sel(METRIC.up, NODE_SCOPE)} == 0) or vector(0)` },
            redFrom: 1,
          }),
          stat({
            title: 'Queries lost to full BPF maps',
            description:
              'Inserts that failed because a BPF map was full, over the time range: those queries were not tracked.',
            unit: 'short',
            query: { expr: sumRate(METRIC.mapOverflows, NODE_SCOPE, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Identity sources degraded',
            description:
              'Pod identity sources (kube-api, pod-log-dir) in state degraded: pods they have not named count in namespace _unknown.',
            unit: 'short',
            query: {
              expr: `count(${sel(METRIC.identitySource, [...NODE_SCOPE, 'state="degraded"'])}) or vector(0)`,
            },
            redFrom: 1,
          }),
          table({
            title: 'Pod identity sources',
            description:
              'The current state of each pod identity source per node (docs/identity.md): kube-api connecting, connected, degraded or disabled; pod-log-dir connected or degraded.',
            queries: [
              {
                expr: withNodeName(
                  `max by (${NODE.join(', ')}, source, state) (${sel(METRIC.identitySource, NODE_SCOPE)})`,
                  NODE_SCOPE,
                ),
                column: 'Current',
                unit: 'short',
              },
            ],
            sortBy: 'state',
            size: { width: 12 },
          }),
          timeseries({
            title: 'BPF map fill',
            description: 'Entries over capacity of each BPF map, worst node.',
            unit: 'percentunit',
            queries: [
              {
                expr: `max by (map) (${sel(METRIC.mapEntries, NODE_SCOPE)} / (${sel(METRIC.mapMaxEntries, NODE_SCOPE)} > 0))`,
                legend: '{{map}}',
              },
            ],
          }),
        ],
      },
    ],
  });
}
