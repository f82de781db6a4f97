import { describe, expect, it } from 'vitest';
import { groundTruth } from '../support/dns-truth.js';
import type { DnsPacket } from '../lab/index.js';

const base = {
  family: 4,
  proto: 'udp',
  src: '10.244.0.4',
  dst: '10.96.0.10',
  srcPort: 40000,
  dstPort: 53,
} as const;
const q = (time: number, id: number, qtype: string, srcPort = 40000): DnsPacket => ({
  ...base,
  srcPort,
  time,
  id,
  qtype,
  qname: 'web.team-a.svc.cluster.local.',
  isResponse: false,
});
const r = (time: number, id: number, qtype: string, rcode = 'NOERROR'): DnsPacket => ({
  ...q(time, id, qtype),
  isResponse: true,
  rcode,
});

describe('groundTruth (test support)', () => {
  it('counts glibc stalls the way dnsrace defines its counters', () => {
    const t = groundTruth([
      q(0, 1, 'A'),
      q(0, 2, 'AAAA'),
      r(0.001, 1, 'A'),
      q(5, 1, 'A'), // re-asked after its answer: a new query
      q(5, 2, 'AAAA'), // still unanswered: retransmit
      r(5.001, 1, 'A'),
      q(10, 2, 'AAAA', 40001), // single-request-reopen: new port, same id and name
      r(10.002, 2, 'AAAA', 'NXDOMAIN'),
    ]);
    expect(t.queries).toEqual({ A: 2, AAAA: 1, other: 0 });
    expect(t.retransmits).toEqual({ A: 0, AAAA: 2, other: 0 });
    expect(t.responses).toEqual({ 'A/NOERROR': 2, 'AAAA/NXDOMAIN': 1 });
    expect(t.latencies.find((l) => l.qtype === 'AAAA')?.seconds).toBeCloseTo(10.002, 6);
    expect(t.unanswered).toEqual([]);
  });

  it('reports questions left unanswered', () => {
    const t = groundTruth([q(0, 7, 'AAAA'), q(2.5, 7, 'AAAA')]);
    expect(t.unanswered).toEqual([{ qtype: 'AAAA', qname: 'web.team-a.svc.cluster.local.' }]);
    expect(t.retransmits.AAAA).toBe(1);
  });
});
