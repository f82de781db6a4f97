// Byte builders for the packets a cgroup_skb program sees: the IP header at offset 0 (no link
// layer), then UDP or TCP, then DNS (RFC 1035 4.1; over TCP with the 2-byte length prefix of
// RFC 7766). Checksums stay zero: nothing on the BPF path reads them. Pure.

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

export const NEXTHDR_HOP = 0;
export const NEXTHDR_ROUTING = 43;
export const NEXTHDR_FRAGMENT = 44;
export const NEXTHDR_NONE = 59;
export const NEXTHDR_DEST = 60;
export const NEXTHDR_MOBILITY = 135;

export const DNS_PORT = 53;
export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;

export function ipv4Addr(text: string): Buffer {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !(n >= 0 && n <= 255))) {
    throw new Error(`not an IPv4 address: ${text}`);
  }
  return Buffer.from(parts);
}

export function ipv6Addr(text: string): Buffer {
  const [head = '', tail] = text.split('::');
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) {
    throw new Error(`not an IPv6 address: ${text}`);
  }
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** ::ffff:a.b.c.d, the form the BPF maps key IPv4 addresses in. */
export function v4Mapped(addr4: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), addr4]);
}

export interface Ipv4Options {
  proto: number;
  src: Buffer;
  dst: Buffer;
  payload: Buffer;
  /** header length in 32-bit words (5..15); options are zero bytes (end of option list) */
  ihl?: number;
  /** fragment offset in 8-byte units */
  fragOffset8?: number;
  moreFragments?: boolean;
  dontFragment?: boolean;
  /** total length field; default the real length */
  totalLength?: number;
}

export function ipv4(o: Ipv4Options): Buffer {
  const ihl = o.ihl ?? 5;
  const h = Buffer.alloc(ihl * 4);
  h[0] = 0x40 | (ihl & 0x0f);
  h.writeUInt16BE(o.totalLength ?? (h.length + o.payload.length) & 0xffff, 2);
  h.writeUInt16BE(0x4242, 4);
  const flags = (o.dontFragment ? 0x4000 : 0) | (o.moreFragments ? 0x2000 : 0);
  h.writeUInt16BE(flags | ((o.fragOffset8 ?? 0) & 0x1fff), 6);
  h[8] = 64;
  h[9] = o.proto;
  o.src.copy(h, 12);
  o.dst.copy(h, 16);
  return Buffer.concat([h, o.payload]);
}

/**
 * One IPv6 extension header. Hop-by-hop, routing and destination options take `units`
 * (Hdr Ext Len: the header is 8 * (units + 1) bytes, zero-filled after the first two);
 * a fragment header takes its offset and M flag; AH takes `units` as (len + 2) * 4 bytes.
 * `next` overrides the next-header field (default: the following header, or the payload's).
 */
export interface ExtHeader {
  type: number;
  units?: number;
  fragOffset8?: number;
  more?: boolean;
  next?: number;
}

function extHeaderBytes(e: ExtHeader, next: number): Buffer {
  if (e.type === NEXTHDR_FRAGMENT) {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.writeUInt16BE((((e.fragOffset8 ?? 0) & 0x1fff) << 3) | (e.more ? 1 : 0), 2);
    b.writeUInt32BE(0xfeedf00d, 4);
    return b;
  }
  const units = e.units ?? 0;
  const b = Buffer.alloc(e.type === IPPROTO_AH ? (units + 2) * 4 : (units + 1) * 8);
  b[0] = next;
  b[1] = units;
  return b;
}

export interface Ipv6Options {
  proto: number;
  src: Buffer;
  dst: Buffer;
  payload: Buffer;
  ext?: readonly ExtHeader[];
}

export function ipv6(o: Ipv6Options): Buffer {
  const ext = o.ext ?? [];
  const chain = ext.map((e, i) => extHeaderBytes(e, e.next ?? ext[i + 1]?.type ?? o.proto));
  const payload = Buffer.concat([...chain, o.payload]);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length & 0xffff, 4);
  h[6] = ext[0]?.type ?? o.proto;
  h[7] = 64;
  o.src.copy(h, 8);
  o.dst.copy(h, 24);
  return Buffer.concat([h, payload]);
}

export function udp(sport: number, dport: number, payload: Buffer, lengthField?: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(lengthField ?? (8 + payload.length) & 0xffff, 4);
  return Buffer.concat([h, payload]);
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;
export const TCP_PSH_ACK = 0x18;

/** dataOffset: header length in 32-bit words (default 5); options are zero bytes. */
export function tcp(
  sport: number,
  dport: number,
  payload: Buffer,
  o: { flags?: number; dataOffset?: number } = {},
): Buffer {
  const doff = o.dataOffset ?? 5;
  const h = Buffer.alloc(Math.max(doff, 5) * 4);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(1000, 4);
  h.writeUInt32BE(2000, 8);
  h[12] = (doff & 0x0f) << 4;
  h[13] = o.flags ?? TCP_PSH_ACK;
  h.writeUInt16BE(65535, 14);
  return Buffer.concat([h, payload]);
}

/** Wire-format name from dotted text ("" or "." is the root). Labels are not checked. */
export function wireName(name: string): Buffer {
  const labels = name.split('.').filter(Boolean);
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])),
    Buffer.from([0]),
  ]);
}

/** Wire-format name from label lengths, each label filled with `fill` (root label added). */
export function wireNameOfLengths(lengths: readonly number[], fill = 0x61): Buffer {
  return Buffer.concat([
    ...lengths.map((n) => Buffer.concat([Buffer.from([n]), Buffer.alloc(n, fill)])),
    Buffer.from([0]),
  ]);
}

export function questionBytes(name: Buffer, qtype: number, qclass = 1): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(qclass, 2);
  return Buffer.concat([name, tail]);
}

export interface DnsHeader {
  id: number;
  response?: boolean;
  opcode?: number;
  /** AA, TC, RD, RA, Z, AD, CD as in the flags word; default RD */
  bits?: number;
  rcode?: number;
  qdcount?: number;
  ancount?: number;
  nscount?: number;
  arcount?: number;
}

export const DNS_BIT_AA = 0x0400;
export const DNS_BIT_TC = 0x0200;
export const DNS_BIT_RD = 0x0100;
export const DNS_BIT_RA = 0x0080;
export const DNS_BIT_Z = 0x0040;
export const DNS_BIT_AD = 0x0020;
export const DNS_BIT_CD = 0x0010;

export function dnsHeader(o: DnsHeader): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id & 0xffff, 0);
  const flags =
    (o.response ? 0x8000 : 0) |
    (((o.opcode ?? 0) & 0x0f) << 11) |
    ((o.bits ?? DNS_BIT_RD) & 0x07f0) |
    ((o.rcode ?? 0) & 0x0f);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(o.qdcount ?? 1, 4);
  h.writeUInt16BE(o.ancount ?? 0, 6);
  h.writeUInt16BE(o.nscount ?? 0, 8);
  h.writeUInt16BE(o.arcount ?? 0, 10);
  return h;
}

/** Header then the question (and any bytes after it, e.g. answer records). */
export function dnsMessage(h: DnsHeader, question: Buffer, rest: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([dnsHeader(h), question, rest]);
}

/** DNS over TCP: the 2-byte length prefix, which may lie. */
export function tcpFramed(message: Buffer, prefix = message.length): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(prefix & 0xffff, 0);
  return Buffer.concat([p, message]);
}

/**
 * BPF_PROG_TEST_RUN takes an Ethernet frame and strips its 14 bytes for cgroup_skb. The
 * EtherType follows the IP version nibble; the kernel (6.18) refuses an IPv4 EtherType with
 * fewer than 20 bytes behind it and an IPv6 one with fewer than 40 (EINVAL), so shorter
 * packets go as EtherType 0. The programs read the version nibble, never skb->protocol.
 */
export function withEthernet(l3: Buffer): Buffer {
  const h = Buffer.alloc(14);
  const version = l3.length > 0 ? l3[0]! >> 4 : 0;
  const type = version === 6 ? (l3.length >= 40 ? 0x86dd : 0) : l3.length >= 20 ? 0x0800 : 0;
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, l3]);
}
