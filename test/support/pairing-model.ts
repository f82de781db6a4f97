// What a sequence of packets leaves in the maps of a freshly loaded dns.bpf.o: the dns_health
// counters, the dns_stats rows and the dns_pending entries, as bpf/dns.h documents them. A
// query inserts its pending key (the same key again is a retransmit), an answer ends the
// query with its key (or is unmatched), a parse error bumps its counter and nothing else.
// Re-sends of a question from a new socket (the retry index) are not modelled: a query that
// would take that path throws PairingCollision, and the generator picks another packet. Pure.
import { HEALTH_COUNTERS, type HealthCounter } from '../../src/bpf/dns-health.js';
import type { DnsKey, ParseOutcome, Role } from './dns-parse-oracle.js';

export const QNAME_LEN = 128; // bytes of the name kept in the pending value (dns.h)
export const MAX_PENDING = 16384;
const CAUSE_CLASSES = 3;
const RCODE_CLASSES = 5;

export type QtypeClass = 'A' | 'AAAA' | 'other';
export type RowName = `${Role}/${QtypeClass}`;

/** A dns_stats row, latency slots summed (which slot is the clock's business). */
export interface RowExpectation {
  queries: number;
  retransmits: number[];
  timeouts: number[];
  responses: number[];
  latencyCount: number;
  latencySlotsTotal: number;
}

/** A dns_pending entry, as one comparable line (see pendingLine). */
export type PendingLine = string;

export interface MapExpectation {
  health: Record<HealthCounter, number>;
  rows: Partial<Record<RowName, RowExpectation>>;
  /** sorted */
  pending: PendingLine[];
}

export class PairingCollision extends Error {
  override name = 'PairingCollision';
}

export function qtypeClass(qtype: number): QtypeClass {
  return qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : 'other';
}

/** enum rcode_class: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, other. */
export function rcodeClass(rcode: number): number {
  return ({ 0: 0, 3: 1, 2: 2, 5: 3 } as Record<number, number>)[rcode] ?? 4;
}

export function keyString(k: DnsKey): string {
  return `${k.role}/${k.proto}/${k.peer}/${k.port}/${k.id}/${k.qtype}`;
}

/** One pending entry, the way the test prints what it dumped. */
export function pendingLine(
  key: DnsKey,
  v: { retransmits: number; qnameLen: number; qnameTruncated: boolean; qname: string },
): PendingLine {
  return (
    `${keyString(key)} retransmits=${v.retransmits} qname_len=${v.qnameLen}` +
    ` truncated=${v.qnameTruncated ? 1 : 0} qname=${v.qname}`
  );
}

export function zeroHealth(): Record<HealthCounter, number> {
  return Object.fromEntries(HEALTH_COUNTERS.map((c) => [c, 0])) as Record<HealthCounter, number>;
}

function zeroRow(): RowExpectation {
  return {
    queries: 0,
    retransmits: Array<number>(CAUSE_CLASSES).fill(0),
    timeouts: Array<number>(CAUSE_CLASSES).fill(0),
    responses: Array<number>(RCODE_CLASSES).fill(0),
    latencyCount: 0,
    latencySlotsTotal: 0,
  };
}

interface Pending {
  key: DnsKey;
  retryKey: string;
  retransmits: number;
  name: Buffer;
}

export class PairingModel {
  private readonly health = zeroHealth();
  private readonly rows = new Map<RowName, RowExpectation>();
  private readonly pending = new Map<string, Pending>();
  /** retry key (role, id, qtype, name) -> pending key */
  private readonly retryIndex = new Map<string, string>();

  /** Would apply() throw for this outcome? */
  collides(o: ParseOutcome): boolean {
    if (o.kind !== 'query') return false;
    const k = keyString(o.key);
    if (this.pending.has(k)) return false;
    return this.retryIndex.has(retryKey(o.key, o.name)) || this.pending.size >= MAX_PENDING;
  }

  apply(o: ParseOutcome): void {
    switch (o.kind) {
      case 'ignored':
        return;
      case 'error':
        if (o.dnsPacket) this.health.dns_packets++;
        this.health[o.counter]++;
        return;
      case 'dns-only':
        this.health.dns_packets++;
        return;
      case 'query':
        return this.query(o.key, o.name);
      case 'answer':
        return this.answer(o.key, o.rcode);
    }
  }

  private row(k: DnsKey): RowExpectation {
    const name: RowName = `${k.role}/${qtypeClass(k.qtype)}`;
    let r = this.rows.get(name);
    if (!r) this.rows.set(name, (r = zeroRow()));
    return r;
  }

  private query(key: DnsKey, name: Buffer): void {
    const k = keyString(key);
    const p = this.pending.get(k);
    if (p) {
      // same socket, same id and question, unanswered: a retransmit (no drop seen: cause 0)
      this.health.dns_packets++;
      p.retransmits++;
      this.row(key).retransmits[0]!++;
      return;
    }
    const rk = retryKey(key, name);
    if (this.retryIndex.has(rk)) {
      throw new PairingCollision(
        `query ${k} would be taken for a retry of ${this.retryIndex.get(rk)}`,
      );
    }
    if (this.pending.size >= MAX_PENDING) {
      throw new PairingCollision(`dns_pending would be full (${MAX_PENDING})`);
    }
    this.health.dns_packets++;
    this.pending.set(k, { key, retryKey: rk, retransmits: 0, name });
    this.retryIndex.set(rk, k);
    this.row(key).queries++;
  }

  private answer(key: DnsKey, rcode: number): void {
    this.health.dns_packets++;
    const k = keyString(key);
    const p = this.pending.get(k);
    if (!p) {
      this.health.unmatched_answers++;
      return;
    }
    this.pending.delete(k);
    if (this.retryIndex.get(p.retryKey) === k) this.retryIndex.delete(p.retryKey);
    const r = this.row(key);
    r.responses[rcodeClass(rcode)]!++;
    r.latencyCount++;
    r.latencySlotsTotal++;
  }

  expectation(): MapExpectation {
    const rows: Partial<Record<RowName, RowExpectation>> = {};
    for (const [name, r] of [...this.rows].sort(([a], [b]) => a.localeCompare(b))) {
      rows[name] = structuredClone(r);
    }
    const pending = [...this.pending.values()]
      .map((p) => {
        const kept = p.name.subarray(0, QNAME_LEN);
        return pendingLine(p.key, {
          retransmits: p.retransmits,
          qnameLen: kept.length,
          qnameTruncated: p.name.length > QNAME_LEN,
          qname: kept.toString('hex'),
        });
      })
      .sort();
    return { health: { ...this.health }, rows, pending };
  }
}

/** struct retry_key without the cgroup: the name stands for its hash. */
function retryKey(k: DnsKey, name: Buffer): string {
  return `${k.role}/${k.id}/${k.qtype}/${name.toString('hex')}`;
}

/** The maps after these outcomes, from freshly loaded maps. */
export function expectationOf(outcomes: Iterable<ParseOutcome>): MapExpectation {
  const m = new PairingModel();
  for (const o of outcomes) m.apply(o);
  return m.expectation();
}
