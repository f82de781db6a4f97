// Recording rules: per-namespace rates and quantiles across nodes, and per-node drop rates,
// over 5 minutes. The alerts read these; dashboards compute the same with promql.ts live.
import { CONNTRACK_METRIC, METRIC } from '../../src/metrics/names.js';
import { conntrackStallDrops, histogram, NODE_KEY, sumRate } from '../lib/promql.js';

export const WINDOW = '5m';
const NS = ['cluster', 'namespace'];
const NODE = [...NODE_KEY];
const H = METRIC.dnsQueryDuration;

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

/** Recorded names, for the alerts: one constant per series family they read. */
export const RECORDED = {
  queries: 'namespace:dnsrace_dns_queries:rate5m',
  timeouts: 'namespace:dnsrace_dns_timeouts:rate5m',
  timeoutsByCause: 'namespace_cause:dnsrace_dns_timeouts:rate5m',
  timeoutRatio: 'namespace:dnsrace_dns_timeouts_per_query:ratio_rate5m',
  retransmits: 'namespace:dnsrace_dns_retransmits:rate5m',
  answers: 'namespace:dnsrace_dns_query_duration_seconds_count:rate5m',
  slowAnswers: 'namespace:dnsrace_dns_slow_answers:rate5m',
  quantile: 'namespace_quantile:dnsrace_dns_query_duration_seconds:histogram_quantile',
  queryDrops: 'namespace_reason:dnsrace_dns_query_drops:rate5m',
  netfilterDropsByNamespace: 'namespace_reason:dnsrace_netfilter_drops:rate5m',
  netfilterDropsByNode: 'instance:dnsrace_netfilter_drops:rate5m',
  conntrackStallDrops: 'instance:dnsrace_conntrack_stall_drops:rate5m',
  conntrackInsertFailed: 'instance:dnsrace_conntrack_insert_failed:rate5m',
  conntrackDrop: 'instance:dnsrace_conntrack_drop:rate5m',
  conntrackClashResolve: 'instance:dnsrace_conntrack_clash_resolve:rate5m',
} as const;

export const QUANTILES = ['0.5', '0.95', '0.99'] as const;

export function recordingRules(): RecordingRule[] {
  const r = (record: string, expr: string): RecordingRule => ({ record, expr });
  return [
    r(RECORDED.queries, sumRate(METRIC.dnsQueries, [], NS, WINDOW)),
    r(RECORDED.timeouts, sumRate(METRIC.dnsTimeouts, [], NS, WINDOW)),
    r(RECORDED.timeoutsByCause, sumRate(METRIC.dnsTimeouts, [], [...NS, 'cause'], WINDOW)),
    // Timeouts per first send: a query re-sent and then given up counts once on each side.
    r(RECORDED.timeoutRatio, `${RECORDED.timeouts}\n/\n${RECORDED.queries}`),
    r(RECORDED.retransmits, sumRate(METRIC.dnsRetransmits, [], NS, WINDOW)),
    r(RECORDED.answers, histogram.count(H, [], NS, WINDOW)),
    r(RECORDED.slowAnswers, histogram.slowerThanStall(H, [], NS, WINDOW)),
    ...QUANTILES.map((q) => ({
      record: RECORDED.quantile,
      expr: histogram.quantile(Number(q), H, [], NS, WINDOW),
      labels: { quantile: q },
    })),
    r(RECORDED.queryDrops, sumRate(METRIC.dnsQueryDrops, [], [...NS, 'reason'], WINDOW)),
    r(
      RECORDED.netfilterDropsByNamespace,
      sumRate(METRIC.netfilterDrops, [], [...NS, 'reason'], WINDOW),
    ),
    r(RECORDED.netfilterDropsByNode, sumRate(METRIC.netfilterDrops, [], NODE, WINDOW)),
    r(RECORDED.conntrackStallDrops, conntrackStallDrops([], WINDOW)),
    r(RECORDED.conntrackInsertFailed, sumRate(CONNTRACK_METRIC.insertFailed, [], NODE, WINDOW)),
    r(RECORDED.conntrackDrop, sumRate(CONNTRACK_METRIC.drop, [], NODE, WINDOW)),
    r(RECORDED.conntrackClashResolve, sumRate(CONNTRACK_METRIC.clashResolve, [], NODE, WINDOW)),
  ];
}
