import { mkdir, mkdtemp, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupIndex, type CgroupIndexOptions } from '../../src/identity/cgroup-index.js';
import { walkDirectoryInodes } from '../../src/identity/cgroup-walk.js';

// The cgroup tree is faked with plain directories in a temp dir: the walker only needs directory
// inodes, and on cgroup2 a directory's inode number is the cgroup id bpf_skb_cgroup_id() returns.

const POD_UID = '6dc88073-2128-40d6-9dbc-0ba508da7fe8';
const POD_SLICE = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID.replaceAll('-', '_')}.slice`;
const CTR = '123cd1db937c3c2d0d7772ef9b0a1c4b0b3dcfcb6b889452a90b2fcb43eae43a';
const CTR_SCOPE = `${POD_SLICE}/cri-containerd-${CTR}.scope`;
const CTR2 = '59db0b93ab678f22ad44e89bfc902a3a03e8aeec5e823f83e670919381cb20cd';
const NEVER_AN_INODE = 0x7fff_ffff_ffff_fff0n;

const TREE = [
  'system.slice/containerd.service',
  'user.slice/user-1000.slice/session-3.scope',
  'kubepods.slice/kubepods-burstable.slice',
  CTR_SCOPE,
];

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'dnsrace-cgroups-'));
  for (const dir of TREE) await mkdir(join(root, dir), { recursive: true });
  // cgroupfs interface files sit next to the directories and must be ignored.
  await writeFile(join(root, 'cgroup.procs'), '');
  await writeFile(join(root, CTR_SCOPE, 'cgroup.procs'), '');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function ino(rel: string): Promise<bigint> {
  return (await stat(join(root, rel), { bigint: true })).ino;
}

function fakeClock(start = 10_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function index(opts: Partial<CgroupIndexOptions> = {}): CgroupIndex {
  return new CgroupIndex({ mountPoint: root, ...opts });
}

describe('walkDirectoryInodes', () => {
  it('maps the inode of every directory to its relative path and ignores files', async () => {
    const { inodes, unreadable } = await walkDirectoryInodes(root, { maxDepth: 8 });
    const paths = [...inodes.values()].sort();
    expect(paths).toContain('');
    expect(paths).toContain(CTR_SCOPE);
    expect(paths).toContain('system.slice/containerd.service');
    expect(paths.some((p) => p.endsWith('cgroup.procs'))).toBe(false);
    expect(inodes.get(await ino(CTR_SCOPE))).toBe(CTR_SCOPE);
    // 1 root + system.slice(2) + user.slice(3) + kubepods.slice + burstable + besteffort + pod + scope
    expect(inodes.size).toBe(11);
    expect(unreadable).toEqual([]);
  });

  it('stops at maxDepth', async () => {
    const { inodes } = await walkDirectoryInodes(root, { maxDepth: 2 });
    const depths = [...inodes.values()].map((p) => (p === '' ? 0 : p.split('/').length));
    expect(Math.max(...depths)).toBe(2);
    expect([...inodes.values()]).not.toContain(CTR_SCOPE);
  });

  it('skips a directory that vanishes between listing and stat (ENOENT)', async () => {
    const victim = join(root, 'user.slice');
    const { inodes } = await walkDirectoryInodes(root, {
      maxDepth: 8,
      beforeVisit: async (abs) => {
        if (abs === victim) await rm(victim, { recursive: true });
      },
    });
    const paths = [...inodes.values()];
    expect(paths.some((p) => p.startsWith('user.slice'))).toBe(false);
    expect(paths).toContain(CTR_SCOPE);
  });

  it('skips a directory that vanishes between stat and listing (opendir ENOENT)', async () => {
    // Depth-first from a stack: siblings are stat'ed before any of them is listed, so removing
    // one while visiting another's child hits opendir, not stat.
    const removed: string[] = [];
    const { inodes } = await walkDirectoryInodes(root, {
      maxDepth: 8,
      beforeVisit: async (abs) => {
        if (removed.length > 0 || abs.split('/').length - root.split('/').length !== 2) return;
        for (const top of ['system.slice', 'user.slice', 'kubepods.slice']) {
          if (!abs.startsWith(join(root, top))) {
            await rm(join(root, top), { recursive: true });
            removed.push(top);
            return;
          }
        }
      },
    });
    expect(removed).toHaveLength(1);
    const paths = [...inodes.values()];
    expect(paths).toContain(removed[0]); // stat'ed before it vanished
    expect(paths.some((p) => p.startsWith(`${removed[0]}/`))).toBe(false);
  });

  it('skips a directory replaced by a file mid-walk (not indexed, no ENOTDIR error)', async () => {
    const victim = join(root, 'system.slice', 'containerd.service');
    const { inodes } = await walkDirectoryInodes(root, {
      maxDepth: 8,
      beforeVisit: async (abs) => {
        if (abs === victim) {
          await rmdir(victim);
          await writeFile(victim, 'not a cgroup');
        }
      },
    });
    expect([...inodes.values()]).not.toContain('system.slice/containerd.service');
    expect([...inodes.values()]).toContain('system.slice');
  });

  it('names the walk root when it does not exist', async () => {
    const missing = join(root, 'no-such-subtree');
    await expect(walkDirectoryInodes(missing, { maxDepth: 8 })).rejects.toThrow(
      `cannot walk cgroup tree at ${missing}`,
    );
  });
});

describe('CgroupIndex', () => {
  it('resolves container, pod and host cgroups by inode after a refresh', async () => {
    const idx = index();
    await idx.refresh();
    const ctr = idx.lookup(await ino(CTR_SCOPE));
    expect(ctr).toMatchObject({
      path: `/${CTR_SCOPE}`,
      pod: {
        podUid: POD_UID,
        qos: 'besteffort',
        role: 'container',
        container: { runtime: 'containerd', id: CTR },
      },
    });
    expect(idx.lookup(await ino(POD_SLICE))?.pod).toMatchObject({ podUid: POD_UID, role: 'pod' });
    expect(idx.lookup(await ino('system.slice/containerd.service'))).toMatchObject({
      path: '/system.slice/containerd.service',
      pod: null,
    });
    expect(idx.lookup(await ino(''))).toMatchObject({ path: '/', pod: null });
    expect(idx.stats()).toMatchObject({ entries: 11, scans: 1, lastError: undefined });
  });

  it('indexes only the subtree and keeps hierarchy paths (lab prefix in front of kubepods)', async () => {
    await mkdir(join(root, 'dnsrace-lab-x1', CTR_SCOPE), { recursive: true });
    const idx = index({ subtree: '/dnsrace-lab-x1' });
    await idx.refresh();
    expect(idx.lookup(await ino(join('dnsrace-lab-x1', CTR_SCOPE)))).toMatchObject({
      path: `/dnsrace-lab-x1/${CTR_SCOPE}`,
      pod: { podUid: POD_UID, container: { id: CTR } },
    });
    expect(idx.stats().entries).toBe(5); // the subtree root, kubepods.slice, QoS slice, pod slice, scope
  });

  it('prepends the mount root of a sub-cgroup bind mount so the pod segment is not lost', async () => {
    const idx = new CgroupIndex({
      mountPoint: join(root, POD_SLICE),
      hierarchyRoot: `/${POD_SLICE}`,
    });
    await idx.refresh();
    expect((await idx.lookupFresh(await ino(CTR_SCOPE)))?.pod).toMatchObject({
      podUid: POD_UID,
      role: 'container',
    });
  });

  it('finds a cgroup created after the last scan: a miss triggers a rescan', async () => {
    const clock = fakeClock();
    const idx = index({ now: clock.now });
    await idx.refresh();
    const scope2 = `${POD_SLICE}/cri-containerd-${CTR2}.scope`;
    await mkdir(join(root, scope2));
    const id = await ino(scope2);
    expect(idx.lookup(id)).toBeUndefined(); // sync: schedules a rescan...
    clock.advance(1_000);
    const entry = await idx.lookupFresh(id); // ...which this joins or starts
    expect(entry?.pod).toMatchObject({
      podUid: POD_UID,
      container: { runtime: 'containerd', id: CTR2 },
    });
    expect(idx.lookup(id)).toBe(entry);
    expect(idx.stats().scans).toBe(2);
  });

  it('rate-limits rescans: a storm of unknown ids causes one rescan per interval', async () => {
    const clock = fakeClock();
    const idx = index({ now: clock.now, minRescanIntervalMs: 1_000, negativeTtlMs: 60_000 });
    await idx.refresh();
    clock.advance(1_000);
    const misses = Array.from({ length: 200 }, (_, i) => NEVER_AN_INODE - BigInt(i));
    for (const id of misses) expect(idx.lookup(id)).toBeUndefined();
    await Promise.all(misses.map((id) => idx.lookupFresh(id)));
    expect(idx.stats().scans).toBe(2);
    clock.advance(500);
    await Promise.all(misses.map((id) => idx.lookupFresh(id - 1_000n)));
    expect(idx.stats().scans).toBe(2);
    clock.advance(500);
    await idx.lookupFresh(NEVER_AN_INODE - 5_000n);
    expect(idx.stats().scans).toBe(3);
  });

  it('caches a miss negatively until it expires, then rescans for it again', async () => {
    const clock = fakeClock();
    const idx = index({ now: clock.now, minRescanIntervalMs: 1_000, negativeTtlMs: 10_000 });
    await idx.refresh();
    clock.advance(1_000);
    await expect(idx.lookupFresh(NEVER_AN_INODE)).resolves.toBeUndefined();
    expect(idx.stats()).toMatchObject({ scans: 2, negativeEntries: 1 });

    // Past the rescan interval but inside the negative TTL: the same id triggers nothing.
    clock.advance(5_000);
    await expect(idx.lookupFresh(NEVER_AN_INODE)).resolves.toBeUndefined();
    expect(idx.lookup(NEVER_AN_INODE)).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(idx.stats().scans).toBe(2);

    // Expired: the id may exist now, so it earns a rescan again.
    clock.advance(5_000);
    await idx.lookupFresh(NEVER_AN_INODE);
    expect(idx.stats().scans).toBe(3);
  });

  it('does not cache negatively on a rate-limited miss (no proof of absence)', async () => {
    const clock = fakeClock();
    const idx = index({ now: clock.now, minRescanIntervalMs: 1_000, negativeTtlMs: 60_000 });
    await idx.refresh(); // started at t; a miss at t+1 is rate-limited
    clock.advance(1);
    const scope2 = `${POD_SLICE}/cri-containerd-${CTR2}.scope`;
    await mkdir(join(root, scope2));
    const id = await ino(scope2);
    await expect(idx.lookupFresh(id)).resolves.toBeUndefined();
    expect(idx.stats()).toMatchObject({ scans: 1, negativeEntries: 0 });
    clock.advance(1_000);
    await expect(idx.lookupFresh(id)).resolves.toMatchObject({ pod: { container: { id: CTR2 } } });
  });

  it('does not cache negatively after joining a scan that started before the miss', async () => {
    const clock = fakeClock();
    let parked = false;
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const idx = index({ now: clock.now, beforeVisit: async () => (parked ? hold : undefined) });
    await idx.refresh();
    clock.advance(1_000);
    parked = true;
    const scanning = idx.refresh(); // parked in the walk
    clock.advance(5);
    const fresh = idx.lookupFresh(NEVER_AN_INODE); // joins it: that walk may predate the cgroup
    release();
    await scanning;
    await expect(fresh).resolves.toBeUndefined();
    expect(idx.stats()).toMatchObject({ scans: 2, negativeEntries: 0 });
  });

  it('keeps a removed cgroup resolvable for retainRemovedMs, then forgets it', async () => {
    const clock = fakeClock();
    const idx = index({ now: clock.now, retainRemovedMs: 60_000 });
    await idx.refresh();
    const id = await ino(CTR_SCOPE);
    await rm(join(root, CTR_SCOPE), { recursive: true });
    clock.advance(1_000);
    await idx.refresh();
    expect(idx.lookup(id)).toMatchObject({ pod: { container: { id: CTR } }, removedAt: 11_000 });
    expect(idx.stats().removedRetained).toBe(1);
    clock.advance(59_999);
    await idx.refresh();
    expect(idx.lookup(id)?.removedAt).toBe(11_000);
    clock.advance(1);
    await idx.refresh();
    expect(idx.lookup(id)).toBeUndefined();
  });

  it('survives a failing rescan: lookups answer from the old index, the error is reported', async () => {
    const errors: unknown[] = [];
    const clock = fakeClock();
    const idx = index({
      subtree: 'kubepods.slice',
      now: clock.now,
      onRefreshError: (e) => errors.push(e),
    });
    await idx.refresh();
    const id = await ino(CTR_SCOPE);
    await rm(join(root, 'kubepods.slice'), { recursive: true });
    clock.advance(1_000);
    await expect(idx.lookupFresh(NEVER_AN_INODE)).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as Error).message)).toContain(
      `cannot walk cgroup tree at ${join(root, 'kubepods.slice')}`,
    );
    expect(idx.lookup(id)?.pod?.podUid).toBe(POD_UID);
    await expect(idx.refresh()).rejects.toThrow(/cannot walk cgroup tree/);
  });

  it('refreshes periodically in the background until stopped', async () => {
    const idx = index();
    await idx.refresh();
    const stop = idx.startPeriodicRefresh(10);
    try {
      const deadline = Date.now() + 2_000;
      while (idx.stats().scans < 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      expect(idx.stats().scans).toBeGreaterThanOrEqual(3);
    } finally {
      stop();
    }
    // A scan already running when stop() came may still finish (slowly on a loaded machine);
    // after that, no new one may start.
    await new Promise((r) => setTimeout(r, 300));
    const scans = idx.stats().scans;
    await new Promise((r) => setTimeout(r, 300));
    expect(idx.stats().scans).toBe(scans);
  });
});
