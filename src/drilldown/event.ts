// The drill-down events of bpf/dns.bpf.c (struct dns_event, bpf/dns.h) and their config
// (struct dns_event_config): byte layouts mirrored here, decoded and encoded. Pure.
import { addrFromBytes } from '../net/addr.js';
import { CAUSE_LABELS, type CauseLabel, type QtypeLabel } from '../metrics/names.js';

/** sizeof(struct dns_event); bpftool shows the perf sample padded to size + 4 ≡ 0 (mod 8). */
export const DNS_EVENT_SIZE = 232;
export const QNAME_LEN = 128;
/** sizeof(struct dns_event_config) */
export const EVENT_CONFIG_SIZE = 24;

/** enum dns_event_kind, in order. */
export const EVENT_KINDS = ['slow', 'failed', 'timeout', 'retransmit', 'nxdomain'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const EVENT_RCODE_NONE = 0xff;
const PENDING_F_RETRY_NEW_SOCKET = 0x01;
const PENDING_F_CONNECTED = 0x02;
const PENDING_F_QNAME_TRUNCATED = 0x04;
const EVENT_CFG_SERVER_JOIN = 0x01;

/** struct dns_event as read from the perf ring. Times are bpf_ktime_get_ns (CLOCK_MONOTONIC). */
export interface RawDnsEvent {
  cgroupId: bigint;
  firstNs: bigint;
  lastNs: bigint;
  endNs: bigint;
  /** The local server pod's own query-to-answer time; 0n when no local server saw the query. */
  serverNs: bigint;
  serverAddr: string;
  clientAddr: string;
  port: number;
  id: number;
  qtype: number;
  kind: EventKind;
  role: 'client' | 'server';
  /** Raw RCODE, undefined for timeouts and retransmits. */
  rcode: number | undefined;
  cause: CauseLabel;
  retriedFromNewSocket: boolean;
  /** Sent from a connected UDP socket (glibc); false for musl's unconnected one; undefined for TCP. */
  connectedSocket: boolean | undefined;
  retransmits: number;
  proto: 'udp' | 'tcp';
  serverRcode: number | undefined;
  serverCgroupId: bigint;
  name: string;
  nameTruncated: boolean;
}

export function decodeDnsEvent(data: Uint8Array): RawDnsEvent {
  if (data.length < DNS_EVENT_SIZE)
    throw new Error(`dns_event: ${data.length} bytes, need ${DNS_EVENT_SIZE} (bpf/dns.h changed?)`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u64 = (o: number) => v.getBigUint64(o, true);
  const kindIx = data[78]!;
  const kind = EVENT_KINDS[kindIx];
  if (!kind) throw new Error(`dns_event: unknown kind ${kindIx}`);
  const flags = data[82]!;
  const qnameLen = Math.min(data[83]!, QNAME_LEN);
  const proto = data[88] === 1 ? 'tcp' : 'udp';
  const name = decodeQname(data.subarray(104, 104 + qnameLen));
  const rcode = data[80]!;
  const serverRcode = data[89]!;
  return {
    cgroupId: u64(0),
    firstNs: u64(8),
    lastNs: u64(16),
    endNs: u64(24),
    serverNs: u64(32),
    serverAddr: addrFromBytes(data.subarray(40, 56)),
    clientAddr: addrFromBytes(data.subarray(56, 72)),
    port: v.getUint16(72, true),
    id: v.getUint16(74, true),
    qtype: v.getUint16(76, true),
    kind,
    role: data[79] === 1 ? 'server' : 'client',
    rcode: rcode === EVENT_RCODE_NONE ? undefined : rcode,
    cause: CAUSE_LABELS[data[81]!] ?? 'unanswered',
    retriedFromNewSocket: (flags & PENDING_F_RETRY_NEW_SOCKET) !== 0,
    connectedSocket: proto === 'tcp' ? undefined : (flags & PENDING_F_CONNECTED) !== 0,
    retransmits: v.getUint32(84, true),
    proto,
    serverRcode: serverRcode === EVENT_RCODE_NONE ? undefined : serverRcode,
    serverCgroupId: u64(96),
    name: name.name,
    nameTruncated: name.truncated || (flags & PENDING_F_QNAME_TRUNCATED) !== 0,
  };
}

/**
 * Wire-format QNAME to text without the trailing dot ("." for the root). Bytes outside
 * [A-Za-z0-9_-] are escaped as in zone files (\. \\ \DDD), so a hostile name cannot smuggle
 * markup or control characters. truncated: the bytes end before the root label.
 */
export function decodeQname(wire: Uint8Array): { name: string; truncated: boolean } {
  const labels: string[] = [];
  let off = 0;
  while (off < wire.length) {
    const len = wire[off]!;
    if (len === 0) return { name: labels.length ? labels.join('.') : '.', truncated: false };
    if (len > 63) break;
    const bytes = wire.subarray(off + 1, Math.min(off + 1 + len, wire.length));
    labels.push(escapeLabel(bytes));
    if (off + 1 + len > wire.length) break;
    off += 1 + len;
  }
  return { name: labels.join('.'), truncated: true };
}

function escapeLabel(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x2d ||
      b === 0x5f
    )
      out += String.fromCharCode(b);
    else if (b === 0x2e || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else out += `\\${String(b).padStart(3, '0')}`;
  }
  return out;
}

const QTYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  64: 'SVCB',
  65: 'HTTPS',
  255: 'ANY',
};

export function qtypeName(qtype: number): string {
  return QTYPE_NAMES[qtype] ?? `TYPE${qtype}`;
}

/** The qtype label of the metrics (A, AAAA, other). */
export function qtypeClass(qtype: number): QtypeLabel {
  return qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : 'other';
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

export interface EventConfig {
  /** An answer at least this slow is an event (first send to answer). */
  slowNs: bigint;
  /** Token bucket per cgroup: refill per second (0 turns events off) and size. */
  ratePerSecond: number;
  burst: number;
  kinds: readonly EventKind[];
  /** Join client events to a local server pod's answer time. */
  serverJoin: boolean;
}

/** struct dns_event_config, little-endian (the exporter runs on the kernel it loads into). */
export function encodeEventConfig(c: EventConfig): Uint8Array {
  const out = new Uint8Array(EVENT_CONFIG_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, c.slowNs, true);
  v.setUint32(8, c.ratePerSecond, true);
  v.setUint32(12, c.burst, true);
  let kinds = 0;
  for (const k of c.kinds) kinds |= 1 << EVENT_KINDS.indexOf(k);
  v.setUint32(16, kinds, true);
  v.setUint32(20, c.serverJoin ? EVENT_CFG_SERVER_JOIN : 0, true);
  return out;
}

/** CLOCK_MONOTONIC (bpf_ktime_get_ns) to wall-clock seconds, given both clocks read now. */
export function monotonicToUnixSeconds(ns: bigint, nowMonotonicNs: bigint, nowUnixMs: number) {
  return nowUnixMs / 1000 - Number(nowMonotonicNs - ns) / 1e9;
}
