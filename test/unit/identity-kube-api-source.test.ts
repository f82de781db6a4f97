// KubeApiPodSource against a fake Kubernetes API server (test/support/fake-kube-api.ts): a real
// API server cannot run here, so a local HTTP server speaks the list/watch protocol, and the
// source reaches it through a kubeconfig file (loadKubeconfig) and its real HTTP client
// (kube-client.ts). Backoff timings are injected (20 ms doubling to 160 ms) to keep the file fast.
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupIndex } from '../../src/identity/cgroup-index.js';
import {
  KubeApiPodSource,
  type KubeApiPodSourceOptions,
} from '../../src/identity/kube-api-source.js';
import { loadKubeconfig } from '../../src/identity/kube-config.js';
import { PodLogDirectory } from '../../src/identity/pod-log-directory.js';
import { CgroupIdentityResolver } from '../../src/identity/resolver.js';
import {
  FakeKubeApiServer,
  makePod,
  writeKubeconfig,
  type RecordedRequest,
} from '../support/fake-kube-api.js';

const NODE = 'node-a';
const SELECTOR = `spec.nodeName=${NODE}`;
const UID_A = '6dc88073-2128-40d6-9dbc-0ba508da7fe8';
const UID_B = '73dc8baf-43a0-413e-aac2-5eb0868f6c1a';
const UID_C = '0b7f3e0e-8d3c-4a51-9a0e-2a4f7e1b9c11';
const UID_D = 'c2a4d1e8-5f0b-4e7e-b1d3-9a8c7f6e5d42';
const RS_OWNER = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c6f5' };
const HASH = { 'pod-template-hash': '7d4b9c6f5' };

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

let dir: string;
let fake: FakeKubeApiServer;
let logs: LogLine[];
const cleanups: Array<() => Promise<unknown>> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dnsrace-kube-'));
  fake = await FakeKubeApiServer.start();
  logs = [];
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

async function startSource(
  over: Partial<KubeApiPodSourceOptions> = {},
  kubeconfigPath?: string,
): Promise<KubeApiPodSource> {
  const kubeConfig = loadKubeconfig(kubeconfigPath ?? (await fake.writeKubeconfig(dir)));
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const source = new KubeApiPodSource({
    kubeConfig,
    nodeName: NODE,
    log,
    origin: 'test kubeconfig',
    fallback: '/var/log/pods',
    backoff: { initialMs: 20, maxMs: 160, random: () => 1 },
    random: () => 0.5,
    pageSize: 2,
    watchTimeoutSeconds: 60,
    healthyWatchMs: 60_000,
    requestTimeoutMs: 2_000,
    ...over,
  });
  cleanups.push(() => source.stop());
  source.start();
  return source;
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false,
  timeoutMs = 3_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function watching(source: KubeApiPodSource, watches = 1): Promise<void> {
  await waitFor(
    `watch number ${watches} open and source connected`,
    () =>
      fake.openWatches === 1 &&
      fake.requestsOf('watch').filter((r) => r.status === 200).length >= watches &&
      source.health().state === 'connected',
  );
}

function after(at: number, kind?: RecordedRequest['kind']): RecordedRequest[] {
  return fake.requests.filter((r) => r.at >= at && (kind === undefined || r.kind === kind));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A cgroup tree holding one containerd container of pod uid (see identity-resolver.test.ts). */
async function podCgroup(uid: string) {
  const cgroupRoot = join(dir, 'cgroup');
  const rel = `lab/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice/cri-containerd-${'a'.repeat(64)}.scope`;
  await mkdir(join(cgroupRoot, rel), { recursive: true });
  const cgroups = new CgroupIndex({ mountPoint: cgroupRoot, subtree: 'lab' });
  await cgroups.refresh();
  return { cgroups, id: (await stat(join(cgroupRoot, rel), { bigint: true })).ino };
}

describe('KubeApiPodSource against a fake Kubernetes API server', () => {
  it('lists this node’s pods in pages, then watches from the list’s resourceVersion with bookmarks', async () => {
    fake.addPod(makePod({ uid: UID_A, name: 'web-a', owner: RS_OWNER, labels: HASH }));
    fake.addPod(makePod({ uid: UID_B, name: 'db-0', namespace: 'data' }));
    fake.addPod(makePod({ uid: UID_C, name: 'cache-0' }));
    fake.addPod(makePod({ uid: UID_D, name: 'elsewhere', node: 'node-b' }));
    const listedAt = fake.resourceVersion;
    const source = await startSource();
    await expect(source.whenSynced(2_000)).resolves.toBe(true);
    await watching(source);

    const lists = fake.requestsOf('list');
    expect(lists.map((r) => r.query)).toEqual([
      { fieldSelector: SELECTOR, limit: '2', resourceVersion: '0' },
      { fieldSelector: SELECTOR, limit: '2', continue: expect.any(String) },
    ]);
    expect(fake.requestsOf('watch').map((r) => r.query)).toEqual([
      {
        watch: 'true',
        allowWatchBookmarks: 'true',
        fieldSelector: SELECTOR,
        resourceVersion: listedAt,
        timeoutSeconds: '90',
      },
    ]);
    expect(fake.requests.every((r) => r.status === 200)).toBe(true);

    expect(source.lookupByUid(UID_A)).toMatchObject({
      namespace: 'default',
      name: 'web-a',
      workload: { kind: 'Deployment', name: 'web' },
    });
    expect(source.lookupByUid(UID_B)).toMatchObject({ namespace: 'data', name: 'db-0' });
    expect(source.lookupByUid(UID_C)?.name).toBe('cache-0');
    expect(source.lookupByUid(UID_D)).toBeUndefined(); // another node's pod
    expect(source.health()).toMatchObject({
      state: 'connected',
      pods: 3,
      relists: 0,
      watchRestarts: 0,
      resourceVersion: listedAt,
    });
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'pod identity from the Kubernetes API',
        origin: 'test kubeconfig',
        node: NODE,
      }),
    );
  });

  it('applies ADDED, MODIFIED and DELETED events and resumes from the last BOOKMARK', async () => {
    fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
    const source = await startSource();
    await watching(source);

    fake.addPod(makePod({ uid: UID_B, name: 'web-b', ips: ['10.1.0.8'] }));
    await waitFor('ADDED applied', () => source.lookupByUid(UID_B));
    expect(source.lookupByIp('10.1.0.8')?.name).toBe('web-b');

    fake.updatePod(UID_B, (p) => {
      p.status.podIPs = [{ ip: '10.1.0.8' }, { ip: 'fd00:10:1:0:0:0:0:8' }];
    });
    await waitFor('MODIFIED applied', () => source.lookupByIp('fd00:10:1::8'));
    expect(source.lookupByUid(UID_B)?.ips).toEqual(['10.1.0.8', 'fd00:10:1::8']);

    fake.deletePod(UID_A);
    await waitFor('DELETED applied', () => source.deletedPods().length === 1);
    expect(source.deletedPods()).toEqual([
      {
        uid: UID_A,
        namespace: 'default',
        name: 'web-a',
        aliasUids: [],
        deletedAt: expect.any(Number),
      },
    ]);
    expect(source.lookupByUid(UID_A)?.name).toBe('web-a'); // late reads still name it

    // A change on another node moves the resourceVersion without an event for this node.
    fake.addPod(makePod({ uid: UID_D, name: 'elsewhere', node: 'node-b' }));
    fake.bookmark();
    const bookmarked = fake.resourceVersion;
    await waitFor('BOOKMARK applied', () => source.health().resourceVersion === bookmarked);
    expect(source.health().events).toEqual({
      ADDED: 1,
      MODIFIED: 1,
      DELETED: 1,
      BOOKMARK: 1,
      ERROR: 0,
    });

    const droppedAt = performance.now();
    fake.dropWatches();
    await watching(source, 2);
    expect(after(droppedAt, 'watch')[0]?.query.resourceVersion).toBe(bookmarked);
    expect(after(droppedAt, 'list')).toEqual([]); // no re-list needed
  });

  it('the fake Kubernetes API server refuses pod requests without fieldSelector spec.nodeName', async () => {
    const headers = { authorization: `Bearer ${fake.token}` };
    for (const query of ['', '?watch=true', '?fieldSelector=metadata.namespace%3Ddefault']) {
      const res = await fetch(`${fake.url}/api/v1/pods${query}`, { headers });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toMatch(/spec\.nodeName/);
    }
    const ok = await fetch(`${fake.url}/api/v1/pods?fieldSelector=${SELECTOR}`, { headers });
    expect(ok.status).toBe(200);
    const noToken = await fetch(`${fake.url}/api/v1/pods?fieldSelector=${SELECTOR}`);
    expect(noToken.status).toBe(401);
  });

  it('re-lists at its last resourceVersion after a 410 Gone ERROR event mid-stream', async () => {
    fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
    const source = await startSource();
    await watching(source);
    const rv = source.health().resourceVersion;

    const expiredAt = performance.now();
    fake.compact();
    fake.expireWatches();
    await watching(source, 2);
    await waitFor('re-list counted', () => source.health().relists === 1);

    expect(after(expiredAt).map((r) => [r.kind, r.query.resourceVersion, r.status])).toEqual([
      ['list', rv, 200],
      ['watch', rv, 200],
    ]);
    expect(source.health().events.ERROR).toBe(1);
    expect(source.health().state).toBe('connected');
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'watch resourceVersion expired (410 Gone); re-listing pods' }),
    );
  });

  it.each(['event', 'http'] as const)(
    'after a watch from a compacted resourceVersion is refused (410 as %s), lists again from scratch',
    async (goneMode) => {
      fake.goneMode = goneMode;
      fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
      fake.addPod(makePod({ uid: UID_B, name: 'web-b' }));
      const source = await startSource();
      await watching(source);
      const rv = source.health().resourceVersion;

      // While the source is cut off: a pod comes, a pod goes, and etcd compacts.
      const droppedAt = performance.now();
      fake.dropWatches();
      fake.addPod(makePod({ uid: UID_C, name: 'web-c' }));
      fake.deletePod(UID_A);
      fake.compact();
      await waitFor('consistent re-list', () => source.health().relists === 1);
      await watching(source, 2);

      expect(after(droppedAt).map((r) => [r.kind, r.query.resourceVersion, r.status])).toEqual([
        ['watch', rv, goneMode === 'event' ? 200 : 410],
        ['list', rv, 410], // client-go's order: first at the version it had...
        ['list', undefined, 200], // ...then a consistent list
        ['watch', fake.resourceVersion, 200],
      ]);
      expect(source.lookupByUid(UID_C)?.name).toBe('web-c');
      expect(source.deletedPods().map((d) => d.uid)).toEqual([UID_A]);
      expect(source.health()).toMatchObject({ state: 'connected', pods: 2 });
    },
  );

  it('reconnects after a dropped connection with capped, growing backoff', async () => {
    fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
    const source = await startSource();
    await watching(source);
    const rv = source.health().resourceVersion;

    fake.failNext('watch', 500, 4);
    const droppedAt = performance.now();
    fake.dropWatches();
    await waitFor('degraded', () => source.health().state === 'degraded');
    await watching(source, 2);

    const watches = after(droppedAt, 'watch');
    expect(watches.map((r) => [r.query.resourceVersion, r.status])).toEqual([
      [rv, 500],
      [rv, 500],
      [rv, 500],
      [rv, 500],
      [rv, 200],
    ]);
    // random() = 1 gives the nominal delays: 20, 40, 80, 160, then capped at 160 ms.
    const delays = [20, 40, 80, 160, 160];
    expect(logs.filter((l) => l.retryInMs !== undefined).map((l) => l.retryInMs)).toEqual(delays);
    const gaps = watches.map((r, i) => r.at - (i === 0 ? droppedAt : (watches[i - 1]?.at ?? 0)));
    delays.forEach((ms, i) => expect(gaps[i]).toBeGreaterThanOrEqual(ms - 2));
    expect(after(droppedAt, 'list')).toEqual([]);
    expect(source.health()).toMatchObject({ state: 'connected', watchRestarts: 5, relists: 0 });
    const warnings = logs.filter((l) => l.level === 40);
    expect(warnings.map((l) => l.msg)).toEqual([
      'Kubernetes API unavailable; /var/log/pods names the pods the API has not reported',
    ]);
    expect(warnings[0]?.reason).toMatch(/^watching pods failed: /);
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'Kubernetes API reachable again; pod identity from the API' }),
    );
  });

  it('resumes at once, still connected, when the server ends a long-lived watch at its timeout', async () => {
    // random() = 0.5 draws timeoutSeconds = floor(1 × 1.5) = 1 s on the server.
    fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
    const source = await startSource({ watchTimeoutSeconds: 1, healthyWatchMs: 500 });
    await watching(source);
    await watching(source, 2);
    expect(fake.requestsOf('watch')[0]?.query.timeoutSeconds).toBe('1');
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'pod watch closed; resuming', delay: 0 }),
    );
    expect(logs.filter((l) => l.level >= 40)).toEqual([]);
    expect(source.health()).toMatchObject({ state: 'connected', watchRestarts: 1, relists: 0 });
  });

  it('replaces a watch that goes silent (no event, no bookmark)', async () => {
    const source = await startSource({ watchIdleTimeoutMs: 100 });
    await watching(source);
    await waitFor('second watch', () => fake.requestsOf('watch').length >= 2);
    expect(logs).toContainEqual(
      expect.objectContaining({
        reason: 'watching pods failed: no watch event or bookmark after 100 ms',
      }),
    );
  });

  it('warns when the first list finds no pod at all on the node (wrong NODE_NAME)', async () => {
    fake.addPod(makePod({ uid: UID_A, name: 'web-a', node: 'ip-10-0-0-1.ec2.internal' }));
    const source = await startSource();
    await expect(source.whenSynced(2_000)).resolves.toBe(true);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 40,
        node: NODE,
        msg: 'the Kubernetes API lists no pods on this node: check that NODE_NAME is the node name (downward API spec.nodeName)',
      }),
    );
  });

  it('reports refused credentials as degraded, with the RBAC rule to check', async () => {
    const source = await startSource({}, await writeKubeconfig(dir, fake.url, 'wrong-token'));
    await waitFor('degraded', () => source.health().state === 'degraded');
    // One line: the status, the API's own Status reason and message, and the RBAC rule to check.
    expect(source.health().reason).toBe(
      'listing pods failed: HTTP 401 Unauthorized: fake Kubernetes API server: wrong or missing token (the service account needs list and watch on pods)',
    );
    await expect(source.whenSynced(1_000)).resolves.toBe(false);
  });

  it('re-reads a rotated token from its tokenFile: refused, then connected without a restart', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'expired-token\n');
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: fake',
        'clusters:',
        `- {name: fake, cluster: {server: "${fake.url}"}}`,
        'users:',
        '- {name: sa, user: {tokenFile: token}}',
        'contexts:',
        '- {name: fake, context: {cluster: fake, user: sa}}',
        '',
      ].join('\n'),
    );
    fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
    const source = await startSource({}, kubeconfig);
    await waitFor('refused', () => source.health().state === 'degraded');
    expect(source.health().reason).toMatch(/^listing pods failed: HTTP 401 /);

    await writeFile(tokenFile, `${fake.token}\n`); // the kubelet rotates the projected token
    await watching(source);
    expect(source.lookupByUid(UID_A)?.name).toBe('web-a');
  });

  it('bounds a list request that never gets an answer, and says so in one line', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    });
    const { port } = silent.address() as { port: number };
    const source = await startSource(
      { requestTimeoutMs: 150 },
      await writeKubeconfig(dir, `http://127.0.0.1:${port}`, 't'),
    );
    const t0 = performance.now();
    await waitFor('degraded', () => source.health().state === 'degraded');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140);
    expect(source.health().reason).toBe('listing pods failed: request timed out');
    expect(sockets.size).toBeGreaterThanOrEqual(1);
  });

  it('with the API unreachable, degrades and the resolver falls back to /var/log/pods until the API comes up', async () => {
    const port = await freePort();
    const source = await startSource(
      {},
      await writeKubeconfig(dir, `http://127.0.0.1:${port}`, 't'),
    );
    const podLogs = join(dir, 'pods');
    await mkdir(join(podLogs, `shop_web-a_${UID_A}`, 'web'), { recursive: true });
    const local = new PodLogDirectory({ root: podLogs });
    await local.refresh();
    const { cgroups, id } = await podCgroup(UID_A);
    const resolver = new CgroupIdentityResolver({ cgroups, podSources: [source, local] });

    await waitFor('degraded', () => source.health().state === 'degraded');
    expect(source.health().reason).toMatch(/^listing pods failed: .*ECONNREFUSED/);
    const t0 = performance.now();
    await expect(source.lookupByUidFresh(UID_A)).resolves.toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(500); // degraded: no waiting for a first list
    await expect(resolver.resolveFresh(id)).resolves.toMatchObject({
      kind: 'pod',
      namespace: 'shop',
      pod: 'web-a',
      source: 'var-log-pods',
    });

    const late = await FakeKubeApiServer.listen(port, 't');
    cleanups.push(() => late.close());
    late.addPod(
      makePod({ uid: UID_A, name: 'web-a', namespace: 'shop', owner: RS_OWNER, labels: HASH }),
    );
    await waitFor('connected', () => source.health().state === 'connected');
    expect(resolver.resolve(id)).toMatchObject({
      kind: 'pod',
      namespace: 'shop',
      pod: 'web-a',
      source: 'kube-api',
      workload: { kind: 'Deployment', name: 'web' },
    });
  });

  it('names a pod that its cgroup showed before the API reported it', async () => {
    const source = await startSource();
    await watching(source);
    const { cgroups, id } = await podCgroup(UID_B);
    const local = new PodLogDirectory({ root: join(dir, 'no-pod-logs') });
    const resolver = new CgroupIdentityResolver({ cgroups, podSources: [source, local] });
    expect(resolver.resolve(id)).toMatchObject({ kind: 'unknown', reason: 'pod-not-named' });

    fake.addPod(makePod({ uid: UID_B, name: 'late-0', namespace: 'jobs' }));
    const named = await waitFor('named', () => {
      const identity = resolver.resolve(id);
      return identity.kind === 'pod' ? identity : undefined;
    });
    expect(named).toMatchObject({ namespace: 'jobs', pod: 'late-0', source: 'kube-api' });
  });

  it('keeps deleted pods resolvable for the grace period on the injected clock', async () => {
    let t = 50_000;
    fake.addPod(makePod({ uid: UID_A, name: 'web-a', ips: ['10.1.0.7'] }));
    const source = await startSource({ now: () => t, retainDeletedMs: 1_000 });
    await watching(source);
    fake.deletePod(UID_A);
    await waitFor('deleted', () => source.deletedPods().length === 1);
    expect(source.deletedPods()[0]?.deletedAt).toBe(50_000);
    t += 999;
    expect(source.lookupByUid(UID_A)?.name).toBe('web-a');
    expect(source.lookupByIp('10.1.0.7')?.name).toBe('web-a');
    t += 1;
    expect(source.lookupByUid(UID_A)).toBeUndefined();
    expect(source.lookupByIp('10.1.0.7')).toBeUndefined();
    expect(source.deletedPods()).toEqual([]);
  });

  it('maps dual-stack pod IPs to their pod and never the node IPs shared by hostNetwork pods', async () => {
    const hostIps = ['192.0.2.10', '2001:db8::10'];
    fake.addPod(makePod({ uid: UID_A, name: 'web-a', ips: ['10.1.0.7', 'fd00:10:1::7'], hostIps }));
    fake.addPod(makePod({ uid: UID_B, name: 'agent', hostNetwork: true, ips: hostIps, hostIps }));
    const source = await startSource();
    await expect(source.whenSynced(2_000)).resolves.toBe(true);
    expect(source.lookupByIp('10.1.0.7')?.name).toBe('web-a');
    expect(source.lookupByIp('fd00:10:1::7')?.name).toBe('web-a');
    for (const ip of hostIps) {
      expect(source.lookupByIp(ip)).toBeUndefined();
      expect(source.isNodeIp(ip)).toBe(true);
    }
    expect(source.lookupByUid(UID_B)).toMatchObject({ name: 'agent', hostNetwork: true });
  });

  it('answers a fresh lookup made before the first list once that list is in', async () => {
    fake.addPod(makePod({ uid: UID_A, name: 'web-a' }));
    const source = await startSource();
    expect(source.health().state).toBe('connecting');
    await expect(source.lookupByUidFresh(UID_A)).resolves.toMatchObject({ name: 'web-a' });
  });

  it('stop() closes the watch, and cancels a pending backoff at once', async () => {
    const source = await startSource();
    await watching(source);
    await source.stop();
    await waitFor('watch closed on the server', () => fake.openWatches === 0);
    expect(source.health()).toMatchObject({ state: 'disabled', reason: 'stopped' });

    const port = await freePort();
    const backingOff = await startSource(
      { backoff: { initialMs: 30_000, maxMs: 30_000 } },
      await writeKubeconfig(dir, `http://127.0.0.1:${port}`, 't'),
    );
    await waitFor('degraded', () => backingOff.health().state === 'degraded');
    const t0 = performance.now();
    await backingOff.stop();
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
