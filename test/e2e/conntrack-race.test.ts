/**
 * The conntrack insert race behind Kubernetes' 5 s DNS stalls, on this kernel, read through
 * src/conntrack: a pod sends A and AAAA on one socket to the DNS ClusterIP from two CPUs at
 * the same instant (test/lab/clients/ctrace.c). The lab node's stat file is read as
 * /proc/<pid of a node-netns process>/net/stat/nf_conntrack, the way the exporter reads its own.
 * Needs root, gcc and conntrack-tools besides the lab's tools.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConntrackReader,
  isAvailable,
  type ConntrackReading,
  type ConntrackSample,
} from '../../src/conntrack/index.js';
import { createLab, nodeNetnsPid, runConntrackRace, type Lab, type Pod } from '../lab/index.js';
import { which } from '../lab/preflight.js';

const ITERATIONS = 1000;

function sampleOf(r: ConntrackReading): ConntrackSample {
  if (!isAvailable(r))
    throw new Error(`conntrack stats unavailable (${r.reason}): ${r.message}`, { cause: r.cause });
  return r;
}

/** after - before of one counter; NaN (failing any comparison) when the kernel lacks it. */
const delta = (before: ConntrackSample, after: ConntrackSample, counter: string): number =>
  (after.counters[counter] ?? NaN) - (before.counters[counter] ?? NaN);

const deltas = (before: ConntrackSample, after: ConntrackSample): Record<string, number> =>
  Object.fromEntries(
    ['clash_resolve', 'insert_failed', 'drop', 'early_drop', 'chaintoolong'].map((c) => [
      c,
      delta(before, after, c),
    ]),
  );

describe('conntrack insert race in the lab node (kernel ≥ 5.10 semantics)', () => {
  let lab: Lab;
  let pod: Pod;
  let procfs: ConntrackReader;
  let raceClashes: number | undefined;

  beforeAll(async () => {
    if (!(await which('conntrack'))) {
      throw new Error(
        'this test needs conntrack-tools: apt-get install -y --no-install-recommends conntrack',
      );
    }
    lab = await createLab({ pods: [{ namespace: 'default', name: 'racer' }], logQueries: false });
    pod = lab.pods[0]!;
    procfs = new ConntrackReader({
      statFile: `/proc/${await nodeNetnsPid(lab)}/net/stat/nf_conntrack`,
    });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it("reads the node netns's table through /proc/<pid>/net", async () => {
    const s = sampleOf(await procfs.read());
    expect(s.source).toBe('procfs');
    expect(s.cpus).toBeGreaterThanOrEqual(2);
    expect(Object.keys(s.counters)).toEqual(
      expect.arrayContaining(['clash_resolve', 'insert_failed', 'drop']),
    );
    // The replicas' readiness digs went through the node netns: its table is not empty.
    expect(s.entries).toBeGreaterThan(0);
    expect(s.max).toBeGreaterThan(0);
  });

  it(`A and AAAA from two CPUs at once, ${ITERATIONS} times: clash_resolve rises, nothing is dropped or lost`, async () => {
    const root = new ConntrackReader(); // the test's own (root) netns, for contrast
    const [before, rootBefore] = [sampleOf(await procfs.read()), sampleOf(await root.read())];
    const race = await runConntrackRace(pod, { iterations: ITERATIONS, mode: 'race' });
    const [after, rootAfter] = [sampleOf(await procfs.read()), sampleOf(await root.read())];
    const d = deltas(before, after);
    console.log('race:', JSON.stringify(race), 'conntrack deltas:', JSON.stringify(d));
    raceClashes = d.clash_resolve;

    expect(race).toMatchObject({
      iterations: ITERATIONS,
      ok: ITERATIONS,
      lostA: 0,
      lostAAAA: 0,
      sendErrors: 0,
    });
    expect(d.clash_resolve).toBeGreaterThanOrEqual(100);
    expect(d.clash_resolve).toBeLessThanOrEqual(ITERATIONS);
    expect(d.insert_failed).toBe(0);
    expect(d.drop).toBe(0);
    // The clashes happen in the node netns only: the path picks the netns.
    expect(delta(rootBefore, rootAfter, 'clash_resolve')).toBeLessThan((d.clash_resolve ?? 0) / 10);
  });

  it(`one sendmmsg per socket (what glibc does), ${ITERATIONS} times: clash_resolve rises far less`, async () => {
    const before = sampleOf(await procfs.read());
    const mmsg = await runConntrackRace(pod, { iterations: ITERATIONS, mode: 'mmsg' });
    const after = sampleOf(await procfs.read());
    const d = deltas(before, after);
    console.log('mmsg:', JSON.stringify(mmsg), 'conntrack deltas:', JSON.stringify(d));

    expect(mmsg).toMatchObject({
      iterations: ITERATIONS,
      ok: ITERATIONS,
      lostA: 0,
      lostAAAA: 0,
      sendErrors: 0,
    });
    expect(d.clash_resolve).toBeLessThanOrEqual(Math.max(10, (raceClashes ?? 0) / 10));
    expect(d.insert_failed).toBe(0);
    expect(d.drop).toBe(0);
  });

  it('without the procfs file it falls back to conntrack -S/-C in the same netns and sees the same counters', async () => {
    const netlink = new ConntrackReader({
      statFile: '/nonexistent/net/stat/nf_conntrack',
      conntrackCommand: ['nsenter', `--net=/run/netns/${lab.nodeNetns}`, 'conntrack'],
    });
    const viaNetlink = sampleOf(await netlink.read());
    const viaProcfs = sampleOf(await procfs.read());
    expect(viaNetlink.source).toBe('netlink');
    expect(viaNetlink.cpus).toBe(viaProcfs.cpus);
    const shared = Object.keys(viaNetlink.counters).filter((k) => k in viaProcfs.counters);
    expect(shared).toEqual(
      expect.arrayContaining([
        'clash_resolve',
        'insert_failed',
        'drop',
        'early_drop',
        'search_restart',
      ]),
    );
    // No traffic between the two reads: the counters must agree exactly.
    for (const k of shared) expect([k, viaNetlink.counters[k]]).toEqual([k, viaProcfs.counters[k]]);
    expect(viaNetlink.counters.clash_resolve).toBeGreaterThanOrEqual(100);
    // Entries only expire between the reads (no new flows), so procfs sees at most as many.
    expect(viaNetlink.entries).toBeGreaterThan(0);
    expect(viaProcfs.entries).toBeLessThanOrEqual(viaNetlink.entries!);
    expect(viaNetlink.max).toBe(viaProcfs.max);
  });

  it('costs: a procfs read is sub-millisecond-ish, the netlink fallback a few ms', async () => {
    const netlink = new ConntrackReader({
      statFile: '/nonexistent/net/stat/nf_conntrack',
      conntrackCommand: ['nsenter', `--net=/run/netns/${lab.nodeNetns}`, 'conntrack'],
    });
    const time = async (r: ConntrackReader, n: number): Promise<number> => {
      const start = performance.now();
      for (let i = 0; i < n; i++) sampleOf(await r.read());
      return (performance.now() - start) / n;
    };
    const procfsMs = await time(procfs, 200);
    const netlinkMs = await time(netlink, 20);
    console.log(
      `read() cost: procfs ${procfsMs.toFixed(3)} ms, netlink (nsenter + conntrack -S and -C) ${netlinkMs.toFixed(2)} ms`,
    );
    expect(procfsMs).toBeLessThan(10);
    expect(netlinkMs).toBeLessThan(200);
  });
});
