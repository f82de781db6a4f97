// Soak: mixed lookups with pod churn for DNSRACE_SOAK_MINUTES (default 2, the CI form; the
// full run is 30). Three steady pods resolve in loops (glibc search-list walks, musl, dig of
// A/AAAA/TXT, NXDOMAIN, TCP) while a churn worker creates a pod every 2 s, makes four known
// lookups from it (dig: A, AAAA, TXT, NXDOMAIN), and deletes it 8 s later: 60 pods in the CI
// form, 900 in 30 minutes (netns pods while the lab's /24 lasts, 240 of them; then
// hostNetwork pods, test/load/hostnet-pod.ts). The exporter ends a deleted pod's series after
// --pod-series-grace 20s and folds its counts into its namespace.
//
// Sampled every 5 s after a 30 s warm-up: exporter RSS, open fds, child processes, series on
// /metrics, map occupancy (dnsrace_bpf_map_entries), scrape time. Asserted: no upward trend
// (median of the last third against the first third), series within the README's budget at
// every sample, namespace counters never go backwards and in the end equal exactly the
// lookups the churn pods made, no overflow or bpftool failure; after the run no churn pod
// keeps a series, stopping leaves only map pins, and the lab leaves no netns, cgroup or pin.
//
// Run:      npx vitest run --project e2e test/e2e/soak.test.ts                (~3 min)
// Full run: DNSRACE_SOAK_MINUTES=30 npx vitest run --project e2e test/e2e/soak.test.ts
// The samples are written to test-artifacts/soak-<minutes>min.json (docs/reliability.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Lab, type Pod } from '../lab/index.js';
import { ensureMuslClient } from '../lab/clients.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { parsePromText, sumOf, type PromSample } from '../support/prom-text.js';
import { HostNetPod } from '../load/hostnet-pod.js';
import { exporterPid, MiB, sampleProc, type ProcSample } from '../load/proc-stats.js';
import { quantile, thirdsTrend, withinTrend, type Trend } from '../load/series-stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MINUTES = Number(process.env.DNSRACE_SOAK_MINUTES ?? '2');
if (!(MINUTES >= 1 && MINUTES <= 24 * 60))
  throw new Error(`DNSRACE_SOAK_MINUTES=${process.env.DNSRACE_SOAK_MINUTES}: give 1..1440`);
const RUN_MS = MINUTES * 60_000;
const WARMUP_MS = 30_000;
const SAMPLE_MS = 5_000;
const CHURN_EVERY_MS = 2_000;
const POD_LIFETIME_MS = 8_000;
const GRACE_MS = 20_000;
/** src/identity/setup.ts REFRESH_MS: the cgroup index's periodic rescan. */
const CGROUP_RESCAN_MS = 30_000;
const POD_SERIES_LIMIT = 250;
const CHURN_NAMESPACES = 5;
/** Lab.addPod hands out 251 addresses; 2 replicas and 3 steady pods take theirs first. */
const NETNS_CHURN_BUDGET = 240;
const DNS = '10.96.0.10';
const Q = 'dnsrace_dns_queries_total';
const PODQ = 'dnsrace_dns_pod_queries_total';
const MAPS = ['dns_pending', 'dns_retry_index', 'dns_stats', 'dns_client_addrs', 'packet_drops'];

/** A churn pod's lookups: four queries, one per line (name, type), per qtype label. */
const CHURN_LOOKUPS = [
  ['web.team-a.svc.cluster.local', 'A'],
  ['web.team-a.svc.cluster.local', 'AAAA'],
  ['db.prod.svc.cluster.local', 'TXT'],
  ['nothere.churn.svc.cluster.local', 'A'],
] as const;
const CHURN_SCRIPT =
  'while read -r name type; do dig @' +
  DNS +
  ' +tries=1 +time=2 "$name" "$type" >/dev/null; done <<EOF\n' +
  CHURN_LOOKUPS.map(([n, t]) => `${n} ${t}`).join('\n') +
  '\nEOF';

interface Sample {
  atS: number;
  proc: ProcSample;
  series: number;
  scrapeMs: number;
  maps: Record<string, number>;
  /** dnsrace_bpf_map_max_entries per map */
  mapMax: Record<string, number>;
  budget: number;
  podsWithSeries: number;
  namespaceQueries: Record<string, number>;
  /** The exporter's own view (nodejs_*): V8 heap in use, and buffers outside it. */
  heapUsedBytes: number;
  externalBytes: number;
}

let lab: Lab;
let exporter: ExporterProcess;
let pid: number;
const bpffsDir = () => `${lab.bpffsDir}/exporter`;

function startExporter(): Promise<void> {
  exporter = new ExporterProcess({
    cgroupRoot: lab.cgroupDir,
    bpffsDir: bpffsDir(),
    podLogDir: lab.varLogPods,
    extraArgs: [
      '--kube-api',
      'off',
      '--pod-series-grace',
      `${GRACE_MS}ms`,
      '--pod-series-limit',
      String(POD_SERIES_LIMIT),
      '--log-level',
      'info',
      // not the default 127.0.0.1:9854, which another exporter on the host may hold
      '--drilldown-listen-address',
      '127.0.0.1:0',
    ],
  });
  return exporter.start();
}

/** README: 122·N + 87·S + 24·(min(P, L) + N) + 60. */
function seriesBudget(s: PromSample[]): { budget: number; pods: number } {
  const namespaces = new Set(s.filter((x) => x.name === Q).map((x) => x.labels.namespace)).size;
  const servers = new Set(
    s.filter((x) => x.name === 'dnsrace_dns_server_queries_total').map((x) => x.labels.namespace),
  ).size;
  const pods = new Set(
    s.filter((x) => x.name === PODQ).map((x) => `${x.labels.namespace}/${x.labels.pod}`),
  ).size;
  return {
    budget:
      122 * namespaces + 87 * servers + 24 * (Math.min(pods, POD_SERIES_LIMIT) + namespaces) + 60,
    pods,
  };
}

async function takeSample(t0: number): Promise<{ sample: Sample; samples: PromSample[] }> {
  const start = performance.now();
  const r = await fetch(`http://127.0.0.1:${exporter.port}/metrics`, {
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  const scrapeMs = performance.now() - start;
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status} during the soak`);
  const samples = parsePromText(text);
  const { budget, pods } = seriesBudget(samples);
  const namespaceQueries: Record<string, number> = {};
  for (const x of samples.filter((y) => y.name === Q))
    namespaceQueries[x.labels.namespace!] = (namespaceQueries[x.labels.namespace!] ?? 0) + x.value;
  return {
    samples,
    sample: {
      atS: Math.round((performance.now() - t0) / 100) / 10,
      proc: await sampleProc(pid),
      series: samples.length,
      scrapeMs,
      maps: Object.fromEntries(
        MAPS.map((m) => [m, sumOf(samples, 'dnsrace_bpf_map_entries', { map: m })]),
      ),
      mapMax: Object.fromEntries(
        MAPS.map((m) => [m, sumOf(samples, 'dnsrace_bpf_map_max_entries', { map: m })]),
      ),
      budget,
      podsWithSeries: pods,
      namespaceQueries,
      heapUsedBytes: sumOf(samples, 'nodejs_heap_size_used_bytes'),
      externalBytes: sumOf(samples, 'nodejs_external_memory_bytes'),
    },
  };
}

async function steadyLoops(): Promise<void> {
  const musl = await ensureMuslClient();
  const glibc = await lab.addPod({ namespace: 'steady-a', name: 'web-glibc' });
  const alpine = await lab.addPod({ namespace: 'steady-b', name: 'api-musl' });
  const digger = await lab.addPod({ namespace: 'steady-c', name: 'digger' });
  const loop = (body: string) => ['sh', '-c', `while :; do ${body}; sleep 0.5; done`];
  await glibc.spawn(
    loop('getent ahosts web.team-a >/dev/null; getent ahosts example.com >/dev/null'),
  );
  await alpine.spawn(loop(`${musl} api.example.org unspec >/dev/null`));
  await digger.spawn(
    loop(
      'dig +tries=1 +time=2 web.team-a.svc.cluster.local AAAA >/dev/null; ' +
        'dig +tries=1 +time=2 db.prod.svc.cluster.local TXT >/dev/null; ' +
        'dig +tries=1 +time=2 +tcp whoami.default.svc.cluster.local >/dev/null; ' +
        'dig +tries=1 +time=2 nothere.steady-c.svc.cluster.local >/dev/null',
    ),
  );
}

/** Creates pods every CHURN_EVERY_MS until `endAt`; returns the lookups made per namespace. */
async function churn(endAt: number, errors: string[]) {
  const expected = new Map<string, { A: number; AAAA: number; other: number }>();
  const lifecycles: Promise<void>[] = [];
  let netnsPods = 0;
  let hostNetPods = 0;
  for (let n = 0; Date.now() < endAt; n++) {
    const tick = Date.now();
    const namespace = `churn-${n % CHURN_NAMESPACES}`;
    const name = `c-${n}`;
    const useNetns = n % 2 === 0 && netnsPods < NETNS_CHURN_BUDGET;
    if (useNetns) netnsPods++;
    else hostNetPods++;
    lifecycles.push(
      (async () => {
        const born = Date.now();
        let pod: Pod | HostNetPod | undefined;
        try {
          pod = useNetns
            ? await lab.addPod({ namespace, name, qos: 'besteffort' })
            : await HostNetPod.create(lab, namespace, name);
          const r = await pod.exec(['sh', '-c', CHURN_SCRIPT]);
          if (r.exitCode !== 0) errors.push(`${namespace}/${name}: exit ${r.exitCode} ${r.stderr}`);
          const e = expected.get(namespace) ?? { A: 0, AAAA: 0, other: 0 };
          for (const [, t] of CHURN_LOOKUPS) e[t === 'A' || t === 'AAAA' ? t : 'other']++;
          expected.set(namespace, e);
          const left = POD_LIFETIME_MS - (Date.now() - born);
          if (left > 0) await new Promise((res) => setTimeout(res, left));
        } catch (err) {
          errors.push(`${namespace}/${name}: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          try {
            if (pod instanceof HostNetPod) await pod.delete();
            else if (pod) await lab.deletePod(pod);
          } catch (err) {
            errors.push(`deleting ${namespace}/${name}: ${String(err)}`);
          }
        }
      })(),
    );
    const wait = CHURN_EVERY_MS - (Date.now() - tick);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  await Promise.all(lifecycles);
  return { expected, netnsPods, hostNetPods };
}

function trendLine(what: string, t: Trend, unit = 1, suffix = ''): string {
  const f = (v: number) => (v / unit).toFixed(unit === 1 ? 0 : 1);
  return `${what} ${f(t.firstMedian)} -> ${f(t.lastMedian)}${suffix}`;
}

beforeAll(async () => {
  lab = await Lab.create({ logQueries: false });
  await startExporter();
  pid = await exporterPid(bpffsDir());
}, 120_000);

afterAll(async () => {
  await exporter?.stop();
  await lab?.destroy();
}, 60_000);

describe(`soak: ${MINUTES} min of mixed lookups and pod churn (real kernel)`, () => {
  it(
    'memory, descriptors, series and map occupancy stay bounded; counts exact; nothing leaks',
    async () => {
      const t0 = performance.now();
      await steadyLoops();
      const errors: string[] = [];
      const churning = churn(Date.now() + RUN_MS, errors);
      const samples: Sample[] = [];
      const backwards: string[] = [];
      let prev: Sample | undefined;
      await new Promise((r) => setTimeout(r, WARMUP_MS));
      while (performance.now() - t0 < RUN_MS) {
        const { sample } = await takeSample(t0);
        samples.push(sample);
        // Every namespace, `_unknown` too: a row nobody names yet is held out of the counters
        // briefly, and once shown keeps its label (src/dns/lifecycle.ts).
        for (const [ns, v] of Object.entries(prev?.namespaceQueries ?? {}))
          if ((sample.namespaceQueries[ns] ?? 0) < v)
            backwards.push(`${ns}: ${v} -> ${sample.namespaceQueries[ns] ?? 0} at ${sample.atS}s`);
        prev = sample;
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
      }
      const { expected, netnsPods, hostNetPods } = await churning;

      // Churn over: every deleted pod's series ends after the grace period, counted from
      // when the exporter sees its cgroup gone (a rescan on the next new cgroup, else every 30 s).
      const churnEnded = performance.now();
      const quiet = await exporter.until(
        (s) => !s.some((x) => x.name === PODQ && x.labels.namespace!.startsWith('churn-')),
        GRACE_MS + CGROUP_RESCAN_MS + 20_000,
      );
      const quietAfterS = (performance.now() - churnEnded) / 1000;
      const end = (await takeSample(t0)).sample;

      const pick = (f: (s: Sample) => number) => samples.map(f);
      const rss = thirdsTrend(pick((s) => s.proc.rssBytes));
      // Recorded, not asserted: where RSS growth would sit (heap, buffers, or neither).
      const heap = thirdsTrend(pick((s) => s.heapUsedBytes));
      const external = thirdsTrend(pick((s) => s.externalBytes));
      const fds = thirdsTrend(pick((s) => s.proc.fds));
      const series = thirdsTrend(pick((s) => s.series));
      const stats = thirdsTrend(pick((s) => s.maps.dns_stats!));
      const scrapeMs = pick((s) => s.scrapeMs);
      const summary = {
        minutes: MINUTES,
        pods: { netns: netnsPods, hostNetwork: hostNetPods, total: netnsPods + hostNetPods },
        samples: samples.length,
        rssMiB: {
          first: rss.firstMedian / MiB,
          last: rss.lastMedian / MiB,
          peak: Math.max(...pick((s) => s.proc.peakRssBytes)) / MiB,
        },
        heapUsedMiB: { first: heap.firstMedian / MiB, last: heap.lastMedian / MiB },
        externalMiB: { first: external.firstMedian / MiB, last: external.lastMedian / MiB },
        fds: {
          first: fds.firstMedian,
          last: fds.lastMedian,
          max: Math.max(...pick((s) => s.proc.fds)),
        },
        children: { max: Math.max(...pick((s) => s.proc.children)) },
        series: {
          first: series.firstMedian,
          last: series.lastMedian,
          max: Math.max(...pick((s) => s.series)),
          minBudget: Math.min(...pick((s) => s.budget)),
        },
        dnsStatsEntries: {
          first: stats.firstMedian,
          last: stats.lastMedian,
          max: Math.max(...pick((s) => s.maps.dns_stats!)),
        },
        dnsPendingMax: Math.max(...pick((s) => s.maps.dns_pending!)),
        // LRU, one entry per pod address: grows with netns churn (the lab never reuses one)
        dnsClientAddrsMax: Math.max(...pick((s) => s.maps.dns_client_addrs!)),
        packetDropsMax: Math.max(...pick((s) => s.maps.packet_drops!)),
        scrapeMs: {
          median: quantile(scrapeMs, 0.5),
          p95: quantile(scrapeMs, 0.95),
          max: Math.max(...scrapeMs),
        },
        lastChurnSeriesEndedAfterS: quietAfterS,
        // What the exporter warned about (bpftool failures name their operation here).
        warnings: exporter.logs
          .split('\n')
          .filter((l) => /"level":(40|50|60)/.test(l))
          .slice(-50),
        backwards,
        end: {
          series: end.series,
          rssMiB: end.proc.rssBytes / MiB,
          fds: end.proc.fds,
          maps: end.maps,
        },
      };
      await mkdir(path.join(ROOT, 'test-artifacts'), { recursive: true });
      await writeFile(
        path.join(ROOT, 'test-artifacts', `soak-${MINUTES}min.json`),
        JSON.stringify({ summary, samples }, null, 1),
      );
      console.log(
        `soak ${MINUTES} min: ${summary.pods.total} pods churned (${netnsPods} netns, ${hostNetPods} hostNetwork); ` +
          [
            trendLine('RSS MiB', rss, MiB),
            trendLine('heap used MiB', heap, MiB),
            trendLine('external MiB', external, MiB),
            trendLine('fds', fds),
            trendLine('series', series),
            trendLine('dns_stats rows', stats),
          ].join('; ') +
          `; scrape median ${summary.scrapeMs.median.toFixed(0)} ms, max ${summary.scrapeMs.max.toFixed(0)} ms`,
      );
      console.log(JSON.stringify(summary));

      // Soft from here to the clean-up checks: one failure must not hide the others.
      expect.soft(errors, 'churn pod errors').toEqual([]);
      // A counter that goes backwards reads as a reset to Prometheus (rate() over-counts).
      expect.soft(backwards, 'namespace query counters went backwards between samples').toEqual([]);
      expect.soft(samples.length).toBeGreaterThanOrEqual(12);
      expect.soft(summary.pods.total).toBeGreaterThanOrEqual((RUN_MS / CHURN_EVERY_MS) * 0.8);
      // No leak: the last third's median is not above the first third's beyond noise.
      expect.soft(withinTrend(rss, 0.25, 32 * MiB), trendLine('RSS', rss, MiB)).toBe(true);
      expect.soft(withinTrend(fds, 0, 4), trendLine('fds', fds)).toBe(true);
      expect.soft(withinTrend(series, 0.2, 50), trendLine('series', series)).toBe(true);
      expect.soft(withinTrend(stats, 0.2, 20), trendLine('dns_stats', stats)).toBe(true);
      const violations: string[] = [];
      for (const s of samples) {
        const at = `at ${s.atS}s`;
        if (s.series > s.budget) violations.push(`${s.series} series > budget ${s.budget} ${at}`);
        if (s.maps.dns_pending! >= 500) violations.push(`dns_pending ${s.maps.dns_pending} ${at}`);
        // A full map loses what does not fit: none may fill (drops are seen host-wide).
        for (const m of MAPS)
          if (s.mapMax[m] && s.maps[m]! >= s.mapMax[m]!) violations.push(`${m} full ${at}`);
        if (s.proc.children > 8) violations.push(`${s.proc.children} children ${at}`);
        if (s.scrapeMs >= 5_000) violations.push(`scrape ${s.scrapeMs.toFixed(0)} ms ${at}`);
      }
      expect.soft(violations.slice(0, 20), `${violations.length} sample violations`).toEqual([]);
      // Nothing lost: every churn lookup is in its namespace, deleted pods folded in.
      for (const [ns, e] of expected)
        for (const qtype of ['A', 'AAAA', 'other'] as const)
          expect.soft(sumOf(quiet, Q, { namespace: ns, qtype }), `${ns} ${qtype}`).toBe(e[qtype]);
      expect.soft(sumOf(quiet, 'dnsrace_bpf_map_overflows_total')).toBe(0);
      expect.soft(sumOf(quiet, 'dnsrace_bpftool_failures_total')).toBe(0);
      expect.soft(sumOf(quiet, 'dnsrace_bpf_parse_errors_total')).toBe(0);
      // After the churn only the live pods keep rows: bounded by what is alive, not by history.
      expect.soft(end.maps.dns_stats).toBeLessThanOrEqual(stats.firstMedian);
      const live = new Set([...lab.pods, ...lab.replicas].map((p) => `${p.namespace}/${p.name}`));
      const leftover = [
        ...new Set(
          quiet.filter((x) => x.name === PODQ).map((x) => `${x.labels.namespace}/${x.labels.pod}`),
        ),
      ].filter((p) => !live.has(p));
      expect.soft(leftover, 'pod series of pods no longer alive').toEqual([]);

      // Stopping leaves the map pins only, and nothing attached.
      expect(await exporter.stop()).toBe(0);
      const pins = await listTree(bpffsDir());
      expect(pins.length).toBeGreaterThan(0);
      for (const pin of pins) {
        const r = await execa('bpftool', ['-j', 'map', 'show', 'pinned', pin], { reject: false });
        expect(r.exitCode, `${pin} is not a map pin: ${r.stderr}`).toBe(0);
      }
      const attached = await execa('bpftool', ['-j', 'cgroup', 'tree', lab.cgroupDir], {
        reject: false,
      });
      expect(JSON.parse(attached.stdout || '[]'), 'programs still attached').toEqual([]);
      // Deleted pods left no netns, cgroup or log dir behind.
      const alive = lab.pods.length + lab.replicas.length;
      const netns = (await execa('ip', ['netns', 'list'])).stdout
        .split('\n')
        .filter((l) => l.startsWith(`${lab.names.labName}-p`));
      expect(netns.length).toBe(alive);
      expect((await readdir(lab.varLogPods)).length).toBe(alive);
      const podCgroups = (await listTree(lab.kubepodsDir, true)).filter((d) =>
        /-pod[0-9a-f_]+\.slice$/.test(d),
      );
      expect(podCgroups.length).toBe(alive);

      await lab.destroy();
      expect(existsSync(lab.cgroupDir)).toBe(false);
      expect(existsSync(lab.bpffsDir)).toBe(false);
      expect(existsSync(lab.root)).toBe(false);
      const left = (await execa('ip', ['netns', 'list'])).stdout;
      expect(left).not.toContain(lab.names.labName);
    },
    RUN_MS + 300_000,
  );
});

/** Files (or, with dirs, directories) under root, recursively; [] when root is gone. */
async function listTree(root: string, dirs = false): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (dirs) out.push(p);
        await walk(p);
      } else if (!dirs) out.push(p);
    }
  };
  await walk(root);
  return out;
}
