/**
 * Parser robustness of bpf/dist/dns.bpf.o: more than 100,000 generated packets, malformed and
 * odd (test/support/packet-fuzz.ts), go through the real dns_egress and dns_ingress programs
 * with BPF_PROG_TEST_RUN, many per bpftool process (`bpftool -j batch file`). Each class of
 * packets runs on a freshly loaded object, and the maps are then held to what the parse oracle
 * (test/support/dns-parse-oracle.ts) and the pairing model (test/support/pairing-model.ts) say
 * they must hold: every dns_health counter exactly, every dns_stats row (queries,
 * retransmits, timeouts, responses by rcode class, latency count and histogram total) and
 * every dns_pending entry. Valid query/answer pairs are mixed into every class, so a program
 * that ignored everything would fail too. Every run must return 1: cgroup_skb never drops.
 *
 * When a class does not match, it is bisected on fresh loads down to the packets that differ,
 * and the first few are printed in hex.
 *
 * Needs root and bpftool. Pins live under /sys/fs/bpf/dnsrace-test-* and are removed.
 * Runtime: 17-41 s measured on the 2-core dev VM while other labs ran (15-19 s of CPU;
 * generating the packets takes 2.5-7 s of it); about 150,000 test runs at 14,000-32,000 per second.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync, writeFileSync } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Bpftool } from '../../src/bpf/bpftool.js';
import { batchProgRun } from '../../src/bpf/bpftool-output.js';
import { HEALTH_COUNTERS, type HealthCounter } from '../../src/bpf/dns-health.js';
import {
  CLASS_NAMES,
  parserRobustnessClasses,
  whyTally,
  type Run,
} from '../support/packet-fuzz.js';
import { withEthernet } from '../support/packet-craft.js';
import {
  expectationOf,
  pendingLine,
  zeroHealth,
  type MapExpectation,
  type PendingLine,
  type RowExpectation,
  type RowName,
} from '../support/pairing-model.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** DNSRACE_DNS_OBJECT: a candidate build, to try a fix of bpf/dns.bpf.c against the classes. */
const OBJECT = process.env.DNSRACE_DNS_OBJECT ?? join(REPO, 'bpf/dist/dns.bpf.o');
const BPFFS = '/sys/fs/bpf';
/** Issue 10; change it to see other packets (every seed must pass). */
const SEED = Number(process.env.DNSRACE_FUZZ_SEED ?? 10);
const ISSUE_ITEMS = [
  'truncated IP headers',
  'truncated UDP headers',
  'truncated TCP headers',
  'truncated DNS headers',
  'qdcount 0 and many',
  'compression pointers and loops in the question',
  'maximum-length names',
  'IPv6 extension header chains',
  'TCP length prefixes that lie',
  'fragments',
  'non-DNS on port 53',
];

const bpftool = new Bpftool({ timeoutMs: 300_000 });

// ---------------------------------------------------------------------------------------------
// One freshly loaded dns.bpf.o: run packets, read the maps back.

interface Observed {
  health: Record<HealthCounter, number>;
  rows: Partial<Record<RowName, RowExpectation>>;
  pending: PendingLine[];
  retryIndexEntries: number;
  cgroupIds: number[];
}

const pinDirs: string[] = [];
let scratchRoot = '';
let batchSeconds = 0;
let batchRuns = 0;

class LoadedDns {
  private constructor(readonly pinDir: string) {}

  static async load(): Promise<LoadedDns> {
    const pinDir = join(BPFFS, `dnsrace-test-${randomBytes(4).toString('hex')}`);
    pinDirs.push(pinDir);
    const loaded = new LoadedDns(pinDir);
    try {
      await bpftool.loadAll(OBJECT, join(pinDir, 'progs'), { mapPinDir: join(pinDir, 'maps') });
    } catch (err) {
      await loaded.close();
      throw err;
    }
    return loaded;
  }

  async close(): Promise<void> {
    await rm(this.pinDir, { recursive: true, force: true });
  }

  private map(name: string): string {
    return join(this.pinDir, 'maps', name);
  }

  /** Runs every packet in order (repeat times each) in one bpftool process; the return values. */
  async run(runs: readonly Run[], repeat = 1): Promise<number[]> {
    const dir = await mkdtemp(join(scratchRoot, 'batch-'));
    try {
      const commands = runs.map((r, i) => {
        const file = join(dir, `${i}`);
        writeFileSync(file, withEthernet(r.packet));
        const cmd = ['prog', 'run', 'pinned', join(this.pinDir, 'progs', r.prog), 'data_in', file];
        return repeat > 1 ? [...cmd, 'repeat', String(repeat)] : cmd;
      });
      const t0 = performance.now();
      const results = await bpftool.batch(commands);
      batchSeconds += (performance.now() - t0) / 1000;
      batchRuns += runs.length * repeat;
      return results.map((r, i) => batchProgRun(r, i).retval);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async observe(): Promise<Observed> {
    const health = zeroHealth();
    for (const e of await bpftool.mapDump(this.map('dns_health'), { perCpu: 'sum' })) {
      const name = HEALTH_COUNTERS[Number(e.key)];
      const v = Number(e.value);
      if (name) health[name] = v;
      else if (v !== 0) throw new Error(`dns_health slot ${String(e.key)} = ${v} is not in dns.h`);
    }

    const rows: Partial<Record<RowName, RowExpectation>> = {};
    const cgroupIds = new Set<number>();
    const stats = (await bpftool.mapDump(this.map('dns_stats'))) as unknown as StatsEntry[];
    for (const { key, value } of stats) {
      cgroupIds.add(key.cgroup_id);
      const name = `${ROLES[key.role]}/${QTYPE_CLASSES[key.qtype]}` as RowName;
      if (rows[name]) throw new Error(`two dns_stats rows for ${name}: more than one cgroup`);
      rows[name] = {
        queries: value.queries,
        retransmits: value.retransmits,
        timeouts: value.timeouts,
        responses: value.responses,
        latencyCount: value.latency_count,
        latencySlotsTotal: value.latency.reduce((a, b) => a + b, 0),
      };
    }
    const sortedRows = Object.fromEntries(
      Object.entries(rows).sort(([a], [b]) => a.localeCompare(b)),
    ) as Partial<Record<RowName, RowExpectation>>;

    const pending = ((await bpftool.mapDump(this.map('dns_pending'))) as unknown as PendingEntry[])
      .map(({ key, value }) => {
        const qname = Buffer.from(value.qname);
        const used = qname.subarray(0, value.qname_len);
        const line = pendingLine(
          {
            role: ROLES[key.role] as 'client' | 'server',
            proto: key.proto ? 'tcp' : 'udp',
            peer: Buffer.from(key.peer).toString('hex'),
            port: key.port,
            id: key.id,
            qtype: key.qtype,
          },
          {
            retransmits: value.retransmits,
            qnameLen: value.qname_len,
            qnameTruncated: (value.flags & PENDING_F_QNAME_TRUNCATED) !== 0,
            qname: used.toString('hex'),
          },
        );
        // the bytes past qname_len are zero: nothing of an earlier packet leaks into them
        return qname.subarray(value.qname_len).some((b) => b !== 0) ? `${line} tail=dirty` : line;
      })
      .sort();
    const retryIndexEntries = (await bpftool.mapDumpBytes(this.map('dns_retry_index'))).length;
    return { health, rows: sortedRows, pending, retryIndexEntries, cgroupIds: [...cgroupIds] };
  }
}

const ROLES = ['client', 'server'];
const QTYPE_CLASSES = ['A', 'AAAA', 'other'];
const PENDING_F_QNAME_TRUNCATED = 0x04;

interface StatsEntry {
  key: { cgroup_id: number; role: number; qtype: number };
  value: {
    queries: number;
    retransmits: number[];
    timeouts: number[];
    responses: number[];
    latency_count: number;
    latency: number[];
  };
}

interface PendingEntry {
  key: {
    cgroup_id: number;
    peer: number[];
    port: number;
    id: number;
    qtype: number;
    role: number;
    proto: number;
  };
  value: { retransmits: number; qname_len: number; flags: number; qname: number[] };
}

// ---------------------------------------------------------------------------------------------
// Comparing what the maps hold with what they must hold.

/** What a test prints on a mismatch: small, with the first differing pending entries. */
function comparable(o: Observed | MapExpectation, against: MapExpectation) {
  const want = new Set(against.pending);
  const have = new Set(o.pending);
  return {
    health: o.health,
    rows: o.rows,
    pendingEntries: o.pending.length,
    pendingMissing: against.pending.filter((l) => !have.has(l)).slice(0, 3),
    pendingUnexpected: o.pending.filter((l) => !want.has(l)).slice(0, 3),
    // one pending query, one retry index entry: none was taken over by another
    retryIndexEntries: 'retryIndexEntries' in o ? o.retryIndexEntries : o.pending.length,
  };
}

function matches(o: Observed, e: MapExpectation): boolean {
  return JSON.stringify(comparable(o, e)) === JSON.stringify(comparable(e, e));
}

async function runFresh(runs: readonly Run[], repeat = 1) {
  const dns = await LoadedDns.load();
  try {
    const retvals = await dns.run(runs, repeat);
    return { retvals, observed: await dns.observe() };
  } finally {
    await dns.close();
  }
}

/**
 * The packets of a failing class that fail on their own: bisects on fresh loads (the model
 * gives the expectation of any subset) and returns up to `limit` of them.
 */
async function offenders(runs: readonly Run[], limit = 3): Promise<Run[]> {
  const found: Run[] = [];
  const visit = async (part: readonly Run[]): Promise<void> => {
    if (found.length >= limit || part.length === 0) return;
    const { observed } = await runFresh(part);
    if (matches(observed, expectationOf(part.map((r) => r.outcome)))) return;
    if (part.length === 1) {
      found.push(part[0]!);
      return;
    }
    const mid = part.length >> 1;
    await visit(part.slice(0, mid));
    await visit(part.slice(mid));
  };
  await visit(runs);
  return found;
}

function describeRun(r: Run): string {
  const o = r.outcome;
  const want = o.kind === 'error' ? o.counter : o.kind;
  return `${r.prog} expected ${want} (${o.why}): ${r.packet.toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------

const t0 = performance.now();
const CLASSES = parserRobustnessClasses({ seed: SEED });
const generationSeconds = (performance.now() - t0) / 1000;
const TOTAL = CLASSES.reduce((a, c) => a + c.runs.length, 0);
const perClass: { name: string; packets: number; seconds: number; ok: boolean }[] = [];

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('bpf-parser-robustness needs root (BPF load, BPF_PROG_TEST_RUN, bpffs)');
  }
  const v = await execa('bpftool', ['version'], { reject: false });
  if (v.exitCode !== 0) {
    throw new Error(
      'bpftool is missing: apt-get install -t bookworm-backports bpftool (7.5 or newer)',
      { cause: v },
    );
  }
  if (!existsSync(OBJECT)) throw new Error(`${OBJECT} is missing: run scripts/build-bpf.sh`);
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  if (!mounts.split('\n').some((l) => l.split(' ')[1] === BPFFS && l.split(' ')[2] === 'bpf')) {
    throw new Error(`bpffs is not mounted at ${BPFFS}: mount -t bpf bpf ${BPFFS}`);
  }
  // tmpfs: 100k small files written and read once
  const shm = await access('/dev/shm', fsConstants.W_OK).then(
    () => '/dev/shm',
    () => tmpdir(),
  );
  scratchRoot = await mkdtemp(join(shm, 'dnsrace-test-parser-'));
});

afterAll(async () => {
  if (scratchRoot) await rm(scratchRoot, { recursive: true, force: true });
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    [
      `bpf-parser-robustness: seed ${SEED}, ${TOTAL} packets in ${CLASSES.length} classes, ` +
        `generated in ${generationSeconds.toFixed(1)} s`,
      ...perClass.map(
        (c) =>
          `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(30)} ${String(c.packets).padStart(6)} packets ` +
          `${c.seconds.toFixed(2)} s`,
      ),
      `  BPF_PROG_TEST_RUN: ${batchRuns} runs in ${batchSeconds.toFixed(1)} s of bpftool batch ` +
        `(${Math.round(batchRuns / Math.max(batchSeconds, 1e-9))} packets/s); ` +
        `file total ${seconds.toFixed(1)} s`,
    ].join('\n'),
  );
  expect(
    pinDirs.filter((d) => existsSync(d)),
    'pin directories left behind',
  ).toEqual([]);
});

describe('dns.bpf.o parser robustness under BPF_PROG_TEST_RUN', () => {
  it(`generates at least 100,000 packets covering every item of issue 10 (seed ${SEED})`, () => {
    expect(TOTAL).toBeGreaterThanOrEqual(100_000);
    const covered = new Set(CLASSES.flatMap((c) => c.covers));
    expect(ISSUE_ITEMS.filter((i) => !covered.has(i))).toEqual([]);
    expect(CLASSES.map((c) => c.name)).toEqual(CLASS_NAMES);
  });

  it.each(CLASSES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const started = performance.now();
    const expected = expectationOf(c.runs.map((r) => r.outcome));
    const { retvals, observed } = await runFresh(c.runs);
    const ok = matches(observed, expected);
    perClass.push({
      name: c.name,
      packets: c.runs.length,
      seconds: (performance.now() - started) / 1000,
      ok,
    });

    // cgroup_skb: 1 lets the packet through. Anything else would drop a pod's traffic.
    expect(
      retvals.flatMap((v, i) => (v === 1 ? [] : [`${describeRun(c.runs[i]!)} returned ${v}`])),
      'every run returns 1 (allow)',
    ).toEqual([]);
    expect(
      observed.cgroupIds.length,
      "dns_stats rows of one cgroup (bpftool's)",
    ).toBeLessThanOrEqual(1);

    let why = `${c.what}\noutcomes: ${JSON.stringify(whyTally(c.runs))}`;
    if (!ok) {
      const bad = await offenders(c.runs);
      why +=
        bad.length > 0
          ? `\npackets that fail on their own:\n${bad.map(describeRun).join('\n')}`
          : '\nno packet fails on its own: the mismatch needs the packets together';
    }
    expect(comparable(observed, expected), why).toEqual(comparable(expected, expected));
  });

  it('counts every repetition of a BPF_PROG_TEST_RUN repeat run', async () => {
    // Some packets of every class, each run 50 times in the kernel: a malformed one bumps
    // its counter 50 times, a query counts once and 49 retransmits, an answer pairs once.
    const REPEAT = 50;
    const sample = CLASSES.flatMap((c) => c.runs.filter((_r, i) => i % 500 === 7));
    const expected = expectationOf(
      sample.flatMap((r) => Array<typeof r.outcome>(REPEAT).fill(r.outcome)),
    );
    const { retvals, observed } = await runFresh(sample, REPEAT);
    expect(retvals.every((v) => v === 1)).toBe(true);
    expect(comparable(observed, expected)).toEqual(comparable(expected, expected));
  });
});
