// The real exporter in the lab, scraped by a real Prometheus (Debian's 2.42, native
// histograms on) while one namespace's lookups stall 5 s: the native and the classic
// p99 agree within one bucket, the stalled namespace's p99 is >= 5 s, the other's < 100 ms.
// Job "native" lets Prometheus negotiate (protobuf); job "classic" goes through a proxy that
// asks for OpenMetrics, like a Prometheus without native histograms.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Lab } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { Prometheus } from '../support/prometheus.js';
import { sumOf } from '../support/prom-text.js';
import { leSeconds, NAMESPACE_LE_INDICES } from '../../src/dns/classic-buckets.js';

const H = 'dnsrace_dns_query_duration_seconds';
const OPENMETRICS = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5';

let lab: Lab;
let exporter: ExporterProcess;
let proxy: Server;
let prometheus: Prometheus | undefined;

/** Index of the classic bucket (then +Inf) whose range holds v seconds. */
function classicBucketOf(v: number): number {
  const i = NAMESPACE_LE_INDICES.findIndex((idx) => v <= leSeconds(idx));
  return i < 0 ? NAMESPACE_LE_INDICES.length : i;
}

beforeAll(async () => {
  lab = await Lab.create({});
  exporter = new ExporterProcess({
    cgroupRoot: lab.cgroupDir,
    bpffsDir: `${lab.bpffsDir}/exporter`,
    podLogDir: lab.varLogPods,
    readInterval: '500ms',
  });
  await exporter.start();
  // /native/metrics passes Prometheus's Accept through; /classic/metrics asks for OpenMetrics.
  proxy = createServer((req, res) => {
    const accept = req.url?.startsWith('/classic') ? OPENMETRICS : (req.headers.accept ?? '');
    fetch(`http://127.0.0.1:${exporter.port}/metrics`, { headers: { accept } })
      .then(async (r) => {
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? '' });
        res.end(Buffer.from(await r.arrayBuffer()));
      })
      .catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const target = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  prometheus = await Prometheus.start({
    jobs: [
      { job: 'native', target, metricsPath: '/native/metrics' },
      { job: 'classic', target, metricsPath: '/classic/metrics' },
    ],
  });
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await exporter?.stop();
  await lab?.destroy();
}, 60_000);

describe('native and classic latency histograms through a real Prometheus (lab)', () => {
  it('tells a stalled namespace from a fast one, and both kinds agree within a bucket', async () => {
    const slow = await lab.addPod({ namespace: 'stalled', name: 'checkout-1' });
    const fast = await lab.addPod({ namespace: 'fast', name: 'web-1' });
    // rate() needs a sample of each series (namespace x qtype) from before the lookups it
    // measures: one lookup each, then wait until both jobs have scraped all four.
    await slow.getent('web.team-a.svc.cluster.local.'); // A and AAAA
    await fast.getent('web.team-a.svc.cluster.local.');
    const seen = `count(${H}_count{job="classic"}) + count(histogram_count(${H}{job="native"}))`;
    const until = Date.now() + 30_000;
    while ((await prometheus!.scalar(seen)) !== 8 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 250));
    expect(await prometheus!.scalar(seen)).toBe(8);
    // One AAAA query of one lookup is lost: glibc re-sends it after its 5 s timeout.
    const undo = await lab.dropQueries({ qtype: 'AAAA', count: 1, fromPod: slow });
    const stalled = slow.getent('web.team-a.svc.cluster.local.');
    for (let i = 0; i < 10; i++)
      await fast.dig('web.team-a.svc.cluster.local', { options: ['+tries=1'] });
    for (let i = 0; i < 2; i++)
      await slow.dig('web.team-a.svc.cluster.local', { options: ['+tries=1'] });
    expect((await stalled).durationMs).toBeGreaterThan(4_500);
    await undo();
    const s = await exporter.freshScrape();
    const answered = sumOf(s, `${H}_count`, { namespace: 'stalled' });
    expect(answered).toBeGreaterThanOrEqual(4);

    // Both jobs have scraped the final counts.
    const caught = (job: string) =>
      `sum(${H}_count{job="${job}",namespace="stalled"}) or sum(histogram_count(${H}{job="${job}",namespace="stalled"}))`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const [n, c] = await Promise.all([
        prometheus!.scalar(caught('native')),
        prometheus!.scalar(caught('classic')),
      ]);
      if (n === answered && c === answered) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await prometheus!.scalar(caught('native'))).toBe(answered);
    expect(await prometheus!.scalar(caught('classic'))).toBe(answered);
    // Prometheus 2.42 stores the protobuf scrape as a native histogram only.
    expect((await prometheus!.query(`${H}_bucket{job="native"}`)).length).toBe(0);

    const p99 = async (expr: string) => {
      const out: Record<string, number> = {};
      for (const v of await prometheus!.query(expr))
        out[v.metric.namespace ?? ''] = Number(v.value?.[1]);
      return out;
    };
    const native = await p99(
      `histogram_quantile(0.99, sum by (namespace) (rate(${H}{job="native"}[2m])))`,
    );
    const classic = await p99(
      `histogram_quantile(0.99, sum by (namespace, le) (rate(${H}_bucket{job="classic"}[2m])))`,
    );
    for (const ns of ['stalled', 'fast']) {
      expect(native[ns], `native p99 of ${ns}`).toBeDefined();
      expect(classic[ns], `classic p99 of ${ns}`).toBeDefined();
      expect(
        Math.abs(classicBucketOf(native[ns]!) - classicBucketOf(classic[ns]!)),
      ).toBeLessThanOrEqual(1);
    }
    expect(native.stalled).toBeGreaterThanOrEqual(5);
    expect(classic.stalled).toBeGreaterThanOrEqual(5);
    expect(native.fast).toBeLessThan(0.1);
    expect(classic.fast).toBeLessThan(0.1);
  }, 120_000);
});
