// Sums of dns_stats rows: what one namespace, one pod or one (namespace, qtype) pair has seen.
import { LAT_SLOTS } from '../bpf/latency-buckets.js';
import { CAUSE_LABELS, RCODE_LABELS } from '../metrics/names.js';
import type { DnsStatsRow } from './stats-row.js';

export interface Totals {
  queries: number;
  retransmits: number[]; // by cause
  timeouts: number[]; // by cause
  responses: number[];
  latencyCount: number;
  latencySumSeconds: number;
  latencySumNs: bigint;
  latency: number[];
}

export function emptyTotals(): Totals {
  return {
    queries: 0,
    retransmits: new Array<number>(CAUSE_LABELS.length).fill(0),
    timeouts: new Array<number>(CAUSE_LABELS.length).fill(0),
    responses: new Array<number>(RCODE_LABELS.length).fill(0),
    latencyCount: 0,
    latencySumSeconds: 0,
    latencySumNs: 0n,
    latency: new Array<number>(LAT_SLOTS).fill(0),
  };
}

export function addRow(into: Totals, row: DnsStatsRow | Totals): void {
  into.queries += row.queries;
  into.latencyCount += row.latencyCount;
  into.latencySumSeconds += row.latencySumSeconds;
  into.latencySumNs += row.latencySumNs;
  addArray(into.retransmits, row.retransmits);
  addArray(into.timeouts, row.timeouts);
  addArray(into.responses, row.responses);
  addArray(into.latency, row.latency);
}

function addArray(into: number[], add: readonly number[]): void {
  for (let i = 0; i < into.length; i++) into[i]! += add[i] ?? 0;
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
