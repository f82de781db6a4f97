// Reads what the doctor needs from a live pod: its effective resolv.conf through
// /proc/<pid>/root (the pod's mount namespace: what its resolver really reads) and the ELF
// interpreter of its main process, picked from the cgroup.procs of the pod's cgroups.
// I/O only; the conclusions are doctor.ts's. Roots are injected for tests.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walkDirectoryInodes } from '../identity/cgroup-walk.js';
import { elfInterpreter, libcOfInterpreter } from './elf.js';
import { parseResolvConf } from './resolv-conf.js';
import type { DoctorInput } from './doctor.js';

export interface PodProbeOptions {
  /** The cgroup2 directory the programs attach to (absolute). */
  cgroupRoot: string;
  /** Default /proc. */
  procRoot?: string;
  /** cgroup id to its pod. */
  nameOf: (cgroupId: bigint) => { namespace: string; pod: string };
  /** How long one walk of the cgroup tree is reused. Default 10 s. */
  walkTtlMs?: number;
  now?: () => number;
}

export interface PodProcess {
  pid: number;
  comm: string;
  cgroupDir: string;
}

const MAX_RESOLV_CONF = 64 * 1024;
const ELF_HEAD = 64 * 1024;

export class PodProbe {
  private readonly procRoot: string;
  private walk: { at: number; dirs: Promise<Map<bigint, string>> } | undefined;

  constructor(private readonly o: PodProbeOptions) {
    this.procRoot = o.procRoot ?? '/proc';
  }

  /** The pod's cgroup directories (absolute) with their ids. */
  async cgroupsOf(namespace: string, pod: string): Promise<{ id: bigint; dir: string }[]> {
    const now = (this.o.now ?? Date.now)();
    if (!this.walk || now - this.walk.at > (this.o.walkTtlMs ?? 10_000)) {
      const dirs = walkDirectoryInodes(this.o.cgroupRoot, { maxDepth: 8 }).then((r) => r.inodes);
      this.walk = { at: now, dirs };
      dirs.catch(() => (this.walk = undefined));
    }
    const out: { id: bigint; dir: string }[] = [];
    for (const [id, rel] of await this.walk.dirs) {
      const n = this.o.nameOf(id);
      if (n.namespace === namespace && n.pod === pod)
        out.push({ id, dir: join(this.o.cgroupRoot, rel) });
    }
    return out;
  }

  /** The pod's longest-running process: its main process, normally. */
  async mainProcess(cgroupDirs: readonly string[]): Promise<PodProcess | undefined> {
    let best: (PodProcess & { start: number }) | undefined;
    for (const dir of cgroupDirs) {
      let pids: number[];
      try {
        pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map(Number);
      } catch {
        continue; // the cgroup went away
      }
      for (const pid of pids) {
        const stat = await readFile(join(this.procRoot, String(pid), 'stat'), 'utf8').catch(
          () => undefined,
        );
        const parsed = stat && parseProcStat(stat);
        if (parsed && (!best || parsed.start < best.start))
          best = { pid, comm: parsed.comm, cgroupDir: dir, start: parsed.start };
      }
    }
    return best && { pid: best.pid, comm: best.comm, cgroupDir: best.cgroupDir };
  }

  async probe(
    namespace: string,
    pod: string,
  ): Promise<Pick<DoctorInput, 'resolv' | 'interpreter'> & { process?: PodProcess }> {
    const cgroups = await this.cgroupsOf(namespace, pod);
    if (cgroups.length === 0)
      return { resolv: { error: `no cgroup of ${namespace}/${pod} under ${this.o.cgroupRoot}` } };
    const proc = await this.mainProcess(cgroups.map((c) => c.dir));
    if (!proc)
      return {
        resolv: { error: `no process runs in the cgroups of ${namespace}/${pod} right now` },
      };
    const base = join(this.procRoot, String(proc.pid));
    const who = `pid ${proc.pid} (${proc.comm})`;
    let resolv: DoctorInput['resolv'];
    const path = join(base, 'root/etc/resolv.conf');
    try {
      resolv = {
        conf: parseResolvConf(await readHead(path, MAX_RESOLV_CONF, 'utf8')),
        source: `${path}, ${who}`,
      };
    } catch (err) {
      resolv = { error: `cannot read ${path} of ${who}: ${(err as Error).message}` };
    }
    let interpreter: DoctorInput['interpreter'];
    try {
      const head = await readHead(join(base, 'exe'), ELF_HEAD);
      const interp = elfInterpreter(head);
      if (interp !== undefined)
        interpreter = { path: interp, libc: libcOfInterpreter(interp), source: `${who}` };
    } catch {
      interpreter = undefined; // exited, or no permission: the traffic shape still tells
    }
    return { resolv, ...(interpreter ? { interpreter } : {}), process: proc };
  }
}

/** comm and start time (clock ticks after boot) from /proc/<pid>/stat. */
export function parseProcStat(text: string): { comm: string; start: number } | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // Fields after the comm, counted from field 3 (state); starttime is field 22.
  const rest = text.slice(close + 2).split(' ');
  const start = Number(rest[22 - 3]);
  return Number.isFinite(start) ? { comm: text.slice(open + 1, close), start } : undefined;
}

function readHead(path: string, max: number): Promise<Uint8Array>;
function readHead(path: string, max: number, enc: 'utf8'): Promise<string>;
async function readHead(path: string, max: number, enc?: 'utf8'): Promise<Uint8Array | string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    const head = buf.subarray(0, bytesRead);
    return enc ? head.toString('utf8') : new Uint8Array(head);
  } finally {
    await fh.close();
  }
}
