import { describe, expect, it } from 'vitest';
import { decodeClientAddrs, decodePacketDrop } from '../../src/drops/drop-rows.js';
import { aggregateDrops } from '../../src/drops/aggregate.js';
import { AddressBook } from '../../src/drops/address-book.js';
import { PodSeriesBudget } from '../../src/dns/pod-budget.js';

const v4 = (d: number) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 244, 0, d];
const row = (d: number, over: Record<string, number> = {}, value = 1) => ({
  key: {
    pod_addr: v4(d),
    proto: 17,
    port_class: 1,
    qtype: 1,
    reason: 0,
    direction: 0,
    pad: [0, 0, 0],
    ...over,
  },
  value,
});

describe('drop maps', () => {
  it.each([
    [
      row(4),
      {
        podAddr: '10.244.0.4',
        protocol: 'udp',
        portClass: 'dns',
        qtype: 'AAAA',
        reason: 'netfilter_drop',
        direction: 'from_pod',
      },
    ],
    [
      row(5, { proto: 6, port_class: 0, qtype: 3, reason: 1 }),
      { protocol: 'tcp', portClass: 'other', qtype: undefined, reason: 'conntrack_insert_failed' },
    ],
    [row(6, { reason: 2, direction: 1, qtype: 3 }), { reason: 'no_socket', direction: 'to_pod' }],
    [row(7, { proto: 1, reason: 9 }), { protocol: 'other', reason: 'other' }],
  ])('decodes packet_drops row %#', (entry, want) =>
    expect(decodePacketDrop(entry)).toMatchObject(want),
  );

  it('decodes dns_client_addrs, and names what is malformed', () => {
    const m = decodeClientAddrs([{ key: v4(4), value: { cgroup_id: 99, last_seen_ns: 1 } }]);
    expect(m.get('10.244.0.4')).toBe(99n);
    expect(() => decodeClientAddrs([{ key: [1, 2], value: { cgroup_id: 1 } }])).toThrow(/16 bytes/);
    expect(() => decodePacketDrop({ key: {}, value: 1 })).toThrow(/proto/);
  });

  it('attributes drops to pods by address and splits DNS queries and answers', () => {
    const book = new AddressBook();
    book.learn(
      new Map([
        ['10.244.0.4', 1n],
        ['10.244.0.5', 2n],
      ]),
      (id) =>
        id === 1n ? { namespace: 'team-c', pod: 'stall' } : { namespace: 'team-a', pod: 'web' },
    );
    const rows = [
      row(4, {}, 3),
      row(4, { proto: 6, port_class: 0, qtype: 3 }, 2),
      row(5, { reason: 2, direction: 1, qtype: 3 }, 1),
      row(9, {}, 1), // an address no pod used: _unknown
    ].map(decodePacketDrop);
    const agg = aggregateDrops(rows, (a) => book.podOf(a), new PodSeriesBudget(10));
    const nf = [...agg.netfilter.values()];
    expect(nf).toContainEqual({
      labels: {
        namespace: 'team-c',
        pod: 'stall',
        protocol: 'udp',
        port_class: 'dns',
        reason: 'netfilter_drop',
      },
      value: 3,
    });
    expect(nf).toContainEqual({
      labels: {
        namespace: 'team-c',
        pod: 'stall',
        protocol: 'tcp',
        port_class: 'other',
        reason: 'netfilter_drop',
      },
      value: 2,
    });
    expect(nf).toContainEqual({
      labels: {
        namespace: '_unknown',
        pod: '_unknown',
        protocol: 'udp',
        port_class: 'dns',
        reason: 'netfilter_drop',
      },
      value: 1,
    });
    expect([...agg.dnsQueries.values()]).toContainEqual({
      labels: { namespace: 'team-c', qtype: 'AAAA', reason: 'netfilter_drop' },
      value: 3,
    });
    expect([...agg.dnsAnswers.values()]).toEqual([
      { labels: { namespace: 'team-a', reason: 'no_socket' }, value: 1 },
    ]);
  });

  it('keeps an address named after the kernel forgot it, and stays bounded', () => {
    const book = new AddressBook(2);
    book.learn(new Map([['10.0.0.1', 1n]]), () => ({ namespace: 'a', pod: 'p1' }));
    book.learn(new Map(), () => ({ namespace: 'x', pod: 'x' }));
    expect(book.podOf('10.0.0.1')).toEqual({ namespace: 'a', pod: 'p1' });
    book.learn(
      new Map([
        ['10.0.0.2', 2n],
        ['10.0.0.3', 3n],
      ]),
      (id) => ({ namespace: 'b', pod: `p${id}` }),
    );
    expect(book.size).toBe(2);
    expect(book.podOf('10.0.0.1')).toEqual({ namespace: '_unknown', pod: '_unknown' });
    expect(book.podOf('10.0.0.3')).toEqual({ namespace: 'b', pod: 'p3' });
  });
});

describe('AddressBook.retire', () => {
  it('moves a retired pod’s addresses to pod _retired, and a new owner takes an address back', () => {
    const book = new AddressBook();
    book.learn(new Map([['10.0.0.1', 1n]]), () => ({ namespace: 'a', pod: 'p1' }));
    book.retire('a', 'p1', '_retired');
    expect(book.podOf('10.0.0.1')).toEqual({ namespace: 'a', pod: '_retired' });
    book.learn(new Map([['10.0.0.1', 2n]]), () => ({ namespace: 'b', pod: 'p2' }));
    expect(book.podOf('10.0.0.1')).toEqual({ namespace: 'b', pod: 'p2' });
  });
});
