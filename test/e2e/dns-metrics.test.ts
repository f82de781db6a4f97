// The exporter end to end on the real kernel: real resolvers in lab pods, the real BPF
// programs attached to the lab's cgroup, /metrics compared with what the clients sent
// and received (tcpdump on each pod's veth), never with the exporter's own numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { Lab, type DnsCapture, type Pod } from '../lab/index.js';
import { ExporterProcess } from '../support/exporter-process.js';
import { sumOf, type PromSample } from '../support/prom-text.js';
import { groundTruth, mergeTruth, type Truth } from '../support/dns-truth.js';

const Q = 'dnsrace_dns_queries_total';
const R = 'dnsrace_dns_responses_total';
const RTX = 'dnsrace_dns_retransmits_total';
const TMO = 'dnsrace_dns_timeouts_total';
const H = 'dnsrace_dns_query_duration_seconds';

let lab: Lab;
let exporter: ExporterProcess;

async function captured<T>(
  pods: Pod[],
  fn: () => Promise<T>,
): Promise<{ result: T; truth: Truth }> {
  const caps: DnsCapture[] = [];
  for (const p of pods) caps.push(await lab.captureDns(p));
  const result = await fn();
  const truths = [];
  for (const c of caps) truths.push(groundTruth(await c.stop()));
  return { result, truth: mergeTruth(truths) };
}

function bucketAt(s: PromSample[], namespace: string, qtype: string, le: string): number {
  return sumOf(s, `${H}_bucket`, { namespace, qtype, le });
}

async function attachedPrograms(): Promise<string[]> {
  const r = await execa('bpftool', ['-j', 'cgroup', 'show', lab.cgroupDir], { reject: false });
  const text = r.stdout.trim();
  return text ? (JSON.parse(text) as { name: string }[]).map((p) => p.name).sort() : [];
}

beforeAll(async () => {
  lab = await Lab.create({ ipv6: true });
  exporter = new ExporterProcess({
    cgroupRoot: lab.cgroupDir,
    bpffsDir: `${lab.bpffsDir}/exporter`,
    podLogDir: lab.varLogPods,
  });
  await exporter.start();
}, 120_000);

afterAll(async () => {
  await exporter?.stop();
  await lab?.destroy();
}, 60_000);

describe('dnsrace on the lab (real kernel, real resolvers)', () => {
  it('counts glibc, musl and dig lookups of two namespaces exactly, NXDOMAIN walk included', async () => {
    const a1 = await lab.addPod({ namespace: 'team-a', name: 'web-a1' });
    const a2 = await lab.addPod({ namespace: 'team-a', name: 'web-a2' });
    const b1 = await lab.addPod({ namespace: 'team-b', name: 'api-b1' });
    const { truth: ta } = await captured([a1, a2], async () => {
      expect((await a1.getent('web')).addresses).toContain('10.96.0.20');
      // api.example.org has 2 dots < ndots:5: three NXDOMAIN candidates first, A and AAAA each
      expect((await a1.python('api.example.org')).addresses).toContain('198.51.100.7');
      expect((await a2.musl('web')).addresses).toContain('10.96.0.20');
      expect((await a2.dig('web.team-a.svc.cluster.local')).status).toBe('NOERROR');
      expect((await a2.dig('nothere.team-a.svc.cluster.local', { type: 'AAAA' })).status).toBe(
        'NXDOMAIN',
      );
    });
    const { truth: tb } = await captured([b1], async () => {
      expect((await b1.getent('example.com')).addresses).toContain('192.0.2.80');
      expect((await b1.dig('db.prod.svc.cluster.local', { type: 'TXT' })).exitCode).toBe(0);
    });
    expect(ta.responses['A/NXDOMAIN']).toBeGreaterThanOrEqual(3);
    expect(tb.responses['AAAA/NXDOMAIN']).toBe(3);

    const s = await exporter.until((x) => sumOf(x, Q, { namespace: 'team-b' }) >= 9, 10_000);
    for (const [ns, t] of [
      ['team-a', ta],
      ['team-b', tb],
    ] as const) {
      for (const qtype of ['A', 'AAAA', 'other'] as const) {
        expect(sumOf(s, Q, { namespace: ns, qtype }), `${ns} ${qtype} queries`).toBe(
          t.queries[qtype],
        );
        expect(sumOf(s, RTX, { namespace: ns, qtype }), `${ns} ${qtype} retransmits`).toBe(0);
        const answered = t.latencies.filter((l) => l.qtype === qtype).length;
        expect(
          sumOf(s, `${H}_count`, { namespace: ns, qtype }),
          `${ns} ${qtype} histogram count`,
        ).toBe(answered);
        expect(bucketAt(s, ns, qtype, '+Inf')).toBe(answered);
        expect(bucketAt(s, ns, qtype, '1'), `${ns} ${qtype}: every answer under 1 s`).toBe(
          answered,
        );
        for (const rcode of ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other'])
          expect(sumOf(s, R, { namespace: ns, qtype, rcode }), `${ns} ${qtype} ${rcode}`).toBe(
            t.responses[`${qtype}/${rcode}`] ?? 0,
          );
      }
      expect(sumOf(s, TMO, { namespace: ns })).toBe(0);
    }
    // The replicas answered them: the server view of kube-system saw the same queries.
    expect(
      sumOf(s, 'dnsrace_dns_server_queries_total', { namespace: 'kube-system' }),
    ).toBeGreaterThanOrEqual(ta.queries.A + ta.queries.AAAA + tb.queries.A + tb.queries.AAAA);
    expect(
      sumOf(s, 'dnsrace_dns_pod_queries_total', { namespace: 'team-a', pod: 'web-a1' }),
    ).toBeGreaterThan(0);
    expect(sumOf(s, 'dnsrace_bpf_parse_errors_total')).toBe(0);
  });

  it('shows 5 s and 10 s stalls, retransmits and timeouts for the faulted namespace only (glibc and musl)', async () => {
    const stall5 = await lab.addPod({ namespace: 'team-c', name: 'stall-5s' });
    const stall10 = await lab.addPod({ namespace: 'team-c', name: 'stall-10s' });
    const lost = await lab.addPod({ namespace: 'team-c', name: 'aaaa-lost' });
    const alpine = await lab.addPod({ namespace: 'team-m', name: 'alpine-1' });
    const undo = [
      await lab.dropQueries({ qtype: 'AAAA', count: 1, fromPod: stall5 }),
      await lab.dropQueries({ qtype: 'AAAA', count: 2, fromPod: stall10 }),
      await lab.dropQueries({ qtype: 'AAAA', fromPod: lost }),
      await lab.dropQueries({ qtype: 'AAAA', fromPod: alpine }),
    ];
    const before = await exporter.freshScrape();
    const { result, truth } = await captured([stall5, stall10, lost], () =>
      Promise.all([
        stall5.getent('web.team-a.svc.cluster.local.'),
        stall10.getent('web.team-a.svc.cluster.local.'),
        lost.getent('web.team-a.svc.cluster.local.'),
        alpine.musl('web.team-a.svc.cluster.local.'),
      ]),
    );
    for (const u of undo) await u();
    const [r5, r10, rLost, rMusl] = result;
    expect(r5.durationMs).toBeGreaterThan(4500);
    expect(r10.durationMs).toBeGreaterThan(9500);
    expect(rLost.durationMs).toBeGreaterThan(14_500);
    expect(rMusl.exitCode, `musl fails with EAI_AGAIN: ${rMusl.stdout}`).not.toBe(0);
    expect(truth.unanswered.map((u) => u.qtype)).toEqual(['AAAA']);

    // Timeouts are counted once the deadline (5 s after the last send) has passed.
    const s = await exporter.until(
      (x) =>
        sumOf(x, TMO, { namespace: 'team-c' }) >= 1 && sumOf(x, TMO, { namespace: 'team-m' }) >= 1,
      15_000,
    );
    expect(sumOf(s, TMO, { namespace: 'team-c', qtype: 'AAAA' })).toBe(1);
    expect(sumOf(s, TMO, { namespace: 'team-c', qtype: 'A' })).toBe(0);
    expect(sumOf(s, TMO, { namespace: 'team-m', qtype: 'AAAA' })).toBe(1);
    expect(sumOf(s, RTX, { namespace: 'team-m', qtype: 'AAAA' })).toBeGreaterThanOrEqual(1);
    expect(sumOf(s, RTX, { namespace: 'team-c', qtype: 'AAAA' })).toBe(truth.retransmits.AAAA);
    expect(sumOf(s, Q, { namespace: 'team-c', qtype: 'AAAA' })).toBe(truth.queries.AAAA);
    expect(sumOf(s, Q, { namespace: 'team-c', qtype: 'A' })).toBe(truth.queries.A);

    // One AAAA answered after ~5 s (4, 5.66], one after ~10 s (8, 11.3]: the 10 s one was
    // re-sent from a new socket (single-request-reopen) and still measured from its first send.
    const le = (v: string) => bucketAt(s, 'team-c', 'AAAA', v);
    expect(le('4')).toBe(0);
    expect(le('5.65685424949238')).toBe(1);
    expect(le('8')).toBe(1);
    expect(le('11.31370849898476')).toBe(2);
    expect(le('+Inf')).toBe(2);
    const slow = truth.latencies
      .filter((l) => l.qtype === 'AAAA')
      .map((l) => l.seconds)
      .sort((x, y) => x - y);
    expect(slow[0]).toBeGreaterThan(4);
    expect(slow[1]).toBeGreaterThan(8);

    // Namespaces without faults gained no retransmit, timeout or slow answer.
    for (const ns of ['team-a', 'team-b']) {
      expect(sumOf(s, RTX, { namespace: ns })).toBe(sumOf(before, RTX, { namespace: ns }));
      expect(sumOf(s, TMO, { namespace: ns })).toBe(0);
      expect(sumOf(s, `${H}_bucket`, { namespace: ns, le: '1' })).toBe(
        sumOf(s, `${H}_bucket`, { namespace: ns, le: '+Inf' }),
      );
    }
  }, 90_000);

  it('counts DNS over IPv6 and over TCP', async () => {
    const v6 = await lab.addPod({ namespace: 'team-v6', name: 'v6-1', nameserver: 'ipv6' });
    const { truth } = await captured([v6], async () => {
      // web.team-a: one dot < ndots:5, so the walk tries web.team-a.team-v6.svc... (NXDOMAIN) first
      expect((await v6.getent('web.team-a')).addresses).toContain('10.96.0.20');
      expect(
        (
          await v6.dig('dual.default.svc.cluster.local', {
            type: 'AAAA',
            tcp: true,
            server: lab.dnsService.ipv6,
          })
        ).addresses,
      ).toContain('fd00:10:96::28');
      expect(
        (await v6.dig('web.team-a.svc.cluster.local', { tcp: true, server: lab.dnsService.ipv4 }))
          .status,
      ).toBe('NOERROR');
    });
    expect(truth.queries.A).toBeGreaterThanOrEqual(3);
    const s = await exporter.until(
      (x) => sumOf(x, Q, { namespace: 'team-v6' }) >= truth.queries.A + truth.queries.AAAA,
      10_000,
    );
    expect(sumOf(s, Q, { namespace: 'team-v6', qtype: 'A' })).toBe(truth.queries.A);
    expect(sumOf(s, Q, { namespace: 'team-v6', qtype: 'AAAA' })).toBe(truth.queries.AAAA);
    expect(sumOf(s, `${H}_count`, { namespace: 'team-v6' })).toBe(truth.latencies.length);
  });

  it('keeps counting across a restart: monotonic, nothing twice, attached once, purge leaves nothing', async () => {
    const pod = await lab.addPod({ namespace: 'team-r', name: 'loop-1' });
    const loop = await pod.spawn([
      'sh',
      '-c',
      'for i in $(seq 40); do dig +short +tries=1 +time=2 whoami.default.svc.cluster.local >/dev/null; sleep 0.1; done',
    ]);
    const seen: number[] = [];
    // Restart in the middle of traffic: once the loop's first lookups are counted.
    const s0 = await exporter.until((x) => sumOf(x, Q, { namespace: 'team-r' }) >= 3, 15_000);
    seen.push(sumOf(s0, Q, { namespace: 'team-r' }));
    expect(await exporter.stop()).toBe(0);
    expect(await attachedPrograms()).toEqual([]);
    exporter = new ExporterProcess({
      cgroupRoot: lab.cgroupDir,
      bpffsDir: `${lab.bpffsDir}/exporter`,
      podLogDir: lab.varLogPods,
      extraArgs: ['--purge-on-exit'],
    });
    await exporter.start();
    expect(await attachedPrograms()).toEqual(['dns_egress', 'dns_ingress']);
    await loop.exited;
    seen.push(sumOf(await exporter.freshScrape(), Q, { namespace: 'team-r' }));
    // Exactly 40 lookups were made; the restart gap may miss some, nothing may count twice.
    expect(seen[1]).toBeGreaterThanOrEqual(seen[0]!);
    expect(seen[1]).toBeLessThanOrEqual(40);
    expect(seen[0]).toBeGreaterThan(0);

    // After the restart every lookup counts again, exactly.
    const { truth } = await captured([pod], async () => {
      for (let i = 0; i < 5; i++)
        await pod.dig('whoami.default.svc.cluster.local', { options: ['+tries=1'] });
    });
    const s = await exporter.until(
      (x) => sumOf(x, Q, { namespace: 'team-r' }) >= seen[1]! + 5,
      10_000,
    );
    expect(sumOf(s, Q, { namespace: 'team-r' }) - seen[1]!).toBe(truth.queries.A);

    expect(await exporter.stop()).toBe(0);
    expect(await attachedPrograms()).toEqual([]);
    expect(existsSync(`${lab.bpffsDir}/exporter`)).toBe(false);
  }, 90_000);
});
