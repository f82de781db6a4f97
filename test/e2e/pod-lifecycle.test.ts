// Pods come and go while lookups run: per-pod series appear, and end a grace period after
// the pod is deleted; namespace counters never go backwards, also across an exporter restart
// between a pod's deletion and the end of its grace period; processes outside pods, pods not
// named yet (held briefly, then _unknown for good) and host-network pods land in the right
// buckets; 110 pods in 20 namespaces stay within the stated series budget. Real kernel, real
// lab, real exporter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, rm } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Lab, type Pod } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { UNNAMED_HOLD_MS } from '../../src/dns/lifecycle.js';
import { parsePromText, sumOf, type PromSample } from '../support/prom-text.js';

const Q = 'dnsrace_dns_queries_total';
const PODQ = 'dnsrace_dns_pod_queries_total';
const GRACE_MS = 4_000;

let lab: Lab;
let exporter: ExporterProcess;

function startExporter(): Promise<void> {
  exporter = new ExporterProcess({
    cgroupRoot: lab.cgroupDir,
    bpffsDir: `${lab.bpffsDir}/exporter`,
    podLogDir: lab.varLogPods,
    extraArgs: ['--pod-series-grace', `${GRACE_MS}ms`, '--kube-api', 'off'],
  });
  return exporter.start();
}

async function lookups(pod: Pod, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await pod.dig('web.team-a.svc.cluster.local', { options: ['+tries=1'] });
    expect(r.status).toBe('NOERROR');
  }
}

beforeAll(async () => {
  lab = await Lab.create({});
  await startExporter();
}, 120_000);

afterAll(async () => {
  await exporter?.stop();
  await lab?.destroy();
}, 60_000);

describe('pod lifecycle and series (real kernel)', () => {
  it('ends a deleted pod’s series after the grace period while its namespace keeps counting', async () => {
    const a = await lab.addPod({ namespace: 'churn', name: 'worker-a' });
    const b = await lab.addPod({ namespace: 'churn', name: 'worker-b' });
    await Promise.all([lookups(a, 3), lookups(b, 2)]);
    let s = await exporter.until((x) => sumOf(x, Q, { namespace: 'churn' }) >= 5, 10_000);
    expect(sumOf(s, Q, { namespace: 'churn' })).toBe(5);
    expect(sumOf(s, PODQ, { namespace: 'churn', pod: 'worker-a' })).toBe(3);

    await lab.deletePod(a);
    const deletedAt = Date.now();
    s = await exporter.freshScrape();
    // Within the grace period the deleted pod keeps its series.
    expect(Date.now() - deletedAt).toBeLessThan(GRACE_MS);
    expect(sumOf(s, PODQ, { namespace: 'churn', pod: 'worker-a' })).toBe(3);

    // A new pod arrives while the old one's grace runs out.
    const c = await lab.addPod({ namespace: 'churn', name: 'worker-c' });
    await lookups(c, 4);
    s = await exporter.until(
      (x) => !x.some((p) => p.name === PODQ && p.labels.pod === 'worker-a'),
      GRACE_MS + 10_000,
    );
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(GRACE_MS);
    expect(s.filter((p) => p.labels.pod === 'worker-a')).toEqual([]);
    expect(s.filter((p) => p.labels.pod === '_retired')).toEqual([]);
    expect(sumOf(s, PODQ, { namespace: 'churn', pod: 'worker-b' })).toBe(2);
    expect(sumOf(s, PODQ, { namespace: 'churn', pod: 'worker-c' })).toBe(4);
    // The namespace still counts worker-a's lookups: 3 + 2 + 4.
    expect(sumOf(s, Q, { namespace: 'churn' })).toBe(9);
    expect(sumOf(s, 'dnsrace_bpf_map_entries', { map: 'dns_stats' })).toBeGreaterThan(0);
  }, 60_000);

  it('keeps a deleted pod’s counts in its namespace across an exporter restart', async () => {
    const d = await lab.addPod({ namespace: 'restart', name: 'gone-soon' });
    const e = await lab.addPod({ namespace: 'restart', name: 'stays' });
    await Promise.all([lookups(d, 3), lookups(e, 1)]);
    await exporter.until((x) => sumOf(x, Q, { namespace: 'restart' }) >= 4, 10_000);
    await lab.deletePod(d);
    // Restart before the grace period ends: only the pinned names still know whose rows they are.
    expect(await exporter.stop()).toBe(0);
    await startExporter();
    let s = await exporter.freshScrape();
    expect(sumOf(s, Q, { namespace: 'restart' })).toBe(4);
    expect(sumOf(s, Q, { namespace: '_unknown' })).toBe(0);
    s = await exporter.until(
      (x) => !x.some((p) => p.name === PODQ && p.labels.pod === 'gone-soon'),
      GRACE_MS + 15_000,
    );
    expect(s.some((p) => p.name === PODQ && p.labels.pod === 'gone-soon')).toBe(false);
    expect(sumOf(s, Q, { namespace: 'restart' })).toBe(4);
  }, 90_000);

  it('puts processes outside pods in _host, unnamed pods in _unknown (for good), host-network pods in their namespace', async () => {
    const dig = ['dig', '+short', '+tries=1', '@10.96.0.10', 'web.team-a.svc.cluster.local'];
    const inCgroup = (cg: string, argv: string[]) =>
      execa('sh', [
        '-c',
        `echo $$ > ${cg}/cgroup.procs && exec nsenter --net=/run/netns/${lab.nodeNetns} "$@"`,
        'sh',
        ...argv,
      ]);
    // A node daemon: a cgroup under the lab root but outside kubepods.
    const daemon = path.join(lab.systemSliceDir, 'node-daemon.service');
    // A pod whose cgroup exists but that no source names (no /var/log/pods directory).
    const uid = randomUUID();
    const unnamed = path.join(
      lab.kubepodsDir,
      'kubepods-besteffort.slice',
      `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`,
      `cri-containerd-${randomBytes(32).toString('hex')}.scope`,
    );
    const second = path.join(
      path.dirname(unnamed),
      `cri-containerd-${randomBytes(32).toString('hex')}.scope`,
    );
    const logDir = path.join(lab.varLogPods, `late_named-late_${uid}`);
    await mkdir(daemon, { recursive: true });
    await mkdir(unnamed, { recursive: true });
    try {
      // A hostNetwork pod: its own cgroup, the node's network namespace.
      const hostnet = await lab.addPod({ namespace: 'infra', name: 'node-agent' });
      expect((await inCgroup(daemon, dig)).exitCode).toBe(0);
      expect((await inCgroup(unnamed, dig)).exitCode).toBe(0);
      expect((await inCgroup(hostnet.cgroupDir, dig)).exitCode).toBe(0);
      // The unnamed pod is held out of the aggregates for UNNAMED_HOLD_MS, then counted under
      // _unknown for good.
      const s = await exporter.until(
        (x) =>
          sumOf(x, Q, { namespace: '_host' }) >= 1 &&
          sumOf(x, Q, { namespace: 'infra' }) >= 1 &&
          sumOf(x, PODQ, { namespace: '_unknown', pod: `_uid-${uid}` }) >= 1,
        10_000 + UNNAMED_HOLD_MS,
      );
      expect(sumOf(s, Q, { namespace: '_host' })).toBe(1);
      expect(sumOf(s, Q, { namespace: 'infra' })).toBe(1);
      expect(sumOf(s, PODQ, { namespace: 'infra', pod: 'node-agent' })).toBe(1);
      expect(sumOf(s, PODQ, { namespace: '_unknown', pod: `_uid-${uid}` })).toBe(1);

      // The pod gets its name late: the row already shown under _unknown stays there (moving
      // it would make the _unknown counters go backwards); a container started after the name
      // is known counts in the pod's namespace.
      await mkdir(logDir);
      // src/identity/pod-log-directory.ts remembers a missed UID for 5 s before it rescans.
      await new Promise((r) => setTimeout(r, 7_000));
      await mkdir(second);
      expect((await inCgroup(second, dig)).exitCode).toBe(0);
      const late = await exporter.until(
        (x) => sumOf(x, Q, { namespace: 'late' }) >= 1,
        10_000 + UNNAMED_HOLD_MS,
      );
      expect(sumOf(late, PODQ, { namespace: 'late', pod: 'named-late' })).toBe(1);
      expect(sumOf(late, PODQ, { namespace: '_unknown', pod: `_uid-${uid}` })).toBe(1);
      expect(sumOf(late, Q, { namespace: '_unknown' })).toBe(
        sumOf(s, Q, { namespace: '_unknown' }),
      );
    } finally {
      await rm(logDir, { recursive: true, force: true });
      await execa('rmdir', [second, unnamed, path.dirname(unnamed), daemon], { reject: false });
    }
  }, 60_000);

  it('110 pods in 20 namespaces stay within the stated series budget', async () => {
    const pods: Pod[] = [];
    const toAdd = 110 - lab.pods.length;
    for (let i = 0; i < toAdd; i++)
      pods.push(await lab.addPod({ namespace: `ns-${i % 20}`, name: `p-${i}` }));
    // One lookup each, eight at a time.
    for (let i = 0; i < pods.length; i += 8)
      await Promise.all(
        pods
          .slice(i, i + 8)
          .map((p) => p.dig('web.team-a.svc.cluster.local', { options: ['+tries=1'] })),
      );
    const podsIn = (x: PromSample[]) =>
      new Set(x.filter((p) => p.name === PODQ).map((p) => `${p.labels.namespace}/${p.labels.pod}`));
    const s = await exporter.until(
      (x) => [...podsIn(x)].filter((p) => p.startsWith('ns-')).length >= pods.length,
      30_000,
    );
    const text = await (await fetch(`http://127.0.0.1:${exporter.port}/metrics`)).text();
    const series = parsePromText(text).length;
    const namespaces = new Set(s.filter((x) => x.name === Q).map((x) => x.labels.namespace)).size;
    const podCount = podsIn(s).size;
    const serverNamespaces = new Set(
      s.filter((x) => x.name === 'dnsrace_dns_server_queries_total').map((x) => x.labels.namespace),
    ).size;
    expect(lab.pods.length).toBeGreaterThanOrEqual(110);
    expect(podCount).toBeGreaterThanOrEqual(110);
    // README: 122·N + 87·S + 24·(min(P, L) + N) + 60.
    const budget =
      122 * namespaces + 87 * serverNamespaces + 24 * (Math.min(podCount, 250) + namespaces) + 60;
    console.log(
      `110-pod lab: ${series} series for ${podCount} pods in ${namespaces} namespaces; budget ${budget}`,
    );
    expect(series).toBeLessThanOrEqual(budget);
  }, 180_000);
});
