// Sums of dns_stats rows: what one namespace, one pod or one (namespace, qtype) pair has seen.
import { LAT_SLOTS } from '../bpf/latency-buckets.js';
import { RCODE_LABELS } from '../metrics/names.js';
import type { DnsStatsRow } from './stats-row.js';

export interface Totals {
  queries: number;
  retransmits: number;
  timeouts: number;
  responses: number[];
  latencyCount: number;
  latencySumSeconds: number;
  latency: number[];
}

export function emptyTotals(): Totals {
  return {
    queries: 0,
    retransmits: 0,
    timeouts: 0,
    responses: new Array<number>(RCODE_LABELS.length).fill(0),
    latencyCount: 0,
    latencySumSeconds: 0,
    latency: new Array<number>(LAT_SLOTS).fill(0),
  };
}

export function addRow(into: Totals, row: DnsStatsRow | Totals): void {
  into.queries += row.queries;
  into.retransmits += row.retransmits;
  into.timeouts += row.timeouts;
  into.latencyCount += row.latencyCount;
  into.latencySumSeconds += row.latencySumSeconds;
  for (let i = 0; i < into.responses.length; i++) into.responses[i]! += row.responses[i] ?? 0;
  for (let i = 0; i < into.latency.length; i++) into.latency[i]! += row.latency[i] ?? 0;
}
