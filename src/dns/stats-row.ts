// Decodes rows of the pinned dns_stats map (bpf/dns.h: struct dns_stats_key -> struct dns_stats)
// from a dump decoded by src/bpf/map-layouts.ts (the shape of bpftool's BTF view). Pure.
import { CAUSE_LABELS, QTYPE_LABELS, type QtypeLabel, RCODE_LABELS } from '../metrics/names.js';
import { LAT_SLOTS } from '../bpf/latency-buckets.js';

export type Role = 'client' | 'server';

export interface DnsStatsRow {
  cgroupId: bigint;
  role: Role;
  qtype: QtypeLabel;
  queries: number;
  /** Indexed like CAUSE_LABELS. */
  retransmits: number[];
  /** Indexed like CAUSE_LABELS. */
  timeouts: number[];
  /** Indexed like RCODE_LABELS. */
  responses: number[];
  latencyCount: number;
  latencySumSeconds: number;
  /** The kernel's exact sum, kept for writing a retired row back. */
  latencySumNs: bigint;
  /** Indexed by latency slot (bpf/dns.h LAT_SLOTS). */
  latency: number[];
}

type Json = unknown;

function field(obj: Json, name: string, where: string): Json {
  if (typeof obj !== 'object' || obj === null || !(name in obj))
    throw new Error(`dns_stats dump: ${where} has no field '${name}'`);
  return (obj as Record<string, Json>)[name];
}

function toBigInt(v: Json, where: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new Error(`dns_stats dump: ${where} is not an integer: ${String(v)}`);
}

function toCount(v: Json, where: string): number {
  return Number(toBigInt(v, where));
}

function countArray(v: Json, length: number, where: string): number[] {
  if (!Array.isArray(v) || v.length !== length)
    throw new Error(`dns_stats dump: ${where} is not an array of ${length}`);
  return v.map((x, i) => toCount(x, `${where}[${i}]`));
}

export function decodeDnsStatsRow(entry: Json): DnsStatsRow {
  const key = field(entry, 'key', 'entry');
  const value = field(entry, 'value', 'entry');
  const role = toCount(field(key, 'role', 'key'), 'key.role');
  const qtype = toCount(field(key, 'qtype', 'key'), 'key.qtype');
  const sumNs = toBigInt(field(value, 'latency_sum_ns', 'value'), 'value.latency_sum_ns');
  return {
    cgroupId: toBigInt(field(key, 'cgroup_id', 'key'), 'key.cgroup_id'),
    role: role === 1 ? 'server' : 'client',
    qtype: QTYPE_LABELS[qtype] ?? 'other',
    queries: toCount(field(value, 'queries', 'value'), 'value.queries'),
    retransmits: countArray(
      field(value, 'retransmits', 'value'),
      CAUSE_LABELS.length,
      'value.retransmits',
    ),
    timeouts: countArray(field(value, 'timeouts', 'value'), CAUSE_LABELS.length, 'value.timeouts'),
    responses: countArray(
      field(value, 'responses', 'value'),
      RCODE_LABELS.length,
      'value.responses',
    ),
    latencyCount: toCount(field(value, 'latency_count', 'value'), 'value.latency_count'),
    // Seconds as a float: exact to the microsecond until ~285 years of summed latency.
    latencySumSeconds: Number(sumNs / 1000n) / 1e6,
    latencySumNs: sumNs,
    latency: countArray(field(value, 'latency', 'value'), LAT_SLOTS, 'value.latency'),
  };
}

export function decodeDnsStats(entries: readonly Json[]): DnsStatsRow[] {
  return entries.map(decodeDnsStatsRow);
}
