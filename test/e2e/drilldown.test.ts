// The on-call drill-down end to end on the real kernel: real resolvers in lab pods, the
// exporter with its drill-down listener, the kernel's events through `bpftool map
// event_pipe`. A glibc pod whose AAAA queries are dropped must come out first with cause
// netfilter_drop and its lookups by name; a musl pod with ndots:5 must be diagnosed as musl
// with its measured search-list amplification; a slow upstream must show as a slow server
// with the server-side time joined; and Chromium must show all of it on the page.
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type Pod } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';

let lab: Lab;
let exporter: ExporterProcess;
let work: string;
let base = '';
let glibc: Pod;
let musl: Pod;
let quiet: Pod;

/* eslint-disable @typescript-eslint/no-explicit-any */
async function get(
  p: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}${p}`, { headers });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body };
}

async function until<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A long-running dynamically linked musl program: the main process of an Alpine-like pod. */
async function buildMuslSleeper(dir: string): Promise<string> {
  const src = path.join(dir, 'sleeper.c');
  const bin = path.join(dir, 'sleeper-musl');
  await writeFile(src, '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n');
  const r = await execa('musl-gcc', ['-O2', '-o', bin, src], { reject: false });
  if (r.exitCode !== 0)
    throw new Error(`musl-gcc failed (apt-get install musl-tools): ${r.stderr}`);
  return bin;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'dnsrace-test-drilldown-'));
  lab = await Lab.create({});
  exporter = new ExporterProcess({
    cgroupRoot: lab.cgroupDir,
    bpffsDir: `${lab.bpffsDir}/exporter`,
    podLogDir: lab.varLogPods,
    extraArgs: ['--drilldown-listen-address', '127.0.0.1:0', '--slow-lookup-threshold', '1s'],
  });
  await exporter.start();
  // /readyz turns 200 after the first map read; the drill-down server starts just after it.
  const address = /"drilldownAddress":"127\.0\.0\.1:(\d+)"/;
  for (let i = 0; i < 100 && !address.test(exporter.logs); i++) await sleep(100);
  const m = address.exec(exporter.logs);
  if (!m) throw new Error(`the exporter did not log its drill-down address:\n${exporter.logs}`);
  base = `http://127.0.0.1:${m[1]}`;
  glibc = await lab.addPod({ namespace: 'shop', name: 'checkout' });
  musl = await lab.addPod({ namespace: 'shop', name: 'cart' });
  quiet = await lab.addPod({ namespace: 'shop', name: 'web' });
  // Main processes: the doctor reads resolv.conf and the ELF interpreter through them.
  await glibc.spawn(['sleep', '600']);
  await musl.spawn([await buildMuslSleeper(work)]);
}, 120_000);

afterAll(async () => {
  await exporter?.stop();
  await lab?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('drill-down (real kernel, real resolvers)', () => {
  it('joins a slow upstream to the server-side time and shows it within a second', async () => {
    const undo = await lab.setUpstreamDelay(1500);
    let took: number;
    let doneAt: number;
    try {
      const r = await quiet.getent('example.com.');
      doneAt = Date.now();
      took = r.durationMs;
      expect(r.addresses).toContain('192.0.2.80');
    } finally {
      await undo();
    }
    expect(took).toBeGreaterThan(1400);
    const slow = await until(
      async () => {
        const r = await get('/api/v1/pods/shop/web');
        return r.status === 200
          ? (r.body.recent as any[]).find((l) => l.name === 'example.com' && l.kind === 'slow')
          : undefined;
      },
      5_000,
      'the slow example.com lookup of shop/web',
    );
    const delivery = Date.now() - doneAt;
    console.log(`event delivery: slow lookup on the page API ${delivery} ms after getent returned`);
    expect(delivery).toBeLessThan(1_000);
    expect(slow.latencySeconds).toBeGreaterThan(1.4);
    expect(slow.latencySeconds).toBeLessThan(took / 1000 + 0.1);
    expect(slow.diagnosis).toBe('slow_server');
    expect(slow.serverPod).toMatch(/^kube-system\/coredns-[01]$/);
    expect(slow.serverSideSeconds).toBeGreaterThan(1.4);
    expect(slow.serverSideSeconds).toBeLessThanOrEqual(slow.latencySeconds);
    expect(slow.server).toBe(lab.dnsService.ipv4);
    expect(slow.socket).toBe('connected');
  }, 30_000);

  it('ranks the pod whose AAAA queries are dropped first, with cause netfilter_drop and its lookups by name', async () => {
    // musl with ndots:5: api.example.org is tried with the 3 search domains first, A+AAAA each.
    for (let i = 0; i < 3; i++) {
      const r = await musl.musl('api.example.org');
      expect(r.addresses).toContain('198.51.100.7');
    }
    // glibc: every AAAA dropped: re-sent at 5 s and 10 s, then given up.
    const undo = await lab.dropQueries({ qtype: 'AAAA', fromPod: glibc });
    try {
      const r = await glibc.getent('api.example.org.');
      expect(r.durationMs).toBeGreaterThan(14_500);
    } finally {
      await undo();
    }
    const pods = await until(
      async () => {
        const r = await get('/api/v1/namespaces/shop/pods');
        const first = r.body.pods?.[0];
        return first?.pod === 'checkout' && first.timeouts >= 1 ? r.body.pods : undefined;
      },
      15_000,
      'checkout ranked first with its timeout',
    );
    expect(pods[0].headline.cause).toBe('netfilter_drop');
    // At least the 3 AAAA sends. The drop programs see every netns of the machine: a lab run
    // in parallel (same pod addresses) can add drops, never remove them.
    expect(pods[0].drops).toBeGreaterThanOrEqual(3);
    expect(pods.map((p: any) => p.pod)).toEqual(expect.arrayContaining(['cart', 'web']));

    const ns = await get('/api/v1/namespaces');
    expect(ns.status).toBe(200);
    expect(ns.body.namespaces[0].namespace).toBe('shop');
    expect(ns.body.namespaces[0].worstPod.pod).toBe('checkout');
    expect(
      (await get('/api/v1/namespaces?namespace=kube-system')).body.namespaces.map(
        (n: any) => n.namespace,
      ),
    ).toEqual(['kube-system']);

    const d = (await get('/api/v1/pods/shop/checkout')).body;
    expect(d.summary.headline.cause).toBe('netfilter_drop');
    const aaaa = (d.recent as any[]).filter(
      (l) => l.name === 'api.example.org' && l.qtype === 'AAAA',
    );
    expect(aaaa.map((l) => l.kind).sort()).toEqual(['retransmit', 'retransmit', 'timeout']);
    for (const l of aaaa) {
      expect(l.diagnosis).toBe('netfilter_drop');
      expect(l.server).toBe(lab.dnsService.ipv4);
      expect(l.client).toBe(glibc.ipv4);
    }
    const timeout = aaaa.find((l) => l.kind === 'timeout');
    expect(timeout.retransmits).toBe(2);
    expect(timeout.retriedFromNewSocket).toBe(true);
    expect(d.qtypes.AAAA.timeouts).toBe(1);
    expect(d.doctor.libc.verdict).toBe('glibc');
    expect(d.doctor.findings[0].id).toBe('dropped_queries');
    expect(d.doctor.findings[0].fixes.join('\n')).toMatch(/single-request-reopen/);
    expect(d.doctor.resolvConf.ndots).toBe(5);
    expect(d.doctor.resolvConf.source).toMatch(
      /\/proc\/\d+\/root\/etc\/resolv\.conf, pid \d+ \(sleep\)/,
    );
  }, 90_000);

  it('diagnoses the musl pod: musl, ndots:5, search-list amplification measured ×4', async () => {
    const d = (await get('/api/v1/pods/shop/cart')).body;
    expect(d.doctor.libc.verdict).toBe('musl');
    expect(d.doctor.libc.evidence.join('\n')).toMatch(/unconnected UDP socket/);
    expect(d.doctor.libc.evidence.join('\n')).toMatch(/ld-musl/);
    // 3 lookups x 4 candidates x (A + AAAA): 24 queries, 6 answered NOERROR, 18 NXDOMAIN.
    expect(d.doctor.amplification).toMatchObject({
      factor: 4,
      queries: 24,
      noerror: 6,
      nxdomain: 18,
    });
    expect(d.doctor.amplification.walk).toEqual({
      name: 'api.example.org',
      tried: [
        'api.example.org.shop.svc.cluster.local',
        'api.example.org.svc.cluster.local',
        'api.example.org.cluster.local',
      ],
    });
    expect(d.doctor.resolvConf).toMatchObject({
      ndots: 5,
      search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
    });
    const amp = (d.doctor.findings as any[]).find((f) => f.id === 'search_amplification');
    expect(amp.title).toMatch(/×4/);
    expect(amp.fixes.join('\n')).toMatch(/trailing dot \(api\.example\.org\.\)/);
    // Never advise glibc's single-request-reopen to a musl pod.
    expect(JSON.stringify(d.doctor.findings)).not.toMatch(/Add `options single-request-reopen`/);
    // The headline too, unless a lab running in parallel dropped packets of this address.
    if (d.summary.drops === 0) expect(d.summary.headline.cause).toBe('search_amplification');
    const nx = (d.recent as any[]).filter((l) => l.kind === 'nxdomain');
    expect(nx.length).toBeGreaterThan(0);
    expect(nx.every((l) => l.socket === 'unconnected')).toBe(true);
  }, 30_000);

  it('refuses what it should: bad names, unknown pods, writes', async () => {
    expect((await get('/api/v1/pods/shop/%3Cscript%3E')).status).toBe(400);
    expect((await get(`/api/v1/namespaces/${'a'.repeat(300)}/pods`)).status).toBe(400);
    expect((await get('/api/v1/pods/shop/nobody')).status).toBe(404);
    expect((await get('/api/v1/pods/shop/checkout?limit=5000')).status).toBe(400);
    const post = await fetch(`${base}/api/v1/namespaces`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    const h = await get('/api/v1/health');
    expect(h.body.reader.running).toBe(true);
    expect(h.body.reader.received).toBeGreaterThan(0);
    expect(h.body.kernel.sent).toBeGreaterThanOrEqual(h.body.reader.received);
  });

  it('shows the faulted pod first, its cause and its slow lookups in Chromium', async () => {
    const { chromium } = await import('playwright-core').catch((err: unknown) => {
      throw new Error('playwright-core is missing: npm install (devDependency playwright-core)', {
        cause: err,
      });
    });
    const { existsSync } = await import('node:fs');
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
    await mkdir(ARTIFACTS, { recursive: true });
    const profile = await mkdtemp(path.join(work, 'chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const external: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(base)) external.push(r.url());
      });
      await page.goto(`${base}/namespaces/shop`);
      await page.waitForSelector('tbody tr td a');
      const firstPod = await page.locator('tbody tr').first().locator('a').first().textContent();
      expect(firstPod).toBe('checkout');
      expect(await page.locator('tbody tr').first().textContent()).toMatch(/Dropped by netfilter/);
      await page.screenshot({ path: path.join(ARTIFACTS, 'drilldown-namespace.png') });

      await page.locator('tbody tr').first().locator('a').first().click();
      await page.waitForSelector('#headline');
      expect(page.url()).toBe(`${base}/pods/shop/checkout`);
      expect(await page.locator('#headline').textContent()).toMatch(
        /Dropped by netfilter on this node/,
      );
      const lookups = await page.locator('#lookups').textContent();
      expect(lookups).toMatch(/api\.example\.org/);
      expect(lookups).toMatch(/AAAA/);
      expect(await page.locator('#findings').textContent()).toMatch(/single-request-reopen/);
      expect(await page.locator('svg.hist rect').count()).toBeGreaterThan(0);
      await page.screenshot({ path: path.join(ARTIFACTS, 'drilldown-pod.png'), fullPage: true });

      await page.goto(`${base}/pods/shop/cart`);
      await page.waitForSelector('#headline');
      expect(await page.locator('#findings').textContent()).toMatch(
        /Each answered query costs ×4 queries/,
      );
      await page.screenshot({
        path: path.join(ARTIFACTS, 'drilldown-musl-pod.png'),
        fullPage: true,
      });
      expect(external).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
