import { describe, expect, it } from 'vitest';
import { parseOutcome, type Direction } from '../support/dns-parse-oracle.js';
import {
  DNS_BIT_Z,
  IPPROTO_AH,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NEXTHDR_DEST,
  NEXTHDR_FRAGMENT,
  NEXTHDR_HOP,
  dnsMessage,
  ipv4,
  ipv4Addr,
  ipv6,
  ipv6Addr,
  questionBytes,
  tcp,
  tcpFramed,
  udp,
  wireName,
  wireNameOfLengths,
  withEthernet,
  type ExtHeader,
} from '../support/packet-craft.js';

const C4 = ipv4Addr('10.0.0.11');
const S4 = ipv4Addr('10.96.0.10');
const C6 = ipv6Addr('fd00::11');
const S6 = ipv6Addr('fd00::53');
const Q = questionBytes(wireName('example.com'), 1);
const query = (o: { id?: number; question?: Buffer; qdcount?: number; opcode?: number } = {}) =>
  dnsMessage({ id: o.id ?? 7, qdcount: o.qdcount, opcode: o.opcode }, o.question ?? Q);
const answer = (rcode = 0) => dnsMessage({ id: 7, response: true, rcode }, Q);
const v4udp = (sport: number, dport: number, m: Buffer, o: { frag?: number } = {}) =>
  ipv4({
    proto: IPPROTO_UDP,
    src: C4,
    dst: S4,
    payload: udp(sport, dport, m),
    fragOffset8: o.frag,
  });
const v4tcp = (sport: number, dport: number, payload: Buffer, doff?: number) =>
  ipv4({
    proto: IPPROTO_TCP,
    src: C4,
    dst: S4,
    payload: tcp(sport, dport, payload, { dataOffset: doff }),
  });
const v6udp = (m: Buffer, ext: ExtHeader[] = []) =>
  ipv6({ proto: IPPROTO_UDP, src: C6, dst: S6, payload: udp(40000, 53, m), ext });
const hop = (n: number): ExtHeader[] => Array.from({ length: n }, () => ({ type: NEXTHDR_HOP }));
const cut = (b: Buffer, n: number) => b.subarray(0, n);

describe('parseOutcome (test support): what dns.bpf.c should do with one packet', () => {
  it.each<[string, Buffer, Direction, string]>([
    ['a client query', v4udp(40000, 53, query()), 'egress', 'query'],
    ['its answer', v4udp(53, 40000, answer()), 'ingress', 'answer'],
    ['a server-side query', v4udp(40000, 53, query()), 'ingress', 'query'],
    ['IPv6 with four extension headers', v6udp(query(), hop(4)), 'egress', 'query'],
    ['IPv6 with five', v6udp(query(), hop(5)), 'egress', 'ipv6-ext-chain-too-long'],
    ['IPv6 ending in AH', v6udp(query(), [{ type: IPPROTO_AH }]), 'egress', 'not-udp-tcp'],
    [
      'an IPv6 first fragment',
      v6udp(query(), [{ type: NEXTHDR_DEST }, { type: NEXTHDR_FRAGMENT, more: true }]),
      'egress',
      'query',
    ],
    [
      'an IPv6 later fragment',
      v6udp(query(), [{ type: NEXTHDR_FRAGMENT, fragOffset8: 3 }]),
      'egress',
      'ipv6-fragment',
    ],
    [
      'an IPv4 later fragment, any port',
      v4udp(1, 2, query(), { frag: 1 }),
      'egress',
      'ipv4-fragment',
    ],
    [
      'an ICMP later fragment',
      ipv4({ proto: IPPROTO_ICMP, src: C4, dst: S4, payload: query(), fragOffset8: 9 }),
      'egress',
      'not-udp-tcp',
    ],
    ['19 bytes of IPv4', cut(v4udp(40000, 53, query()), 19), 'egress', 'ip-header-truncated'],
    ['IPv4 and 3 bytes of UDP', cut(v4udp(40000, 53, query()), 23), 'egress', 'ports-truncated'],
    [
      'IPv4 and 4 bytes of UDP',
      cut(v4udp(40000, 53, query()), 24),
      'egress',
      'dns-header-truncated',
    ],
    ['DNS on port 5353', v4udp(40000, 5353, query()), 'egress', 'not-port-53'],
    ['qdcount 0', v4udp(40000, 53, query({ qdcount: 0 })), 'egress', 'qdcount-not-1'],
    ['a NOTIFY', v4udp(40000, 53, query({ opcode: 4, qdcount: 0 })), 'egress', 'opcode-not-query'],
    ['a query from port 53', v4udp(53, 40000, query()), 'egress', 'qr-port-mismatch'],
    [
      'a compression pointer',
      v4udp(40000, 53, query({ question: Buffer.from([0xc0, 12, 0, 1, 0, 1]) })),
      'egress',
      'name-label-over-63',
    ],
    [
      'a 255-byte name',
      v4udp(40000, 53, query({ question: questionBytes(wireNameOfLengths([63, 63, 63, 61]), 1) })),
      'egress',
      'query',
    ],
    [
      'a 256-byte name',
      v4udp(40000, 53, query({ question: questionBytes(wireNameOfLengths([63, 63, 63, 62]), 1) })),
      'egress',
      'name-over-255',
    ],
    [
      'the root name',
      v4udp(40000, 53, query({ question: Buffer.from([0, 0, 2, 0, 1]) })),
      'egress',
      'query',
    ],
    [
      'a name without its root label',
      cut(v4udp(40000, 53, query()), 45),
      'egress',
      'name-truncated',
    ],
    [
      'no QCLASS',
      cut(v4udp(40000, 53, query()), 20 + 8 + 12 + 13 + 2),
      'egress',
      'qtype-qclass-truncated',
    ],
    ['DNS over TCP', v4tcp(40000, 53, tcpFramed(query())), 'egress', 'query'],
    ['a bare ACK on port 53', v4tcp(40000, 53, Buffer.alloc(0)), 'egress', 'tcp-no-payload'],
    ['TCP data offset 4', v4tcp(40000, 53, tcpFramed(query()), 4), 'egress', 'tcp-doff-below-5'],
    [
      'a prefix of 16',
      v4tcp(40000, 53, tcpFramed(query(), 16)),
      'egress',
      'tcp-prefix-below-minimum',
    ],
    [
      'Z set over TCP',
      v4tcp(40000, 53, tcpFramed(dnsMessage({ id: 1, bits: DNS_BIT_Z }, Q))),
      'egress',
      'tcp-z-set',
    ],
    ['a prefix past the segment', v4tcp(40000, 53, tcpFramed(query(), 4000)), 'egress', 'query'],
    [
      'a prefix that ends the message inside the question',
      v4tcp(40000, 53, tcpFramed(query(), 20)),
      'egress',
      'question-past-tcp-message',
    ],
    [
      'a prefix that ends the message inside the question, another message behind it',
      v4tcp(40000, 53, Buffer.concat([tcpFramed(query(), 20), tcpFramed(query())])),
      'egress',
      'question-past-tcp-message',
    ],
    [
      'a TCP header cut after its data offset',
      cut(v4tcp(40000, 53, tcpFramed(query())), 20 + 15),
      'egress',
      'tcp-header-cut',
    ],
    [
      'a TCP header with options cut after its 20th byte',
      cut(v4tcp(40000, 53, tcpFramed(query()), 8), 20 + 20),
      'egress',
      'tcp-header-cut',
    ],
    [
      '13 payload bytes',
      cut(v4tcp(40000, 53, tcpFramed(query())), 53),
      'egress',
      'tcp-payload-shorter-than-start',
    ],
    [
      'version nibble 5',
      Buffer.from([0x55, ...cut(v4udp(40000, 53, query()), 60).subarray(1)]),
      'egress',
      'not-ip',
    ],
  ])('%s', (_name, packet, direction, why) => {
    expect(parseOutcome(packet, direction).why).toBe(why);
  });

  it('keys a server-side answer by the client address it goes to, a client one by none', () => {
    const server = parseOutcome(v4udp(53, 40000, answer(3)), 'egress');
    const client = parseOutcome(v4udp(53, 40000, answer(3)), 'ingress');
    expect(server).toMatchObject({
      kind: 'answer',
      rcode: 3,
      key: { role: 'server', peer: `${'00'.repeat(10)}ffff0a60000a`, port: 40000, id: 7, qtype: 1 },
    });
    expect(client).toMatchObject({ key: { role: 'client', peer: '00'.repeat(16) } });
  });
});

describe('withEthernet (test support)', () => {
  it.each([
    ['IPv4', v4udp(1, 53, query()), 0x0800],
    ['IPv6', v6udp(query()), 0x86dd],
    [
      'IPv4 shorter than its header (test-run refuses it as IPv4)',
      cut(v4udp(1, 53, query()), 19),
      0,
    ],
    ['IPv6 shorter than its header', cut(v6udp(query()), 39), 0],
    ['nothing', Buffer.alloc(0), 0],
  ])('%s: EtherType %d', (_name, l3, type) => {
    const frame = withEthernet(l3);
    expect(frame.readUInt16BE(12)).toBe(type);
    expect(frame.subarray(14)).toEqual(l3);
  });
});
