// The parts the packet classes of packet-fuzz.ts are built from: a seeded random source,
// unique identities (DNS id, port, name) per class, valid DNS packets from a spec, mutations,
// and the ClassBuilder that asks the parse oracle for every packet's outcome and checks it
// against what the packet was built for. Pure.
import {
  DNS_PORT,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NEXTHDR_DEST,
  NEXTHDR_FRAGMENT,
  NEXTHDR_HOP,
  NEXTHDR_ROUTING,
  QTYPE_A,
  QTYPE_AAAA,
  dnsMessage,
  ipv4,
  ipv6,
  questionBytes,
  tcp,
  tcpFramed,
  udp,
  type DnsHeader,
  type ExtHeader,
} from './packet-craft.js';
import {
  parseOutcome,
  type ParseCounter,
  type ParseOutcome,
  type Proto,
  type Role,
} from './dns-parse-oracle.js';
import { PairingModel, keyString } from './pairing-model.js';

export type Program = 'dns_egress' | 'dns_ingress';

export interface Run {
  prog: Program;
  /** from the IP header on (withEthernet() adds what BPF_PROG_TEST_RUN wants) */
  packet: Buffer;
  outcome: ParseOutcome;
  /** a valid query or answer mixed in to prove the program still counts */
  control?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32): small, fast, and the same on every machine.

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** [0, 1) */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[Math.floor(this.next() * xs.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

/** A seed per class, so that adding or resizing one class leaves the others' packets alone. */
export function classSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Valid DNS packets, and the identities (id, port, name) that keep their keys apart.

const LETTERS = [...'abcdefghijklmnopqrstuvwxyz0123456789-'].map((c) => c.charCodeAt(0));

/** Unique ids, ports and name labels within a class: its queries never collide by accident. */
export class Identities {
  private n = 0;

  constructor(private readonly rng: Rng) {}

  next(): { id: number; port: number; token: string } {
    const n = this.n++;
    return {
      id: (n * 7919 + 1) & 0xffff,
      port: 1024 + ((n * 104729) % 64000),
      token: `u${n.toString(36)}`,
    };
  }

  /** A random name that starts with a unique label: "u1k.ab3.svc" and the like. */
  name(token: string, maxExtra = 40): Buffer {
    // Written in place: a Buffer per label made this the generator's hot spot.
    const out = Buffer.alloc(token.length + maxExtra + 2);
    out[0] = token.length;
    let at = 1 + out.write(token, 1, 'latin1');
    let extra = this.rng.int(0, maxExtra);
    while (extra > 1) {
      const len = Math.min(this.rng.int(1, 15), extra - 1);
      out[at++] = len;
      for (let i = 0; i < len; i++) out[at++] = this.rng.pick(LETTERS);
      extra -= len + 1;
    }
    return out.subarray(0, at + 1); // the root label is the zero after
  }
}

export interface DnsSpec {
  family: 4 | 6;
  proto: Proto;
  kind: 'query' | 'answer';
  role: Role;
  id: number;
  /** the client's (non-53) port */
  port: number;
  client: Buffer;
  server: Buffer;
  /** name + QTYPE + QCLASS, or anything else */
  question: Buffer;
  header?: Partial<DnsHeader>;
  /** bytes after the question (answer records, garbage) */
  rest?: Buffer;
  tcpPrefix?: number;
  /** bytes after the framed message in the same TCP segment */
  tcpTrailer?: Buffer;
  tcpDataOffset?: number;
  ext?: ExtHeader[];
  ihl?: number;
  fragment?: { offset8?: number; more?: boolean };
  dontFragment?: boolean;
  udpLengthField?: number;
  totalLength?: number;
  sport?: number;
  dport?: number;
}

/**
 * The direction a packet takes for its role: a client's query leaves (egress) and its answer
 * comes in; a server pod's query comes in and its answer leaves.
 */
export function programFor(kind: 'query' | 'answer', role: Role): Program {
  return (kind === 'query') === (role === 'client') ? 'dns_egress' : 'dns_ingress';
}

export function buildDns(s: DnsSpec): { prog: Program; packet: Buffer } {
  const answer = s.kind === 'answer';
  const msg = dnsMessage({ id: s.id, response: answer, ...s.header }, s.question, s.rest);
  const sport = s.sport ?? (answer ? DNS_PORT : s.port);
  const dport = s.dport ?? (answer ? s.port : DNS_PORT);
  const l4 =
    s.proto === 'udp'
      ? udp(sport, dport, msg, s.udpLengthField)
      : tcp(
          sport,
          dport,
          Buffer.concat([tcpFramed(msg, s.tcpPrefix), s.tcpTrailer ?? Buffer.alloc(0)]),
          { dataOffset: s.tcpDataOffset },
        );
  const [src, dst] = answer ? [s.server, s.client] : [s.client, s.server];
  const proto = s.proto === 'udp' ? IPPROTO_UDP : IPPROTO_TCP;
  const packet =
    s.family === 4
      ? ipv4({
          proto,
          src,
          dst,
          payload: l4,
          ihl: s.ihl,
          fragOffset8: s.fragment?.offset8,
          moreFragments: s.fragment?.more,
          dontFragment: s.dontFragment,
          totalLength: s.totalLength,
        })
      : ipv6({ proto, src, dst, payload: l4, ext: s.ext });
  return { prog: programFor(s.kind, s.role), packet };
}

/** Where the IP header ends and the UDP/TCP header starts (no extension headers cut short). */
export function l4Offset(packet: Buffer): number {
  if (packet[0]! >> 4 === 4) return (packet[0]! & 0x0f) * 4;
  let proto = packet[6]!;
  let off = 40;
  while (proto !== IPPROTO_UDP && proto !== IPPROTO_TCP) {
    const next = packet[off]!;
    off += proto === NEXTHDR_FRAGMENT ? 8 : (packet[off + 1]! + 1) * 8;
    proto = next;
  }
  return off;
}

/** Where the DNS header starts (after the TCP length prefix for TCP). */
export function dnsOffset(packet: Buffer, proto: Proto): number {
  const l4 = l4Offset(packet);
  return proto === 'udp' ? l4 + 8 : l4 + (packet[l4 + 12]! >> 4) * 4 + 2;
}

export const QTYPES = [
  QTYPE_A,
  QTYPE_AAAA,
  QTYPE_A,
  QTYPE_AAAA,
  15,
  16,
  33,
  12,
  65,
  255,
  0,
  0xffff,
];

export function randomV4(rng: Rng): Buffer {
  return Buffer.from([10, rng.int(0, 255), rng.int(0, 255), rng.int(1, 254)]);
}

export function randomV6(rng: Rng): Buffer {
  return Buffer.concat([Buffer.from([0xfd, 0x00]), rng.bytes(14)]);
}

/** A random valid query or answer of a fresh identity. */
export function validSpec(rng: Rng, ids: Identities, over: Partial<DnsSpec> = {}): DnsSpec {
  const family = over.family ?? rng.pick([4, 6] as const);
  const { id, port, token } = ids.next();
  return {
    family,
    proto: rng.chance(0.7) ? 'udp' : 'tcp',
    kind: rng.chance(0.6) ? 'query' : 'answer',
    role: rng.chance(0.6) ? 'client' : 'server',
    id,
    port,
    client: family === 4 ? randomV4(rng) : randomV6(rng),
    server: family === 4 ? Buffer.from([10, 96, 0, 10]) : randomV6(rng),
    question: questionBytes(ids.name(token), rng.pick(QTYPES), rng.pick([1, 1, 1, 3, 255])),
    header: { rcode: rng.pick([0, 0, 0, 3, 2, 5, 1, 4]) },
    ...over,
  };
}

/** The answer to a query spec: same identity, addresses and question, swapped direction. */
export function answerTo(q: DnsSpec, over: Partial<DnsSpec> = {}): DnsSpec {
  return { ...q, kind: 'answer', header: { rcode: 0 }, rest: undefined, ...over };
}

// ---------------------------------------------------------------------------------------------
// Building a class: each packet's outcome from the oracle, checked against what was meant.

export type Want = ParseCounter | 'ignored' | 'dns-only' | 'query' | 'answer';

function wantOf(o: ParseOutcome): Want {
  return o.kind === 'error' ? o.counter : o.kind;
}

const outcomeOf = (p: { prog: Program; packet: Buffer }): ParseOutcome =>
  parseOutcome(p.packet, p.prog === 'dns_egress' ? 'egress' : 'ingress');

export class ClassBuilder {
  readonly runs: Run[] = [];
  readonly controls: Run[] = [];
  readonly ids: Identities;
  rejected = 0;
  private readonly queryKeys = new Set<string>();
  private readonly model = new PairingModel();

  constructor(
    readonly name: string,
    readonly rng: Rng,
  ) {
    this.ids = new Identities(rng);
  }

  /**
   * A packet built to have outcome `want` (one of several): throws if the oracle disagrees,
   * which means the generator or the oracle is wrong.
   */
  add(p: { prog: Program; packet: Buffer }, want?: Want | readonly Want[], control = false): Run {
    const outcome = outcomeOf(p);
    const wants = want === undefined ? undefined : ([] as Want[]).concat(want);
    if (wants && !wants.includes(wantOf(outcome))) {
      throw new Error(
        `${this.name}: built for ${wants.join('|')}, the oracle says ${wantOf(outcome)} ` +
          `(${outcome.why}): ${p.packet.toString('hex')}`,
      );
    }
    const run: Run = { prog: p.prog, packet: p.packet, outcome };
    if (control) run.control = true;
    return this.push(run);
  }

  /** A packet of unknown outcome (fuzz): false, and not added, if its key collides with
   * another packet's. */
  tryAdd(p: { prog: Program; packet: Buffer }): boolean {
    const o = outcomeOf(p);
    const collides =
      ((o.kind === 'query' || o.kind === 'answer') && this.queryKeys.has(keyString(o.key))) ||
      this.model.collides(o);
    if (collides) {
      this.rejected++;
      return false;
    }
    this.push({ prog: p.prog, packet: p.packet, outcome: o });
    return true;
  }

  private push(r: Run): Run {
    this.model.apply(r.outcome);
    if (r.outcome.kind === 'query') this.queryKeys.add(keyString(r.outcome.key));
    (r.control ? this.controls : this.runs).push(r);
    return r;
  }
}

// ---------------------------------------------------------------------------------------------
// Odds and ends of the classes.

export const cut = (p: { prog: Program; packet: Buffer }, length: number) => ({
  prog: p.prog,
  packet: Buffer.from(p.packet.subarray(0, length)),
});

export function randomExtChain(rng: Rng, n: number): ExtHeader[] {
  return Array.from({ length: n }, () => {
    const type = rng.pick([NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT]);
    return type === NEXTHDR_FRAGMENT
      ? { type, fragOffset8: 0, more: rng.chance(0.5) }
      : { type, units: rng.int(0, 3) };
  });
}

/** A name of exactly `total` wire bytes (root label included), labels of at most `maxLabel`. */
export function nameOfLength(rng: Rng, token: string, total: number, maxLabel = 63): Buffer {
  const name = Buffer.alloc(total, 0x6d);
  name[0] = token.length;
  let at = 1 + name.write(token, 1, 'latin1');
  let left = total - at - 1;
  while (left > 0) {
    let len = Math.min(left - 1, rng.int(1, maxLabel));
    if (left - (len + 1) === 1) len -= 1; // never leave a single byte: no label fits it
    if (len < 1) len = left - 1;
    name[at] = len;
    at += len + 1;
    left -= len + 1;
  }
  name[at] = 0;
  if (at !== total - 1) throw new Error(`name of ${at + 1} bytes, not ${total}`);
  return name;
}

export const PROGRAMS: readonly Program[] = ['dns_egress', 'dns_ingress'];

export const PAYLOAD_SAMPLES = [
  'GET / HTTP/1.1\r\nHost: kube-dns\r\n\r\n',
  'SSH-2.0-OpenSSH_9.2\r\n',
  '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
  'PING\r\n',
  '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00',
].map((s) => Buffer.from(s, 'latin1'));

export function mutate(rng: Rng, packet: Buffer): Buffer {
  let p = Buffer.from(packet);
  const interesting8 = [0, 1, 0x0f, 0x35, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff];
  const interesting16 = [0, 1, 2, 12, 17, 53, 0x8000, 0xc00c, 0xffff];
  const pos = () =>
    rng.chance(0.7) ? rng.int(0, Math.min(p.length, 90) - 1) : rng.int(0, p.length - 1);
  for (let i = rng.int(1, 6); i > 0 && p.length > 2; i--) {
    switch (rng.int(0, 7)) {
      case 0:
        p[pos()] = rng.int(0, 255);
        break;
      case 1:
        p[pos()]! ^= 1 << rng.int(0, 7);
        break;
      case 2:
        p[pos()] = rng.pick(interesting8);
        break;
      case 3: {
        const at = Math.min(pos(), p.length - 2);
        p.writeUInt16BE(rng.pick(interesting16), at);
        break;
      }
      case 4:
        p = p.subarray(0, rng.int(0, p.length - 1));
        break;
      case 5:
        p = Buffer.concat([p, rng.bytes(rng.int(1, 40))]);
        break;
      case 6: {
        const at = pos();
        p = Buffer.concat([p.subarray(0, at), p.subarray(Math.min(p.length, at + rng.int(1, 8)))]);
        break;
      }
      default: {
        const at = pos();
        p = Buffer.concat([p.subarray(0, at), rng.bytes(rng.int(1, 8)), p.subarray(at)]);
      }
    }
  }
  return Buffer.from(p);
}
