// The parts of the bpftool module and loader that need no root: layout comparison, and the
// commands bpftool runs unprivileged (version, reading an object's BTF, a missing binary).
import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Bpftool, BpftoolError } from '../../src/bpf/bpftool.js';
import type { MapInfo, MapSpec } from '../../src/bpf/bpftool-output.js';
import { layoutDifferences } from '../../src/bpf/loader.js';

const DNS_OBJ = fileURLToPath(new URL('../../bpf/dist/dns.bpf.o', import.meta.url));

const info = (over: Partial<MapInfo> = {}): MapInfo => ({
  id: 1,
  type: 'hash',
  name: 'dns_stats',
  bytes_key: 16,
  bytes_value: 792,
  max_entries: 12288,
  ...over,
});
const spec: MapSpec = {
  name: 'dns_stats',
  type: 'hash',
  keySize: 16,
  valueSize: 792,
  maxEntries: 12288,
};

describe('layoutDifferences', () => {
  it.each<[string, Partial<MapInfo>, string[]]>([
    ['same layout', {}, []],
    ['max_entries alone is no layout change', { max_entries: 4096 }, []],
    ['value size', { bytes_value: 800 }, ['value 800 B pinned vs 792 B in the object']],
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
      valueSize: 792,
    });
  });
});
