// One pod: its latency distribution, timeouts and retransmits (the per-pod families), its
// netfilter drops, and the way to the exporter's own drill-down page for it.
import { METRIC } from '../src/metrics/names.js';
import { buildDashboard } from './lib/dashboard.js';
import {
  dataLink,
  EXPORTER_POD_PAGE_FIELD_LINK,
  EXPORTER_POD_PAGE_ROW_LINK,
  UID,
} from './lib/links.js';
import { latencyHeatmap, stat, table, timeseries } from './lib/panels.js';
import { histogram, NODE_KEY, STALL_SECONDS, sumRate, withNodeName } from './lib/promql.js';
import {
  clusterVariable,
  datasourceVariable,
  namespaceVariable,
  NODE_SCOPE,
  nodeVariable,
  podVariable,
} from './lib/variables.js';

const POD: readonly string[] = [...NODE_SCOPE, 'namespace="$namespace"', 'pod="$pod"'];
const R = '$__rate_interval';
const RANGE = '$__range';
const PH = METRIC.podQueryDuration;
/** Series keep the labels the exporter's page needs: which exporter, which pod. */
const PAGE_KEY = [...NODE_KEY, 'namespace', 'pod'];

const exporterPage = dataLink("Exporter's page for this pod", EXPORTER_POD_PAGE_FIELD_LINK, true);

export function podDashboard() {
  return buildDashboard({
    uid: UID.pod,
    title: 'dnsrace / Pod',
    description:
      "One pod's DNS lookups (per-pod families, coarse buckets) and netfilter drops, with a link to the exporter's drill-down page for the pod.",
    variables: [
      datasourceVariable(),
      clusterVariable(),
      nodeVariable(),
      namespaceVariable({ multi: false }),
      podVariable({ multi: false }),
    ],
    rows: [
      {
        title: 'Pod $namespace/$pod',
        panels: [
          stat({
            title: 'Lookups/s',
            description: 'DNS queries sent by the pod (first sends), per second, now.',
            unit: 'reqps',
            query: { expr: sumRate(METRIC.podQueries, POD, [], R) },
          }),
          stat({
            title: 'p99 latency',
            description:
              'Over the time range, from the coarse per-pod histogram (15.6 ms, 125 ms, 1 s, 4 s, 8 s, 16 s).',
            unit: 's',
            query: { expr: histogram.quantile(0.99, PH, POD, [], RANGE) },
            redFrom: 1,
          }),
          stat({
            title: '5 s-class stalls',
            description: `Answers that came more than ${STALL_SECONDS} s after the first send, over the time range.`,
            unit: 'short',
            query: { expr: histogram.slowerThanStall(PH, POD, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Timed-out queries',
            description: 'Queries of the pod never answered, over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.podTimeouts, POD, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Retransmits',
            description: 'Queries the pod re-sent, over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.podRetransmits, POD, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          stat({
            title: 'Netfilter drops',
            description:
              'Packets of the pod dropped by netfilter or conntrack, over the time range.',
            unit: 'short',
            query: { expr: sumRate(METRIC.netfilterDrops, POD, [], RANGE, 'increase') },
            redFrom: 1,
          }),
          latencyHeatmap({
            title: 'Latency distribution',
            description:
              'Answers per latency bucket over time (coarse per-pod buckets; (4, 8] s holds the 5 s stalls, (8, 16] s the 10 s and 15 s ones).',
            expr: histogram.heatmap(PH, POD, R),
          }),
          timeseries({
            title: 'Lookups, timeouts and retransmits',
            description:
              "Per-pod families. Each series links to the exporter's drill-down page for the pod (on the node that served it).",
            unit: 'reqps',
            queries: [
              {
                expr: sumRate(METRIC.podQueries, POD, PAGE_KEY, R),
                legend: 'lookups {{instance}}',
              },
              {
                expr: sumRate(METRIC.podTimeouts, POD, PAGE_KEY, R),
                legend: 'timeouts {{instance}}',
              },
              {
                expr: sumRate(METRIC.podRetransmits, POD, PAGE_KEY, R),
                legend: 'retransmits {{instance}}',
              },
            ],
            links: [exporterPage],
          }),
          timeseries({
            title: 'Latency p50 / p95 / p99',
            description:
              'From the coarse per-pod histogram: good for telling 5 s stalls from fast answers.',
            unit: 's',
            queries: [0.5, 0.95, 0.99].map((q) => ({
              expr: histogram.quantile(q, PH, POD, [], R),
              legend: `p${q * 100}`,
            })),
          }),
          timeseries({
            title: 'Netfilter drops by reason',
            description:
              'Packets of the pod dropped on the node: netfilter_drop, or conntrack_insert_failed (fexit mode), by protocol and port class (dns = port 53).',
            unit: 'pps',
            queries: [
              {
                expr: sumRate(METRIC.netfilterDrops, POD, ['reason', 'protocol', 'port_class'], R),
                legend: '{{reason}} {{protocol}}/{{port_class}}',
              },
            ],
          }),
          table({
            title: 'Where the pod runs',
            description:
              "The node(s) whose exporter saw the pod over the time range. Click a row for the exporter's drill-down page for the pod.",
            queries: [
              {
                expr: withNodeName(
                  sumRate(METRIC.podQueries, POD, PAGE_KEY, RANGE, 'increase'),
                  NODE_SCOPE,
                ),
                column: 'Lookups',
                unit: 'short',
              },
            ],
            sortBy: 'Lookups',
            links: [dataLink("Exporter's page for this pod", EXPORTER_POD_PAGE_ROW_LINK, true)],
          }),
        ],
      },
    ],
  });
}
