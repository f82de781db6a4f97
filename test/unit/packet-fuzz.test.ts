import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseOutcome, type DnsKey, type ParseOutcome } from '../support/dns-parse-oracle.js';
import {
  CLASS_NAMES,
  Rng,
  parserRobustnessClasses,
  type PacketClass,
} from '../support/packet-fuzz.js';
import {
  PairingCollision,
  PairingModel,
  expectationOf,
  keyString,
} from '../support/pairing-model.js';

const digest = (classes: PacketClass[]) => {
  const h = createHash('sha256');
  for (const c of classes) for (const r of c.runs) h.update(r.prog).update(r.packet);
  return h.digest('hex');
};

// A tenth of every class: the same code paths as the e2e run, in a fraction of the time.
const SMALL = parserRobustnessClasses({ seed: 10, scale: 0.1 });

describe('packet-fuzz (test support): the seeded packet classes', () => {
  it('gives the same packets for the same seed and others for another', () => {
    expect(digest(parserRobustnessClasses({ seed: 10, scale: 0.1 }))).toBe(digest(SMALL));
    expect(digest(parserRobustnessClasses({ seed: 11, scale: 0.1 }))).not.toBe(digest(SMALL));
  });

  it('keeps a class the same when the others change', () => {
    const alone = parserRobustnessClasses({ seed: 10, scale: 0.1, only: ['random-garbage'] });
    expect(digest(alone)).toBe(digest(SMALL.filter((c) => c.name === 'random-garbage')));
  });

  it('has every class, each sized by the scale, with six control pairs', () => {
    expect(SMALL.map((c) => c.name)).toEqual(CLASS_NAMES);
    for (const c of SMALL) {
      const controls = c.runs.filter((r) => r.control);
      expect(
        controls.map((r) => r.outcome.kind),
        c.name,
      ).toEqual(expect.arrayContaining(['query', 'answer']));
      expect(controls, c.name).toHaveLength(12);
      expect(c.runs.length - 12, c.name).toBeGreaterThan(0);
    }
  });

  it('puts every control query before its answer, and the answer pairs it', () => {
    for (const c of SMALL) {
      const seen = new Set<string>();
      for (const r of c.runs.filter((x) => x.control)) {
        const o = r.outcome as Extract<ParseOutcome, { key: DnsKey }>;
        if (o.kind === 'query') seen.add(keyString(o.key));
        else expect(seen.has(keyString(o.key)), `${c.name}: answer before its query`).toBe(true);
      }
      const e = expectationOf(c.runs.filter((r) => r.control).map((r) => r.outcome));
      expect(e.pending, c.name).toEqual([]);
      expect(e.health.unmatched_answers, c.name).toBe(0);
    }
  });

  it('records for every packet the outcome the oracle gives it', () => {
    const differing = SMALL.flatMap((c) =>
      c.runs.flatMap((r) => {
        const o = parseOutcome(r.packet, r.prog === 'dns_egress' ? 'egress' : 'ingress');
        const same = JSON.stringify(o) === JSON.stringify(r.outcome);
        return same ? [] : [`${c.name}: ${r.packet.toString('hex')}`];
      }),
    );
    expect(differing).toEqual([]);
  });

  it('makes packets BPF_PROG_TEST_RUN takes (at most 1500 bytes behind the Ethernet header)', () => {
    for (const c of SMALL) {
      expect(Math.max(...c.runs.map((r) => r.packet.length)), c.name).toBeLessThanOrEqual(1500);
    }
  });

  it('lets no generated query collide with another on the retry index', () => {
    for (const c of SMALL) expect(() => expectationOf(c.runs.map((r) => r.outcome))).not.toThrow();
  });
});

describe('Rng (test support)', () => {
  it('draws integers within bounds, the same sequence for the same seed', () => {
    const a = new Rng(1);
    const draws = Array.from({ length: 1000 }, () => a.int(3, 5));
    expect(new Set(draws)).toEqual(new Set([3, 4, 5]));
    const b = new Rng(1);
    expect(Array.from({ length: 1000 }, () => b.int(3, 5))).toEqual(draws);
  });
});

describe('PairingModel (test support)', () => {
  const key = (o: Partial<DnsKey> = {}): DnsKey => ({
    role: 'client',
    proto: 'udp',
    peer: '00'.repeat(16),
    port: 40000,
    id: 1,
    qtype: 1,
    ...o,
  });
  const q = (k: DnsKey, name = 'aa'): ParseOutcome => ({
    kind: 'query',
    why: 'query',
    key: k,
    name: Buffer.from(name, 'hex'),
  });
  const a = (k: DnsKey, rcode = 0): ParseOutcome => ({
    kind: 'answer',
    why: 'answer',
    key: k,
    rcode,
  });

  it('pairs an answer with its query, by rcode class; retransmits and unmatched answers apart', () => {
    const e = expectationOf([
      q(key()),
      q(key()), // same key again: a retransmit
      a(key(), 3),
      a(key()), // duplicate: unmatched
      q(key({ id: 2, qtype: 28 }), 'bb'),
      { kind: 'error', counter: 'parse_truncated', dnsPacket: true, why: 'name-truncated' },
      { kind: 'error', counter: 'parse_fragment', dnsPacket: false, why: 'ipv4-fragment' },
      { kind: 'dns-only', why: 'opcode-not-query' },
      { kind: 'ignored', why: 'not-port-53' },
    ]);
    expect(e.health).toMatchObject({
      dns_packets: 7,
      unmatched_answers: 1,
      parse_truncated: 1,
      parse_fragment: 1,
    });
    expect(e.rows).toEqual({
      'client/A': {
        queries: 1,
        retransmits: [1, 0, 0],
        timeouts: [0, 0, 0],
        responses: [0, 1, 0, 0, 0],
        latencyCount: 1,
        latencySlotsTotal: 1,
      },
      'client/AAAA': expect.objectContaining({ queries: 1, latencyCount: 0 }),
    });
    expect(e.pending).toEqual([
      'client/udp/00000000000000000000000000000000/40000/2/28 retransmits=0 qname_len=1 truncated=0 qname=bb',
    ]);
  });

  it('keeps the first 128 bytes of a longer name, flagged', () => {
    const long = 'ab'.repeat(200);
    expect(expectationOf([q(key(), long)]).pending[0]).toMatch(
      new RegExp(`qname_len=128 truncated=1 qname=${'ab'.repeat(128)}$`),
    );
  });

  it('refuses a query that the retry index would take for a re-send from a new socket', () => {
    const m = new PairingModel();
    m.apply(q(key()));
    const retry = q(key({ port: 40001 }));
    expect(m.collides(retry)).toBe(true);
    expect(() => m.apply(retry)).toThrow(PairingCollision);
    expect(m.collides(q(key({ port: 40001 }), 'cc'))).toBe(false);
  });
});
