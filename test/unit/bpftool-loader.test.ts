// The parts of the bpftool module and loader that need no root: layout comparison, and the
// commands bpftool runs unprivileged (version, reading an object's BTF, a missing binary).
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Bpftool, BpftoolError } from '../../src/bpf/bpftool.js';
import type { MapInfo, MapSpec } from '../../src/bpf/bpftool-output.js';
import {
  DROP_MAPS,
  dropObjectsBeside,
  dropPinDir,
  failureText,
  layoutDifferences,
  selectDropMode,
  type DropModeAttempt,
} from '../../src/bpf/loader.js';

const DNS_OBJ = fileURLToPath(new URL('../../bpf/dist/dns.bpf.o', import.meta.url));
const DROP_OBJS = dropObjectsBeside(DNS_OBJ);
/** struct dns_stats (bpf/dns.h): queries, retransmits[3], timeouts[3], responses[5], count, sum, latency[89] */
const DNS_STATS_SIZE = 8 * (1 + 3 + 3 + 5 + 2 + 89);

const info = (over: Partial<MapInfo> = {}): MapInfo => ({
  id: 1,
  type: 'hash',
  name: 'dns_stats',
  bytes_key: 16,
  bytes_value: DNS_STATS_SIZE,
  max_entries: 12288,
  ...over,
});
const spec: MapSpec = {
  name: 'dns_stats',
  type: 'hash',
  keySize: 16,
  valueSize: DNS_STATS_SIZE,
  maxEntries: 12288,
};

describe('layoutDifferences', () => {
  it.each<[string, Partial<MapInfo>, string[]]>([
    ['same layout', {}, []],
    ['max_entries alone is no layout change', { max_entries: 4096 }, []],
    [
      'value size',
      { bytes_value: 792 },
      [`value 792 B pinned vs ${DNS_STATS_SIZE} B in the object`],
    ],
    [
      'key size and type',
      { bytes_key: 8, type: 'lru_hash' },
      ['type lru_hash pinned vs hash in the object', 'key 8 B pinned vs 16 B in the object'],
    ],
  ])('%s', (_name, over, want) => {
    expect(layoutDifferences(spec, info(over))).toEqual(want);
  });

  it('skips what the object does not declare', () => {
    expect(layoutDifferences({ name: 'x' }, info({ bytes_value: 1 }))).toEqual([]);
  });
});

describe('Bpftool without root', () => {
  it('reads the version of the installed bpftool', async () => {
    const v = await new Bpftool().version();
    expect(v.version).toMatch(/^\d+\.\d+\.\d+$/);
    await expect(new Bpftool().requireVersion('7.2.0')).resolves.toEqual(v);
  });

  it('logs each command through a pino child { component: "bpftool" }', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    await new Bpftool({ log: pino({ level: 'debug' }, sink) }).version();
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toEqual([
      expect.objectContaining({
        component: 'bpftool',
        cmd: 'bpftool -j version',
        exitCode: 0,
        ms: expect.any(Number),
      }),
    ]);
  });

  it('says how to install bpftool when the binary is missing', async () => {
    const err = await new Bpftool({ binary: 'bpftool-does-not-exist' })
      .version()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BpftoolError);
    expect((err as Error).message).toBe(
      "bpftool not found: 'bpftool-does-not-exist' is not on PATH or does not exist " +
        '(need ≥ 7.2; on Debian 12: apt-get install -t bookworm-backports bpftool)',
    );
    expect((err as Error).cause).toBeDefined();
  });

  it('names the command, exit code, stderr and a hint when bpftool fails', async () => {
    const err = await new Bpftool()
      .objectMapSpecs('/nonexistent/dns.bpf.o')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BpftoolError);
    const e = err as BpftoolError;
    expect(e.command).toBe('bpftool -j btf dump file /nonexistent/dns.bpf.o');
    expect(e.exitCode).toBe(254); // btf dump exits with -errno: -ENOENT
    expect(e.message).toMatch(
      /^bpftool -j btf dump file \/nonexistent\/dns.bpf.o failed \(exit 254\): .*No such file or directory/,
    );
    expect(e.notFound).toBe(true);
  });

  it('reads the maps of bpf/dist/dns.bpf.o from its BTF', async () => {
    expect(existsSync(DNS_OBJ), `${DNS_OBJ} missing: build it with scripts/build-bpf.sh`).toBe(
      true,
    );
    const specs = await new Bpftool().objectMapSpecs(DNS_OBJ);
    expect(specs.map((s) => s.name)).toEqual(
      expect.arrayContaining(['dns_stats', 'dns_pending', 'dns_retry_index', 'dns_health']),
    );
    expect(specs.find((s) => s.name === 'dns_stats')).toMatchObject({
      keySize: 16,
      valueSize: DNS_STATS_SIZE,
    });
    expect(specs.find((s) => s.name === 'dns_pending')).toMatchObject({ valueSize: 176 });
  });

  it('dns.bpf.o declares the drop maps (drops.h), so that they exist in every mode', async () => {
    const specs = await new Bpftool().objectMapSpecs(DNS_OBJ);
    const byName = new Map(specs.map((s) => [s.name, s]));
    expect(DROP_MAPS.map((m) => byName.get(m))).toEqual([
      { name: 'packet_drops', type: 'hash', keySize: 24, valueSize: 8, maxEntries: 8192 },
      { name: 'drop_health', type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: 8 },
      { name: 'dns_client_addrs', type: 'lru_hash', keySize: 16, valueSize: 16, maxEntries: 4096 },
      { name: 'dropped_queries', type: 'lru_hash', keySize: 24, valueSize: 16, maxEntries: 4096 },
    ]);
  });

  it.each([
    ['drops.bpf.o', DROP_OBJS.drops],
    ['conntrack_fexit.bpf.o', DROP_OBJS.fexit],
  ])(
    '%s declares every map it shares with dns.bpf.o exactly as dns.bpf.o does',
    async (_n, obj) => {
      expect(existsSync(obj), `${obj} missing: build it with scripts/build-bpf.sh`).toBe(true);
      const dns = new Map((await new Bpftool().objectMapSpecs(DNS_OBJ)).map((s) => [s.name, s]));
      const specs = await new Bpftool().objectMapSpecs(obj);
      const shared = specs.filter((s) => dns.has(s.name));
      expect(shared.map((s) => s.name).sort()).toEqual([...DROP_MAPS, 'drop_confirm_skb'].sort());
      for (const s of shared) expect(s, s.name).toEqual(dns.get(s.name));
      // The rest is the drop programs' own working memory, shared by the two drop objects.
      expect(specs.filter((s) => !dns.has(s.name)).map((s) => s.name)).toEqual(['drop_scratch']);
    },
  );
});

describe('selectDropMode', () => {
  type Step = 'ok' | 'fail' | 'fatal';
  const run = async (steps: Record<'fexit' | 'tracepoint', Step>) => {
    const log: string[] = [];
    const attempt = (mode: 'fexit' | 'tracepoint'): DropModeAttempt => ({
      mode,
      attach: async () => {
        log.push(`attach ${mode}`);
        if (steps[mode] === 'fatal') throw new RangeError(`${mode} layout`);
        if (steps[mode] === 'fail') throw new Error(`${mode} refused`);
        return { [`${mode}_prog`]: `/pin/${mode}` };
      },
      detach: async () => {
        log.push(`detach ${mode}`);
      },
    });
    const result = await selectDropMode([attempt('fexit'), attempt('tracepoint')], {
      fatal: (e) => e instanceof RangeError,
    }).catch((e: unknown) => e);
    return { result, log };
  };

  it.each<[string, Record<'fexit' | 'tracepoint', Step>, unknown, string[]]>([
    [
      'fexit attaches',
      { fexit: 'ok', tracepoint: 'ok' },
      { mode: 'fexit', fallbacks: [], links: { fexit_prog: '/pin/fexit' } },
      ['attach fexit'],
    ],
    [
      'fexit fails: tracepoint, with the reason',
      { fexit: 'fail', tracepoint: 'ok' },
      {
        mode: 'tracepoint',
        fallbacks: ['fexit: fexit refused'],
        links: { tracepoint_prog: '/pin/tracepoint' },
      },
      ['attach fexit', 'detach fexit', 'attach tracepoint'],
    ],
    [
      'both fail: none, both reasons in order',
      { fexit: 'fail', tracepoint: 'fail' },
      {
        mode: 'none',
        fallbacks: ['fexit: fexit refused', 'tracepoint: tracepoint refused'],
        links: {},
      },
      ['attach fexit', 'detach fexit', 'attach tracepoint', 'detach tracepoint'],
    ],
  ])('%s', async (_name, steps, want, log) => {
    const r = await run(steps);
    expect(r.result).toEqual(want);
    expect(r.log).toEqual(log);
  });

  it('undoes and throws a fatal error instead of falling back', async () => {
    const r = await run({ fexit: 'fatal', tracepoint: 'ok' });
    expect(r.result).toBeInstanceOf(RangeError);
    expect(r.log).toEqual(['attach fexit', 'detach fexit']);
  });
});

describe('failureText', () => {
  const bpftoolError = (errorText: string) =>
    new BpftoolError({
      command: 'bpftool prog loadall x',
      exitCode: 255,
      stderr: errorText,
      errorText,
    });

  it.each([
    [
      'EPERM on this host (fexit refused)',
      bpftoolError(
        "libbpf: prog 'ct_confirm_exit': BPF program load failed: Operation not permitted\n" +
          "libbpf: prog 'ct_confirm_exit': failed to load: -1\n" +
          "libbpf: failed to load object 'conntrack_fexit.bpf.o'\nError: failed to load object file",
      ),
      "libbpf: prog 'ct_confirm_exit': BPF program load failed: Operation not permitted; " +
        "libbpf: prog 'ct_confirm_exit': failed to load: -1; " +
        "libbpf: failed to load object 'conntrack_fexit.bpf.o'; Error: failed to load object file",
    ],
    [
      'a verifier log is left out',
      bpftoolError(
        "libbpf: prog 'p': BPF program load failed: Permission denied\n0: R1=ctx() R10=fp0\n" +
          '; int p(void *ctx) @ x.c:3\n1: (b7) r0 = 0\nprocessed 2 insns\nError: failed to load object file',
      ),
      "libbpf: prog 'p': BPF program load failed: Permission denied; Error: failed to load object file",
    ],
    [
      '5.10: no module BTF for the fexit target',
      bpftoolError(
        "libbpf: prog 'ct_confirm_exit': failed to find kernel BTF type ID of '__nf_conntrack_confirm': -3",
      ),
      "libbpf: prog 'ct_confirm_exit': failed to find kernel BTF type ID of '__nf_conntrack_confirm': -3",
    ],
    [
      'not a bpftool error',
      new Error('drops.bpf.o: no program was pinned'),
      'drops.bpf.o: no program was pinned',
    ],
  ])('%s', (_name, err, want) => {
    expect(failureText(err)).toBe(want);
  });
});

describe('drop object paths', () => {
  it('finds the drop objects beside dns.bpf.o and pins their links under links/<object>', () => {
    expect(dropObjectsBeside('/opt/dnsrace/bpf/dns.bpf.o')).toEqual({
      fexit: '/opt/dnsrace/bpf/conntrack_fexit.bpf.o',
      drops: '/opt/dnsrace/bpf/drops.bpf.o',
    });
    expect(dropPinDir('/sys/fs/bpf/dnsrace', '/x/conntrack_fexit.bpf.o')).toBe(
      '/sys/fs/bpf/dnsrace/links/conntrack_fexit',
    );
    expect(dropPinDir('/sys/fs/bpf/dnsrace', '/x/drops.bpf.o')).toBe(
      '/sys/fs/bpf/dnsrace/links/drops',
    );
  });
});
