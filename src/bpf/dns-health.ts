// Names of the dns_health per-CPU counters, in the order of enum health_counter (bpf/dns.h).
export const HEALTH_COUNTERS = [
  'dns_packets',
  'unmatched_answers',
  'pending_full',
  'stats_full',
  'retry_index_full',
  'parse_truncated',
  'parse_bad_question',
  'parse_fragment',
  'parse_ipv6_ext',
  'parse_tcp_not_start',
  'sweep_runs',
  'events_sent',
  'events_rate_limited',
  'events_output_failed',
  'pending_share_full',
] as const;
export type HealthCounter = (typeof HEALTH_COUNTERS)[number];

/** Parse-error reason label -> counter. */
export const PARSE_ERROR_REASONS: Record<string, HealthCounter> = {
  truncated: 'parse_truncated',
  bad_question: 'parse_bad_question',
  fragment: 'parse_fragment',
  ipv6_ext_chain: 'parse_ipv6_ext',
  tcp_not_message_start: 'parse_tcp_not_start',
};

/** Map whose insert failed -> counter: each is a query or row the kernel could not track. */
export const OVERFLOW_COUNTERS: Record<string, HealthCounter> = {
  dns_pending: 'pending_full',
  dns_stats: 'stats_full',
  dns_retry_index: 'retry_index_full',
};

/** Sums a per-CPU array dump (index -> per-CPU values) into named counters. */
export function healthFromPerCpu(
  values: ReadonlyMap<number, number>,
): Record<HealthCounter, number> {
  const out = {} as Record<HealthCounter, number>;
  HEALTH_COUNTERS.forEach((name, i) => (out[name] = values.get(i) ?? 0));
  return out;
}
