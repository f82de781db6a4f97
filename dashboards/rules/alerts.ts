// Alerting rules. Each has a severity, a `for`, a summary, a description and a runbook
// (docs/runbooks/<alert>.md); deploy/prometheus/tests/ has a "not yet" and a "firing" case
// for each (rules/promtool-tests.ts).
import { CONNTRACK_METRIC, METRIC } from '../../src/metrics/names.js';
import { OVERFLOW_COUNTERS } from '../../src/bpf/dns-health.js';
import { NODE_KEY, sel, STALL_SECONDS } from '../lib/promql.js';
import { THRESHOLD, type RulesConfig } from './config.js';
import { RECORDED } from './recording.js';

export type Severity = 'critical' | 'warning' | 'info';

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: Severity };
  annotations: { summary: string; description: string; runbook_url: string };
}

type AlertSpec = Omit<AlertRule, 'labels' | 'annotations'> & {
  severity: Severity;
  summary: string;
  description: string;
};

const NODE = NODE_KEY.join(', ');

/** `{{ $labels.cluster }}` and the like, for printf arguments. */
const L = (label: string) => `$labels.${label}`;

/** A Go raw string literal: PromQL keeps its double quotes unescaped. */
function goRaw(s: string): string {
  if (s.includes('`')) throw new Error(`a backtick in a template query: ${s}`);
  return `\`${s}\``;
}

/**
 * Go template: the first value of an instant query, humanized, or `none` when it returns
 * nothing. `query` is PromQL with %q placeholders filled from `args` (label references).
 */
function queried(query: string, args: string[], format: string, none: string, unit = ''): string {
  return `{{ with printf ${goRaw(query)} ${args.join(' ')} | query }}{{ . | first | value | ${format} }}${unit}{{ else }}${none}{{ end }}`;
}

/** The node's name from dnsrace_build_info, else the instance. */
const NODE_NAME = `{{ with printf ${goRaw(`${METRIC.buildInfo}{cluster=%q, instance=%q}`)} ${L('cluster')} ${L('instance')} | query }}{{ . | first | label "node" }}{{ else }}{{ $labels.instance }}{{ end }}`;

const NS_ARGS = [L('cluster'), L('namespace')];
/** Counts from rate × window are extrapolated, hence not whole: round them. */
const COUNT = 'printf "%.0f"';
const nsQuery = (recorded: string, scale = '') => `${recorded}{cluster=%q, namespace=%q}${scale}`;

function alertSpecs(c: RulesConfig): AlertSpec[] {
  const job = `job=${JSON.stringify(c.exporterJob)}`;
  const overflowMaps = Object.keys(OVERFLOW_COUNTERS).sort().join('|');
  return [
    {
      alert: 'DnsraceDNSTimeouts',
      expr: `${RECORDED.timeoutRatio} > ${THRESHOLD.timeoutRatio}`,
      for: '10m',
      severity: 'warning',
      summary: 'DNS queries of namespace {{ $labels.namespace }} time out',
      description:
        `{{ $value | humanizePercentage }} of the DNS queries that pods in namespace {{ $labels.namespace }} sent over the last 5 minutes were never answered (threshold ${THRESHOLD.timeoutRatio * 100}%). ` +
        `Caused by a drop on the node: ${queried(
          `sum(${RECORDED.timeoutsByCause}{cluster=%q, namespace=%q, cause!="unanswered"}) / sum(${RECORDED.timeoutsByCause}{cluster=%q, namespace=%q})`,
          [...NS_ARGS, ...NS_ARGS],
          'humanizePercentage',
          'unknown',
        )} of them (the rest: no answer, cause "unanswered").`,
    },
    {
      alert: 'DnsraceDNSLatencyHigh',
      expr: `${RECORDED.quantile}{quantile="0.99"} > ${THRESHOLD.p99Seconds}`,
      for: '15m',
      severity: 'warning',
      summary:
        'p99 DNS latency of namespace {{ $labels.namespace }} is {{ $value | humanizeDuration }}',
      description: `The 99th percentile of DNS lookup latency (first send to answer) seen by pods in namespace {{ $labels.namespace }} has stayed above ${THRESHOLD.p99Seconds}s. A p99 near 5 s, 10 s or 15 s means resolver timeouts (DnsraceDNSStalls); a p99 spread between 1 s and 5 s points at slow DNS servers or upstreams.`,
    },
    {
      alert: 'DnsraceDNSStalls',
      expr: `${RECORDED.slowAnswers} > 0\nor\n${RECORDED.retransmits} > 0`,
      for: '10m',
      severity: 'warning',
      summary: 'Pods in namespace {{ $labels.namespace }} stall on DNS for 5 s at a time',
      description:
        `Pods in namespace {{ $labels.namespace }} keep waiting out resolver timeouts. In the last 5 minutes about ${queried(nsQuery(RECORDED.slowAnswers, ' * 300'), NS_ARGS, COUNT, '0')} answers came after more than ${STALL_SECONDS} s ` +
        `and ${queried(nsQuery(RECORDED.retransmits, ' * 300'), NS_ARGS, COUNT, '0')} queries were re-sent. ` +
        'This is the signature of lost queries: the conntrack insert race of parallel A and AAAA lookups, or a netfilter drop.',
    },
    {
      alert: 'DnsraceDNSQueriesDropped',
      expr: `sum by (cluster, namespace) (${RECORDED.queryDrops}{reason=~"netfilter_drop|conntrack_insert_failed"}) > 0`,
      for: '5m',
      severity: 'warning',
      summary: 'The nodes drop DNS queries of namespace {{ $labels.namespace }}',
      description:
        'Netfilter on the nodes dropped {{ $value | printf "%.3g" }} DNS queries per second sent by pods in namespace {{ $labels.namespace }} over the last 5 minutes (reasons netfilter_drop and conntrack_insert_failed). Each dropped query costs its lookup a resolver timeout.',
    },
    {
      alert: 'DnsraceConntrackInsertFailed',
      expr: `${RECORDED.conntrackStallDrops} > 0`,
      for: '10m',
      severity: 'warning',
      summary: `Conntrack drops packets on node ${NODE_NAME}`,
      description:
        `Conntrack on node ${NODE_NAME} lost {{ $value | printf "%.3g" }} packets per second over the last 5 minutes (insert_failed on kernels >= 5.10, drop on older ones; docs/conntrack.md). ` +
        `Clashes the kernel absorbed without loss (clash_resolve): ${queried(
          `${RECORDED.conntrackClashResolve}{cluster=%q, instance=%q}`,
          [L('cluster'), L('instance')],
          'printf "%.3g"',
          'not counted by this kernel (< 5.10)',
          '/s',
        )}. ` +
        'When DNS timeouts rise with it, the insert race of parallel A and AAAA queries is stalling lookups.',
    },
    {
      alert: 'DnsraceConntrackTableNearlyFull',
      expr: `max by (${NODE}) (${CONNTRACK_METRIC.entries} / ${CONNTRACK_METRIC.max}) > ${THRESHOLD.conntrackFill}`,
      for: '5m',
      severity: 'warning',
      summary: `The conntrack table of node ${NODE_NAME} is {{ $value | humanizePercentage }} full`,
      description: `Node ${NODE_NAME} tracks more than ${THRESHOLD.conntrackFill * 100}% of nf_conntrack_max connections. When it is full, conntrack evicts unreplied entries (early_drop, which can lose DNS answers) and then drops new flows.`,
    },
    {
      alert: 'DnsraceExporterDown',
      expr: `up{${job}} == 0\nor\nabsent(up{${job}})`,
      for: '5m',
      severity: 'warning',
      summary:
        '{{ if $labels.instance }}The dnsrace exporter {{ $labels.instance }} is down{{ else }}No dnsrace exporter is scraped{{ end }}',
      description: `{{ if $labels.instance }}Prometheus cannot scrape the dnsrace exporter at {{ $labels.instance }} (job ${c.exporterJob}): DNS stalls on its node go unseen.{{ else }}Prometheus has no target in job ${c.exporterJob}: DNS stalls go unseen on every node.{{ end }}`,
    },
    {
      alert: 'DnsraceProgramsNotAttached',
      expr: `${METRIC.up} == 0`,
      for: '5m',
      severity: 'warning',
      summary: `dnsrace's DNS programs are not attached on node ${NODE_NAME}`,
      description: `The exporter on node ${NODE_NAME} runs but its BPF programs are not attached to the pods' cgroup: it counts no lookups. Its log says why.`,
    },
    {
      alert: 'DnsraceBPFMapFull',
      expr: [
        `sum by (${NODE}, map) (increase(${METRIC.mapOverflows}[5m])) > 0`,
        `or`,
        `max by (${NODE}, map) (${sel(METRIC.mapEntries, [`map=~"${overflowMaps}"`])} / (${METRIC.mapMaxEntries} > 0)) > ${THRESHOLD.bpfMapFill}`,
      ].join('\n'),
      for: '5m',
      severity: 'warning',
      summary: `BPF map {{ $labels.map }} is full on node ${NODE_NAME}`,
      description:
        `The exporter on node ${NODE_NAME} cannot track everything: map {{ $labels.map }} is ${queried(
          `${METRIC.mapEntries}{cluster=%q, instance=%q, map=%q} / ${METRIC.mapMaxEntries}{cluster=%q, instance=%q, map=%q}`,
          [L('cluster'), L('instance'), L('map'), L('cluster'), L('instance'), L('map')],
          'humanizePercentage',
          'an unknown share',
        )} full and ${queried(
          `increase(${METRIC.mapOverflows}{cluster=%q, instance=%q, map=%q}[5m])`,
          [L('cluster'), L('instance'), L('map')],
          COUNT,
          '0',
        )} inserts failed in the last 5 minutes. ` +
        'Queries that do not fit in dns_pending are neither paired nor timed out; rows that do not fit in dns_stats are not counted.',
    },
    {
      alert: 'DnsracePodDNSFlood',
      expr: `sum by (${NODE}) (increase(${METRIC.pendingShareExceeded}[5m])) > 0`,
      for: '5m',
      severity: 'warning',
      summary: `A pod floods DNS without answers on node ${NODE_NAME}`,
      description:
        `On node ${NODE_NAME} a pod has an eighth of dns_pending awaiting answers: ${queried(
          `increase(${METRIC.pendingShareExceeded}{cluster=%q, instance=%q}[5m])`,
          [L('cluster'), L('instance')],
          COUNT,
          'some',
        )} of its queries in the last 5 minutes were counted but not tracked (no latency, no timeout). ` +
        'The other pods are still tracked. Usually a client re-sends to a DNS server that does not answer: ' +
        'topk(5, rate(dnsrace_dns_pod_queries_total[1m])) on that node names it.',
    },
    {
      alert: 'DnsraceIdentitySourceDegraded',
      expr: `max by (${NODE}, source) (${METRIC.identitySource}{state="degraded"}) == 1`,
      for: '15m',
      severity: 'info',
      summary: `Pod identity source {{ $labels.source }} is degraded on node ${NODE_NAME}`,
      description: `The exporter on node ${NODE_NAME} cannot use its pod identity source {{ $labels.source }}. Pods it has not named yet are counted in namespace _unknown (pod _uid-<uid>) until another source names them.`,
    },
  ];
}

export function alertRules(c: RulesConfig): AlertRule[] {
  return alertSpecs(c).map((s) => ({
    alert: s.alert,
    expr: s.expr,
    for: c.forOverride ?? s.for,
    labels: { severity: s.severity },
    annotations: {
      summary: s.summary,
      description: s.description,
      runbook_url: `${c.runbookBaseUrl}/${s.alert}.md`,
    },
  }));
}
