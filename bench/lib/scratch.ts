// The bench's scratch world: two network namespaces joined by a veth pair, cgroups under
// <cgroup2>/dnsrace-test-bench-<id>/ and a bpffs dir /sys/fs/bpf/dnsrace-test-bench-<id>.
// destroy() removes all of it and is safe to call after a partial create().
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const CLIENT_IP = '198.18.0.1'; // RFC 2544 benchmark range
export const SERVER_IP = '198.18.0.2';

export interface Scratch {
  id: string;
  clientNs: string;
  serverNs: string;
  cgroupRoot: string;
  bpffsDir: string;
  cgroup(name: string): string;
  /** runs argv in netns ns with its pid in cgroup cg first (ip netns exec hides /sys/fs/cgroup) */
  spawnIn(cg: string, ns: string, argv: string[]): ResultPromise;
  destroy(): Promise<string[]>;
}

export async function createScratch(cgroup2Mount: string, cgroupNames: string[]): Promise<Scratch> {
  const id = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const base = `dnsrace-test-bench-${id}`;
  const clientNs = `${base}-c`;
  const serverNs = `${base}-s`;
  const cgroupRoot = path.join(cgroup2Mount, base);
  const bpffsDir = path.join('/sys/fs/bpf', base);
  const children = new Set<ResultPromise>();
  const s: Scratch = {
    id,
    clientNs,
    serverNs,
    cgroupRoot,
    bpffsDir,
    cgroup: (name) => path.join(cgroupRoot, name),
    spawnIn(cg, ns, argv) {
      const child = execa(
        'sh',
        [
          '-c',
          'ns=$1; shift; echo $$ > "$0/cgroup.procs" && exec ip netns exec "$ns" "$@"',
          cg,
          ns,
          ...argv,
        ],
        { reject: false },
      );
      children.add(child);
      void child.finally(() => children.delete(child));
      return child;
    },
    async destroy() {
      const done: string[] = [];
      for (const c of children) {
        c.kill('SIGKILL');
        await c;
      }
      for (const ns of [clientNs, serverNs]) {
        const r = await execa('ip', ['netns', 'del', ns], { reject: false });
        if (r.exitCode === 0) done.push(`netns ${ns}`);
      }
      for (const name of [...cgroupNames].reverse()) {
        const dir = path.join(cgroupRoot, name);
        await killCgroup(dir);
        await removeCgroupTree(dir);
        if (!existsSync(dir)) done.push(`cgroup ${dir}`);
      }
      if (
        await rmdir(cgroupRoot).then(
          () => true,
          () => false,
        )
      )
        done.push(`cgroup ${cgroupRoot}`);
      await rm(bpffsDir, { recursive: true, force: true });
      done.push(`bpffs ${bpffsDir}`);
      return done;
    },
  };
  try {
    await mkdir(cgroupRoot);
    for (const name of cgroupNames) await mkdir(path.join(cgroupRoot, name));
    await mkdir(bpffsDir);
    for (const ns of [clientNs, serverNs]) await execa('ip', ['netns', 'add', ns]);
    const ipc = (...a: string[]) => execa('ip', ['-n', clientNs, ...a]);
    const ips = (...a: string[]) => execa('ip', ['-n', serverNs, ...a]);
    await ipc('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', serverNs);
    await ipc('addr', 'add', `${CLIENT_IP}/24`, 'dev', 'veth0');
    await ips('addr', 'add', `${SERVER_IP}/24`, 'dev', 'veth1');
    for (const f of [ipc, ips]) await f('link', 'set', 'lo', 'up');
    await ipc('link', 'set', 'veth0', 'up');
    await ips('link', 'set', 'veth1', 'up');
  } catch (err) {
    await s.destroy();
    throw new Error(`creating the bench scratch namespaces/cgroups ${base} failed`, { cause: err });
  }
  return s;
}

/** SIGKILLs what is left in a cgroup we created (by PID, from its own cgroup.procs). */
async function killCgroup(dir: string): Promise<void> {
  const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  if (procs.trim()) await new Promise((r) => setTimeout(r, 200));
}

/** kernel.bpf_stats_enabled, restored by the returned function. */
export async function enableBpfStats(): Promise<() => Promise<void>> {
  const file = '/proc/sys/kernel/bpf_stats_enabled';
  const before = (await readFile(file, 'utf8')).trim();
  await writeFile(file, '1');
  return () => writeFile(file, before);
}

/** Removes a cgroup tree we created, deepest directories first. */
export async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isDirectory()) await removeCgroupTree(path.join(dir, e.name));
  }
  await rmdir(dir).catch(() => undefined);
}
