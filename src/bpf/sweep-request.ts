// Encodes the data_in of dns_sweep_timeouts (bpf/dns.h): 14 bytes of Ethernet header that
// BPF_PROG_TEST_RUN strips, struct sweep_request, then up to SWEEP_MAX_KEYS struct pending_key.
// Fields are in host byte order: little-endian on every architecture we ship for (x86_64, arm64).
import type { JsonValue } from './json-bigint.js';
import { memberOffsets, sizeAndAlign, STRUCTS } from './map-layouts.js';

export const ETH_HLEN = 14;
export const SWEEP_MAX_KEYS = 64; // dns.h SWEEP_MAX_KEYS: the program's loop bound
export const SWEEP_REQUEST_SIZE = 16; // struct sweep_request { u64 deadline_ns; u32 count; u32 pad; }
export const PENDING_KEY_SIZE = sizeAndAlign({ struct: STRUCTS.pending_key }).size;

/** Offsets of struct pending_key (dns.h), from src/bpf/map-layouts.ts; checked against the C. */
export const PENDING_KEY_LAYOUT = memberOffsets(STRUCTS.pending_key) as Record<
  (typeof STRUCTS.pending_key)[number][0],
  { offset: number; size: number }
>;

export interface PendingKey {
  cgroupId: bigint;
  /** IPv6, or IPv4-mapped ::ffff:a.b.c.d; all zero on the client side */
  peer: Uint8Array;
  /** the non-53 (client) port */
  port: number;
  /** DNS id */
  id: number;
  /** raw QTYPE */
  qtype: number;
  /** enum dns_role: 0 client, 1 server */
  role: number;
  /** enum dns_proto: 0 UDP, 1 TCP */
  proto: number;
}

const U64_MAX = (1n << 64n) - 1n;

/** struct pending_key, 32 bytes. */
export function encodePendingKey(
  k: PendingKey,
  out: Buffer = Buffer.alloc(PENDING_KEY_SIZE),
  at = 0,
): Buffer {
  if (k.cgroupId < 0n || k.cgroupId > U64_MAX)
    throw new RangeError(`pending_key.cgroup_id ${k.cgroupId} is not a u64`);
  if (k.peer.length !== 16)
    throw new RangeError(`pending_key.peer must be 16 bytes, got ${k.peer.length}`);
  const L = PENDING_KEY_LAYOUT;
  out.writeBigUInt64LE(k.cgroupId, at + L.cgroup_id.offset);
  out.set(k.peer, at + L.peer.offset);
  out.writeUInt16LE(checkInt(k.port, 0xffff, 'port'), at + L.port.offset);
  out.writeUInt16LE(checkInt(k.id, 0xffff, 'id'), at + L.id.offset);
  out.writeUInt16LE(checkInt(k.qtype, 0xffff, 'qtype'), at + L.qtype.offset);
  out.writeUInt8(checkInt(k.role, 0xff, 'role'), at + L.role.offset);
  out.writeUInt8(checkInt(k.proto, 0xff, 'proto'), at + L.proto.offset);
  return out;
}

export function decodePendingKey(b: Uint8Array, at = 0): PendingKey {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const L = PENDING_KEY_LAYOUT;
  return {
    cgroupId: buf.readBigUInt64LE(at + L.cgroup_id.offset),
    peer: Uint8Array.from(buf.subarray(at + L.peer.offset, at + L.peer.offset + 16)),
    port: buf.readUInt16LE(at + L.port.offset),
    id: buf.readUInt16LE(at + L.id.offset),
    qtype: buf.readUInt16LE(at + L.qtype.offset),
    role: buf.readUInt8(at + L.role.offset),
    proto: buf.readUInt8(at + L.proto.offset),
  };
}

/** A dns_pending key as a decoded dump holds it (src/bpf/map-layouts.ts). */
export function pendingKeyFromDump(key: JsonValue): PendingKey {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) {
    throw new Error(`dns_pending key: expected an object, got ${JSON.stringify(String(key))}`);
  }
  const num = (name: string): number => {
    const v = key[name];
    if (typeof v !== 'number') throw new Error(`dns_pending key.${name}: expected a number`);
    return v;
  };
  const cg = key.cgroup_id;
  if (typeof cg !== 'number' && typeof cg !== 'bigint')
    throw new Error('dns_pending key.cgroup_id: expected a number');
  const peer = key.peer;
  if (!Array.isArray(peer) || peer.length !== 16 || !peer.every((x) => typeof x === 'number')) {
    throw new Error('dns_pending key.peer: expected 16 numbers');
  }
  return {
    cgroupId: BigInt(cg),
    peer: Uint8Array.from(peer as number[]),
    port: num('port'),
    id: num('id'),
    qtype: num('qtype'),
    role: num('role'),
    proto: num('proto'),
  };
}

/**
 * One data_in buffer per SWEEP_MAX_KEYS keys. deadlineNs is sweep_request.deadline_ns: an
 * age, not a point in time. dns_sweep_timeouts ends a key when bpf_ktime_get_ns() minus its
 * last_ts_ns exceeds it, so the age is judged by the kernel's clock alone.
 */
export function encodeSweepRequests(keys: readonly PendingKey[], deadlineNs: bigint): Buffer[] {
  if (deadlineNs < 0n || deadlineNs > U64_MAX)
    throw new RangeError(`deadline_ns ${deadlineNs} is not a u64`);
  const out: Buffer[] = [];
  for (let first = 0; first < keys.length; first += SWEEP_MAX_KEYS) {
    const chunk = keys.slice(first, first + SWEEP_MAX_KEYS);
    const buf = Buffer.alloc(ETH_HLEN + SWEEP_REQUEST_SIZE + chunk.length * PENDING_KEY_SIZE);
    buf.writeBigUInt64LE(deadlineNs, ETH_HLEN);
    buf.writeUInt32LE(chunk.length, ETH_HLEN + 8);
    chunk.forEach((k, i) =>
      encodePendingKey(k, buf, ETH_HLEN + SWEEP_REQUEST_SIZE + i * PENDING_KEY_SIZE),
    );
    out.push(buf);
  }
  return out;
}

function checkInt(v: number, max: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > max)
    throw new RangeError(`pending_key.${field} ${v} is out of range 0..${max}`);
  return v;
}
