// Decodes the drop maps of bpf/drops.h from dumps decoded by src/bpf/map-layouts.ts. Pure.
import { addrFromBytes } from '../net/addr.js';
import { DROP_REASON_LABELS, QTYPE_LABELS, type QtypeLabel } from '../metrics/names.js';

export type DropReasonLabel = (typeof DROP_REASON_LABELS)[number];

export interface PacketDropRow {
  /** The pod's side of the dropped packet. */
  podAddr: string;
  protocol: 'udp' | 'tcp' | 'other';
  portClass: 'dns' | 'other';
  /** For DNS queries only. */
  qtype: QtypeLabel | undefined;
  reason: DropReasonLabel;
  direction: 'from_pod' | 'to_pod';
  count: number;
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(`${where}: not an object`);
  return v as Record<string, unknown>;
}

function int(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`${where}: not an integer: ${String(v)}`);
}

function bytes(v: unknown, where: string): number[] {
  if (!Array.isArray(v)) throw new Error(`${where}: not a byte array`);
  return v.map((b, i) => int(b, `${where}[${i}]`));
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

export function decodePacketDrop(entry: unknown): PacketDropRow {
  const e = obj(entry, 'packet_drops entry');
  const k = obj(e.key, 'packet_drops key');
  const proto = int(k.proto, 'packet_drops key.proto');
  const qtype = int(k.qtype, 'packet_drops key.qtype');
  return {
    podAddr: addrFromBytes(bytes(k.pod_addr, 'packet_drops key.pod_addr')),
    protocol: proto === IPPROTO_UDP ? 'udp' : proto === IPPROTO_TCP ? 'tcp' : 'other',
    portClass: int(k.port_class, 'packet_drops key.port_class') === 1 ? 'dns' : 'other',
    qtype: QTYPE_LABELS[qtype],
    reason: DROP_REASON_LABELS[int(k.reason, 'packet_drops key.reason')] ?? 'other',
    direction: int(k.direction, 'packet_drops key.direction') === 1 ? 'to_pod' : 'from_pod',
    count: int(e.value, 'packet_drops value'),
  };
}

/** dns_client_addrs: pod address -> the cgroup whose socket last sent a DNS query from it. */
export function decodeClientAddrs(entries: readonly unknown[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const entry of entries) {
    const e = obj(entry, 'dns_client_addrs entry');
    const v = obj(e.value, 'dns_client_addrs value');
    const id = v.cgroup_id;
    if (typeof id !== 'number' && typeof id !== 'bigint')
      throw new Error('dns_client_addrs value.cgroup_id: not an integer');
    out.set(addrFromBytes(bytes(e.key, 'dns_client_addrs key')), BigInt(id));
  }
  return out;
}
