// Section 4 of the bench: dnsrace against what a user would run instead, a user-space capture
// computing DNS response times. One load of DNS queries per round, observed at once by
//   - tshark live on the client veth (`-e dns.time`),
//   - tcpdump -w to tmpfs, then tshark -r on the file,
//   - the real exporter (compiled, as shipped) with its BPF programs on the pod's cgroup.
// The section builds its own scratch world (bench/lib/scratch.ts) because its DNS server
// (bench/c/spread-load.c) needs port 53 in the server netns: it answers after a random delay,
// so the latencies spread over many buckets and the distributions can be compared. Its
// open-loop client numbers the ids across all its sockets (several udpload clients in one pod
// would send the same ids at once, which dnsrace rightly takes for re-sends of one query).
// Each tool runs in a cgroup of its own, so its CPU is the cgroup's cpu.stat usage_usec
// (children included: dumpcap, the exporter's bpftool runs). The BPF programs' time is the
// kernel's run_time_ns (kernel.bpf_stats_enabled=1). Latencies: tshark's dns.time values put
// into the kernel's schema-2 slots, against the pod's dns_stats row.
import { execa, type ResultPromise } from 'execa';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Bpftool } from '../src/bpf/bpftool.js';
import { decodeDnsStats } from '../src/dns/stats-row.js';
import { LAT_SLOTS } from '../src/bpf/latency-buckets.js';
import { ExporterProcess } from '../test/support/exporter-process.js';
import { sumOf } from '../test/support/prom-text.js';
import type { BenchBinaries } from './lib/build.js';
import {
  compareSlots,
  parseDnsTimes,
  quantile,
  slotDelta,
  slotHistogram,
  summarizeSlots,
  type Agreement,
  type DistributionSummary,
} from './lib/latency-compare.js';
import { createSyntheticPods } from './lib/pods.js';
import { SERVER_IP, createScratch, enableBpfStats, type Scratch } from './lib/scratch.js';
import { fmt, summarize, type Summary } from './lib/stats.js';

export interface VsCaptureOptions {
  bins: BenchBinaries;
  /** the cgroup2 mount to build the scratch world under */
  cgroup2: string;
  quick: boolean;
  log: (...a: unknown[]) => void;
  aborted: () => boolean;
}

const INSTALL_HINT =
  "echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections && " +
  'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark tcpdump';
/** What a user would type: responses only, their dns.time (request to response, seconds). */
const DNS_TIME_ARGS = ['-n', '-Y', 'dns.flags.response == 1', '-T', 'fields', '-e', 'dns.time'];
const IFACE = 'veth0'; // the client netns end of the scratch veth pair
const PER = 100_000;
/** The client's sockets (round-robin), and the server's answer delay, log-uniform (µs). */
const LOAD = { sockets: 16, delayUs: [20, 2000] as [number, number] };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function vsCapture(o: VsCaptureOptions) {
  const p = o.quick
    ? // --quick is a smoke test: a 1 s read interval only shortens the waits for a fresh read
      { queries: 5000, rate: 5000, rounds: 1, readInterval: '1s', ...LOAD }
    : { queries: 100_000, rate: 10_000, rounds: 3, readInterval: '5s', ...LOAD };
  await requireTools();
  const spreadLoad = o.bins.spreadLoad;
  const bpftool = new Bpftool();
  const names = ['srv', 'exporter', 'tshark', 'tcpdump', 'offline', 'pods'] as const;
  const s = await createScratch(o.cgroup2, [...names]);
  const cg = Object.fromEntries(names.map((n) => [n, s.cgroup(n)])) as Record<
    (typeof names)[number],
    string
  >;
  const bpffsDir = path.join(s.bpffsDir, 'vs-capture');
  const tmpDirs: string[] = [];
  let exporter: ExporterProcess | undefined;
  let restoreStats: (() => Promise<void>) | undefined;
  const rounds: RoundResult[] = [];
  try {
    const tmp = await mkdtemp('/dev/shm/dnsrace-test-bench-vscap-'); // pcaps on tmpfs
    tmpDirs.push(tmp);
    const podLogDir = await mkdtemp(path.join(tmpdir(), 'dnsrace-test-bench-vscap-logs-'));
    tmpDirs.push(podLogDir);
    const server = s.spawnIn(cg.srv, s.serverNs, [
      spreadLoad,
      'server',
      '53',
      String(p.delayUs[0]),
      String(p.delayUs[1]),
    ]);
    await waitForStdout(server, /ready/, 'spread-load server');
    const [pod] = await createSyntheticPods(cg.pods, podLogDir, 0, 1);
    exporter = new ExporterProcess({
      cgroupRoot: cg.pods,
      bpffsDir,
      podLogDir,
      readInterval: p.readInterval, // 5s is the shipped default
      // info: the shipped default (ExporterProcess passes debug first; the last flag wins)
      extraArgs: ['--kube-api', 'off', '--log-level', 'info'],
      compiledMain: o.bins.exporterMain,
      commandPrefix: ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.exporter],
    });
    await exporter.start();
    await exporter.freshScrape(); // start-up reads done before the first window
    restoreStats = await enableBpfStats();
    const progs = await programPins(bpftool, bpffsDir);
    const emptyPcap = path.join(tmp, 'empty.pcap');
    await writeFile(emptyPcap, PCAP_HEADER);
    for (let r = 0; r < p.rounds; r++) {
      if (o.aborted()) throw new Error('interrupted');
      rounds.push(
        await round({
          s,
          spreadLoad,
          bpftool,
          cg,
          podCgroup: pod!.cgroupDir,
          podCgroupId: pod!.cgroupId,
          statsPin: path.join(bpffsDir, 'maps', 'dns_stats'),
          progs,
          pcap: path.join(tmp, `round${r}.pcap`),
          emptyPcap,
          queries: p.queries,
          rate: p.rate,
          sockets: p.sockets,
        }),
      );
      await rm(path.join(tmp, `round${r}.pcap`), { force: true });
    }
    // Black-box check that the exporter itself reports what the kernel counted.
    const sent = rounds.reduce((a, r) => a + r.sent, 0);
    const seen = await exporter.until(
      (x) => sumOf(x, 'dnsrace_dns_pod_queries_total', { pod: pod!.name }) >= sent,
      15_000,
    );
    const exporterQueries = sumOf(seen, 'dnsrace_dns_pod_queries_total', { pod: pod!.name });
    const exporterRss = await rssOf(cg.exporter);
    return {
      scratch: path.basename(s.cgroupRoot),
      ...report(o.log, p, rounds, { exporterQueries, sent, exporterRss }),
    };
  } finally {
    if (restoreStats)
      await restoreStats().catch((e: unknown) => o.log('restoring bpf_stats failed', e));
    const code = await exporter?.stop().catch(() => undefined);
    if (exporter && code !== 0)
      o.log(`vs-capture exporter exit code ${code}; output:\n${exporter.logs.slice(-2000)}`);
    const removed = await s.destroy();
    o.log(`vs-capture cleaned up: ${removed.join(', ')}`);
    for (const dir of tmpDirs) await rm(dir, { recursive: true, force: true });
  }
}

async function requireTools(): Promise<void> {
  for (const tool of ['tshark', 'tcpdump']) {
    const r = await execa(tool, ['--version'], { reject: false });
    if (r.exitCode !== 0)
      throw new Error(
        `bench section 4 needs ${tool}, which did not run (install: ${INSTALL_HINT})`,
        { cause: r.cause ?? r.stderr },
      );
  }
}

/** A pcap file with no packets (Ethernet, snaplen 128): tshark -r on it is tshark's start-up. */
const PCAP_HEADER = Buffer.from([
  0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 1, 0, 0, 0,
]);

interface ProgPins {
  /** program name -> bpftool reference: program pins directly, drop links via their prog id */
  [name: string]: string | { id: number };
}

/** Every program the exporter loaded: <bpffs>/progs/* and the programs of <bpffs>/links/*\/*. */
async function programPins(bpftool: Bpftool, bpffsDir: string): Promise<ProgPins> {
  const out: ProgPins = {};
  const progDir = path.join(bpffsDir, 'progs');
  for (const name of await readdir(progDir)) out[name] = path.join(progDir, name);
  const linkDir = path.join(bpffsDir, 'links');
  for (const obj of await readdir(linkDir).catch(() => [])) {
    for (const name of await readdir(path.join(linkDir, obj))) {
      const link = await bpftool.linkShow(path.join(linkDir, obj, name));
      out[`${obj}/${name}`] = { id: Number(link.prog_id) };
    }
  }
  if (!out.dns_egress || !out.dns_ingress)
    throw new Error(`the exporter pinned no dns_egress/dns_ingress under ${progDir}`);
  return out;
}

type RunStats = Record<string, { ns: bigint; cnt: bigint }>;

async function runStats(bpftool: Bpftool, progs: ProgPins): Promise<RunStats> {
  const out: RunStats = {};
  for (const [name, ref] of Object.entries(progs)) {
    const info = (await bpftool.progShow(ref)) as Record<string, unknown>;
    // bpftool leaves run_time_ns/run_cnt out while they are 0
    out[name] = {
      ns: BigInt((info.run_time_ns as number) ?? 0),
      cnt: BigInt((info.run_cnt as number) ?? 0),
    };
  }
  return out;
}

async function cgroupCpuSeconds(dir: string): Promise<number> {
  const text = await readFile(path.join(dir, 'cpu.stat'), 'utf8');
  const m = /^usage_usec (\d+)$/m.exec(text);
  if (!m) throw new Error(`${dir}/cpu.stat has no usage_usec: ${text}`);
  return Number(m[1]) / 1e6;
}

/** VmHWM and VmRSS in MB of every process in a cgroup, by command name. */
async function rssOf(dir: string): Promise<Record<string, { hwmMb: number; rssMb: number }>> {
  const out: Record<string, { hwmMb: number; rssMb: number }> = {};
  const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8');
  for (const pid of procs.split('\n').filter(Boolean)) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const name = /^Name:\s+(\S+)/m.exec(status)?.[1];
    const hwm = /^VmHWM:\s+(\d+)/m.exec(status)?.[1];
    const rss = /^VmRSS:\s+(\d+)/m.exec(status)?.[1];
    if (name && hwm && rss) out[name] = { hwmMb: Number(hwm) / 1024, rssMb: Number(rss) / 1024 };
  }
  return out;
}

const waitForStderr = (c: ResultPromise, re: RegExp, what: string) =>
  waitForOutput(c, 'stderr', re, what);
const waitForStdout = (c: ResultPromise, re: RegExp, what: string) =>
  waitForOutput(c, 'stdout', re, what);

async function waitForOutput(
  child: ResultPromise,
  stream: 'stdout' | 'stderr',
  re: RegExp,
  what: string,
): Promise<void> {
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not print ${re} within 30 s: ${err}`)),
      30_000,
    );
    child[stream]?.on('data', (d: Buffer) => {
      err += d.toString();
      if (re.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${r.exitCode}): ${r.stderr}`));
    });
  });
}

/** Waits until a cgroup's CPU stops growing (< 2 % of a core twice in a row), at most 60 s. */
async function settle(dir: string): Promise<void> {
  let last = await cgroupCpuSeconds(dir);
  let quiet = 0;
  for (let i = 0; i < 240 && quiet < 2; i++) {
    await sleep(250);
    const now = await cgroupCpuSeconds(dir);
    quiet = now - last < 0.005 ? quiet + 1 : 0;
    last = now;
  }
}

interface DnsRow {
  queries: number;
  latencyCount: number;
  latencySumNs: bigint;
  latency: number[];
}

/** The pod's client-side dns_stats rows (all qtypes) summed. */
async function podRow(bpftool: Bpftool, pin: string, cgroupId: bigint): Promise<DnsRow> {
  const out: DnsRow = {
    queries: 0,
    latencyCount: 0,
    latencySumNs: 0n,
    latency: new Array<number>(LAT_SLOTS).fill(0),
  };
  for (const row of decodeDnsStats(await bpftool.mapDump(pin))) {
    if (row.cgroupId !== cgroupId || row.role !== 'client') continue;
    out.queries += row.queries;
    out.latencyCount += row.latencyCount;
    out.latencySumNs += row.latencySumNs;
    row.latency.forEach((v, i) => (out.latency[i]! += v));
  }
  return out;
}

interface RoundInput {
  s: Scratch;
  spreadLoad: string;
  bpftool: Bpftool;
  cg: Record<'exporter' | 'tshark' | 'tcpdump' | 'offline', string>;
  podCgroup: string;
  podCgroupId: bigint;
  statsPin: string;
  progs: ProgPins;
  pcap: string;
  emptyPcap: string;
  queries: number;
  rate: number;
  sockets: number;
}

interface Latencies {
  summary: DistributionSummary;
  meanUs: number;
  /** exact quantiles of the raw values (captures only) */
  rawUs?: { p50: number; p90: number; p99: number };
}

interface RoundResult {
  sent: number;
  answered: number;
  loadSeconds: number;
  /** from just before the load until tshark and tcpdump have exited: the CPU window */
  windowSeconds: number;
  cpuS: {
    bpf: number;
    bpfDnsPrograms: number;
    exporter: number;
    tsharkLive: number;
    tsharkLiveStartup: number;
    tcpdump: number;
    offlineGross: number;
    offlineStartup: number;
    offlineNet: number;
  };
  bpfRunNs: Record<string, { runs: number; nsPerRun: number }>;
  tsharkDrainSeconds: number;
  tsharkRssMb: Record<string, { hwmMb: number; rssMb: number }>;
  tsharkStderr: string;
  tcpdumpStderr: string;
  pcapMb: number;
  latency: {
    dnsrace: Latencies;
    tsharkLive: Latencies;
    tsharkOffline: Latencies;
    liveVsDnsrace: Agreement;
    offlineVsDnsrace: Agreement;
  };
}

function captureLatencies(values: number[]): Latencies {
  const us = (q: number) => quantile(values, q) * 1e6;
  return {
    summary: summarizeSlots(slotHistogram(values)),
    meanUs: (values.reduce((a, b) => a + b, 0) / values.length) * 1e6,
    rawUs: { p50: us(0.5), p90: us(0.9), p99: us(0.99) },
  };
}

async function round(i: RoundInput): Promise<RoundResult> {
  const { s } = i;
  const tsharkStart = await cgroupCpuSeconds(i.cg.tshark); // the cgroup outlives the round
  const tcpdump = s.spawnIn(i.cg.tcpdump, s.clientNs, [
    'tcpdump',
    '-i',
    IFACE,
    '-n',
    '-p',
    '-s',
    '128',
    '-B',
    '8192',
    '-w',
    i.pcap,
    'udp port 53',
  ]);
  const tshark = s.spawnIn(i.cg.tshark, s.clientNs, [
    'tshark',
    '-i',
    IFACE,
    '-p',
    '-f',
    'udp port 53',
    ...DNS_TIME_ARGS,
  ]);
  try {
    await waitForStderr(tcpdump, /listening on/, 'tcpdump');
    await waitForStderr(tshark, /Capturing on/, 'tshark');
    await settle(i.cg.tshark); // start-up (dissector registration) done
    const cpu0 = {
      tshark: await cgroupCpuSeconds(i.cg.tshark),
      tcpdump: await cgroupCpuSeconds(i.cg.tcpdump),
    };
    const row0 = await podRow(i.bpftool, i.statsPin, i.podCgroupId);
    const bpf0 = await runStats(i.bpftool, i.progs);
    const t0 = process.hrtime.bigint();
    const exporterCpu0 = await cgroupCpuSeconds(i.cg.exporter);
    const client = await s.spawnIn(i.podCgroup, s.clientNs, [
      i.spreadLoad,
      'client',
      SERVER_IP,
      '53',
      String(i.queries),
      String(i.rate),
      String(i.sockets),
    ]);
    const loadSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const m = /sent (\d+) answered (\d+)/.exec(String(client.stdout));
    if (!m || client.exitCode !== 0) throw new Error(`load client failed: ${client.stderr}`);
    const sent = Number(m[1]);
    const answered = Number(m[2]);
    const t1 = process.hrtime.bigint();
    await settle(i.cg.tshark); // tshark catches up with what dumpcap has captured
    const tsharkDrainSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    const tsharkRssMb = await rssOf(i.cg.tshark);
    tshark.kill('SIGINT');
    tcpdump.kill('SIGINT');
    const [live, dump] = await Promise.all([tshark, tcpdump]);
    if (live.exitCode !== 0) throw new Error(`tshark exited ${live.exitCode}: ${live.stderr}`);
    if (dump.exitCode !== 0) throw new Error(`tcpdump exited ${dump.exitCode}: ${dump.stderr}`);
    const bpf1 = await runStats(i.bpftool, i.progs);
    const exporterCpu1 = await cgroupCpuSeconds(i.cg.exporter);
    const windowSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const row1 = await podRow(i.bpftool, i.statsPin, i.podCgroupId);
    const cpu1 = {
      tshark: await cgroupCpuSeconds(i.cg.tshark),
      tcpdump: await cgroupCpuSeconds(i.cg.tcpdump),
    };

    const offStart0 = await cgroupCpuSeconds(i.cg.offline);
    await runIn(s, i.cg.offline, ['tshark', '-r', i.emptyPcap, ...DNS_TIME_ARGS]);
    const offline0 = await cgroupCpuSeconds(i.cg.offline);
    const offline = await runIn(s, i.cg.offline, ['tshark', '-r', i.pcap, ...DNS_TIME_ARGS]);
    const offline1 = await cgroupCpuSeconds(i.cg.offline);

    const bpfRunNs: RoundResult['bpfRunNs'] = {};
    let bpfNs = 0n;
    let dnsNs = 0n;
    for (const [name, after] of Object.entries(bpf1)) {
      const before = bpf0[name]!;
      const ns = after.ns - before.ns;
      const runs = Number(after.cnt - before.cnt);
      bpfRunNs[name] = { runs, nsPerRun: runs ? Number(ns) / runs : 0 };
      bpfNs += ns;
      if (name === 'dns_egress' || name === 'dns_ingress') dnsNs += ns;
    }
    if (!bpfRunNs.dns_egress?.runs || !bpfRunNs.dns_ingress?.runs)
      throw new Error(`the DNS programs never ran (is bpf_stats on?): ${JSON.stringify(bpfRunNs)}`);

    const kernelSlots = slotDelta(row1.latency, row0.latency);
    const kernelCount = row1.latencyCount - row0.latencyCount;
    const liveValues = parseDnsTimes(String(live.stdout));
    const offlineValues = parseDnsTimes(String(offline.stdout));
    if (liveValues.length === 0 || offlineValues.length === 0 || kernelCount === 0)
      throw new Error(
        `no latencies: tshark live ${liveValues.length}, offline ${offlineValues.length}, dnsrace ${kernelCount}`,
      );
    const dnsrace: Latencies = {
      summary: summarizeSlots(kernelSlots),
      meanUs: Number((row1.latencySumNs - row0.latencySumNs) / BigInt(kernelCount)) / 1e3,
    };
    return {
      sent,
      answered,
      loadSeconds,
      windowSeconds,
      cpuS: {
        bpf: Number(bpfNs) / 1e9,
        bpfDnsPrograms: Number(dnsNs) / 1e9,
        exporter: exporterCpu1 - exporterCpu0,
        tsharkLive: cpu1.tshark - cpu0.tshark,
        tsharkLiveStartup: cpu0.tshark - tsharkStart,
        tcpdump: cpu1.tcpdump - cpu0.tcpdump,
        offlineGross: offline1 - offline0,
        offlineStartup: offline0 - offStart0,
        offlineNet: offline1 - offline0 - (offline0 - offStart0),
      },
      bpfRunNs,
      tsharkDrainSeconds,
      tsharkRssMb,
      tsharkStderr: lastLines(String(live.stderr)),
      tcpdumpStderr: lastLines(String(dump.stderr)),
      pcapMb: (await stat(i.pcap)).size / 1e6,
      latency: {
        dnsrace,
        tsharkLive: captureLatencies(liveValues),
        tsharkOffline: captureLatencies(offlineValues),
        liveVsDnsrace: compareSlots(slotHistogram(liveValues), kernelSlots),
        offlineVsDnsrace: compareSlots(slotHistogram(offlineValues), kernelSlots),
      },
    };
  } finally {
    for (const c of [tshark, tcpdump]) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all([tshark, tcpdump]);
  }
}

async function runIn(s: Scratch, cgroup: string, argv: string[]) {
  const r = await s.spawnIn(cgroup, s.clientNs, argv);
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
  return r;
}

function lastLines(text: string): string {
  return text
    .split('\n')
    .filter((l) => /packets|dropped|captured/.test(l))
    .join('; ');
}

function report(
  log: VsCaptureOptions['log'],
  p: {
    queries: number;
    rate: number;
    rounds: number;
    sockets: number;
    delayUs: number[];
    readInterval: string;
  },
  rounds: RoundResult[],
  check: {
    exporterQueries: number;
    sent: number;
    exporterRss: Record<string, { hwmMb: number; rssMb: number }>;
  },
) {
  const per = (f: (r: RoundResult) => number) =>
    summarize(rounds.map((r) => (f(r) / r.answered) * PER));
  const ratio = (num: (r: RoundResult) => number, den: (r: RoundResult) => number) =>
    summarize(rounds.map((r) => num(r) / den(r)));
  const dnsraceTotal = (r: RoundResult) => r.cpuS.bpf + r.cpuS.exporter;
  const offlineTotal = (r: RoundResult) => r.cpuS.tcpdump + r.cpuS.offlineNet;
  const perQueries: Record<string, Summary> = {
    bpfPrograms: per((r) => r.cpuS.bpf),
    bpfDnsPrograms: per((r) => r.cpuS.bpfDnsPrograms),
    exporter: per((r) => r.cpuS.exporter),
    dnsraceTotal: per(dnsraceTotal),
    tsharkLive: per((r) => r.cpuS.tsharkLive),
    tcpdump: per((r) => r.cpuS.tcpdump),
    tsharkOfflineNet: per((r) => r.cpuS.offlineNet),
    tcpdumpPlusOffline: per(offlineTotal),
  };
  const ratios = {
    tsharkLive: ratio((r) => r.cpuS.tsharkLive, dnsraceTotal),
    tcpdumpPlusOffline: ratio(offlineTotal, dnsraceTotal),
  };
  const once = {
    tsharkLiveStartupS: summarize(rounds.map((r) => r.cpuS.tsharkLiveStartup)),
    tsharkOfflineStartupS: summarize(rounds.map((r) => r.cpuS.offlineStartup)),
    tsharkDrainSeconds: summarize(rounds.map((r) => r.tsharkDrainSeconds)),
    tsharkPeakRssMb: summarize(rounds.map((r) => r.tsharkRssMb.tshark?.hwmMb ?? NaN)),
    dumpcapPeakRssMb: summarize(rounds.map((r) => r.tsharkRssMb.dumpcap?.hwmMb ?? NaN)),
    windowSeconds: summarize(rounds.map((r) => r.windowSeconds)),
    exporterCorePercent: summarize(rounds.map((r) => (r.cpuS.exporter / r.windowSeconds) * 100)),
    dnsEgressNsPerRun: summarize(rounds.map((r) => r.bpfRunNs.dns_egress!.nsPerRun)),
    dnsIngressNsPerRun: summarize(rounds.map((r) => r.bpfRunNs.dns_ingress!.nsPerRun)),
  };

  log(
    `\n## versus a user-space capture (${p.rounds} rounds x ${p.queries} queries at ${p.rate}/s from one open-loop client (${p.sockets} sockets) in one pod, answered after ${p.delayUs[0]}-${p.delayUs[1]} µs; tshark live, tcpdump and dnsrace watch the same load; exporter --read-interval ${p.readInterval})`,
  );
  log(
    'CPU s per 100k queries, median (min-max, n)        | dnsrace total is this many times lower',
  );
  const row = (name: string, v: Summary, r?: Summary) =>
    log(`${name.padEnd(50)} | ${fmt(v, 3).padEnd(28)} ${r ? `| ${fmt(r, 0)}x` : ''}`);
  row('dnsrace: BPF programs (run_time_ns, all)', perQueries.bpfPrograms!);
  row('dnsrace: of which dns_egress + dns_ingress', perQueries.bpfDnsPrograms!);
  row('dnsrace: exporter process (+ bpftool children)', perQueries.exporter!);
  row('dnsrace: total', perQueries.dnsraceTotal!);
  row(
    'tshark live, dns.time (+ dumpcap), after start-up',
    perQueries.tsharkLive!,
    ratios.tsharkLive,
  );
  row('tcpdump -w (tmpfs)', perQueries.tcpdump!);
  row('tshark -r offline, net of its start-up', perQueries.tsharkOfflineNet!);
  row('tcpdump + tshark -r', perQueries.tcpdumpPlusOffline!, ratios.tcpdumpPlusOffline);
  log(
    `dns_egress ${fmt(once.dnsEgressNsPerRun)} ns/run, dns_ingress ${fmt(once.dnsIngressNsPerRun)} ns/run; exporter ${fmt(once.exporterCorePercent, 2)} % of a core over a ${fmt(once.windowSeconds, 1)} s window`,
  );
  log(
    `tshark start-up CPU s: live ${fmt(once.tsharkLiveStartupS, 2)}, -r ${fmt(once.tsharkOfflineStartupS, 2)}; live drain after the load ${fmt(once.tsharkDrainSeconds, 1)} s`,
  );
  log(
    `peak RSS MB: tshark ${fmt(once.tsharkPeakRssMb, 0)}, dumpcap ${fmt(once.dumpcapPeakRssMb, 0)}; exporter node now ${check.exporterRss.node?.rssMb.toFixed(0) ?? '-'} (peak ${check.exporterRss.node?.hwmMb.toFixed(0) ?? '-'})`,
  );
  log(
    'latency per round     | count  | p50 bucket le µs | p90       | p99       | mean µs | raw p50/p99 µs | slots p50/p99 vs dnsrace | max CDF diff',
  );
  rounds.forEach((r, n) => {
    const line = (name: string, l: Latencies, a?: Agreement) =>
      log(
        `${`${n + 1} ${name}`.padEnd(21)} | ${String(l.summary.count).padEnd(6)} | ${l.summary.p50.leUs.toFixed(0).padEnd(16)} | ${l.summary.p90.leUs.toFixed(0).padEnd(9)} | ${l.summary.p99.leUs.toFixed(0).padEnd(9)} | ${l.meanUs.toFixed(1).padEnd(7)} | ${l.rawUs ? `${l.rawUs.p50.toFixed(0)}/${l.rawUs.p99.toFixed(0)}` : '-'.padEnd(14)} | ${a ? `${a.slotDiff.p50}/${a.slotDiff.p99}${a.withinOneBucket ? ' (within 1)' : ' (NOT within 1)'}` : '-'} | ${a ? a.maxCdfDiff.toFixed(3) : '-'}`,
      );
    line('dnsrace', r.latency.dnsrace);
    line('tshark live', r.latency.tsharkLive, r.latency.liveVsDnsrace);
    line('tshark -r', r.latency.tsharkOffline, r.latency.offlineVsDnsrace);
    log(
      `${' '.repeat(21)}   answered ${r.answered}/${r.sent}; tshark: ${r.tsharkStderr}; tcpdump: ${r.tcpdumpStderr}`,
    );
  });
  log(
    `exporter /metrics dnsrace_dns_pod_queries_total: ${check.exporterQueries} (sent ${check.sent})`,
  );
  return { params: p, perQueries, ratios, once, check, rounds };
}
