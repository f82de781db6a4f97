/**
 * Smoke test of the benchmarks: `bench/run.ts --quick` runs on the real kernel (root), cleans up
 * after itself and prints numbers for every section. No timing is asserted: CI machines differ.
 */
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('bench/run.ts --quick', () => {
  it('runs, reports positive numbers for each section and leaves nothing behind', async () => {
    const statsFile = '/proc/sys/kernel/bpf_stats_enabled';
    const statsBefore = readFileSync(statsFile, 'utf8');
    const r = await execa('npx', ['tsx', 'bench/run.ts', '--quick'], {
      cwd: ROOT,
      reject: false,
      timeout: 240_000,
      all: true,
    });
    expect(r.exitCode, r.all).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
    expect(line, r.all).toBeDefined();
    const res = JSON.parse(line!.slice('BENCH_RESULT '.length));

    expect(positive(res.startup.loadAttachMs.median)).toBe(true);
    expect(positive(res.startup.detachMs.median)).toBe(true);
    for (const key of ['noop:9053', 'dns:9053', 'noop:53', 'dns:53']) {
      expect(positive(res.packet[key].egressNs.median), key).toBe(true);
      expect(positive(res.packet[key].ingressNs.median), key).toBe(true);
      expect(res.packet[key].runsPerPair.median, key).toBe(2);
    }
    expect(positive(res.packet['none:53'].pairUs.median)).toBe(true);
    expect(res.mapRead.length).toBeGreaterThan(0);
    for (const row of res.mapRead) {
      expect(row.decodedRows).toBe(row.entries);
      expect(row.entries).toBeGreaterThanOrEqual(row.pods * 3);
      expect(positive(row.exporterReadMs.median)).toBe(true);
      expect(positive(row.batchFloorMs.median)).toBe(true);
      expect(positive(row.batchFloorProcessMs.median)).toBe(true);
    }

    // Versus a user-space capture: tshark saw what dnsrace counted, and both have a CPU cost.
    const vs = res.vsCapture;
    expect(vs.rounds.length).toBeGreaterThan(0);
    // A capture may drop packets on a loaded machine (dumpcap's ring): within 1 %, not exact.
    for (const round of vs.rounds) {
      const slack = round.sent * 0.01;
      expect(Math.abs(round.latency.liveVsDnsrace.countDiff), 'tshark live').toBeLessThanOrEqual(
        slack,
      );
      expect(Math.abs(round.latency.offlineVsDnsrace.countDiff), 'tshark -r').toBeLessThanOrEqual(
        slack,
      );
    }
    expect(vs.check.exporterQueries).toBe(vs.check.sent);
    expect(positive(vs.ratios.tsharkLive.median)).toBe(true);
    expect(positive(vs.perQueries.dnsraceTotal.median)).toBe(true);

    expect(res.scrape.metrics.length).toBeGreaterThan(0);
    for (const row of res.scrape.metrics) {
      expect(row.podSeries).toBe(Math.min(row.pods, 250));
      expect(positive(row.textMs.median) && positive(row.textBytes)).toBe(true);
      expect(positive(row.protobufMs.median) && positive(row.protobufBytes)).toBe(true);
    }
    for (const row of res.scrape.load) {
      expect(row.answered).toBe(row.sent);
      expect(row.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(positive(row.rssMb.max)).toBe(true);
    }

    // Its own cleanup: no netns, cgroup or pin of this run is left, kernel.bpf_stats_enabled is
    // restored (another bench running at the same time would have other names).
    const { stdout: netns } = await execa('ip', ['netns', 'list']);
    const cg = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((m) =>
      existsSync(path.join(m, 'cgroup.controllers')),
    )!;
    for (const mine of [res.scratch as string, vs.scratch as string]) {
      expect(mine).toMatch(/^dnsrace-test-bench-/);
      expect(netns).not.toContain(mine);
      expect(readdirSync('/sys/fs/bpf').filter((n) => n === mine)).toEqual([]);
      expect(readdirSync(cg).filter((n) => n === mine)).toEqual([]);
    }
    expect(readFileSync(statsFile, 'utf8')).toBe(statsBefore);
  }, 250_000);
});
