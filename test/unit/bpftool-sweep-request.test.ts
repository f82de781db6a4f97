// Encoding of dns_sweep_timeouts' data_in (bpf/dns.h), checked against the header and the
// object's recorded BTF so that a change of struct pending_key cannot go unnoticed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBtfStruct } from '../../src/bpf/bpftool-output.js';
import { parseMapDumpPlain } from '../../src/bpf/bpftool-output.js';
import {
  decodePendingKey,
  encodePendingKey,
  encodeSweepRequests,
  ETH_HLEN,
  PENDING_KEY_LAYOUT,
  PENDING_KEY_SIZE,
  pendingKeyFromDump,
  SWEEP_MAX_KEYS,
  SWEEP_REQUEST_SIZE,
  type PendingKey,
} from '../../src/bpf/sweep-request.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/bpftool/${name}`, import.meta.url), 'utf8');
const dnsH = readFileSync(new URL('../../bpf/dns.h', import.meta.url), 'utf8');

const v4mapped = (a: number, b: number, c: number, d: number) =>
  Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]);

const key = (over: Partial<PendingKey> = {}): PendingKey => ({
  cgroupId: 0x1122334455667788n,
  peer: v4mapped(10, 244, 0, 7),
  port: 0xabcd,
  id: 0x1234,
  qtype: 28,
  role: 1,
  proto: 0,
  ...over,
});

describe('struct pending_key', () => {
  it('encodes 32 bytes, little-endian, in the order of dns.h', () => {
    expect(encodePendingKey(key()).toString('hex')).toBe(
      [
        '8877665544332211', // cgroup_id
        '00000000000000000000ffff0af40007', // peer ::ffff:10.244.0.7
        'cdab', // port
        '3412', // id
        '1c00', // qtype 28 (AAAA)
        '01', // role server
        '00', // proto UDP
      ].join(''),
    );
  });

  it.each([
    ['u64 max cgroup id', key({ cgroupId: 2n ** 64n - 1n })],
    ['zero peer, client side', key({ peer: new Uint8Array(16), role: 0, proto: 1 })],
    ['max u16 fields', key({ port: 65535, id: 65535, qtype: 65535 })],
  ])('round-trips %s', (_name, k) => {
    expect(decodePendingKey(encodePendingKey(k))).toEqual(k);
  });

  it.each([
    [{ cgroupId: -1n }, /cgroup_id/],
    [{ cgroupId: 2n ** 64n }, /cgroup_id/],
    [{ peer: new Uint8Array(4) }, /peer must be 16 bytes/],
    [{ port: 65536 }, /port 65536 is out of range/],
    [{ id: -1 }, /id -1/],
    [{ qtype: 1.5 }, /qtype/],
    [{ role: 256 }, /role/],
  ])('rejects %o', (over, error) => {
    expect(() => encodePendingKey(key(over as Partial<PendingKey>))).toThrow(error);
  });

  it('has the layout of the compiled object (recorded BTF)', () => {
    const btf = parseBtfStruct(fixture('btf-dump-dns.json'), 'pending_key');
    expect(btf?.size).toBe(PENDING_KEY_SIZE);
    expect(btf?.members).toEqual(PENDING_KEY_LAYOUT);
    const req = parseBtfStruct(fixture('btf-dump-dns.json'), 'sweep_request');
    if (req) expect(req.size).toBe(SWEEP_REQUEST_SIZE); // only in BTF if the program names the type
  });

  it('reads a key from a recorded dns_pending dump and encodes it back to the same struct', () => {
    const rows = parseMapDumpPlain(fixture('map-dump-plain-pending.txt'));
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      const k = pendingKeyFromDump(r.key);
      expect(decodePendingKey(encodePendingKey(k))).toEqual(k);
      expect(k.cgroupId).toBeGreaterThan(0n);
    }
  });

  it.each([
    [null, /expected an object/],
    [
      { cgroup_id: 1, peer: [1, 2], port: 1, id: 1, qtype: 1, role: 0, proto: 0 },
      /peer: expected 16 numbers/,
    ],
    [{ cgroup_id: 'x', peer: [], port: 1 }, /cgroup_id/],
  ])('pendingKeyFromDump rejects %j', (k, error) => {
    expect(() => pendingKeyFromDump(k as never)).toThrow(error);
  });
});

describe('sweep requests', () => {
  it('uses the constants of dns.h', () => {
    expect(dnsH).toMatch(new RegExp(`#define SWEEP_MAX_KEYS ${SWEEP_MAX_KEYS}\\b`));
    expect(dnsH).toMatch(
      /struct sweep_request \{\s*__u64 deadline_ns;\s*__u32 count;\s*__u32 pad;\s*\};/,
    );
  });

  it('lays out Ethernet header, request header and keys', () => {
    const [buf, ...more] = encodeSweepRequests([key(), key({ id: 7 })], 5_000_000_000n);
    expect(more).toEqual([]);
    expect(buf).toHaveLength(ETH_HLEN + SWEEP_REQUEST_SIZE + 2 * PENDING_KEY_SIZE);
    expect(buf!.subarray(0, ETH_HLEN)).toEqual(Buffer.alloc(ETH_HLEN));
    expect(buf!.readBigUInt64LE(ETH_HLEN)).toBe(5_000_000_000n);
    expect(buf!.readUInt32LE(ETH_HLEN + 8)).toBe(2);
    expect(buf!.readUInt32LE(ETH_HLEN + 12)).toBe(0);
    expect(decodePendingKey(buf!, ETH_HLEN + SWEEP_REQUEST_SIZE + PENDING_KEY_SIZE).id).toBe(7);
  });

  it.each([
    [0, []],
    [1, [1]],
    [64, [64]],
    [65, [64, 1]],
    [200, [64, 64, 64, 8]],
  ])('splits %d keys into runs of at most SWEEP_MAX_KEYS: %j', (n, counts) => {
    const keys = Array.from({ length: n }, (_, i) => key({ id: i % 65536 }));
    const bufs = encodeSweepRequests(keys, 1n);
    expect(bufs.map((b) => b.readUInt32LE(ETH_HLEN + 8))).toEqual(counts);
    const ids = bufs.flatMap((b) =>
      Array.from(
        { length: b.readUInt32LE(ETH_HLEN + 8) },
        (_, i) => decodePendingKey(b, ETH_HLEN + SWEEP_REQUEST_SIZE + i * PENDING_KEY_SIZE).id,
      ),
    );
    expect(ids).toEqual(keys.map((k) => k.id));
  });

  it('rejects a deadline that is not a u64', () => {
    expect(() => encodeSweepRequests([key()], -1n)).toThrow(/deadline_ns/);
  });
});
