/**
 * Parser for `tcpdump -r <file> -nn -tt` DNS lines (tcpdump 4.99). Examples:
 *   1718000000.123456 IP 10.244.0.4.50328 > 10.96.0.10.53: 19166+ A? web.team-a.svc.cluster.local. (46)
 *   1718000000.124001 IP 10.96.0.10.53 > 10.244.0.4.50328: 19166* 1/0/0 A 10.96.0.20 (62)
 *   1718000000.125000 IP 10.96.0.10.53 > 10.244.0.4.50328: 39643 NXDomain* 0/0/0 (46)
 *   1718000000.126000 IP6 fd00:10:244::4.41234 > fd00:10:96::a.53: Flags [P.], seq 1:53, ack 1, win 502, length 52 2+ [1au] A? example.com. (50)
 * Responses do not repeat the question at -v < 2, so pairResponses() copies qtype/qname from the
 * matching query (same id, swapped endpoints).
 */
export interface DnsPacket {
  /** Seconds since the epoch, microsecond resolution. */
  time: number;
  family: 4 | 6;
  proto: 'udp' | 'tcp';
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  id: number;
  isResponse: boolean;
  /** 'A', 'AAAA', ...; on responses only after pairResponses() found the query. */
  qtype?: string;
  /** With trailing dot, as tcpdump prints it. */
  qname?: string;
  /** Responses only: 'NOERROR', 'NXDOMAIN', 'SERVFAIL', ... */
  rcode?: string;
  /** Responses only: answer records as printed (`A 10.96.0.20`). */
  answers?: string[];
}

const LINE_RE =
  /^(\d+\.\d+) (IP6?) (\S+)\.(\d+) > (\S+)\.(\d+): (?:Flags \[[^\]]*\].*?length \d+ )?(\d+)(.*)$/;
const QUERY_RE = /^(?: [a-z]+)?[+|%]* (?:\[[^\]]+\] )*(\S+)\? (\S+) \(\d+\)$/;
const RESPONSE_RE =
  /^(?: (?:notify|update|inv_q|stat|op\d+))?(?: ([A-Z][A-Za-z]*\d*))?[*\-|$]*(?: \[\d+q\])? (\d+)\/(\d+)\/(\d+)(.*?)(?: \(\d+\))?$/;

const RCODES: Record<string, string> = {
  FormErr: 'FORMERR',
  ServFail: 'SERVFAIL',
  NXDomain: 'NXDOMAIN',
  NotImp: 'NOTIMP',
  Refused: 'REFUSED',
};

/** One packet, or undefined for lines that are not a DNS message tcpdump could decode. */
export function parseTcpdumpLine(line: string): DnsPacket | undefined {
  const m = LINE_RE.exec(line.trim());
  if (!m) return undefined;
  const [, time, ip, src, sport, dst, dport, id, rest = ''] = m;
  const base = {
    time: Number(time),
    family: (ip === 'IP6' ? 6 : 4) as 4 | 6,
    proto: (line.includes(' Flags [') ? 'tcp' : 'udp') as 'udp' | 'tcp',
    src: src!,
    srcPort: Number(sport),
    dst: dst!,
    dstPort: Number(dport),
    id: Number(id),
  };
  const q = QUERY_RE.exec(rest);
  if (q) return { ...base, isResponse: false, qtype: q[1], qname: q[2] };
  const r = RESPONSE_RE.exec(rest);
  if (r) {
    const [, rc, an, , , records = ''] = r;
    const answers =
      Number(an) > 0
        ? records
            .trim()
            .split(/, ?(?=[A-Z]+ )/)
            .filter(Boolean)
        : [];
    return {
      ...base,
      isResponse: true,
      rcode: rc ? (RCODES[rc] ?? rc.toUpperCase()) : 'NOERROR',
      answers,
    };
  }
  return undefined;
}

/** Fills qtype/qname of each response from the latest earlier query it answers. */
export function pairResponses(packets: DnsPacket[]): DnsPacket[] {
  const pending = new Map<string, DnsPacket>();
  const key = (id: number, a: string, ap: number, b: string, bp: number): string =>
    `${id} ${a}.${ap} ${b}.${bp}`;
  return packets.map((p) => {
    if (!p.isResponse) {
      pending.set(key(p.id, p.src, p.srcPort, p.dst, p.dstPort), p);
      return p;
    }
    const query = pending.get(key(p.id, p.dst, p.dstPort, p.src, p.srcPort));
    return query ? { ...p, qtype: query.qtype, qname: query.qname } : p;
  });
}

export function parseTcpdumpOutput(text: string): DnsPacket[] {
  return pairResponses(
    text
      .split('\n')
      .map(parseTcpdumpLine)
      .filter((p): p is DnsPacket => p !== undefined),
  );
}
