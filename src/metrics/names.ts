// The metric contract: every family name the exporter serves, in one place, so that the
// dashboards and alert rules (generated from TypeScript) cannot drift from the exporter.

export const METRIC = {
  // Client view (a pod's own lookups), per namespace. qtype: A | AAAA | other.
  dnsQueries: 'dnsrace_dns_queries_total',
  dnsResponses: 'dnsrace_dns_responses_total',
  dnsQueryDuration: 'dnsrace_dns_query_duration_seconds',
  dnsRetransmits: 'dnsrace_dns_retransmits_total',
  dnsTimeouts: 'dnsrace_dns_timeouts_total',
  // Server view (queries arriving at DNS server pods, e.g. CoreDNS), per namespace of the server.
  dnsServerQueries: 'dnsrace_dns_server_queries_total',
  dnsServerResponses: 'dnsrace_dns_server_responses_total',
  dnsServerDuration: 'dnsrace_dns_server_duration_seconds',
  dnsServerTimeouts: 'dnsrace_dns_server_timeouts_total',
  // Per-pod drill-down, bounded by --pod-series-limit.
  podQueries: 'dnsrace_dns_pod_queries_total',
  podRetransmits: 'dnsrace_dns_pod_retransmits_total',
  podTimeouts: 'dnsrace_dns_pod_timeouts_total',
  podQueryDuration: 'dnsrace_dns_pod_query_duration_seconds',
  // Self-health.
  buildInfo: 'dnsrace_build_info',
  up: 'dnsrace_bpf_programs_attached',
  dnsPackets: 'dnsrace_bpf_dns_packets_total',
  parseErrors: 'dnsrace_bpf_parse_errors_total',
  unmatchedAnswers: 'dnsrace_bpf_unmatched_answers_total',
  mapOverflows: 'dnsrace_bpf_map_overflows_total',
  pendingShareExceeded: 'dnsrace_bpf_pending_share_exceeded_total',
  mapEntries: 'dnsrace_bpf_map_entries',
  mapMaxEntries: 'dnsrace_bpf_map_max_entries',
  bpftoolFailures: 'dnsrace_bpftool_failures_total',
  mapReadDuration: 'dnsrace_map_read_duration_seconds',
  mapReadTimestamp: 'dnsrace_map_read_last_success_timestamp_seconds',
  podSeriesDropped: 'dnsrace_pod_series_overflow_pods',
  identitySource: 'dnsrace_identity_source',
  capability: 'dnsrace_capability',
  // The process, under the names every Prometheus client library uses.
  processCpu: 'process_cpu_seconds_total',
  processResident: 'process_resident_memory_bytes',
  processStartTime: 'process_start_time_seconds',
  heapUsed: 'nodejs_heap_size_used_bytes',
  heapTotal: 'nodejs_heap_size_total_bytes',
  externalMemory: 'nodejs_external_memory_bytes',
  events: 'dnsrace_bpf_events_total',
  eventsDropped: 'dnsrace_bpf_events_dropped_total',
  // Drops (bpf/drops.bpf.c, bpf/conntrack_fexit.bpf.c), attributed to pods by address.
  netfilterDrops: 'dnsrace_netfilter_drops_total',
  dnsQueryDrops: 'dnsrace_dns_query_drops_total',
  dnsAnswerDrops: 'dnsrace_dns_answer_drops_total',
  dropAttributionMode: 'dnsrace_drop_attribution_mode',
  dropProgramEvents: 'dnsrace_bpf_drop_events_total',
} as const;

export const QTYPE_LABELS = ['A', 'AAAA', 'other'] as const;
export type QtypeLabel = (typeof QTYPE_LABELS)[number];

export const RCODE_LABELS = ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other'] as const;
export type RcodeLabel = (typeof RCODE_LABELS)[number];

/**
 * Why a query was re-sent or timed out, as far as the node saw (bpf/dns.h enum stall_cause):
 * a netfilter drop of it, an exact conntrack insert failure (fexit mode only), or nothing.
 */
export const CAUSE_LABELS = ['unanswered', 'netfilter_drop', 'conntrack_insert_failed'] as const;
export type CauseLabel = (typeof CAUSE_LABELS)[number];

/** Drop reasons of bpf/drops.h enum drop_reason_class. */
export const DROP_REASON_LABELS = [
  'netfilter_drop',
  'conntrack_insert_failed',
  'no_socket',
  'socket_rcvbuff',
  'other',
] as const;

/** Pods beyond --pod-series-limit are summed into this pod label per namespace. */
export const OTHER_PODS = '_other';

/** Node-wide conntrack statistics (src/conntrack/, docs/conntrack.md). */
export { CONNTRACK_METRIC } from '../conntrack/metrics.js';
