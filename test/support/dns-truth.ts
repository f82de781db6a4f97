// Client-side ground truth from a pod's captured DNS packets, counted the way dnsrace
// defines its counters: a query is the first send of a question (pod, id, qtype, name);
// a re-send of a question still unanswered is a retransmit; a re-send after its answer
// is a new query; latency runs from the first send of that question to its answer.
import type { DnsPacket } from '../lab/index.js';

export type QtypeClass = 'A' | 'AAAA' | 'other';

export interface Truth {
  queries: Record<QtypeClass, number>;
  retransmits: Record<QtypeClass, number>;
  /** Keyed by dnsrace's rcode label. */
  responses: Record<string, number>;
  /** Seconds, one per answered question. */
  latencies: { qtype: QtypeClass; seconds: number }[];
  /** Questions never answered in the capture. */
  unanswered: { qtype: QtypeClass; qname: string }[];
}

const qclass = (t: string | undefined): QtypeClass => (t === 'A' || t === 'AAAA' ? t : 'other');
const RCODE_LABELS = new Set(['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED']);

function zero(): Record<QtypeClass, number> {
  return { A: 0, AAAA: 0, other: 0 };
}

export function groundTruth(packets: readonly DnsPacket[]): Truth {
  const t: Truth = {
    queries: zero(),
    retransmits: zero(),
    responses: {},
    latencies: [],
    unanswered: [],
  };
  const open = new Map<string, { first: number; qtype: QtypeClass; qname: string }>();
  const sorted = [...packets].sort((a, b) => a.time - b.time);
  for (const p of sorted) {
    const key = `${p.id}/${p.qtype}/${p.qname?.toLowerCase()}`;
    const qt = qclass(p.qtype);
    if (!p.isResponse) {
      if (open.has(key)) t.retransmits[qt]++;
      else {
        t.queries[qt]++;
        open.set(key, { first: p.time, qtype: qt, qname: p.qname ?? '' });
      }
      continue;
    }
    const q = open.get(key);
    if (!q) continue; // an answer to a question we did not see asked
    open.delete(key);
    const rcode = RCODE_LABELS.has(p.rcode ?? '') ? (p.rcode as string) : 'other';
    t.responses[`${qt}/${rcode}`] = (t.responses[`${qt}/${rcode}`] ?? 0) + 1;
    t.latencies.push({ qtype: qt, seconds: p.time - q.first });
  }
  for (const q of open.values()) t.unanswered.push({ qtype: q.qtype, qname: q.qname });
  return t;
}

export function mergeTruth(all: readonly Truth[]): Truth {
  const out: Truth = {
    queries: zero(),
    retransmits: zero(),
    responses: {},
    latencies: [],
    unanswered: [],
  };
  for (const t of all) {
    for (const k of ['A', 'AAAA', 'other'] as const) {
      out.queries[k] += t.queries[k];
      out.retransmits[k] += t.retransmits[k];
    }
    for (const [k, v] of Object.entries(t.responses))
      out.responses[k] = (out.responses[k] ?? 0) + v;
    out.latencies.push(...t.latencies);
    out.unanswered.push(...t.unanswered);
  }
  return out;
}
