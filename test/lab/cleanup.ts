import { readFile, readdir, readlink, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cgroupProcs, cgroupTreeDepthFirst, removeCgroupDir } from './cgroup2.js';
import { exec, sleep } from './exec.js';
import { LAB_PREFIX, runIdOf } from './names.js';

/** Where labs leave things; injectable so that discovery can be tested on a fake tree. */
export interface LabHostPaths {
  cgroup2: string;
  bpffs: string;
  runNetns: string;
  etcNetns: string;
  tmp: string;
  proc: string;
}

export function defaultHostPaths(cgroup2: string): LabHostPaths {
  return {
    cgroup2,
    bpffs: '/sys/fs/bpf',
    runNetns: '/run/netns',
    etcNetns: '/etc/netns',
    tmp: tmpdir(),
    proc: '/proc',
  };
}

/** What one lab run (alive or crashed) has on the host. */
export interface LabRun {
  runId: string;
  netns: string[];
  etcNetns: string[];
  cgroupDir?: string;
  bpffsDir?: string;
  rootDir?: string;
  /** PID of the process that created the lab, when the lab root still says so. */
  ownerPid?: number;
  ownerAlive: boolean;
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Start time (clock ticks since boot) of a process; undefined when it does not exist. */
export async function processStartTime(pid: number, proc = '/proc'): Promise<number | undefined> {
  try {
    const text = await readFile(join(proc, String(pid), 'stat'), 'utf8');
    // comm (field 2) may contain spaces; fields after the last ')' start at field 3.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

export interface LabOwner {
  pid: number;
  startTime: number;
}

export const OWNER_FILE = 'owner.json';

export async function findLabRuns(paths: LabHostPaths): Promise<LabRun[]> {
  const runs = new Map<string, LabRun>();
  const get = (id: string): LabRun => {
    let r = runs.get(id);
    if (!r) runs.set(id, (r = { runId: id, netns: [], etcNetns: [], ownerAlive: false }));
    return r;
  };
  for (const n of await names(paths.runNetns)) {
    const id = runIdOf(n);
    if (id) get(id).netns.push(n);
  }
  for (const n of await names(paths.etcNetns)) {
    const id = runIdOf(n);
    if (id) get(id).etcNetns.push(join(paths.etcNetns, n));
  }
  for (const n of await names(paths.cgroup2)) {
    const id = runIdOf(n);
    if (id && n === LAB_PREFIX + id) get(id).cgroupDir = join(paths.cgroup2, n);
  }
  for (const n of await names(paths.bpffs)) {
    const id = runIdOf(n);
    if (id && n === LAB_PREFIX + id) get(id).bpffsDir = join(paths.bpffs, n);
  }
  for (const n of await names(paths.tmp)) {
    const id = runIdOf(n);
    if (id && n === LAB_PREFIX + id) get(id).rootDir = join(paths.tmp, n);
  }
  for (const r of runs.values()) {
    if (!r.rootDir) continue;
    try {
      const owner = JSON.parse(await readFile(join(r.rootDir, OWNER_FILE), 'utf8')) as LabOwner;
      r.ownerPid = owner.pid;
      r.ownerAlive = (await processStartTime(owner.pid, paths.proc)) === owner.startTime;
    } catch {
      /* no owner file: a crash during set-up, treat as dead */
    }
  }
  return [...runs.values()].sort((a, b) => a.runId.localeCompare(b.runId));
}

/** PIDs living in any of the given network namespaces (found through /proc/<pid>/ns/net). */
async function pidsInNetns(netnsFiles: string[], proc: string): Promise<number[]> {
  const inodes = new Set<string>();
  for (const f of netnsFiles) {
    try {
      inodes.add(`net:[${(await stat(f)).ino}]`);
    } catch {
      /* already gone */
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const n of await names(proc)) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      if (inodes.has(await readlink(join(proc, n, 'ns/net')))) pids.push(Number(n));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

async function isGone(pid: number, proc: string): Promise<boolean> {
  try {
    const s = await readFile(join(proc, String(pid), 'stat'), 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

interface CgroupTreeEntry {
  cgroup: string;
  programs: { id: number; attach_type: string; name: string }[];
}

/**
 * Removes everything of one lab run, in dependency order: processes (by PID: those in the
 * lab's cgroups and those inside its netns), BPF programs still attached to its cgroups,
 * cgroups (children first), netns, /etc/netns entries, bpffs pins, lab root.
 * Returns one line per removed thing.
 */
export async function removeLabRun(run: LabRun, paths: LabHostPaths): Promise<string[]> {
  const removed: string[] = [];
  const errors: Error[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      errors.push(new Error(`${what}: ${(err as Error).message}`, { cause: err }));
    }
  };

  const cgDirs = run.cgroupDir ? await cgroupTreeDepthFirst(run.cgroupDir) : [];
  const pids = new Set<number>();
  for (const d of cgDirs) for (const p of await cgroupProcs(d)) pids.add(p);
  for (const p of await pidsInNetns(
    run.netns.map((n) => join(paths.runNetns, n)),
    paths.proc,
  ))
    pids.add(p);
  pids.delete(process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
      removed.push(`process ${pid}`);
    } catch {
      /* exited meanwhile */
    }
  }
  const deadline = Date.now() + 3000;
  for (const pid of pids) {
    while (!(await isGone(pid, paths.proc)) && Date.now() < deadline) await sleep(10);
  }

  if (run.cgroupDir) {
    await attempt('detach BPF programs', async () => {
      const r = await exec(['bpftool', '-j', 'cgroup', 'tree', run.cgroupDir!]);
      if (r.exitCode !== 0) return;
      for (const entry of JSON.parse(r.stdout || '[]') as CgroupTreeEntry[]) {
        for (const p of entry.programs) {
          const d = await exec([
            'bpftool',
            'cgroup',
            'detach',
            entry.cgroup,
            p.attach_type,
            'id',
            String(p.id),
          ]);
          if (d.exitCode !== 0)
            throw new Error(
              `bpftool cgroup detach ${entry.cgroup} ${p.attach_type} id ${p.id}: ${d.stderr}`,
            );
          removed.push(`bpf attachment ${p.name} (${p.attach_type}) on ${entry.cgroup}`);
        }
      }
    });
    for (const d of cgDirs)
      await attempt(
        `cgroup ${d}`,
        async () => (await removeCgroupDir(d)) && removed.push(`cgroup ${d}`),
      );
  }
  for (const n of run.netns) {
    await attempt(`netns ${n}`, async () => {
      const r = await exec(['ip', 'netns', 'del', n]);
      if (r.exitCode !== 0) throw new Error(r.stderr.trim());
      removed.push(`netns ${n}`);
    });
  }
  for (const e of run.etcNetns) {
    await attempt(e, async () => {
      await rm(e, { recursive: true, force: true });
      removed.push(`${e}`);
    });
  }
  // /etc/netns did not exist before the first lab on a fresh machine: drop it when empty.
  await rmdir(paths.etcNetns).catch(() => undefined);
  if (run.bpffsDir) {
    await attempt(run.bpffsDir, async () => {
      await rm(run.bpffsDir!, { recursive: true, force: true });
      removed.push(`bpffs ${run.bpffsDir}`);
    });
  }
  if (run.rootDir) {
    await attempt(run.rootDir, async () => {
      await rm(run.rootDir!, { recursive: true, force: true });
      removed.push(`lab root ${run.rootDir}`);
    });
  }
  if (errors.length) {
    throw new AggregateError(
      errors,
      `lab ${LAB_PREFIX}${run.runId}: cleanup incomplete (removed: ${removed.join('; ')})`,
    );
  }
  return removed;
}
