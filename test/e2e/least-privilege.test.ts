// The exporter with only the capabilities the least-privilege DaemonSet grants (CAP_BPF,
// CAP_PERFMON, CAP_NET_ADMIN; no CAP_SYS_ADMIN), on the real kernel: setpriv cuts the
// bounding set, so the exporter and every bpftool it runs hold exactly those. It must load,
// attach, read every map (declared without key/value BTF: bpftool fetches nothing by ID),
// count a lab pod's lookups exactly, and detach everything on SIGTERM (by pinned path:
// listing attachments needs CAP_SYS_ADMIN). Needs setpriv (apt-get install util-linux).
import { readdir } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { sumOf } from '../support/prom-text.js';
import { groundTruth } from '../support/dns-truth.js';

const CAPS = ['bpf', 'perfmon', 'net_admin'];

let lab: Lab;
let exporter: ExporterProcess;
let bpffsDir: string;
let options: ConstructorParameters<typeof ExporterProcess>[0];

beforeAll(async () => {
  const setpriv = await execa('setpriv', ['--version'], { reject: false });
  if (setpriv.exitCode !== 0)
    throw new Error('setpriv not found: apt-get install util-linux', { cause: setpriv });
  lab = await Lab.create({});
  bpffsDir = `${lab.bpffsDir}/exporter`;
  options = {
    cgroupRoot: lab.cgroupDir,
    bpffsDir,
    podLogDir: lab.varLogPods,
    extraArgs: ['--conntrack-stat-file', '/nonexistent'],
    commandPrefix: [
      'setpriv',
      '--inh-caps=-all',
      '--ambient-caps=-all',
      `--bounding-set=-all,${CAPS.map((c) => `+${c}`).join(',')}`,
      '--no-new-privs',
      '--',
    ],
  };
  exporter = new ExporterProcess(options);
  await exporter.start();
}, 120_000);

afterAll(async () => {
  await exporter?.stop();
  await lab?.destroy();
}, 60_000);

/** Names of the programs bpftool (with every capability, as the test runs) sees attached. */
async function attachedTo(cgroupDir: string): Promise<string[]> {
  const r = await execa('bpftool', ['-j', 'cgroup', 'show', cgroupDir]);
  return (JSON.parse(r.stdout || '[]') as { name: string }[]).map((p) => p.name).sort();
}

describe('least privilege: CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN only (real kernel)', () => {
  it('holds exactly those, and says what it goes without', async () => {
    const s = await exporter.freshScrape();
    const cap = (c: string) => sumOf(s, 'dnsrace_capability', { capability: c });
    expect([cap('CAP_BPF'), cap('CAP_PERFMON'), cap('CAP_NET_ADMIN')]).toEqual([1, 1, 1]);
    expect(cap('CAP_SYS_ADMIN')).toBe(0);
    expect(exporter.logs).toMatch(/missing capability CAP_SYS_ADMIN, needed to let libbpf find/);
    expect(exporter.logs).not.toMatch(/failed to get btf/);
    // The map iterators are tracing programs: CAP_BPF and CAP_PERFMON load them.
    expect(exporter.logs).not.toMatch(/cannot pin an iterator/);
    expect((await readdir(`${bpffsDir}/iters`)).sort()).toEqual(['dns_pending', 'dns_stats']);
    // The kfree_skb tracepoint needs only CAP_PERFMON.
    expect(sumOf(s, 'dnsrace_drop_attribution_mode', { mode: 'tracepoint' })).toBe(1);
    expect(await attachedTo(lab.cgroupDir)).toEqual(['dns_egress', 'dns_ingress']);
  });

  it("reads the maps: a pod's lookups are counted exactly", async () => {
    const pod = await lab.addPod({ namespace: 'least-priv', name: 'web-1' });
    const cap = await lab.captureDns(pod);
    for (const name of ['a.example.', 'b.example.', 'web.team-a.svc.cluster.local.'])
      await pod.getent(name);
    const truth = groundTruth(await cap.stop());
    const want = truth.queries.A + truth.queries.AAAA + truth.queries.other;
    expect(want).toBeGreaterThanOrEqual(6);
    const s = await exporter.until(
      (x) => sumOf(x, 'dnsrace_dns_queries_total', { namespace: 'least-priv' }) >= want,
      15_000,
    );
    expect(sumOf(s, 'dnsrace_dns_queries_total', { namespace: 'least-priv' })).toBe(want);
    expect(sumOf(s, 'dnsrace_dns_query_duration_seconds_count', { namespace: 'least-priv' })).toBe(
      want,
    );
    expect(sumOf(s, 'dnsrace_bpftool_failures_total')).toBe(0);
  }, 60_000);

  it('after SIGKILL, a restart keeps the identical programs attached, once each', async () => {
    const before = await exporter.freshScrape();
    await exporter.kill();
    exporter = new ExporterProcess(options);
    await exporter.start();
    expect(exporter.logs).toMatch(/programs of an earlier run are still pinned and identical/);
    expect(await attachedTo(lab.cgroupDir)).toEqual(['dns_egress', 'dns_ingress']);
    const after = await exporter.freshScrape();
    const q = (s: typeof before) =>
      sumOf(s, 'dnsrace_dns_queries_total', { namespace: 'least-priv' });
    expect(q(after)).toBeGreaterThanOrEqual(q(before)); // the pinned maps kept counting
    expect(q(after)).toBeGreaterThan(0);
  }, 60_000);

  it('detaches everything on SIGTERM and keeps only the map pins', async () => {
    expect(await exporter.stop()).toBe(0);
    expect(await attachedTo(lab.cgroupDir)).toEqual([]);
    expect(await readdir(bpffsDir)).toEqual(['maps']);
  }, 30_000);
});
