// The exporter naming lab pods from the Kubernetes API, then falling back to /var/log/pods
// when the API goes away. A real API server cannot run here: the API is the fake Kubernetes
// API server of test/support (list/watch over HTTP, driven through the exporter's own client).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Lab } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { FakeKubeApiServer, makePod } from '../support/fake-kube-api.js';
import { sumOf } from '../support/prom-text.js';

let lab: Lab;
let api: FakeKubeApiServer;
let exporter: ExporterProcess;
let dir: string;

beforeAll(async () => {
  lab = await Lab.create({});
  api = await FakeKubeApiServer.start();
  dir = await mkdtemp(path.join(tmpdir(), 'dnsrace-kube-'));
}, 60_000);

afterAll(async () => {
  await exporter?.stop();
  await api?.close();
  await lab?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('identity from the Kubernetes API (fake API server)', () => {
  it('names pods and workloads from the API first, and falls back to /var/log/pods when it is gone', async () => {
    const uid = randomUUID();
    // The lab's kubelet-like log directory calls it web-local; the API knows better.
    const pod = await lab.addPod({ namespace: 'shop', name: 'web-local', uid });
    api.addPod(
      makePod({
        uid,
        namespace: 'shop',
        name: 'web-7d9f8c6b5-x2x4q',
        node: 'lab-node',
        ips: [pod.ipv4],
        labels: { 'pod-template-hash': '7d9f8c6b5' },
        owner: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8c6b5' },
      }),
    );
    exporter = new ExporterProcess({
      cgroupRoot: lab.cgroupDir,
      bpffsDir: `${lab.bpffsDir}/exporter`,
      podLogDir: lab.varLogPods,
      extraArgs: [
        '--kube-api',
        'on',
        '--kubeconfig',
        await api.writeKubeconfig(dir),
        '--workload-label',
      ],
    });
    await exporter.start();
    expect(api.requestsOf('list')[0]?.query.fieldSelector).toBe('spec.nodeName=lab-node');

    expect((await pod.dig('web.team-a.svc.cluster.local')).status).toBe('NOERROR');
    let s = await exporter.until(
      (x) => sumOf(x, 'dnsrace_dns_queries_total', { namespace: 'shop' }) >= 1,
      10_000,
    );
    expect(sumOf(s, 'dnsrace_identity_source', { source: 'kube-api', state: 'connected' })).toBe(1);
    expect(
      sumOf(s, 'dnsrace_dns_pod_queries_total', { namespace: 'shop', pod: 'web-7d9f8c6b5-x2x4q' }),
    ).toBe(1);
    expect(sumOf(s, 'dnsrace_dns_pod_queries_total', { namespace: 'shop', pod: 'web-local' })).toBe(
      0,
    );
    expect(
      sumOf(s, 'dnsrace_dns_queries_total', { namespace: 'shop', workload: 'deployment/web' }),
    ).toBe(1);

    // The API goes away: the source says so, and a new pod is still named, from the log dir.
    await api.close();
    const late = await lab.addPod({ namespace: 'shop', name: 'batch-1' });
    expect((await late.dig('web.team-a.svc.cluster.local')).status).toBe('NOERROR');
    s = await exporter.until(
      (x) =>
        sumOf(x, 'dnsrace_identity_source', { source: 'kube-api', state: 'degraded' }) === 1 &&
        sumOf(x, 'dnsrace_dns_pod_queries_total', { pod: 'batch-1' }) === 1,
      30_000,
    );
    expect(sumOf(s, 'dnsrace_identity_source', { source: 'kube-api', state: 'degraded' })).toBe(1);
    expect(sumOf(s, 'dnsrace_dns_pod_queries_total', { namespace: 'shop', pod: 'batch-1' })).toBe(
      1,
    );
    // The API-named pod keeps its name and its workload.
    expect(
      sumOf(s, 'dnsrace_dns_pod_queries_total', { namespace: 'shop', pod: 'web-7d9f8c6b5-x2x4q' }),
    ).toBe(1);
  }, 90_000);
});
