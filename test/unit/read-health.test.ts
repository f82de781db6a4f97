// The log lines of src/read-health.ts and the stale-reader matching of src/stale-readers.ts:
// what each fault says, and that a flood or fast churn is not a line per read.
import { describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  classifyReadFailure,
  OverflowWatch,
  PendingShareWatch,
  ReadFailureLog,
  UnnamedWatch,
} from '../../src/read-health.js';
import {
  isEventReaderOf,
  parentPidOfStat,
  stopStaleEventReaders,
} from '../../src/stale-readers.js';
import type { Snapshot } from '../../src/snapshot.js';
import { emptyTotals } from '../../src/dns/totals.js';

describe('classifyReadFailure', () => {
  it.each([
    ['bpftool map dump pinned /p timed out after 2000 ms', 'timeout'],
    ["bpftool not found: '/x' is not on PATH or does not exist", 'no-bpftool'],
    ['bpftool map dump pinned /p: cannot parse its output: Unexpected token', 'unparsable'],
    [
      'bpftool map dump pinned /p failed (exit 255): Error: bpf obj get (/p): No such file or directory',
      'pin-gone',
    ],
    ['something else', 'other'],
  ])('%s -> %s', (message, kind) => {
    // The step error wraps the bpftool error: the kind is found in the cause too.
    const err = new Error('pending_dump failed', { cause: new Error(message) });
    expect(classifyReadFailure(err)).toBe(kind);
  });
});

describe('ReadFailureLog', () => {
  it('says what to do at each failure and once that reads work again', () => {
    const log = new ReadFailureLog({ bpftoolTimeoutMs: 2000, bpffsDir: '/sys/fs/bpf/dnsrace' });
    expect(log.succeeded()).toBeUndefined();
    const line = log.failed(new Error('x timed out after 2000 ms'), 'pending_dump');
    expect(line.level).toBe('error');
    expect(line.msg).toMatch(/\(pending_dump\).*within --bpftool-timeout \(2000 ms\)/);
    log.failed(new Error('y'), 'stats_dump');
    expect(log.succeeded()?.msg).toBe('reading the kernel maps works again after 2 failed reads');
    expect(log.succeeded()).toBeUndefined();
  });
});

const snap = (pendingFull: number, entries: number): Pick<Snapshot, 'health' | 'maps'> => ({
  health: { pending_full: pendingFull },
  maps: [{ map: 'dns_pending', entries, maxEntries: 16384 }],
});

describe('OverflowWatch', () => {
  it('warns when a map starts overflowing and says once when it has room again', () => {
    const w = new OverflowWatch();
    expect(w.update(snap(5, 16384))).toEqual([]); // baseline: carried over from earlier runs
    const start = w.update(snap(105, 16384));
    expect(start.map((l) => [l.level, l.fields.failedInserts])).toEqual([['warn', 100]]);
    expect(start[0]!.msg).toMatch(/^BPF map dns_pending is full \(16384 entries\): .*topk/);
    expect(w.update(snap(205, 16384))).toEqual([]); // still overflowing: no line per read
    expect(w.update(snap(205, 16384))).toEqual([]); // full, nothing failed: not over yet
    const end = w.update(snap(205, 10));
    expect(end.map((l) => [l.level, l.msg])).toEqual([
      [
        'info',
        'BPF map dns_pending has room again (10 of 16384 entries used); 200 inserts failed while it was full',
      ],
    ]);
    expect(w.update(snap(205, 0))).toEqual([]);
  });
});

describe('PendingShareWatch', () => {
  const share = (n: number) => ({ health: { pending_share_full: n } });

  it('warns once when a pod goes over its share of dns_pending and says once when none is', () => {
    const w = new PendingShareWatch();
    expect(w.update(share(40))).toBeUndefined(); // baseline: carried over from earlier runs
    expect(w.update(share(40))).toBeUndefined();
    const start = w.update(share(140));
    expect([start?.level, start?.fields.untrackedQueries]).toEqual(['warn', 100]);
    expect(start?.msg).toMatch(/^a pod has an eighth of dns_pending .*topk/);
    expect(w.update(share(1140))).toBeUndefined(); // still over: no line per read
    expect(w.update(share(1140))).toEqual({
      level: 'info',
      msg: 'no pod is over its share of dns_pending any more; 1100 queries went untracked meanwhile',
      fields: { untrackedQueries: 1100 },
    });
    expect(w.update(share(1140))).toBeUndefined();
  });
});

describe('UnnamedWatch', () => {
  const unknown = (queries: number): Pick<Snapshot, 'dns'> => ({
    dns: {
      client: new Map([
        ['_unknown', new Map([['A', { ...emptyTotals(), queries }]])],
        ['team-a', new Map([['A', { ...emptyTotals(), queries: 1000 }]])],
      ]),
      server: new Map(),
      pods: new Map(),
    },
  });

  it('says at most once per interval how many queries landed in _unknown', () => {
    let now = 0;
    const w = new UnnamedWatch({ now: () => now, intervalMs: 60_000, readIntervalMs: 500 });
    expect(w.update(unknown(7))).toBeUndefined(); // baseline
    expect(w.update(unknown(7))).toBeUndefined();
    expect(w.update(unknown(10))?.msg).toMatch(
      /^3 DNS queries came from cgroups no source could name .*--read-interval \(500 ms\)/,
    );
    now = 30_000;
    expect(w.update(unknown(15))).toBeUndefined();
    now = 61_000;
    expect(w.update(unknown(16))?.fields).toEqual({ queries: 6 });
  });
});

describe('stale event readers', () => {
  it.each([
    [['bpftool', 'map', 'event_pipe', 'pinned', '/sys/fs/bpf/dnsrace/maps/dns_events'], true],
    [['/usr/sbin/bpftool', 'map', 'event_pipe', 'pinned', '/sys/fs/bpf/dnsrace/maps/x'], true],
    [['bpftool', 'map', 'event_pipe', 'pinned', '/sys/fs/bpf/dnsrace-2/maps/dns_events'], false],
    [['bpftool', 'map', 'dump', 'pinned', '/sys/fs/bpf/dnsrace/maps/dns_events'], false],
    [['bpftool', 'map', 'event_pipe', 'id', '12'], false],
  ])('%j is a reader of /sys/fs/bpf/dnsrace: %s', (argv, yes) => {
    expect(isEventReaderOf(argv, '/sys/fs/bpf/dnsrace/')).toBe(yes);
  });

  it.each([
    ['4242 (bpftool) S 1 4242 4242 0 -1', 1],
    ['4242 (a b) c)) S 77 1 1', 77],
  ])('parent of %j is %i', (stat, ppid) => {
    expect(parentPidOfStat(stat)).toBe(ppid);
  });

  it('kills readers that are not our children, in a fake /proc', async () => {
    const proc = await mkdtemp(path.join(tmpdir(), 'dnsrace-proc-'));
    try {
      const add = async (pid: number, ppid: number, argv: string[]) => {
        await mkdir(path.join(proc, String(pid)));
        await writeFile(path.join(proc, String(pid), 'cmdline'), `${argv.join('\0')}\0`);
        await writeFile(path.join(proc, String(pid), 'stat'), `${pid} (bpftool) S ${ppid} 0 0`);
      };
      const reader = ['bpftool', 'map', 'event_pipe', 'pinned', '/b/maps/dns_events'];
      await add(10, 1, reader); // orphan of a killed run
      await add(11, 500, reader); // ours
      await add(12, 1, ['sleep', '3600']);
      const killed: number[] = [];
      const stopped = await stopStaleEventReaders('/b', {
        procRoot: proc,
        self: 500,
        kill: (pid) => killed.push(pid),
      });
      expect(stopped).toEqual([10]);
      expect(killed).toEqual([10]);
    } finally {
      await rm(proc, { recursive: true, force: true });
    }
  });
});
