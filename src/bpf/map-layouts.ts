// The byte layouts of the maps the exporter reads (bpf/dns.h, bpf/drops.h), and a decoder
// from raw key/value bytes to the shape bpftool's BTF-formatted dump would print: structs as
// objects, integers as numbers (bigint beyond 2^53), char arrays as strings, other arrays as
// arrays. The maps are declared by size, without key/value BTF (why: bpf/dns.bpf.c), so
// bpftool prints raw bytes and this module is where they get their meaning back.
// test/unit/map-layouts.test.ts compiles the C headers and holds these layouts to their BTF.
// Little-endian, as on every architecture we ship for (x86_64, arm64). Pure.
import type { MapEntry, RawMapEntry } from './bpftool-output.js';
import { LAT_SLOTS } from './latency-buckets.js';
import { QNAME_LEN } from '../drilldown/event.js';
import { CAUSE_LABELS, RCODE_LABELS } from '../metrics/names.js';

export type FieldType =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  | { array: 'u8' | 'u16' | 'u32' | 'u64'; length: number }
  | { char: number }
  | { struct: StructLayout };

export type StructLayout = readonly (readonly [name: string, type: FieldType])[];

/** A map's key and value: a struct, or a bare integer or array (`__u32` keys). */
export interface MapLayout {
  key: FieldType;
  value: FieldType;
}

const u8s = (length: number): FieldType => ({ array: 'u8', length });
const u64s = (length: number): FieldType => ({ array: 'u64', length });

// Array sizes of bpf/dns.h, as the rest of the exporter already names them; the unit test
// checks the layouts built from them against the headers.
const CAUSE_CLASSES = CAUSE_LABELS.length;
const RCODE_CLASSES = RCODE_LABELS.length;

export const STRUCTS = {
  dns_stats_key: [
    ['cgroup_id', 'u64'],
    ['role', 'u8'],
    ['qtype', 'u8'],
    ['pad', u8s(6)],
  ],
  dns_stats: [
    ['queries', 'u64'],
    ['retransmits', u64s(CAUSE_CLASSES)],
    ['timeouts', u64s(CAUSE_CLASSES)],
    ['responses', u64s(RCODE_CLASSES)],
    ['latency_count', 'u64'],
    ['latency_sum_ns', 'u64'],
    ['latency', u64s(LAT_SLOTS)],
  ],
  cgroup_name: [
    ['namespace', { char: 64 }],
    ['pod', { char: 256 }],
    ['workload_kind', { char: 32 }],
    ['workload', { char: 160 }],
  ],
  pending_key: [
    ['cgroup_id', 'u64'],
    ['peer', u8s(16)],
    ['port', 'u16'],
    ['id', 'u16'],
    ['qtype', 'u16'],
    ['role', 'u8'],
    ['proto', 'u8'],
  ],
  pending_val: [
    ['first_ts_ns', 'u64'],
    ['last_ts_ns', 'u64'],
    ['retransmits', 'u32'],
    ['name_hash', 'u32'],
    ['qname_len', 'u8'],
    ['flags', 'u8'],
    ['cause', 'u8'],
    ['pad', 'u8'],
    ['server_addr4', u8s(4)],
    ['client_addr', u8s(16)],
    ['qname', u8s(QNAME_LEN)],
  ],
  retry_key: [
    ['cgroup_id', 'u64'],
    ['name_hash', 'u32'],
    ['id', 'u16'],
    ['qtype', 'u16'],
    ['role', 'u8'],
    ['pad', u8s(7)],
  ],
  dropped_query_key: [
    ['client_addr', u8s(16)],
    ['port', 'u16'],
    ['id', 'u16'],
    ['qtype', 'u16'],
    ['pad', 'u16'],
  ],
  dropped_query_val: [
    ['ts_ns', 'u64'],
    ['cause', 'u8'],
    ['pad', u8s(7)],
  ],
  client_addr_val: [
    ['cgroup_id', 'u64'],
    ['last_seen_ns', 'u64'],
  ],
  packet_drop_key: [
    ['pod_addr', u8s(16)],
    ['proto', 'u8'],
    ['port_class', 'u8'],
    ['qtype', 'u8'],
    ['reason', 'u8'],
    ['direction', 'u8'],
    ['pad', u8s(3)],
  ],
} as const satisfies Record<string, StructLayout>;

export type StructName = keyof typeof STRUCTS;

const struct = (name: StructName): FieldType => ({ struct: STRUCTS[name] });

/** Every map the exporter dumps, by its name in the objects (the basename of its pin). */
export const MAP_LAYOUTS: Record<string, MapLayout> = {
  dns_stats: { key: struct('dns_stats_key'), value: struct('dns_stats') },
  dns_cgroup_names: { key: 'u64', value: struct('cgroup_name') },
  dns_pending: { key: struct('pending_key'), value: struct('pending_val') },
  dns_retry_index: { key: struct('retry_key'), value: struct('pending_key') },
  dns_health: { key: 'u32', value: 'u64' },
  dns_client_addrs: { key: u8s(16), value: struct('client_addr_val') },
  dropped_queries: { key: struct('dropped_query_key'), value: struct('dropped_query_val') },
  packet_drops: { key: struct('packet_drop_key'), value: 'u64' },
  drop_health: { key: 'u32', value: 'u64' },
};

const SCALAR_SIZE = { u8: 1, u16: 2, u32: 4, u64: 8 } as const;

/** C's size and alignment of a field type (natural alignment, as clang lays out for BPF). */
export function sizeAndAlign(t: FieldType): { size: number; align: number } {
  if (typeof t === 'string') return { size: SCALAR_SIZE[t], align: SCALAR_SIZE[t] };
  if ('array' in t) return { size: SCALAR_SIZE[t.array] * t.length, align: SCALAR_SIZE[t.array] };
  if ('char' in t) return { size: t.char, align: 1 };
  let at = 0;
  let align = 1;
  for (const [, f] of t.struct) {
    const m = sizeAndAlign(f);
    at = roundUp(at, m.align) + m.size;
    align = Math.max(align, m.align);
  }
  return { size: roundUp(at, align), align };
}

/** Byte offset and size of every member of a struct. */
export function memberOffsets(
  layout: StructLayout,
): Record<string, { offset: number; size: number }> {
  const out: Record<string, { offset: number; size: number }> = {};
  let at = 0;
  for (const [name, f] of layout) {
    const m = sizeAndAlign(f);
    at = roundUp(at, m.align);
    out[name] = { offset: at, size: m.size };
    at += m.size;
  }
  return out;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export type Decoded = number | bigint | string | Decoded[] | { [name: string]: Decoded };

function scalar(buf: Buffer, at: number, t: 'u8' | 'u16' | 'u32' | 'u64'): number | bigint {
  switch (t) {
    case 'u8':
      return buf[at]!;
    case 'u16':
      return buf.readUInt16LE(at);
    case 'u32':
      return buf.readUInt32LE(at);
    case 'u64': {
      // Two u32 reads: exact below 2^53 without a BigInt per counter (the common case).
      const hi = buf.readUInt32LE(at + 4);
      if (hi < 0x200000) return hi * 0x100000000 + buf.readUInt32LE(at);
      return buf.readBigUInt64LE(at);
    }
  }
}

function decodeAt(buf: Buffer, at: number, t: FieldType): Decoded {
  if (typeof t === 'string') return scalar(buf, at, t);
  if ('array' in t) {
    const step = SCALAR_SIZE[t.array];
    const out: Decoded[] = new Array<Decoded>(t.length);
    for (let i = 0; i < t.length; i++) out[i] = scalar(buf, at + i * step, t.array);
    return out;
  }
  if ('char' in t) {
    const bytes = buf.subarray(at, at + t.char);
    const end = bytes.indexOf(0);
    return bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
  }
  const out: Record<string, Decoded> = {};
  const offsets = offsetsOf(t.struct);
  for (const [name, f] of t.struct) out[name] = decodeAt(buf, at + offsets[name]!.offset, f);
  return out;
}

const offsetCache = new WeakMap<StructLayout, ReturnType<typeof memberOffsets>>();
function offsetsOf(layout: StructLayout): ReturnType<typeof memberOffsets> {
  let o = offsetCache.get(layout);
  if (!o) offsetCache.set(layout, (o = memberOffsets(layout)));
  return o;
}

/** Decodes one key or value; what names it in the error when the size is wrong. */
export function decodeBytes(buf: Buffer, t: FieldType, what: string): Decoded {
  const { size } = sizeAndAlign(t);
  if (buf.length !== size)
    throw new Error(
      `${what}: ${buf.length} bytes where the layout has ${size} (a map pinned by another version? restart with --reset-maps)`,
    );
  return decodeAt(buf, 0, t);
}

/**
 * Raw dump entries of the map named mapName, decoded with its layout (a map we have no
 * layout for keeps its bytes as arrays of numbers).
 */
export function decodeRawEntries(
  entries: readonly RawMapEntry[],
  mapName: string,
  what: string,
): MapEntry[] {
  const layout = MAP_LAYOUTS[mapName];
  const typeOf = (b: Buffer, t: FieldType | undefined): FieldType =>
    t ?? { array: 'u8', length: b.length };
  return entries.map((e, i) => {
    const where = `${what} entry ${i}`;
    const key = decodeBytes(e.key, typeOf(e.key, layout?.key), `${where} key`);
    if (e.values)
      return {
        key,
        values: e.values.map((v) => ({
          cpu: v.cpu,
          value: decodeBytes(v.value, typeOf(v.value, layout?.value), `${where} CPU ${v.cpu}`),
        })),
      };
    const value = e.value ?? Buffer.alloc(0);
    return { key, value: decodeBytes(value, typeOf(value, layout?.value), `${where} value`) };
  });
}
