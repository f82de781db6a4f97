// Byte layouts of the maps the exporter writes (bpf/dns.h): dns_stats keys and values for
// retired rows, dns_cgroup_names values. Little-endian, as the kernel stores them on the
// architectures we ship for. Pure.
import { QTYPE_LABELS } from '../metrics/names.js';
import { memberOffsets, sizeAndAlign, STRUCTS } from '../bpf/map-layouts.js';
import type { DnsStatsRow } from './stats-row.js';

// Sizes from the one description of these structs (src/bpf/map-layouts.ts).
export const DNS_STATS_KEY_SIZE = sizeAndAlign({ struct: STRUCTS.dns_stats_key }).size;
/** u64 queries, retransmits[3], timeouts[3], responses[5], latency_count, latency_sum_ns, latency[89]. */
export const DNS_STATS_VALUE_SIZE = sizeAndAlign({ struct: STRUCTS.dns_stats }).size;
const NAME = memberOffsets(STRUCTS.cgroup_name);
export const CGROUP_NAME_FIELDS = {
  namespace: NAME.namespace!.size,
  pod: NAME.pod!.size,
  workload_kind: NAME.workload_kind!.size,
  workload: NAME.workload!.size,
};
export const CGROUP_NAME_SIZE = sizeAndAlign({ struct: STRUCTS.cgroup_name }).size;

export interface StatsKey {
  cgroupId: bigint;
  role: DnsStatsRow['role'];
  qtype: DnsStatsRow['qtype'];
}

export function encodeStatsKey(k: StatsKey): Buffer {
  const b = Buffer.alloc(DNS_STATS_KEY_SIZE);
  b.writeBigUInt64LE(k.cgroupId, 0);
  b.writeUInt8(k.role === 'server' ? 1 : 0, 8);
  b.writeUInt8(QTYPE_LABELS.indexOf(k.qtype), 9);
  return b;
}

export function encodeStatsValue(r: Omit<DnsStatsRow, 'cgroupId' | 'role' | 'qtype'>): Buffer {
  const b = Buffer.alloc(DNS_STATS_VALUE_SIZE);
  let at = 0;
  const u64 = (v: number | bigint) => {
    b.writeBigUInt64LE(BigInt(v), at);
    at += 8;
  };
  u64(r.queries);
  r.retransmits.forEach(u64);
  r.timeouts.forEach(u64);
  r.responses.forEach(u64);
  u64(r.latencyCount);
  u64(r.latencySumNs);
  r.latency.forEach(u64);
  if (at !== DNS_STATS_VALUE_SIZE) throw new Error(`dns_stats value encoded to ${at} bytes`);
  return b;
}

export interface CgroupName {
  namespace: string;
  pod: string;
  workloadKind: string;
  workload: string;
}

/** NUL-padded, truncated at a UTF-8 character boundary one byte short of the field. */
export function encodeCgroupName(n: CgroupName): Buffer {
  const b = Buffer.alloc(CGROUP_NAME_SIZE);
  let at = 0;
  for (const [text, size] of [
    [n.namespace, CGROUP_NAME_FIELDS.namespace],
    [n.pod, CGROUP_NAME_FIELDS.pod],
    [n.workloadKind, CGROUP_NAME_FIELDS.workload_kind],
    [n.workload, CGROUP_NAME_FIELDS.workload],
  ] as const) {
    let bytes = Buffer.from(text, 'utf8');
    while (bytes.length > size - 1)
      bytes = Buffer.from(
        bytes
          .subarray(0, size - 1)
          .toString('utf8')
          .replace(/\uFFFD$/, ''),
        'utf8',
      );
    bytes.copy(b, at);
    at += size;
  }
  return b;
}

function cString(v: unknown, where: string): string {
  // bpftool prints a char array with BTF as a JSON string.
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const bytes = v.map(Number);
    const end = bytes.indexOf(0);
    return Buffer.from(end < 0 ? bytes : bytes.slice(0, end)).toString('utf8');
  }
  throw new Error(`dns_cgroup_names: ${where} is not a string`);
}

/** dns_cgroup_names dump (decoded by src/bpf/map-layouts.ts) -> id -> name. */
export function decodeCgroupNames(
  entries: readonly { key: unknown; value?: unknown }[],
): Map<bigint, CgroupName> {
  const out = new Map<bigint, CgroupName>();
  for (const e of entries) {
    const v = e.value as Record<string, unknown>;
    if (typeof e.key !== 'number' && typeof e.key !== 'bigint')
      throw new Error('dns_cgroup_names: key is not an integer');
    out.set(BigInt(e.key), {
      namespace: cString(v.namespace, 'namespace'),
      pod: cString(v.pod, 'pod'),
      workloadKind: cString(v.workload_kind, 'workload_kind'),
      workload: cString(v.workload, 'workload'),
    });
  }
  return out;
}
