// What bpf/dns.bpf.c should do with one packet, on its own: ignore it, bump one parse-error
// counter, count it as DNS that is not paired, or key it as a query or an answer. Written
// from the contract in bpf/dns.h (enum health_counter) and the comments of
// bpf/lib/packet.bpf.h and bpf/lib/dns_wire.bpf.h, not from the C: the e2e test holds the
// real programs to it. Pure.

export type Direction = 'egress' | 'ingress';
export type ParseCounter =
  | 'parse_truncated'
  | 'parse_bad_question'
  | 'parse_fragment'
  | 'parse_ipv6_ext'
  | 'parse_tcp_not_start';

/** Why a packet got its outcome: tallied per class in the test record. */
export type Why =
  // ignored: not DNS as far as the parser can tell, no counter
  | 'ip-header-truncated'
  | 'not-ip'
  | 'not-udp-tcp'
  | 'ipv4-ihl-below-5'
  | 'ipv6-ext-chain-truncated'
  | 'ipv6-fragment-of-other'
  | 'ports-truncated'
  | 'not-port-53'
  | 'tcp-no-payload'
  // counters before the DNS header is found
  | 'ipv4-fragment'
  | 'ipv6-fragment'
  | 'ipv6-ext-chain-too-long'
  | 'dns-header-truncated'
  | 'tcp-header-truncated'
  | 'tcp-doff-below-5'
  | 'tcp-header-cut'
  | 'tcp-payload-shorter-than-start'
  | 'tcp-prefix-below-minimum'
  | 'tcp-z-set'
  | 'tcp-qdcount-not-1'
  // DNS, not paired
  | 'opcode-not-query'
  | 'qr-port-mismatch'
  // DNS with a parse error
  | 'qdcount-not-1'
  | 'question-truncated'
  | 'name-truncated'
  | 'name-label-over-63'
  | 'name-over-255'
  | 'qtype-qclass-truncated'
  | 'question-past-tcp-message'
  // keyed
  | 'query'
  | 'answer';

export type Role = 'client' | 'server';
export type Proto = 'udp' | 'tcp';

/** struct pending_key of the packet (cgroup left out: one per test run). */
export interface DnsKey {
  role: Role;
  proto: Proto;
  /** hex of the 16-byte peer: the client address on the server side, zero on the client side */
  peer: string;
  port: number;
  id: number;
  qtype: number;
}

export type ParseOutcome =
  | { kind: 'ignored'; why: Why }
  | { kind: 'error'; counter: ParseCounter; dnsPacket: boolean; why: Why }
  | { kind: 'dns-only'; why: Why }
  | { kind: 'query'; why: 'query'; key: DnsKey; name: Buffer }
  | { kind: 'answer'; why: 'answer'; key: DnsKey; rcode: number };

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const EXT_HEADERS = new Set([0, 43, 44, 60]); // hop-by-hop, routing, fragment, destination
const IPV6_EXT_MAX = 4; // headers walked before giving up (packet.bpf.h)
const DNS_PORT = 53;
const DNS_HDR_LEN = 12;
const QUESTION_TAIL = 4; // QTYPE + QCLASS
const NAME_MAX = 255; // wire format, root label included (RFC 1035 3.1)
const LABEL_MAX = 63;
const TCP_MSG_MIN = DNS_HDR_LEN + 1 + QUESTION_TAIL; // header + root-name question
const Z_BIT = 0x0040;

const ignored = (why: Why): ParseOutcome => ({ kind: 'ignored', why });
const error = (counter: ParseCounter, dnsPacket: boolean, why: Why): ParseOutcome => ({
  kind: 'error',
  counter,
  dnsPacket,
  why,
});
const isL4 = (p: number) => p === IPPROTO_UDP || p === IPPROTO_TCP;

interface L4 {
  off: number;
  proto: Proto;
  ipv6: boolean;
  sport: number;
  dport: number;
}

/** The UDP/TCP header behind the IP header and its extension headers, or why there is none. */
function locate(p: Buffer): L4 | ParseOutcome {
  if (p.length < 20) return ignored('ip-header-truncated');
  const version = p[0]! >> 4;
  let proto: number;
  let off: number;
  if (version === 4) {
    proto = p[9]!;
    if (!isL4(proto)) return ignored('not-udp-tcp');
    // A non-first fragment has no ports: its port cannot be known, any UDP/TCP one counts.
    if (p.readUInt16BE(6) & 0x1fff) return error('parse_fragment', false, 'ipv4-fragment');
    off = (p[0]! & 0x0f) * 4;
    if (off < 20) return ignored('ipv4-ihl-below-5');
  } else if (version === 6) {
    if (p.length < 40) return ignored('ip-header-truncated');
    proto = p[6]!;
    off = 40;
    for (let i = 0; i < IPV6_EXT_MAX && EXT_HEADERS.has(proto); i++) {
      if (p.length < off + 4) return ignored('ipv6-ext-chain-truncated');
      const next = p[off]!;
      if (proto === 44) {
        if (p.readUInt16BE(off + 2) & 0xfff8) {
          return isL4(next)
            ? error('parse_fragment', false, 'ipv6-fragment')
            : ignored('ipv6-fragment-of-other');
        }
        off += 8;
      } else {
        off += (p[off + 1]! + 1) * 8;
      }
      proto = next;
    }
    if (EXT_HEADERS.has(proto)) return error('parse_ipv6_ext', false, 'ipv6-ext-chain-too-long');
    if (!isL4(proto)) return ignored('not-udp-tcp');
  } else {
    return ignored('not-ip');
  }
  if (p.length < off + 4) return ignored('ports-truncated');
  const sport = p.readUInt16BE(off);
  const dport = p.readUInt16BE(off + 2);
  if (sport !== DNS_PORT && dport !== DNS_PORT) return ignored('not-port-53');
  return { off, proto: proto === IPPROTO_TCP ? 'tcp' : 'udp', ipv6: version === 6, sport, dport };
}

/** Where the DNS message starts and where it must end, or why the segment has none. */
function message(p: Buffer, l: L4): { start: number; end: number } | ParseOutcome {
  if (l.proto === 'udp') {
    const start = l.off + 8;
    if (p.length < start + DNS_HDR_LEN)
      return error('parse_truncated', false, 'dns-header-truncated');
    return { start, end: p.length };
  }
  if (p.length < l.off + 13) return error('parse_truncated', false, 'tcp-header-truncated');
  const doff = p[l.off + 12]! >> 4;
  if (doff < 5) return error('parse_truncated', false, 'tcp-doff-below-5');
  const payload = l.off + doff * 4;
  if (payload > p.length) return error('parse_truncated', false, 'tcp-header-cut');
  if (payload >= p.length) return ignored('tcp-no-payload'); // handshake, ACK, FIN
  // Only a segment that starts a message is parsed: length prefix and header in it.
  if (p.length < payload + 2 + DNS_HDR_LEN) {
    return error('parse_tcp_not_start', false, 'tcp-payload-shorter-than-start');
  }
  const prefix = p.readUInt16BE(payload);
  if (prefix < TCP_MSG_MIN) return error('parse_tcp_not_start', false, 'tcp-prefix-below-minimum');
  if (p.readUInt16BE(payload + 4) & Z_BIT) return error('parse_tcp_not_start', false, 'tcp-z-set');
  if (p.readUInt16BE(payload + 6) !== 1) {
    return error('parse_tcp_not_start', false, 'tcp-qdcount-not-1');
  }
  const start = payload + 2;
  // The prefix ends the message: what follows it in the segment is not its question.
  return { start, end: Math.min(p.length, start + prefix) };
}

function peerOf(p: Buffer, l: L4, answer: boolean): string {
  if (l.ipv6) return p.subarray(answer ? 24 : 8, answer ? 40 : 24).toString('hex');
  const a = p.subarray(answer ? 16 : 12, answer ? 20 : 16).toString('hex');
  return `00000000000000000000ffff${a}`;
}

/** The outcome of one packet run through dns_egress or dns_ingress. */
export function parseOutcome(p: Buffer, direction: Direction): ParseOutcome {
  const l = locate(p);
  if ('kind' in l) return l;
  const m = message(p, l);
  if ('kind' in m) return m;

  const flags = p.readUInt16BE(m.start + 2);
  if (((flags >> 11) & 0x0f) !== 0) return { kind: 'dns-only', why: 'opcode-not-query' };
  const answer = (flags & 0x8000) !== 0;
  // A query goes to port 53 and an answer comes from it; anything else cannot be keyed.
  if (answer ? l.sport !== DNS_PORT : l.dport !== DNS_PORT) {
    return { kind: 'dns-only', why: 'qr-port-mismatch' };
  }
  if (p.readUInt16BE(m.start + 4) !== 1) return error('parse_bad_question', true, 'qdcount-not-1');

  const q = m.start + DNS_HDR_LEN;
  const avail = Math.max(0, m.end - q);
  if (avail < 1 + QUESTION_TAIL) return error('parse_truncated', true, 'question-truncated');
  const cutByPrefix = m.end < p.length;
  const truncated = (why: Why) =>
    error('parse_truncated', true, cutByPrefix ? 'question-past-tcp-message' : why);
  // A question needs no compression pointer: nothing precedes it to point at.
  let nameLen = 0;
  for (;;) {
    if (nameLen >= avail) return truncated('name-truncated');
    const label = p[q + nameLen]!;
    if (label === 0) {
      nameLen += 1;
      break;
    }
    if (label > LABEL_MAX) return error('parse_bad_question', true, 'name-label-over-63');
    nameLen += label + 1;
    if (nameLen + 1 > NAME_MAX) return error('parse_bad_question', true, 'name-over-255');
  }
  if (nameLen + QUESTION_TAIL > avail) return truncated('qtype-qclass-truncated');

  const role: Role = (direction === 'egress') !== answer ? 'client' : 'server';
  const key: DnsKey = {
    role,
    proto: l.proto,
    peer: role === 'server' ? peerOf(p, l, answer) : '00'.repeat(16),
    port: answer ? l.dport : l.sport,
    id: p.readUInt16BE(m.start),
    qtype: p.readUInt16BE(q + nameLen),
  };
  if (answer) return { kind: 'answer', why: 'answer', key, rcode: flags & 0x0f };
  return { kind: 'query', why: 'query', key, name: Buffer.from(p.subarray(q, q + nameLen)) };
}
