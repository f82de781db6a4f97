// The loader and the bpftool module against the real kernel: a scratch cgroup under the
// cgroup2 mount and a scratch bpffs dir, both removed again in afterAll (also on failure).
import { existsSync, readdirSync, statfsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Bpftool,
  BpftoolBatchError,
  BpftoolError,
  mapUpdateArgs,
  type LoggerLike,
} from '../../src/bpf/bpftool.js';
import { MapReader } from '../../src/bpf/map-reader.js';
import type { JsonObject } from '../../src/bpf/bpftool-output.js';
import {
  DROP_MAPS,
  DnsProgramLoader,
  MapLayoutMismatchError,
  attachDropAttribution,
  dropObjectsBeside,
} from '../../src/bpf/loader.js';
import { encodePendingKey, type PendingKey } from '../../src/bpf/sweep-request.js';

const DNS_OBJ =
  process.env.TMP_DEV_OBJ ?? fileURLToPath(new URL('../../bpf/dist/dns.bpf.o', import.meta.url));
const CGROUP2_ROOT = '/sys/fs/cgroup/unified';
const BPFFS_ROOT = '/sys/fs/bpf';
const HEALTH_SWEEP_RUNS = 10; // enum health_counter in bpf/dns.h
const HEALTH_UNUSED = 15; // slots 11..15 are not used by the program
/** struct dns_stats (bpf/dns.h): queries, retransmits[3], timeouts[3], responses[5], count, sum, latency[89] */
const DNS_STATS_SIZE = 8 * (1 + 3 + 3 + 5 + 2 + 89);
const PENDING_VAL_SIZE = 176;
const DROP_OBJS = dropObjectsBeside(DNS_OBJ);

const suffix = randomBytes(4).toString('hex');
const cgroupDir = `${CGROUP2_ROOT}/dnsrace-test-${suffix}`;
const bpffsDir = `${BPFFS_ROOT}/dnsrace-test-${suffix}`;
const otherBpffsDir = `${BPFFS_ROOT}/dnsrace-test-${suffix}x`;

/** Records every bpftool command line the module runs (it logs each at debug). */
const commands: string[] = [];
const log: LoggerLike = {
  debug: (o: object) => {
    const cmd = (o as { cmd?: string }).cmd;
    if (cmd) commands.push(cmd);
  },
  info: () => {},
  warn: () => {},
};
const bpftool = new Bpftool({ log });
const loader = () => new DnsProgramLoader({ bpftool, objPath: DNS_OBJ, cgroupDir, bpffsDir });

function le64(...values: bigint[]): Buffer {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => b.writeBigUInt64LE(v, 8 * i));
  return b;
}

function statsKey(cgroupId: bigint, role: number, qtypeClass: number): Buffer {
  const k = Buffer.alloc(16);
  k.writeBigUInt64LE(cgroupId, 0);
  k[8] = role;
  k[9] = qtypeClass;
  return k;
}

/** struct pending_val with the given last_ts_ns (dns.h: first_ts, last_ts, ...). */
function pendingVal(lastTsNs: bigint): Buffer {
  const v = Buffer.alloc(PENDING_VAL_SIZE);
  v.writeBigUInt64LE(lastTsNs, 0);
  v.writeBigUInt64LE(lastTsNs, 8);
  return v;
}

/** Ids of every BPF link on the host (other tests may add theirs). */
async function allLinkIds(): Promise<number[]> {
  return (await bpftool.linkShow()).map((l) => l.id);
}

async function ourAttachments() {
  return (await bpftool.cgroupShow(cgroupDir)).map((a) => `${a.name}:${a.attach_type}`).sort();
}

async function healthSlot(mapPin: string, slot: number): Promise<number> {
  const rows = await bpftool.mapDump(mapPin, { perCpu: 'sum' });
  return Number(rows.find((r) => r.key === slot)?.value ?? NaN);
}

async function statsRow(mapPin: string, cgroupId: bigint): Promise<JsonObject | undefined> {
  const rows = await bpftool.mapDump(mapPin);
  const row = rows.find(
    (r) => BigInt((r.key as JsonObject).cgroup_id as number | bigint) === cgroupId,
  );
  return row?.value as JsonObject | undefined;
}

async function removeEverything(): Promise<void> {
  if (existsSync(cgroupDir)) {
    for (const a of await bpftool.cgroupShow(cgroupDir).catch(() => [])) {
      await bpftool.cgroupDetach(cgroupDir, a.attach_type, { id: a.id }).catch(() => {});
    }
    await rmdir(cgroupDir).catch(() => {});
  }
  await rm(bpffsDir, { recursive: true, force: true });
  await rm(otherBpffsDir, { recursive: true, force: true });
}

beforeAll(async () => {
  expect(process.getuid?.(), 'the bpftool e2e test needs root (CAP_BPF, CAP_NET_ADMIN)').toBe(0);
  await bpftool.requireVersion('7.2.0');
  expect(statfsSync(BPFFS_ROOT).type, `bpffs is not mounted: mount -t bpf bpf ${BPFFS_ROOT}`).toBe(
    0xcafe4a11,
  );
  expect(statfsSync(CGROUP2_ROOT).type, `no cgroup2 mount at ${CGROUP2_ROOT}`).toBe(0x63677270);
  expect(existsSync(DNS_OBJ), `${DNS_OBJ} is missing: build it with scripts/build-bpf.sh`).toBe(
    true,
  );
  await mkdir(cgroupDir);
});

afterAll(async () => {
  await removeEverything();
  expect(existsSync(cgroupDir)).toBe(false);
  expect(existsSync(bpffsDir)).toBe(false);
});

describe('DnsProgramLoader', () => {
  const firstMapIds: Record<string, number> = {};
  let firstProgIds: number[] = [];
  let firstLinkId = 0;
  const cgId = 0x5eed0000n + BigInt(parseInt(suffix.slice(0, 4), 16));

  it('start: pins maps and programs and attaches dns_egress and dns_ingress once', async () => {
    const loaded = await loader().start();
    expect(await ourAttachments()).toEqual([
      'dns_egress:cgroup_inet_egress',
      'dns_ingress:cgroup_inet_ingress',
    ]);
    expect(loaded.reusedMaps).toEqual([]);
    for (const m of ['dns_stats', 'dns_pending', 'dns_retry_index', 'dns_health']) {
      expect(loaded.maps[m]).toBe(`${bpffsDir}/maps/${m}`);
      firstMapIds[m] = (await bpftool.mapShow(loaded.maps[m]!)).id;
    }
    expect(Object.keys(loaded.programs).sort()).toEqual([
      'dns_egress',
      'dns_ingress',
      'dns_sweep_timeouts',
    ]);
    expect(await bpftool.isLinkPin(loaded.programs.dns_egress!)).toBe(false); // cgroup_skb: a program pin
    firstProgIds = (await bpftool.cgroupShow(cgroupDir)).map((a) => a.id).sort();
    expect(readdirSync(bpffsDir).sort()).toEqual(['iters', 'links', 'maps', 'progs']); // no staging dir left

    // This host refuses fexit (EPERM): the kfree_skb raw tracepoint alone.
    const drops = loaded.dropAttribution;
    expect(drops.mode).toBe('tracepoint');
    expect(drops.fallbacks).toHaveLength(1);
    expect(drops.fallbacks[0]).toMatch(
      /^fexit: conntrack_fexit\.bpf\.o: libbpf: prog 'ct_confirm_exit': BPF program load failed: Operation not permitted/,
    );
    expect(drops.links).toEqual({ drops_kfree_skb: `${bpffsDir}/links/drops/drops_kfree_skb` });
    expect(await bpftool.isLinkPin(drops.links.drops_kfree_skb!)).toBe(true);
    const link = await bpftool.linkShow(drops.links.drops_kfree_skb!);
    expect(link).toMatchObject({ type: 'raw_tracepoint', tp_name: 'kfree_skb' });
    firstLinkId = link.id;
    for (const m of [...DROP_MAPS, 'drop_scratch']) {
      expect(loaded.maps[m]).toBe(`${bpffsDir}/maps/${m}`);
      firstMapIds[m] = (await bpftool.mapShow(loaded.maps[m]!)).id;
    }
    // The tracepoint program uses the maps dns.bpf.o pinned, not copies.
    const prog = await bpftool.progShow({ id: Number(link.prog_id) });
    expect(prog.map_ids).toEqual(expect.arrayContaining(DROP_MAPS.map((m) => firstMapIds[m])));
  });

  it('start after a crash (no stop): still attached once, maps reused with their contents', async () => {
    await bpftool.mapUpdate(
      `${bpffsDir}/maps/dns_health`,
      le64(BigInt(HEALTH_UNUSED)).subarray(0, 4),
      le64(42n),
    );
    await bpftool.mapUpdate(
      `${bpffsDir}/maps/dns_stats`,
      statsKey(cgId, 0, 0),
      Buffer.alloc(DNS_STATS_SIZE),
      'noexist',
    );

    const loaded = await loader().start(); // a new process would build a new loader
    expect(await ourAttachments()).toEqual([
      'dns_egress:cgroup_inet_egress',
      'dns_ingress:cgroup_inet_ingress',
    ]);
    // The same object again: the crashed run's programs stay attached (a swap would leave a
    // window with nothing attached), and nothing is attached beside them.
    const progIds = (await bpftool.cgroupShow(cgroupDir)).map((a) => a.id).sort();
    expect(progIds).toEqual(firstProgIds);
    expect(readdirSync(bpffsDir)).not.toContain('progs_new');
    expect(loaded.reusedMaps).toEqual(
      expect.arrayContaining(['dns_stats', 'dns_pending', 'dns_retry_index', 'dns_health']),
    );
    for (const [m, id] of Object.entries(firstMapIds))
      expect((await bpftool.mapShow(loaded.maps[m]!)).id, m).toBe(id);
    // The old drop link was detached (its pin removed) before the new one attached.
    expect(loaded.dropAttribution.mode).toBe('tracepoint');
    const link = await bpftool.linkShow(loaded.dropAttribution.links.drops_kfree_skb!);
    expect(link.id).not.toBe(firstLinkId);
    const links = await allLinkIds();
    expect(links).toContain(link.id);
    expect(links).not.toContain(firstLinkId);
    firstLinkId = link.id;
    const cpus = (await bpftool.mapDump(loaded.maps.dns_health!))[0]!.values!.length;
    expect(await healthSlot(loaded.maps.dns_health!, HEALTH_UNUSED)).toBe(42 * cpus); // bpftool writes every CPU
    expect(await statsRow(loaded.maps.dns_stats!, cgId)).toMatchObject({
      queries: 0,
      timeouts: [0, 0, 0],
    });
    // The pinned iterators read what bpftool dumps, as files.
    expect(Object.keys(loaded.iterators).sort()).toEqual(['dns_pending', 'dns_stats']);
    const reader = new MapReader(bpftool, loaded.iterators);
    for (const m of ['dns_stats', 'dns_pending', 'dns_health']) {
      const viaReader = await reader.dump(loaded.maps[m]!);
      expect(viaReader, m).toEqual(await bpftool.mapDump(loaded.maps[m]!));
    }
    expect((await reader.dump(loaded.maps.dns_stats!)).length).toBeGreaterThan(0);
    // One batch of dumps reads what one dump per map reads, in the order asked (bpftool
    // 7.5's batch exits 255 after map commands; mapDumpMany knows that quirk).
    const pins = ['dns_stats', 'dns_health', 'dns_pending', 'dns_stats'].map(
      (m) => loaded.maps[m]!,
    );
    const many = await bpftool.mapDumpMany(pins);
    expect(many).toEqual(await Promise.all(pins.map((p) => bpftool.mapDump(p))));
    expect(many[0]!.length).toBeGreaterThan(0);
    await expect(bpftool.mapDumpMany([pins[0]!, `${bpffsDir}/maps/no_such_map`])).rejects.toThrow(
      /no_such_map/,
    );
    // The reloaded programs use the reused maps.
    const prog = await bpftool.progShow(loaded.programs.dns_sweep_timeouts!);
    expect(prog.map_ids).toEqual(
      expect.arrayContaining([
        firstMapIds.dns_stats,
        firstMapIds.dns_pending,
        firstMapIds.dns_health,
      ]),
    );
  });

  it('sweepTimeouts: ends old pending queries, counts them, all runs in one bpftool process', async () => {
    const pending = `${bpffsDir}/maps/dns_pending`;
    const key = (id: number): PendingKey => ({
      cgroupId: cgId,
      peer: new Uint8Array(16),
      port: 40000,
      id,
      qtype: 1,
      role: 0,
      proto: 0,
    });
    const old = Array.from({ length: 130 }, (_, i) => key(i));
    const fresh = key(1000);
    await bpftool.batch([
      ...old.map((k) => mapUpdateArgs(pending, encodePendingKey(k), pendingVal(1n))), // sent at boot + 1 ns
      mapUpdateArgs(pending, encodePendingKey(fresh), pendingVal(2n ** 64n - 1n)), // "sent" in the future
    ]);
    const runsBefore = await healthSlot(`${bpffsDir}/maps/dns_health`, HEALTH_SWEEP_RUNS);

    commands.length = 0;
    const result = await loader().sweepTimeouts([...old, fresh], 5_000_000_000n);
    expect(result.runs).toBe(3); // 131 keys, 64 per run
    expect(commands).toHaveLength(1);
    expect(commands[0]).toMatch(/^bpftool -j batch file /);

    const left = (await bpftool.mapDump(pending)).map((r) => (r.key as JsonObject).id);
    expect(left).toEqual([1000]);
    expect(await statsRow(`${bpffsDir}/maps/dns_stats`, cgId)).toMatchObject({
      timeouts: [130, 0, 0],
    });
    expect(await healthSlot(`${bpffsDir}/maps/dns_health`, HEALTH_SWEEP_RUNS)).toBe(runsBefore + 3);

    commands.length = 0;
    expect(await loader().sweepTimeouts([], 1n)).toEqual({ runs: 0, retvals: [] });
    expect(commands).toEqual([]);
  });

  it('stop: detaches, removes program pins, keeps map pins; a second stop is a no-op', async () => {
    await loader().stop();
    expect(await bpftool.cgroupShow(cgroupDir)).toEqual([]);
    expect(existsSync(`${bpffsDir}/progs`)).toBe(false);
    expect(existsSync(`${bpffsDir}/links`)).toBe(false);
    expect(existsSync(`${bpffsDir}/iters`)).toBe(false);
    expect(await allLinkIds()).not.toContain(firstLinkId);
    expect(readdirSync(`${bpffsDir}/maps`)).toEqual(
      expect.arrayContaining(['dns_stats', 'dns_pending', 'dns_retry_index', ...DROP_MAPS]),
    );
    await loader().stop();
  });

  it('falls back to none when no drop object loads, and the DNS programs stay attached', async () => {
    const missing = `/nonexistent-${suffix}`;
    const l = new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir,
      bpffsDir,
      dropObjects: { fexit: `${missing}/conntrack_fexit.bpf.o`, drops: `${missing}/drops.bpf.o` },
    });
    const loaded = await l.start();
    expect(loaded.dropAttribution).toEqual({
      mode: 'none',
      fallbacks: [
        expect.stringMatching(/^fexit: conntrack_fexit\.bpf\.o: .*No such file or directory/),
        expect.stringMatching(/^tracepoint: drops\.bpf\.o: .*No such file or directory/),
      ],
      links: {},
    });
    expect(await ourAttachments()).toEqual([
      'dns_egress:cgroup_inet_egress',
      'dns_ingress:cgroup_inet_ingress',
    ]);
    expect(existsSync(`${bpffsDir}/links`)).toBe(false);
    for (const m of DROP_MAPS) expect(loaded.maps[m]).toBe(`${bpffsDir}/maps/${m}`);
    await l.stop();
  });

  it('honours dropAttribution: none and tracepoint', async () => {
    const none = await new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir,
      bpffsDir,
      dropAttribution: 'none',
    }).start();
    expect(none.dropAttribution).toEqual({
      mode: 'none',
      fallbacks: ['not tried (dropAttribution: none)'],
      links: {},
    });
    const tp = await new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir,
      bpffsDir,
      dropAttribution: 'tracepoint',
    }).start();
    expect(tp.dropAttribution.mode).toBe('tracepoint');
    expect(tp.dropAttribution.fallbacks).toEqual(['fexit: not tried (choice: tracepoint)']);
    await loader().stop();
    expect(existsSync(`${bpffsDir}/links`)).toBe(false);
  });

  it('start after a clean stop reuses the maps; stop({ purge }) leaves nothing, twice', async () => {
    const loaded = await loader().start();
    expect(loaded.reusedMaps).toContain('dns_stats');
    expect(await statsRow(loaded.maps.dns_stats!, cgId)).toMatchObject({
      timeouts: [130, 0, 0],
    });
    await loader().stop({ purge: true });
    expect(await bpftool.cgroupShow(cgroupDir)).toEqual([]);
    expect(existsSync(bpffsDir)).toBe(false);
    await loader().stop({ purge: true });
  });

  it('stop after the cgroup is gone does not throw', async () => {
    const gone = new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir: `${cgroupDir}/gone`,
      bpffsDir,
    });
    await gone.stop();
  });

  it('refuses pinned maps whose layout differs, and says to --purge', async () => {
    const other = new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir,
      bpffsDir: otherBpffsDir,
    });
    await mkdir(`${otherBpffsDir}/maps`, { recursive: true });
    await bpftool.batch([
      [
        'map',
        'create',
        `${otherBpffsDir}/maps/dns_stats`,
        'type',
        'hash',
        'key',
        '16',
        'value',
        '8',
        'entries',
        '16',
        'name',
        'dns_stats',
      ],
    ]);
    const err = await other.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MapLayoutMismatchError);
    expect((err as Error).message).toMatch(
      new RegExp(`dns_stats: value 8 B pinned vs ${DNS_STATS_SIZE} B in the object.*--reset-maps`),
    );
    expect(await bpftool.cgroupShow(cgroupDir)).toEqual([]); // nothing loaded or attached
    await other.stop({ purge: true });
    expect(existsSync(otherBpffsDir)).toBe(false);
  });

  it('rolls back when an attach fails, and refuses an object without the programs', async () => {
    const twice = new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir,
      bpffsDir,
      attachments: [
        { program: 'dns_egress', attachType: 'egress' },
        { program: 'dns_egress', attachType: 'egress' }, // the same program twice: EEXIST
      ],
    });
    const err = await twice.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BpftoolError);
    expect((err as Error).message).toMatch(
      /cgroup attach .* multi failed \(exit 255\): Error: failed to attach program/,
    );
    expect(await bpftool.cgroupShow(cgroupDir)).toEqual([]);
    expect(existsSync(`${bpffsDir}/progs`)).toBe(false);

    const wrong = new DnsProgramLoader({
      bpftool,
      objPath: DNS_OBJ,
      cgroupDir,
      bpffsDir,
      attachments: [{ program: 'no_such_prog', attachType: 'ingress' }],
    });
    await expect(wrong.start()).rejects.toThrow(
      /has no program no_such_prog \(has dns_egress, dns_ingress, dns_sweep_timeouts\)/,
    );
    expect(await bpftool.cgroupShow(cgroupDir)).toEqual([]);
    await wrong.stop({ purge: true });
  });

  it('names the command and its stderr when loading fails', async () => {
    const missing = `/nonexistent-${suffix}/dns.bpf.o`;
    const err = await bpftool.loadAll(missing, `${bpffsDir}/progs`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BpftoolError);
    expect((err as BpftoolError).command).toBe(`bpftool prog loadall ${missing} ${bpffsDir}/progs`);
    expect((err as Error).message).toContain(
      `failed (exit 255): libbpf: elf: failed to open ${missing}: No such file or directory`,
    );
    expect((err as Error).message).toContain('hint: the file does not exist');

    const bad = new DnsProgramLoader({ bpftool, objPath: missing, cgroupDir, bpffsDir });
    await expect(bad.start()).rejects.toThrow(`bpftool -j btf dump file ${missing} failed`);
    await rm(bpffsDir, { recursive: true, force: true });
  });
});

describe('attachDropAttribution on its own', () => {
  it('treats a program that autoattach pinned without attaching as a failed mode', async () => {
    // A cgroup_skb program in place of the fexit object: autoattach cannot attach it, pins
    // the program and exits 0; the loader must notice and fall back.
    const dir = await mkdtemp(`${tmpdir()}/dnsrace-noattach-`);
    try {
      await writeFile(
        `${dir}/noattach.bpf.c`,
        '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n' +
          'SEC("cgroup_skb/egress")\nint e2e_noattach(struct __sk_buff *skb) { return 1; }\n',
      );
      const clang = await execa(
        'clang',
        [
          '-g', // BTF: the loader reads the object's maps from it
          '-O2',
          '-target',
          'bpf',
          `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
          '-c',
          `${dir}/noattach.bpf.c`,
          '-o',
          `${dir}/noattach.bpf.o`,
        ],
        { reject: false },
      );
      expect(
        clang.exitCode,
        `clang failed (apt-get install clang libbpf-dev): ${clang.stderr}`,
      ).toBe(0);
      const linksBefore = await allLinkIds();
      const d = await attachDropAttribution({
        bpftool,
        bpffsDir: otherBpffsDir,
        objects: { fexit: `${dir}/noattach.bpf.o`, drops: DROP_OBJS.drops },
      });
      expect(d.mode).toBe('tracepoint');
      expect(d.fallbacks).toEqual([
        'fexit: noattach.bpf.o: bpftool autoattach pinned e2e_noattach as a program, not a link: ' +
          'the attach failed (autoattach does not say why)',
      ]);
      expect(readdirSync(`${otherBpffsDir}/links`)).toEqual(['drops']); // the failed attempt left nothing
      // Standalone, it creates the maps it shares with dns.bpf.o.
      expect(readdirSync(`${otherBpffsDir}/maps`)).toEqual(
        expect.arrayContaining([...DROP_MAPS, 'drop_scratch']),
      );
      const link = await bpftool.linkShow(d.links.drops_kfree_skb!);
      expect(linksBefore).not.toContain(link.id);
      await rm(`${otherBpffsDir}/links`, { recursive: true });
      expect(await allLinkIds()).not.toContain(link.id);
    } finally {
      await rm(otherBpffsDir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Bpftool against the kernel', () => {
  it('batch stops at the first failing command; the ones before it took effect', async () => {
    const loaded = await loader().start();
    const health = loaded.maps.dns_health!;
    const slot = (n: number) => le64(BigInt(n)).subarray(0, 4);
    const err = await bpftool
      .batch([
        mapUpdateArgs(health, slot(13), le64(5n)),
        ['prog', 'show', 'pinned', `${bpffsDir}/progs/no_such_prog`],
        mapUpdateArgs(health, slot(14), le64(6n)),
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BpftoolBatchError);
    const e = err as BpftoolBatchError;
    expect([e.failedIndex, e.completed.length, e.exitCode]).toEqual([1, 1, 255]);
    expect(e.message).toMatch(/command 2 of the batch failed .*no_such_prog/s);
    expect(e.errorText).toMatch(/no_such_prog\): No such file or directory/);
    expect(await healthSlot(health, 13)).toBeGreaterThan(0);
    expect(await healthSlot(health, 14)).toBe(0);
    await loader().stop({ purge: true });
  });

  it('isLinkPin tells a link pinned by autoattach from a program pin (link show exits 255)', async () => {
    // The DNS object has only cgroup_skb programs, which autoattach never attaches: build a
    // raw tracepoint program, which it does attach and pin as a link.
    const dir = await mkdtemp(`${tmpdir()}/dnsrace-link-`);
    try {
      await writeFile(
        `${dir}/link.bpf.c`,
        '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n' +
          'SEC("raw_tracepoint/kfree_skb")\nint e2e_link(void *ctx) { return 0; }\n',
      );
      const clang = await execa(
        'clang',
        [
          '-O2',
          '-target',
          'bpf',
          `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
          '-c',
          `${dir}/link.bpf.c`,
          '-o',
          `${dir}/link.bpf.o`,
        ],
        { reject: false },
      );
      expect(
        clang.exitCode,
        `clang could not build a BPF object (apt-get install clang libbpf-dev): ${clang.stderr}`,
      ).toBe(0);
      const res = await bpftool.loadAll(`${dir}/link.bpf.o`, `${bpffsDir}/link`, {
        autoattach: true,
      });
      expect(res.autoattachFallbacks).toEqual([]);
      expect(await bpftool.isLinkPin(`${bpffsDir}/link/e2e_link`)).toBe(true);
      expect(await bpftool.linkShow(`${bpffsDir}/link/e2e_link`)).toMatchObject({
        type: 'raw_tracepoint',
        tp_name: 'kfree_skb',
      });
      await expect(bpftool.isLinkPin(`${bpffsDir}/link/nothing`)).rejects.toThrow(
        /nothing is pinned at that path/,
      );
    } finally {
      await rm(`${bpffsDir}/link`, { recursive: true, force: true }); // unpinning the link detaches it
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('mapDelete says whether the key was there; progRun runs the sweep program once', async () => {
    const loaded = await loader().start();
    const key = statsKey(1n, 0, 0);
    await bpftool.mapUpdate(loaded.maps.dns_stats!, key, Buffer.alloc(DNS_STATS_SIZE));
    expect(await bpftool.mapDelete(loaded.maps.dns_stats!, key)).toBe(true);
    expect(await bpftool.mapDelete(loaded.maps.dns_stats!, key)).toBe(false);
    const run = await bpftool.progRun(loaded.programs.dns_sweep_timeouts!, Buffer.alloc(14 + 16), {
      repeat: 3,
    });
    expect(run.retval).toBe(1);
    expect(await healthSlot(loaded.maps.dns_health!, HEALTH_SWEEP_RUNS)).toBe(3);
    await loader().stop({ purge: true });
  });
});
