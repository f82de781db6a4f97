// Seeded generator of the packets that test/e2e/bpf-parser-robustness.test.ts runs through
// dns.bpf.o: classes of malformed and edge-case packets (truncated headers, qdcount 0 and
// many, compression pointers, long names, IPv6 extension header chains, lying TCP length
// prefixes, fragments, non-DNS on port 53, random mutations and garbage), each packet with
// the outcome the parse oracle expects, and valid query/answer pairs (controls) mixed into
// every class so that a program that dropped everything would fail. The same seed gives the
// same packets; each class has its own seed, so resizing one leaves the others alone. Pure.
import {
  ClassBuilder,
  PAYLOAD_SAMPLES,
  PROGRAMS,
  QTYPES,
  Rng,
  answerTo,
  buildDns,
  classSeed,
  cut,
  dnsOffset,
  l4Offset,
  mutate,
  nameOfLength,
  randomExtChain,
  randomV4,
  randomV6,
  validSpec,
  type Program,
  type Run,
  type Want,
} from './packet-fuzz-kit.js';

export { Rng, type Program, type Run } from './packet-fuzz-kit.js';
import {
  DNS_BIT_AD,
  DNS_BIT_CD,
  DNS_BIT_RA,
  DNS_BIT_RD,
  DNS_BIT_TC,
  DNS_BIT_Z,
  IPPROTO_AH,
  IPPROTO_ESP,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NEXTHDR_DEST,
  NEXTHDR_FRAGMENT,
  NEXTHDR_HOP,
  NEXTHDR_MOBILITY,
  NEXTHDR_NONE,
  NEXTHDR_ROUTING,
  QTYPE_A,
  QTYPE_AAAA,
  TCP_ACK,
  TCP_FIN,
  TCP_SYN,
  dnsMessage,
  ipv4,
  ipv6,
  questionBytes,
  tcp,
  tcpFramed,
  udp,
  type ExtHeader,
} from './packet-craft.js';
import { type Why } from './dns-parse-oracle.js';

export interface PacketClass {
  name: string;
  /** what the class is, one line */
  what: string;
  /** the items of issue 10 it covers */
  covers: string[];
  runs: Run[];
  /** candidate packets dropped because they collided with a key */
  rejected: number;
}

/**
 * Valid query/answer pairs of every kind (client and server side, IPv4 and IPv6, UDP and TCP,
 * A, AAAA and other, five rcode classes), each query before its answer, at random places.
 */
function addControls(b: ClassBuilder, pairs: number): void {
  for (let i = 0; i < pairs; i++) {
    const q = validSpec(b.rng, b.ids, {
      kind: 'query',
      role: i % 2 ? 'server' : 'client',
      family: i % 4 < 2 ? 4 : 6,
      proto: i % 3 === 2 ? 'tcp' : 'udp',
    });
    q.question = questionBytes(
      b.ids.name(`c${i}${b.ids.next().token}`),
      [QTYPE_A, QTYPE_AAAA, 15][i % 3]!,
    );
    b.add(buildDns(q), 'query', true);
    b.add(buildDns(answerTo(q, { header: { rcode: [0, 3, 2, 5, 4][i % 5]! } })), 'answer', true);
  }
}

/** Inserts each control query at a random place and its answer at a random later one. */
function interleave(rng: Rng, runs: readonly Run[], controls: readonly Run[]): Run[] {
  const out = [...runs];
  for (let i = 0; i < controls.length; i += 2) {
    const at = rng.int(0, out.length);
    const answerAt = rng.int(at, out.length);
    out.splice(answerAt, 0, controls[i + 1]!);
    out.splice(at, 0, controls[i]!);
  }
  return out;
}

const CONTROL_PAIRS = 6;

interface ClassDef {
  name: string;
  what: string;
  covers: string[];
  size: number;
  fill(b: ClassBuilder, size: number): void;
}

// ---------------------------------------------------------------------------------------------
// The classes.

const CLASSES: ClassDef[] = [
  {
    name: 'ip-header-truncated',
    what: 'valid DNS packets cut inside the IPv4 header (options too) or the IPv6 header and its extension headers: ignored',
    covers: ['truncated IP headers'],
    size: 6000,
    fill(b, n) {
      while (b.runs.length < n) {
        const family = b.rng.pick([4, 6] as const);
        const s = validSpec(b.rng, b.ids, {
          family,
          ihl: family === 4 && b.rng.chance(0.3) ? b.rng.int(6, 15) : undefined,
          ext:
            family === 6 && b.rng.chance(0.4) ? randomExtChain(b.rng, b.rng.int(1, 4)) : undefined,
        });
        const p = buildDns(s);
        b.add(cut(p, b.rng.int(0, l4Offset(p.packet) + 3)), 'ignored');
      }
    },
  },
  {
    name: 'udp-dns-header-truncated',
    what: 'UDP port 53 cut inside the UDP header or the DNS header: ignored below the ports, parse_truncated after them',
    covers: ['truncated UDP headers', 'truncated DNS headers'],
    size: 5000,
    fill(b, n) {
      while (b.runs.length < n) {
        const p = buildDns(validSpec(b.rng, b.ids, { proto: 'udp' }));
        const l4 = l4Offset(p.packet);
        const at = b.rng.int(l4 + 4, l4 + 8 + 11);
        b.add(cut(p, at), 'parse_truncated');
      }
    },
  },
  {
    name: 'tcp-header-truncated',
    what: 'TCP port 53 cut before the data offset byte, or with a data offset below 5: parse_truncated; cut right after the header: no payload, ignored',
    covers: ['truncated TCP headers'],
    size: 4000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, { proto: 'tcp' });
        const p = buildDns(s);
        const l4 = l4Offset(p.packet);
        const kind = b.rng.int(0, 2);
        if (kind === 0) b.add(cut(p, b.rng.int(l4 + 4, l4 + 12)), 'parse_truncated');
        else if (kind === 1) {
          const q = Buffer.from(p.packet);
          q[l4 + 12] = (b.rng.int(0, 4) << 4) | (q[l4 + 12]! & 0x0f);
          b.add({ prog: p.prog, packet: q }, 'parse_truncated');
        } else {
          b.add(cut(p, l4 + 20), 'ignored'); // a bare ACK
        }
      }
    },
  },
  {
    name: 'tcp-header-cut',
    what: 'TCP port 53 cut after the data offset byte but inside the header (options too): parse_truncated',
    covers: ['truncated TCP headers'],
    size: 1000,
    fill(b, n) {
      while (b.runs.length < n) {
        const doff = b.rng.chance(0.5) ? 5 : b.rng.int(6, 15);
        const p = buildDns(validSpec(b.rng, b.ids, { proto: 'tcp', tcpDataOffset: doff }));
        const l4 = l4Offset(p.packet);
        b.add(cut(p, b.rng.int(l4 + 13, l4 + doff * 4 - 1)), 'parse_truncated');
      }
    },
  },
  {
    name: 'tcp-message-start-truncated',
    what: 'TCP port 53 with 1-13 payload bytes (length prefix and part of the header): parse_tcp_not_start',
    covers: ['truncated DNS headers', 'TCP length prefixes that lie'],
    size: 3000,
    fill(b, n) {
      while (b.runs.length < n) {
        const p = buildDns(validSpec(b.rng, b.ids, { proto: 'tcp' }));
        const start = l4Offset(p.packet) + 20;
        b.add(cut(p, b.rng.int(start + 1, start + 13)), 'parse_tcp_not_start');
      }
    },
  },
  {
    name: 'question-truncated',
    what: 'UDP and TCP messages cut anywhere inside the question (name, QTYPE, QCLASS): parse_truncated',
    covers: ['truncated DNS headers'],
    size: 8000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids);
        const p = buildDns(s);
        const q = dnsOffset(p.packet, s.proto) + 12;
        b.add(cut(p, b.rng.int(q, q + s.question.length - 1)), 'parse_truncated');
      }
    },
  },
  {
    name: 'qdcount-not-one',
    what: 'qdcount 0 (FORMERR-style answers with no question too) and 2..65535: parse_bad_question over UDP, parse_tcp_not_start over TCP',
    covers: ['qdcount 0 and many'],
    size: 6000,
    fill(b, n) {
      while (b.runs.length < n) {
        const qdcount = b.rng.pick([0, 0, 2, 3, 2, b.rng.int(2, 65535)]);
        const s = validSpec(b.rng, b.ids, { header: { qdcount } });
        if (qdcount === 0 && b.rng.chance(0.5)) s.question = Buffer.alloc(0);
        if (qdcount > 1 && b.rng.chance(0.5)) s.rest = s.question; // really two questions
        b.add(buildDns(s), s.proto === 'udp' ? 'parse_bad_question' : 'parse_tcp_not_start');
      }
    },
  },
  {
    name: 'compression-pointers',
    what: 'questions with compression pointers (to the header, to themselves, in loops, past the packet) and the reserved 0x40/0x80 label types: parse_bad_question',
    covers: ['compression pointers and loops in the question'],
    size: 6000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids);
        const head = b.rng.chance(0.5)
          ? Buffer.alloc(0)
          : b.ids.name(b.ids.next().token, 20).subarray(0, -1);
        const q = 12 + head.length; // the pointer's own offset in the message
        const pointer = b.rng.pick([
          0xc000 | 12, // the question start: a loop through the labels before it
          0xc000 | q, // itself
          0xc000, // the header
          0xc000 | b.rng.int(0, 0x3fff), // anywhere, past the packet too
          0xc000 | (q + 2), // the next pointer, which points back: a two-pointer loop
        ]);
        const second = Buffer.from([0xc0 | ((q >> 8) & 0x3f), q & 0xff]);
        const label = b.rng.chance(0.2)
          ? Buffer.from([b.rng.pick([0x40, 0x41, 0x7f, 0x80, 0xbf]), 0x61, 0x61, 0x00])
          : Buffer.concat([Buffer.from([pointer >> 8, pointer & 0xff]), second]);
        s.question = Buffer.concat([head, label, s.question.subarray(-4)]);
        b.add(buildDns(s), 'parse_bad_question');
      }
    },
  },
  {
    name: 'name-too-long',
    what: 'names of 256-400 wire bytes (63-byte labels, one-byte labels) and labels of 64-191 bytes: parse_bad_question',
    covers: ['maximum-length names'],
    size: 4000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids);
        const { token } = b.ids.next();
        const name = b.rng.chance(0.2)
          ? Buffer.concat([
              Buffer.from([b.rng.int(64, 191)]),
              b.rng.bytes(b.rng.int(0, 80)),
              Buffer.from([0]),
            ])
          : nameOfLength(
              b.rng,
              token,
              b.rng.chance(0.5) ? 256 : b.rng.int(257, 400),
              b.rng.pick([1, 2, 63, 63]),
            );
        s.question = questionBytes(name, QTYPE_A);
        b.add(buildDns(s), 'parse_bad_question');
      }
    },
  },
  {
    name: 'maximum-length-names',
    what: 'names of 120-255 wire bytes, 255 most often: queries counted and pending with the first 128 bytes kept (truncated flag past 128), a third answered',
    covers: ['maximum-length names'],
    size: 3000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, { kind: 'query' });
        const total = b.rng.pick([255, 255, 254, 128, 129, b.rng.int(120, 255)]);
        s.question = questionBytes(
          nameOfLength(b.rng, b.ids.next().token, total, b.rng.pick([1, 63, 20])),
          QTYPE_AAAA,
        );
        b.add(buildDns(s), 'query');
        if (b.rng.chance(1 / 3)) b.add(buildDns(answerTo(s)), 'answer');
      }
    },
  },
  {
    name: 'ipv6-ext-chain-walked',
    what: 'IPv6 with 1-4 hop-by-hop, routing, destination and first-fragment headers: parsed, counted and paired',
    covers: ['IPv6 extension header chains'],
    size: 5000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, {
          family: 6,
          kind: 'query',
          ext: randomExtChain(b.rng, b.rng.int(1, 4)),
        });
        b.add(buildDns(s), 'query');
        if (b.rng.chance(0.5)) {
          b.add(buildDns(answerTo(s, { ext: randomExtChain(b.rng, b.rng.int(0, 4)) })), 'answer');
        }
      }
    },
  },
  {
    name: 'ipv6-ext-chain-too-long',
    what: 'IPv6 with 5-8 walkable extension headers before UDP/TCP port 53: parse_ipv6_ext',
    covers: ['IPv6 extension header chains'],
    size: 4000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, {
          family: 6,
          ext: randomExtChain(b.rng, b.rng.int(5, 8)),
        });
        b.add(buildDns(s), 'parse_ipv6_ext');
      }
    },
  },
  {
    name: 'ipv6-ext-chain-unwalkable',
    what: 'IPv6 chains ending in AH, ESP, no-next-header, mobility or ICMPv6, chains cut short, and header lengths past the packet: ignored',
    covers: ['IPv6 extension header chains', 'truncated IP headers'],
    size: 3000,
    fill(b, n) {
      while (b.runs.length < n) {
        const chain = randomExtChain(b.rng, b.rng.int(0, 3));
        const s = validSpec(b.rng, b.ids, { family: 6, ext: chain });
        const kind = b.rng.int(0, 2);
        if (kind === 0) {
          const last = b.rng.pick([
            IPPROTO_AH,
            IPPROTO_ESP,
            NEXTHDR_NONE,
            NEXTHDR_MOBILITY,
            IPPROTO_ICMPV6,
          ]);
          const ext: ExtHeader[] = [...chain, { type: last, units: b.rng.int(0, 2) }];
          s.ext = ext;
          b.add(buildDns(s), 'ignored');
        } else if (kind === 1) {
          // the last header claims up to 2 KiB more than the packet has
          s.ext = [...chain, { type: b.rng.pick([NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_ROUTING]) }];
          const p = buildDns(s);
          p.packet[l4Offset(p.packet) - 8 + 1] = b.rng.int(200, 255);
          b.add(p, 'ignored');
        } else {
          s.ext = [...chain, ...randomExtChain(b.rng, 1)];
          const p = buildDns(s);
          b.add(cut(p, b.rng.int(40, l4Offset(p.packet) + 3)), 'ignored');
        }
      }
    },
  },
  {
    name: 'non-first-fragments',
    what: 'IPv4 and IPv6 non-first fragments of UDP/TCP, any port (the port is in the first one): parse_fragment; of other protocols: ignored',
    covers: ['fragments'],
    size: 6000,
    fill(b, n) {
      while (b.runs.length < n) {
        const v4 = b.rng.chance(0.5);
        const proto = b.rng.pick([
          IPPROTO_UDP,
          IPPROTO_TCP,
          IPPROTO_UDP,
          IPPROTO_ICMP,
          IPPROTO_SCTP,
        ]);
        const payload = b.rng.chance(0.5)
          ? Buffer.concat([Buffer.from([0, 53, 0, 53]), b.rng.bytes(b.rng.int(0, 200))])
          : b.rng.bytes(b.rng.int(0, 200));
        const offset8 = b.rng.pick([1, 2, 185, 8191, b.rng.int(1, 8191)]);
        const want = proto === IPPROTO_UDP || proto === IPPROTO_TCP ? 'parse_fragment' : 'ignored';
        const dir: Program = b.rng.pick(PROGRAMS);
        if (v4) {
          const packet = ipv4({
            proto,
            src: randomV4(b.rng),
            dst: randomV4(b.rng),
            payload,
            fragOffset8: offset8,
            moreFragments: b.rng.chance(0.5),
          });
          b.add({ prog: dir, packet }, want);
        } else {
          const ext = [
            ...randomExtChain(b.rng, b.rng.int(0, 3)),
            { type: NEXTHDR_FRAGMENT, fragOffset8: offset8, more: b.rng.chance(0.5) },
          ];
          const packet = ipv6({ proto, src: randomV6(b.rng), dst: randomV6(b.rng), payload, ext });
          b.add({ prog: dir, packet }, want);
        }
      }
    },
  },
  {
    name: 'first-fragments',
    what: 'first fragments (offset 0, more fragments) carrying a whole question: counted; carrying part of it: parse_truncated',
    covers: ['fragments'],
    size: 3000,
    fill(b, n) {
      while (b.runs.length < n) {
        const v4 = b.rng.chance(0.6);
        const s = validSpec(b.rng, b.ids, {
          family: v4 ? 4 : 6,
          proto: 'udp',
          kind: 'query',
          fragment: v4 ? { offset8: 0, more: true } : undefined,
          ext: v4 ? undefined : [{ type: NEXTHDR_FRAGMENT, fragOffset8: 0, more: true }],
        });
        const p = buildDns(s);
        if (b.rng.chance(0.5)) {
          b.add(p, 'query');
          if (b.rng.chance(0.5))
            b.add(buildDns(answerTo(s, { fragment: undefined, ext: undefined })), 'answer');
        } else {
          // fragment data ends on an 8-byte boundary inside the question
          const l4 = l4Offset(p.packet);
          const q = l4 + 8 + 12;
          const ends = [];
          for (let at = l4 + 8; at < q + s.question.length; at += 8) if (at >= q) ends.push(at);
          if (ends.length === 0) continue;
          b.add(cut(p, b.rng.pick(ends)), 'parse_truncated');
        }
      }
    },
  },
  {
    name: 'tcp-prefix-lies',
    what: 'TCP length prefixes longer than the segment (message continued later, 0xffff): counted; below 17: parse_tcp_not_start; two messages in one segment: the first counted',
    covers: ['TCP length prefixes that lie'],
    size: 4000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, { proto: 'tcp', kind: 'query' });
        const msgLen = 12 + s.question.length;
        const kind = b.rng.int(0, 3);
        if (kind === 0) {
          s.tcpPrefix = b.rng.pick([0xffff, msgLen + 1, b.rng.int(msgLen + 1, 0xffff)]);
          b.add(buildDns(s), 'query');
        } else if (kind === 1) {
          s.tcpPrefix = b.rng.int(0, 16);
          b.add(buildDns(s), 'parse_tcp_not_start');
          continue;
        } else if (kind === 2) {
          const next = validSpec(b.rng, b.ids, { proto: 'tcp', kind: 'query' });
          s.tcpTrailer = tcpFramed(dnsMessage({ id: next.id }, next.question));
          b.add(buildDns(s), 'query');
        } else {
          s.tcpTrailer = b.rng.bytes(b.rng.int(1, 60)); // garbage after an exact message
          b.add(buildDns(s), 'query');
        }
        if (b.rng.chance(0.5))
          b.add(buildDns(answerTo(s, { tcpPrefix: undefined, tcpTrailer: undefined })), 'answer');
      }
    },
  },
  {
    name: 'tcp-prefix-short-of-question',
    what: 'TCP length prefixes of 17 or more that end the message inside its question: parse_truncated, no count',
    covers: ['TCP length prefixes that lie'],
    size: 1000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, { proto: 'tcp' });
        s.question = questionBytes(b.ids.name(b.ids.next().token, 60), b.rng.pick(QTYPES));
        s.tcpPrefix = b.rng.int(17, 12 + s.question.length - 1);
        b.add(buildDns(s), 'parse_truncated');
      }
    },
  },
  {
    name: 'tcp-not-message-start',
    what: 'TCP port 53 segments from the middle of a stream, with Z set or qdcount != 1, and bare SYN/ACK/FIN segments: as the oracle says (mostly parse_tcp_not_start; no payload: ignored)',
    covers: ['TCP length prefixes that lie', 'non-DNS on port 53'],
    size: 5000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, { proto: 'tcp' });
        const kind = b.rng.int(0, 3);
        if (kind === 0) {
          const p = buildDns(s);
          const l4 = l4Offset(p.packet);
          const mid = Buffer.concat([
            p.packet.subarray(0, l4 + 20),
            b.rng.bytes(b.rng.int(1, 300)),
          ]);
          b.tryAdd({ prog: p.prog, packet: mid });
        } else if (kind === 1) {
          s.header = { ...s.header, bits: DNS_BIT_RD | DNS_BIT_Z };
          b.add(buildDns(s), 'parse_tcp_not_start');
        } else if (kind === 2) {
          const p = buildDns(s);
          const l4 = l4Offset(p.packet);
          const bare = Buffer.from(p.packet.subarray(0, l4 + 20));
          bare[l4 + 13] = b.rng.pick([TCP_SYN, TCP_ACK, TCP_FIN | TCP_ACK, TCP_SYN | TCP_ACK]);
          b.add({ prog: p.prog, packet: bare }, 'ignored');
        } else {
          // the rest of a message: the bytes after its first 2 + 12 + k
          const p = buildDns(s);
          const l4 = l4Offset(p.packet);
          const skip = b.rng.int(1, 13 + s.question.length);
          b.tryAdd({
            prog: p.prog,
            packet: Buffer.concat([
              p.packet.subarray(0, l4 + 20),
              p.packet.subarray(l4 + 20 + skip),
            ]),
          });
        }
      }
    },
  },
  {
    name: 'non-dns-on-port-53',
    what: 'random bytes, text protocols, TLS and zeros on UDP/TCP port 53, either side, both directions: as the oracle says',
    covers: ['non-DNS on port 53'],
    size: 12000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids);
        const payload = b.rng.chance(0.2)
          ? b.rng.pick(PAYLOAD_SAMPLES)
          : b.rng.bytes(b.rng.pick([0, 1, 2, 11, 12, 13, 16, 17, 18, b.rng.int(0, 600)]));
        const sport = b.rng.chance(0.5) ? 53 : b.rng.int(1, 65535);
        const dport = sport === 53 && b.rng.chance(0.7) ? b.rng.int(1, 65535) : 53;
        const l4 = s.proto === 'udp' ? udp(sport, dport, payload) : tcp(sport, dport, payload);
        const proto = s.proto === 'udp' ? IPPROTO_UDP : IPPROTO_TCP;
        const packet =
          s.family === 4
            ? ipv4({ proto, src: s.client, dst: s.server, payload: l4 })
            : ipv6({ proto, src: s.client, dst: s.server, payload: l4 });
        b.tryAdd({ prog: b.rng.pick(PROGRAMS), packet });
      }
    },
  },
  {
    name: 'not-port-53-or-not-ip',
    what: 'valid DNS on other ports, port-53-looking bytes under ICMP/SCTP/ESP/AH, and IP version nibbles other than 4 and 6: ignored',
    covers: ['non-DNS on port 53'],
    size: 6000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids);
        const kind = b.rng.int(0, 2);
        if (kind === 0) {
          const other = b.rng.pick([5353, 853, 8053, 5300, b.rng.int(54, 65535)]);
          s.sport = s.kind === 'answer' ? other : s.port;
          s.dport = s.kind === 'answer' ? s.port : other;
          b.add(buildDns(s), 'ignored');
        } else if (kind === 1) {
          const p = buildDns(s);
          const q = Buffer.from(p.packet);
          const proto = b.rng.pick([
            IPPROTO_ICMP,
            IPPROTO_SCTP,
            IPPROTO_ESP,
            IPPROTO_AH,
            IPPROTO_ICMPV6,
            255,
          ]);
          if (s.family === 4) q[9] = proto;
          else q[6] = proto;
          b.add({ prog: p.prog, packet: q }, 'ignored');
        } else {
          const p = buildDns(s);
          const q = Buffer.from(p.packet);
          q[0] = (b.rng.pick([0, 1, 2, 3, 5, 7, 8, 9, 15]) << 4) | (q[0]! & 0x0f);
          b.add({ prog: p.prog, packet: q }, 'ignored');
        }
      }
    },
  },
  {
    name: 'odd-but-valid',
    what: 'IPv4 options, DF, lying IPv4/UDP length fields, root-name and CH/ANY questions, RD clear, Z/AD/CD/TC set over UDP, extra records, port 53 on both sides, rcodes 0-15: counted and paired exactly',
    covers: ['maximum-length names', 'non-DNS on port 53'],
    size: 6000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids, {
          kind: 'query',
          proto: b.rng.chance(0.8) ? 'udp' : 'tcp',
        });
        const odd = b.rng.int(0, 8);
        if (odd === 0 && s.family === 4) s.ihl = b.rng.int(6, 15);
        if (odd === 1 && s.family === 4) {
          s.dontFragment = true;
          s.totalLength = b.rng.int(0, 0xffff);
        }
        if (odd === 2 && s.proto === 'udp') s.udpLengthField = b.rng.int(0, 0xffff);
        if (odd === 3) s.question = questionBytes(Buffer.from([0]), b.rng.pick([2, 6, 1])); // the root
        if (odd === 4)
          s.question = questionBytes(
            s.question.subarray(0, -4),
            b.rng.pick(QTYPES),
            b.rng.pick([3, 4, 254, 255]),
          );
        const bits =
          s.proto === 'udp'
            ? b.rng.pick([
                0,
                DNS_BIT_Z,
                DNS_BIT_AD | DNS_BIT_CD,
                DNS_BIT_RD | DNS_BIT_Z | DNS_BIT_AD,
              ])
            : b.rng.pick([0, DNS_BIT_AD, DNS_BIT_CD]);
        if (odd === 5) s.header = { bits };
        if (odd === 6) {
          s.header = { ancount: b.rng.int(0, 65535), nscount: b.rng.int(0, 3), arcount: 1 };
          s.rest = b.rng.bytes(b.rng.int(0, 60));
        }
        if (odd === 7) s.sport = 53;
        b.add(buildDns(s), 'query');
        const rcode = b.rng.int(0, 15);
        const answerBits =
          s.proto === 'udp'
            ? b.rng.pick([
                DNS_BIT_RD | DNS_BIT_RA,
                DNS_BIT_TC | DNS_BIT_RA,
                DNS_BIT_Z | DNS_BIT_AD,
                DNS_BIT_CD,
              ])
            : DNS_BIT_RD | DNS_BIT_RA;
        const a = answerTo(s, {
          header: { rcode, bits: answerBits, ancount: b.rng.int(0, 4) },
          rest: b.rng.bytes(b.rng.int(0, 40)),
        });
        if (odd === 7) {
          a.sport = 53;
          a.dport = 53;
        }
        b.add(buildDns(a), 'answer');
      }
    },
  },
  {
    name: 'dns-not-paired',
    what: 'opcodes other than QUERY (even with a broken question), queries from port 53 to another port, answers to port 53 from another: dns_packets only',
    covers: ['non-DNS on port 53'],
    size: 5000,
    fill(b, n) {
      while (b.runs.length < n) {
        const s = validSpec(b.rng, b.ids);
        if (b.rng.chance(0.6)) {
          s.header = { ...s.header, opcode: b.rng.int(1, 15), qdcount: b.rng.pick([0, 1, 1, 7]) };
          if (b.rng.chance(0.3)) s.question = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1]);
          if (s.proto === 'tcp') s.header.qdcount = 1;
        } else {
          const other = b.rng.int(54, 65535);
          if (s.kind === 'query') {
            s.sport = 53;
            s.dport = other;
          } else {
            s.sport = other;
            s.dport = 53;
          }
        }
        b.add(buildDns(s), 'dns-only');
      }
    },
  },
  {
    name: 'answers-that-must-not-pair',
    what: 'pending queries; answers that differ in id, port, qtype, protocol, direction or client address, and malformed answers with the right key: none pairs; then the right answers pair two thirds',
    covers: ['no pairing where none is due'],
    size: 4000,
    fill(b, n) {
      while (b.runs.length < n) {
        const q = validSpec(b.rng, b.ids, { kind: 'query' });
        b.add(buildDns(q), 'query');
        for (let i = b.rng.int(2, 6); i > 0; i--) {
          const a = answerTo(q);
          const kind = b.rng.int(0, 10);
          let want: Want = 'answer';
          if (kind === 0) a.id = (q.id + b.rng.pick([1, -1, 0x100, 0x8000])) & 0xffff;
          else if (kind === 1) a.port = q.port === 65535 ? 1024 : q.port + 1;
          else if (kind === 2)
            a.question = questionBytes(
              q.question.subarray(0, -4),
              q.question.readUInt16BE(q.question.length - 4) === QTYPE_A ? QTYPE_AAAA : QTYPE_A,
            );
          else if (kind === 3) a.proto = q.proto === 'udp' ? 'tcp' : 'udp';
          else if (kind === 4) a.role = q.role === 'client' ? 'server' : 'client';
          else if (kind === 5) {
            a.client = q.family === 4 ? randomV4(b.rng) : randomV6(b.rng);
            if (q.role === 'client') a.port = q.port ^ 1; // the client side keys no address
          } else if (kind === 6) {
            a.header = { qdcount: 0 };
            a.question = Buffer.alloc(0);
            want = a.proto === 'udp' ? 'parse_bad_question' : 'parse_tcp_not_start';
          } else if (kind === 7) {
            a.question = Buffer.concat([Buffer.from([0xc0, 0x0c]), q.question.subarray(-4)]);
            want = 'parse_bad_question';
          } else if (kind === 8) {
            a.header = { opcode: b.rng.pick([2, 4, 5]) };
            want = 'dns-only';
          } else if (kind === 9) {
            a.question = nameOfLength(b.rng, b.ids.next().token, 300);
            want = 'parse_bad_question';
          } else {
            const p = buildDns(a);
            b.add(cut(p, p.packet.length - b.rng.int(1, 4)), 'parse_truncated');
            continue;
          }
          b.add(buildDns(a), want);
        }
        if (b.rng.chance(2 / 3)) b.add(buildDns(answerTo(q)), 'answer');
      }
    },
  },
  {
    name: 'random-mutations',
    what: 'valid packets of every kind with 1-6 random byte changes, cuts, insertions and deletions: as the oracle says',
    covers: ['all of the above, at random'],
    size: 15000,
    fill(b, n) {
      while (b.runs.length < n) {
        const family = b.rng.pick([4, 6] as const);
        const s = validSpec(b.rng, b.ids, {
          family,
          ext:
            family === 6 && b.rng.chance(0.2) ? randomExtChain(b.rng, b.rng.int(1, 5)) : undefined,
          ihl: family === 4 && b.rng.chance(0.1) ? b.rng.int(6, 8) : undefined,
        });
        const p = buildDns(s);
        b.tryAdd({ prog: p.prog, packet: mutate(b.rng, p.packet) });
      }
    },
  },
  {
    name: 'random-garbage',
    what: 'random bytes of 0-1500 bytes, half of them with an IPv4/IPv6 version nibble, UDP/TCP and a port 53 forced in: as the oracle says',
    covers: ['all of the above, at random'],
    size: 10000,
    fill(b, n) {
      while (b.runs.length < n) {
        const len = b.rng.chance(0.5) ? b.rng.int(0, 120) : b.rng.int(0, 1500);
        const p = b.rng.bytes(len);
        const v6 = b.rng.chance(0.5);
        if (len > 0 && b.rng.chance(0.7)) p[0] = v6 ? 0x60 | (p[0]! & 0x0f) : 0x45;
        if (len > 9 && b.rng.chance(0.6)) {
          if (v6 && len > 6)
            p[6] = b.rng.pick([IPPROTO_UDP, IPPROTO_TCP, NEXTHDR_HOP, NEXTHDR_FRAGMENT]);
          else p[9] = b.rng.pick([IPPROTO_UDP, IPPROTO_TCP]);
          if (!v6 && b.rng.chance(0.7)) p.writeUInt16BE(0, 6); // not a fragment
        }
        const l4 = v6 ? 40 : 20;
        if (len >= l4 + 4 && b.rng.chance(0.6)) p.writeUInt16BE(53, l4 + b.rng.pick([0, 2]));
        if (len >= l4 + 16 && b.rng.chance(0.3)) p.writeUInt16BE(1, l4 + 12); // qdcount 1 over UDP
        b.tryAdd({ prog: b.rng.pick(PROGRAMS), packet: p });
      }
    },
  },
];

export interface GenerateOptions {
  seed: number;
  /** multiplies every class size (the unit test runs small ones); default 1 */
  scale?: number;
  /** only these classes */
  only?: readonly string[];
}

/** Every class, in a fixed order, with its controls mixed in. */
export function parserRobustnessClasses(o: GenerateOptions): PacketClass[] {
  const scale = o.scale ?? 1;
  return CLASSES.filter((c) => !o.only || o.only.includes(c.name)).map((c) => {
    const rng = new Rng(classSeed(o.seed, c.name));
    const b = new ClassBuilder(c.name, rng);
    // Controls first, so that no fuzz packet is let in whose key is a control's.
    addControls(b, CONTROL_PAIRS);
    c.fill(b, Math.max(1, Math.round(c.size * scale)));
    return {
      name: c.name,
      what: c.what,
      covers: c.covers,
      runs: interleave(rng, b.runs, b.controls),
      rejected: b.rejected,
    };
  });
}

export const CLASS_NAMES: readonly string[] = CLASSES.map((c) => c.name);

/** How many packets of a class got each outcome (controls apart). */
export function whyTally(runs: readonly Run[]): Partial<Record<Why | 'control', number>> {
  const out: Partial<Record<Why | 'control', number>> = {};
  for (const r of runs) {
    const k = r.control ? 'control' : r.outcome.why;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
