import { isIPv4, isIPv6 } from 'node:net';

/** Minimal DNS wire format for the upstream stand-in: one question in, answers out. */

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
} as const;
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export interface DnsQuestion {
  id: number;
  flags: number;
  /** Lower case, no trailing dot; '' for the root. */
  qname: string;
  qtype: number;
  qclass: number;
  /** Offset just past the first question (header + question bytes are echoed back). */
  questionEnd: number;
}

export function parseQuestion(msg: Buffer): DnsQuestion {
  if (msg.length < 12) throw new Error(`DNS message too short (${msg.length} bytes)`);
  if (msg.readUInt16BE(4) < 1) throw new Error('DNS message without a question');
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off];
    if (len === undefined) throw new Error('DNS question runs past the message');
    if (len === 0) break;
    if (len > 63) throw new Error(`unexpected label byte ${len} in question`);
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += len + 1;
  }
  off += 1;
  if (off + 4 > msg.length) throw new Error('DNS question runs past the message');
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    qname: labels.join('.').toLowerCase(),
    qtype: msg.readUInt16BE(off),
    qclass: msg.readUInt16BE(off + 2),
    questionEnd: off + 4,
  };
}

function rdata(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!isIPv6(address)) throw new Error(`not an IP address: ${address}`);
  const [head = '', tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(parseInt(g, 16), i * 2));
  return buf;
}

/**
 * An answer to `query` (the raw query bytes): same id and question, QR+AA+RA set, RD copied,
 * any EDNS OPT record of the query dropped. Answers point back at the question name.
 */
export function buildResponse(
  query: Buffer,
  q: DnsQuestion,
  rcode: number,
  answers: string[],
  ttl = 30,
): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  const rd = q.flags & 0x0100;
  const opcode = q.flags & 0x7800;
  header.writeUInt16BE(0x8000 | opcode | 0x0400 | rd | 0x0080 | (rcode & 0xf), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const rrs = answers.map((a) => {
    const data = rdata(a);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // compression pointer to the question name at offset 12
    rr.writeUInt16BE(isIPv4(a) ? QTYPE.A : QTYPE.AAAA, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  return Buffer.concat([header, query.subarray(12, q.questionEnd), ...rrs]);
}

/** The upstream's answer policy: known names answer their A/AAAA (NODATA for other types), the rest NXDOMAIN. */
export function answerFor(
  records: Record<string, { a?: string[]; aaaa?: string[] }>,
  q: Pick<DnsQuestion, 'qname' | 'qtype'>,
): { rcode: number; answers: string[] } {
  const rec = records[q.qname];
  if (!rec) return { rcode: RCODE.NXDOMAIN, answers: [] };
  if (q.qtype === QTYPE.A) return { rcode: RCODE.NOERROR, answers: rec.a ?? [] };
  if (q.qtype === QTYPE.AAAA) return { rcode: RCODE.NOERROR, answers: rec.aaaa ?? [] };
  return { rcode: RCODE.NOERROR, answers: [] };
}
