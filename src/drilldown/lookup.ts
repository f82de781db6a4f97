// One kernel event made readable: names for numbers, wall-clock times, and the likely cause
// of the stall in one word (diagnose). Pure.
import type { CauseLabel, QtypeLabel } from '../metrics/names.js';
import {
  monotonicToUnixSeconds,
  qtypeClass,
  qtypeName,
  rcodeName,
  type EventKind,
  type RawDnsEvent,
} from './event.js';

/**
 * Why a lookup was slow or failed, as far as this node saw:
 * - netfilter_drop / conntrack_insert_failed: a send was dropped on the node (bpf/drops.bpf.c)
 * - answer_lost: a DNS server pod on this node answered, the client never got it
 * - unanswered: never answered, no drop seen (lost beyond this node, or the server is down)
 * - slow_server: the server itself took most of the time (a slow upstream)
 * - retransmitted: answered only after a re-send, no drop seen (lost beyond this node)
 * - slow_answer: slow, no re-send, no local server to ask (the delay is beyond this node)
 * - server_error: SERVFAIL, REFUSED, ...
 * - nxdomain: a fast NXDOMAIN (search-list walks; the doctor looks at these)
 */
export const DIAGNOSES = [
  'netfilter_drop',
  'conntrack_insert_failed',
  'answer_lost',
  'unanswered',
  'slow_server',
  'retransmitted',
  'slow_answer',
  'server_error',
  'nxdomain',
] as const;
export type Diagnosis = (typeof DIAGNOSES)[number];

export interface Lookup {
  /** Arrival order, for stable newest-first sorting. */
  seq: number;
  kind: EventKind;
  role: 'client' | 'server';
  cgroupId: bigint;
  name: string;
  nameTruncated: boolean;
  qtype: string;
  qtypeClass: QtypeLabel;
  rcode: string | null;
  cause: CauseLabel;
  diagnosis: Diagnosis;
  /** First send to answer, timeout sweep or re-send. */
  latencySeconds: number;
  retransmits: number;
  retriedFromNewSocket: boolean;
  socket: 'connected' | 'unconnected' | 'tcp';
  server: string;
  client: string;
  clientPort: number;
  dnsId: number;
  serverSideSeconds: number | null;
  serverRcode: string | null;
  serverCgroupId: bigint | undefined;
  atUnixSeconds: number;
  firstSentUnixSeconds: number;
}

export function diagnose(e: RawDnsEvent): Diagnosis {
  if (e.cause !== 'unanswered') return e.cause;
  const latency = Number(e.endNs - e.firstNs);
  const server = Number(e.serverNs);
  switch (e.kind) {
    case 'failed':
      return 'server_error';
    case 'nxdomain':
      return 'nxdomain';
    case 'timeout':
      return e.serverCgroupId !== 0n ? 'answer_lost' : 'unanswered';
    case 'retransmit':
      return 'retransmitted';
    case 'slow':
      if (e.serverCgroupId !== 0n && server >= 0.5 * latency) return 'slow_server';
      return e.retransmits > 0 ? 'retransmitted' : 'slow_answer';
  }
}

export interface Clocks {
  /** CLOCK_MONOTONIC ns: process.hrtime.bigint(), the clock of bpf_ktime_get_ns. */
  monotonicNs: () => bigint;
  unixMs: () => number;
}

export function toLookup(e: RawDnsEvent, seq: number, clocks: Clocks): Lookup {
  const mono = clocks.monotonicNs();
  const wall = clocks.unixMs();
  return {
    seq,
    kind: e.kind,
    role: e.role,
    cgroupId: e.cgroupId,
    name: e.name,
    nameTruncated: e.nameTruncated,
    qtype: qtypeName(e.qtype),
    qtypeClass: qtypeClass(e.qtype),
    rcode: e.rcode === undefined ? null : rcodeName(e.rcode),
    cause: e.cause,
    diagnosis: diagnose(e),
    latencySeconds: Math.max(0, Number(e.endNs - e.firstNs)) / 1e9,
    retransmits: e.retransmits,
    retriedFromNewSocket: e.retriedFromNewSocket,
    socket:
      e.connectedSocket === undefined ? 'tcp' : e.connectedSocket ? 'connected' : 'unconnected',
    server: e.serverAddr,
    client: e.clientAddr,
    clientPort: e.port,
    dnsId: e.id,
    serverSideSeconds: e.serverCgroupId === 0n ? null : Number(e.serverNs) / 1e9,
    serverRcode: e.serverRcode === undefined ? null : rcodeName(e.serverRcode),
    serverCgroupId: e.serverCgroupId === 0n ? undefined : e.serverCgroupId,
    atUnixSeconds: monotonicToUnixSeconds(e.endNs, mono, wall),
    firstSentUnixSeconds: monotonicToUnixSeconds(e.firstNs, mono, wall),
  };
}
