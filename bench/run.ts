// dnsrace benchmarks: `npx tsx bench/run.ts [--quick] [--packet-only] [--baseline-object <dns.bpf.o>]`
// as root. See docs/benchmarks.md. Prints a human summary and, last, one line `BENCH_RESULT {json}`.
// --packet-only: the per-packet cost alone (no start-up, map read, scrape, load, vs-capture).
// --baseline-object: another dns.bpf.o (e.g. `git show <rev>:bpf/dist/dns.bpf.o`) measured as
// variant 'dns-base' in the same rounds as 'dns', with the ratio of their medians.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bpftool } from '../src/bpf/bpftool.js';
import { DnsProgramLoader, type LoadedPrograms } from '../src/bpf/loader.js';
import { readIterator } from '../src/bpf/map-reader.js';
import { decodeDnsStats } from '../src/dns/stats-row.js';
import { buildHelpers, type BenchBinaries } from './lib/build.js';
import {
  CLIENT_IP,
  SERVER_IP,
  createScratch,
  enableBpfStats,
  type Scratch,
} from './lib/scratch.js';
import { fmt, summarize, type Summary } from './lib/stats.js';
import { createSyntheticPods } from './lib/pods.js';
import { ExporterProcess } from '../test/support/exporter-process.js';
import { vsCapture } from './vs-capture.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const packetOnly = process.argv.includes('--packet-only');
const baselineAt = process.argv.indexOf('--baseline-object');
const baselineObject = baselineAt < 0 ? undefined : process.argv[baselineAt + 1];
const P = quick
  ? {
      cycles: 2,
      rounds: 2,
      pairs: 3000,
      pods: [10, 110],
      dumpReps: 3,
      scrapeReps: 3,
      loadRates: [1000],
      loadSeconds: 3,
    }
  : {
      cycles: 7,
      rounds: 7,
      pairs: 40000,
      pods: [10, 110, 500],
      dumpReps: 15,
      scrapeReps: 15,
      loadRates: [1000, 10000],
      loadSeconds: 30,
    };

type Variant = 'none' | 'noop' | 'dns' | 'dns-base';
interface PacketCase {
  variant: Variant;
  port: number;
  /** over loopback inside the client netns instead of veth to the server netns */
  loopback?: boolean;
}
const CASES: PacketCase[] = [
  { variant: 'none', port: 9053 },
  { variant: 'noop', port: 9053 },
  { variant: 'dns', port: 9053 },
  { variant: 'none', port: 53 },
  { variant: 'noop', port: 53 },
  { variant: 'dns', port: 53 },
  { variant: 'noop', port: 53, loopback: true },
  { variant: 'dns', port: 53, loopback: true },
];

const log = (...a: unknown[]) => console.log(...a);
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function cgroup2Mount(): string {
  for (const m of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    if (existsSync(path.join(m, 'cgroup.controllers'))) return m;
  }
  throw new Error('no cgroup2 mount at /sys/fs/cgroup/unified or /sys/fs/cgroup');
}

async function main(): Promise<Record<string, unknown>> {
  if (process.getuid?.() !== 0) throw new Error('bench/run.ts needs root (BPF, netns, cgroups)');
  const bpftool = new Bpftool();
  const bpftoolVersion = (await execa('bpftool', ['version'])).stdout.split('\n')[0];
  if (baselineAt >= 0 && !(baselineObject && existsSync(baselineObject)))
    throw new Error(`--baseline-object needs the path of a dns.bpf.o (got ${baselineObject})`);
  const bins = await buildHelpers(ROOT);
  const scratch = await createScratch(cgroup2Mount(), [
    'srv',
    'none',
    'noop',
    'dns',
    'pods',
    ...(baselineObject ? ['dns-base'] : []),
  ]);
  let restoreStats: (() => Promise<void>) | undefined;
  let loader: DnsProgramLoader | undefined;
  let baseLoader: DnsProgramLoader | undefined;
  const result: Record<string, unknown> = {
    quick,
    machine: {
      kernel: release(),
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      bpftool: bpftoolVersion,
    },
    params: P,
    scratch: path.basename(scratch.cgroupRoot),
    ...(packetOnly && { packetOnly }),
  };
  // Each DNS object on its own scratch cgroup and bpffs dir, named like its variant.
  const dnsLoader = (objPath: string, variant: Variant) =>
    new DnsProgramLoader({
      bpftool,
      objPath,
      cgroupDir: scratch.cgroup(variant),
      bpffsDir: path.join(scratch.bpffsDir, variant),
      dropAttribution: 'none',
    });
  const pinsOf = (l: LoadedPrograms) => ({
    egress: l.programs.dns_egress!,
    ingress: l.programs.dns_ingress!,
  });
  try {
    loader = dnsLoader(path.join(ROOT, 'bpf', 'dist', 'dns.bpf.o'), 'dns');
    if (!packetOnly) result.startup = await startupShutdown(loader, P.cycles);
    const loaded = await loader.start();
    if (baselineObject) baseLoader = dnsLoader(baselineObject, 'dns-base');
    const base = await baseLoader?.start();
    const noopPins = await attachNoop(bpftool, bins, scratch);

    const server = scratch.spawnIn(scratch.cgroup('srv'), scratch.serverNs, [
      bins.udpload,
      'server',
      '53',
      '9053',
    ]);
    await waitForLine(server, 'ready');
    const loServer = scratch.spawnIn(scratch.cgroup('srv'), scratch.clientNs, [
      bins.udpload,
      'server',
      '53',
      '9053',
    ]);
    await waitForLine(loServer, 'ready');

    restoreStats = await enableBpfStats();
    const progs: Partial<Record<Variant, { egress: string; ingress: string }>> = {
      noop: noopPins,
      dns: pinsOf(loaded),
      ...(base && { 'dns-base': pinsOf(base) }),
    };
    const packet = await packetCost(bpftool, bins, scratch, progs);
    result.packet = packet;
    if (baselineObject)
      result.baseline = { object: baselineObject, ratios: baselineRatios(packet) };
    await restoreStats();
    restoreStats = undefined;
    if (packetOnly) return result;

    result.mapRead = await mapRead(
      bpftool,
      bins,
      loaded.maps.dns_stats!,
      loaded.iterators.dns_stats,
    );
    await loader.stop({ purge: true });
    result.scrape = await scrape(bins, scratch);
    result.vsCapture = await vsCapture({
      bins,
      cgroup2: cgroup2Mount(),
      quick,
      log,
      aborted: () => aborted,
    });
  } finally {
    if (restoreStats)
      await restoreStats().catch((e: unknown) => log('restoring bpf_stats failed', e));
    await loader?.stop({ purge: true }).catch((e: unknown) => log('loader stop failed', e));
    await baseLoader
      ?.stop({ purge: true })
      .catch((e: unknown) => log('baseline loader stop failed', e));
    const removed = await scratch.destroy();
    log(`cleaned up: ${removed.join(', ')}`);
  }
  return result;
}

/** Load+attach and detach of the DNS programs through the project's loader, repeated. */
async function startupShutdown(loader: DnsProgramLoader, cycles: number) {
  const start: number[] = [];
  const stop: number[] = [];
  for (let i = 0; i < cycles; i++) {
    let t0 = process.hrtime.bigint();
    await loader.start();
    start.push(ms(t0));
    t0 = process.hrtime.bigint();
    await loader.stop({ purge: true });
    stop.push(ms(t0));
  }
  const r = { loadAttachMs: summarize(start), detachMs: summarize(stop) };
  log(`\n## start-up / shutdown (DnsProgramLoader, ${cycles} cycles, purge between)`);
  log(`load+attach ms: ${fmt(r.loadAttachMs, 1)}`);
  log(`detach ms:      ${fmt(r.detachMs, 1)}`);
  return r;
}

async function attachNoop(bpftool: Bpftool, bins: BenchBinaries, s: Scratch) {
  const dir = path.join(s.bpffsDir, 'noop');
  await bpftool.loadAll(bins.noopObj, dir);
  const pins = { egress: path.join(dir, 'noop_egress'), ingress: path.join(dir, 'noop_ingress') };
  await bpftool.cgroupAttach(s.cgroup('noop'), 'egress', pins.egress, { multi: true });
  await bpftool.cgroupAttach(s.cgroup('noop'), 'ingress', pins.ingress, { multi: true });
  return pins;
}

async function waitForLine(child: ReturnType<Scratch['spawnIn']>, line: string): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no '${line}' from the load server: ${out}`)),
      5000,
    );
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => reject(new Error(`load server exited: ${r.stderr}`)));
  });
}

async function runStats(bpftool: Bpftool, pin: string): Promise<{ ns: bigint; cnt: bigint }> {
  const info = (await bpftool.progShow(pin)) as Record<string, unknown>;
  // bpftool leaves run_time_ns/run_cnt out while they are 0
  return {
    ns: BigInt((info.run_time_ns as number) ?? 0),
    cnt: BigInt((info.run_cnt as number) ?? 0),
  };
}

/**
 * Rounds of every case, the order rotated each round so drift hits all cases alike. Per case:
 * the kernel's run_time_ns/run_cnt delta of the egress and ingress program, and the client's
 * wall time per query/answer pair (hook + program + everything else).
 */
async function packetCost(
  bpftool: Bpftool,
  bins: BenchBinaries,
  s: Scratch,
  progs: Partial<Record<Variant, { egress: string; ingress: string }>>,
) {
  const per: Record<
    string,
    { egress: number[]; ingress: number[]; pairUs: number[]; runsPerPair: number[] }
  > = {};
  // the baseline right beside each 'dns' case, so both see the same drift
  const cases = CASES.flatMap((c): PacketCase[] =>
    c.variant === 'dns' && progs['dns-base'] ? [c, { ...c, variant: 'dns-base' }] : [c],
  );
  for (let r = 0; r < P.rounds; r++) {
    const order = cases.map((_, i) => cases[(i + r) % cases.length]!);
    for (const c of order) {
      if (aborted) throw new Error('interrupted');
      const key = `${c.variant}:${c.port}${c.loopback ? ':lo' : ''}`;
      const rec = (per[key] ??= { egress: [], ingress: [], pairUs: [], runsPerPair: [] });
      const pins = progs[c.variant];
      const before =
        pins &&
        (await Promise.all([runStats(bpftool, pins.egress), runStats(bpftool, pins.ingress)]));
      const out = await s.spawnIn(s.cgroup(c.variant), s.clientNs, [
        bins.udpload,
        'client',
        c.loopback ? '127.0.0.1' : SERVER_IP,
        String(c.port),
        String(P.pairs),
      ]);
      const m = /sent (\d+) answered (\d+) elapsed_ns (\d+)/.exec(String(out.stdout));
      if (!m || out.exitCode !== 0) throw new Error(`load client ${key} failed: ${out.stderr}`);
      if (Number(m[2]) < Number(m[1]) * 0.99)
        throw new Error(`load client ${key}: only ${m[2]}/${m[1]} answered`);
      rec.pairUs.push(Number(m[3]) / Number(m[1]) / 1000);
      if (pins && before) {
        const after = await Promise.all([
          runStats(bpftool, pins.egress),
          runStats(bpftool, pins.ingress),
        ]);
        if (after[0].cnt === before[0].cnt)
          throw new Error(`${key}: the program never ran (is bpf_stats on?)`);
        const dir = (i: 0 | 1) =>
          Number(after[i].ns - before[i].ns) / Number(after[i].cnt - before[i].cnt);
        rec.egress.push(dir(0));
        rec.ingress.push(dir(1));
        rec.runsPerPair.push(
          Number(after[0].cnt - before[0].cnt + after[1].cnt - before[1].cnt) / P.pairs,
        );
      }
    }
  }
  const summary: Record<string, Record<string, Summary>> = {};
  log(
    `\n## per-packet cost (${P.rounds} rounds x ${P.pairs} UDP query/answer pairs per case, ${CLIENT_IP} -> ${SERVER_IP} over veth; ':lo' = 127.0.0.1 in the client netns)`,
  );
  const w = Math.max(13, ...Object.keys(per).map((k) => k.length));
  log(
    `${'case'.padEnd(w)} | egress ns/run        | ingress ns/run       | runs/pair | client µs/pair`,
  );
  for (const [key, rec] of Object.entries(per)) {
    const pairUs = summarize(rec.pairUs);
    const row: Record<string, Summary> = { pairUs };
    if (rec.egress.length) {
      row.egressNs = summarize(rec.egress);
      row.ingressNs = summarize(rec.ingress);
      row.runsPerPair = summarize(rec.runsPerPair);
    }
    summary[key] = row;
    log(
      `${key.padEnd(w)} | ${(row.egressNs ? fmt(row.egressNs) : '-').padEnd(20)} | ${(row.ingressNs ? fmt(row.ingressNs) : '-').padEnd(20)} | ${row.runsPerPair ? row.runsPerPair.median.toFixed(2) : '-'}      | ${fmt(pairUs, 1)}`,
    );
  }
  return summary;
}

/** Median ns/run of 'dns' over 'dns-base' per case and direction, printed and returned. */
function baselineRatios(packet: Record<string, Record<string, Summary>>) {
  const out: Record<string, { egress: number; ingress: number }> = {};
  log(`\n## dns / dns-base (${baselineObject}): ratio of the medians of ns/run`);
  for (const [key, row] of Object.entries(packet)) {
    const base = key.startsWith('dns:') && packet[key.replace('dns:', 'dns-base:')];
    if (!base || !row.egressNs || !row.ingressNs || !base.egressNs || !base.ingressNs) continue;
    out[key] = {
      egress: row.egressNs.median / base.egressNs.median,
      ingress: row.ingressNs.median / base.ingressNs.median,
    };
    log(
      `${key.padEnd(10)} egress ${out[key].egress.toFixed(3)}  ingress ${out[key].ingress.toFixed(3)}`,
    );
  }
  return out;
}

/** dns_stats with synthetic rows for N pods: the exporter's read versus bpftool alone versus the batch floor. */
async function mapRead(
  bpftool: Bpftool,
  bins: BenchBinaries,
  pin: string,
  iterator: string | undefined,
) {
  if (!iterator) throw new Error('the loader pinned no iterator over dns_stats (see its log)');
  const out: Record<string, unknown>[] = [];
  log(`\n## dns_stats read (3 rows per pod, ${P.dumpReps} reps each)`);
  log(
    'pods | entries | exporter read ms (pinned iterator + decode) | bpftool.mapDump+decode ms | bpftool map dump process ms | batch floor ms (in-process) | batch floor ms (a process) | read/floor | read/process floor',
  );
  for (const pods of P.pods) {
    if (aborted) throw new Error('interrupted');
    await execa(bins.mapbatch, ['fill', pin, String(pods)]);
    const exporterRead: number[] = [];
    const dumpRead: number[] = [];
    const bpftoolProc: number[] = [];
    // The floor as the exporter would pay it: a process started per read (as bpftool is).
    const floorProc: number[] = [];
    let rows = 0;
    for (let i = 0; i < P.dumpReps; i++) {
      let t0 = process.hrtime.bigint();
      rows = decodeDnsStats(await readIterator(iterator, 'dns_stats')).length;
      exporterRead.push(ms(t0));
      t0 = process.hrtime.bigint();
      const dumped = decodeDnsStats(await bpftool.mapDump(pin)).length;
      dumpRead.push(ms(t0));
      if (dumped !== rows) throw new Error(`iterator read ${rows} rows, bpftool dump ${dumped}`);
      t0 = process.hrtime.bigint();
      await execa('bpftool', ['map', 'dump', 'pinned', pin], { stdout: 'ignore' });
      bpftoolProc.push(ms(t0));
      t0 = process.hrtime.bigint();
      await execa(bins.mapbatch, ['read', pin, '1'], { stdout: 'ignore' });
      floorProc.push(ms(t0));
    }
    const floorOut = (await execa(bins.mapbatch, ['read', pin, String(Math.max(P.dumpReps, 20))]))
      .stdout;
    const f = /entries (\d+) median_ns (\d+) min_ns (\d+) max_ns (\d+)/.exec(floorOut);
    if (!f) throw new Error(`mapbatch printed ${floorOut}`);
    const floorMs = {
      n: Math.max(P.dumpReps, 20),
      median: Number(f[2]) / 1e6,
      min: Number(f[3]) / 1e6,
      max: Number(f[4]) / 1e6,
    };
    const row = {
      pods,
      entries: Number(f[1]),
      decodedRows: rows,
      exporterReadMs: summarize(exporterRead),
      dumpReadMs: summarize(dumpRead),
      bpftoolProcessMs: summarize(bpftoolProc),
      batchFloorMs: floorMs,
      batchFloorProcessMs: summarize(floorProc),
      ratio: summarize(exporterRead).median / floorMs.median,
      ratioToProcessFloor: summarize(exporterRead).median / summarize(floorProc).median,
    };
    out.push(row);
    log(
      `${String(pods).padEnd(4)} | ${String(row.entries).padEnd(7)} | ${fmt(row.exporterReadMs, 2).padEnd(44)} | ${fmt(row.dumpReadMs, 2).padEnd(26)} | ${fmt(row.bpftoolProcessMs, 2).padEnd(27)} | ${fmt(floorMs, 3).padEnd(26)} | ${fmt(row.batchFloorProcessMs, 2).padEnd(25)} | ${row.ratio.toFixed(0)}x | ${row.ratioToProcessFloor.toFixed(1)}x`,
    );
  }
  return out;
}

/**
 * The real exporter (src/main.ts) on a cgroup tree of N synthetic pods, each with 3 dns_stats
 * rows: /metrics latency and size, text and protobuf, and the exporter's own map read duration.
 */
async function scrape(bins: BenchBinaries, s: Scratch) {
  const podLogDir = await mkdtemp(path.join(tmpdir(), 'dnsrace-test-bench-logs-'));
  const bpffsDir = path.join(s.bpffsDir, 'exporter');
  const exporter = new ExporterProcess({
    cgroupRoot: s.cgroup('pods'),
    bpffsDir,
    podLogDir,
    // the shipped defaults (ExporterProcess passes --log-level debug; the last flag wins)
    readInterval: '5s',
    extraArgs: ['--kube-api', 'off', '--log-level', 'info'],
    compiledMain: bins.exporterMain,
  });
  const out: Record<string, unknown>[] = [];
  let load: Record<string, unknown>[] | undefined;
  log(
    `\n## /metrics of the real exporter (${P.scrapeReps} scrapes per format, default --pod-series-limit 250)`,
  );
  log(
    'pods | text ms                  | text KB | protobuf ms              | protobuf KB | pod series | exporter map read ms (dnsrace_map_read_duration_seconds)',
  );
  try {
    await exporter.start();
    const statsPin = path.join(bpffsDir, 'maps', 'dns_stats');
    let made = 0;
    let podDirs: string[] = [];
    for (const pods of P.pods) {
      if (aborted) throw new Error('interrupted');
      const added = await createSyntheticPods(s.cgroup('pods'), podLogDir, made, pods);
      podDirs = [...podDirs, ...added.map((p) => p.cgroupDir)];
      made = pods;
      await execa(bins.mapbatch, ['fillids', statsPin, ...added.map((p) => String(p.cgroupId))]);
      const want = Math.min(pods, 250);
      const samples = await exporter.until(
        (x) =>
          new Set(
            x.filter((m) => m.name === 'dnsrace_dns_pod_queries_total').map((m) => m.labels.pod),
          ).size >= want,
        30_000,
      );
      const podSeries = new Set(
        samples.filter((m) => m.name === 'dnsrace_dns_pod_queries_total').map((m) => m.labels.pod),
      ).size;
      const readSec = samples.find((m) => m.name === 'dnsrace_map_read_duration_seconds')?.value;
      const timed = async (accept: string) => {
        const t: number[] = [];
        let bytes = 0;
        for (let i = 0; i < P.scrapeReps; i++) {
          const t0 = process.hrtime.bigint();
          const r = await fetch(`http://127.0.0.1:${exporter.port}/metrics`, {
            headers: { accept },
          });
          bytes = (await r.arrayBuffer()).byteLength;
          t.push(ms(t0));
        }
        return { ms: summarize(t), bytes };
      };
      const text = await timed('text/plain;version=0.0.4');
      const proto = await timed(
        'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited',
      );
      const row = {
        pods,
        podSeries,
        textMs: text.ms,
        textBytes: text.bytes,
        protobufMs: proto.ms,
        protobufBytes: proto.bytes,
        exporterLastMapReadMs: readSec === undefined ? undefined : readSec * 1000,
      };
      out.push(row);
      log(
        `${String(pods).padEnd(4)} | ${fmt(text.ms, 1).padEnd(24)} | ${(text.bytes / 1024).toFixed(0).padEnd(7)} | ${fmt(proto.ms, 1).padEnd(24)} | ${(proto.bytes / 1024).toFixed(0).padEnd(11)} | ${String(podSeries).padEnd(10)} | ${row.exporterLastMapReadMs?.toFixed(1) ?? '-'} (last read)`,
      );
    }
    load = await exporterUnderLoad(bins, s, bpffsDir, podDirs.slice(0, 10));
  } finally {
    const code = await exporter.stop().catch(() => undefined);
    if (code !== 0) log(`exporter exit code ${code}; output:\n${exporter.logs.slice(-2000)}`);
    await rm(podLogDir, { recursive: true, force: true });
  }
  return { metrics: out, load };
}

/** The exporter's pid: the one process whose command line names our scratch bpffs dir. */
async function exporterPid(bpffsDir: string): Promise<number> {
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(bpffsDir) && cmd.includes('main.') && cmd.startsWith('node')) return Number(d);
  }
  throw new Error(`no exporter process with ${bpffsDir} on its command line`);
}

/** utime+stime+cutime+cstime (bpftool children are reaped, so counted) in seconds, and RSS in MB. */
async function procSample(pid: number, hz: number): Promise<{ cpuS: number; rssMb: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((a, i) => a + Number(f[i]), 0); // fields 14-17
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { cpuS: ticks / hz, rssMb: rssKb / 1024 };
}

/**
 * DNS lookups at a fixed rate from 10 pods (10 paced clients in the pods' cgroups), for a
 * window: the exporter's CPU (share of one core) and RSS sampled once a second.
 */
async function exporterUnderLoad(
  bins: BenchBinaries,
  s: Scratch,
  bpffsDir: string,
  pods: string[],
) {
  const pid = await exporterPid(bpffsDir);
  const hz = Number((await execa('getconf', ['CLK_TCK'])).stdout);
  const out: Record<string, unknown>[] = [];
  log(
    `\n## exporter under load (${P.loadSeconds} s per rate, ${pods.length} pods, default read interval 5 s, log level info)`,
  );
  log('lookups/s | answered | exporter CPU % of one core | RSS MB start -> max -> end');
  for (const rate of P.loadRates) {
    if (aborted) throw new Error('interrupted');
    const per = Math.ceil(rate / pods.length);
    const before = await procSample(pid, hz);
    const t0 = process.hrtime.bigint();
    const clients = pods.map((cg) =>
      s.spawnIn(cg, s.clientNs, [
        bins.udpload,
        'client',
        SERVER_IP,
        '53',
        String(per * P.loadSeconds),
        String(per),
      ]),
    );
    const rss: number[] = [before.rssMb];
    let running = true;
    const sampler = (async () => {
      while (running) {
        await new Promise((r) => setTimeout(r, 1000));
        rss.push((await procSample(pid, hz)).rssMb);
      }
    })();
    const results = await Promise.all(clients);
    running = false;
    await sampler;
    const wallS = ms(t0) / 1000;
    const after = await procSample(pid, hz);
    let sent = 0;
    let answered = 0;
    for (const r of results) {
      const m = /sent (\d+) answered (\d+)/.exec(String(r.stdout));
      if (!m) throw new Error(`paced client failed: ${r.stderr}`);
      sent += Number(m[1]);
      answered += Number(m[2]);
    }
    const row = {
      rate,
      achievedRate: sent / wallS,
      answered,
      sent,
      wallS,
      cpuPercent: ((after.cpuS - before.cpuS) / wallS) * 100,
      rssMb: {
        start: before.rssMb,
        max: Math.max(...rss, after.rssMb),
        end: after.rssMb,
        samples: rss,
      },
    };
    out.push(row);
    log(
      `${String(rate).padEnd(9)} | ${answered}/${sent} | ${row.cpuPercent.toFixed(2)} (${wallS.toFixed(1)} s, ${row.achievedRate.toFixed(0)}/s achieved) | ${before.rssMb.toFixed(0)} -> ${row.rssMb.max.toFixed(0)} -> ${after.rssMb.toFixed(0)}`,
    );
  }
  return out;
}

const t0 = Date.now();
let code = 0;
let aborted = false;
const stop = () => {
  // Let the finally blocks clean up: the loops check this flag and throw.
  aborted = true;
  code = 130;
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
main()
  .then((r) => {
    r.wallSeconds = (Date.now() - t0) / 1000;
    log(`\nBENCH_RESULT ${JSON.stringify(r)}`);
  })
  .catch((err: unknown) => {
    console.error('bench failed:', err);
    code = 1;
  })
  .finally(() => {
    process.exitCode = code;
  });
