// The few DNS wire-format pieces the guest probe needs. Pure.

export const QTYPE_A = 1;
export const QTYPE_AAAA = 28;

/** Wire-format QNAME: length-prefixed labels, then the root label. */
export function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) throw new Error(`bad DNS label '${l}' in ${name}`);
    parts.push(Buffer.from([l.length]), Buffer.from(l, 'ascii'));
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** A standard query (RD set) for name/qtype, class IN. */
export function buildQuery(id: number, name: string, qtype: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // QUERY, RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(1, 2); // IN
  return Buffer.concat([header, encodeName(name), tail]);
}

export interface ResponseHeader {
  id: number;
  isResponse: boolean;
  rcode: number;
  answers: number;
}

export function parseResponseHeader(msg: Buffer): ResponseHeader {
  if (msg.length < 12)
    throw new Error(`DNS message of ${msg.length} bytes is shorter than a header`);
  const flags = msg.readUInt16BE(2);
  return {
    id: msg.readUInt16BE(0),
    isResponse: (flags & 0x8000) !== 0,
    rcode: flags & 0x0f,
    answers: msg.readUInt16BE(6),
  };
}

/**
 * Bit offset of QTYPE from the start of the UDP header, for an nft raw payload match
 * (`@th,<offset>,16`): 8 bytes of UDP header, 12 of DNS header, then the QNAME. nft has no
 * DNS parser; with a fixed query name the QTYPE sits at a fixed offset.
 */
export function qtypeBitOffsetInUdp(name: string): number {
  return (8 + 12 + encodeName(name).length) * 8;
}
