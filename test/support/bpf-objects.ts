// What an exporter left in the kernel, seen from outside through bpftool: the programs attached
// to a cgroup, the objects pinned under a bpffs directory, and the ids still alive. For
// checking that a restart attaches nothing twice and a clean stop leaks nothing.
import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Bpftool } from '../../src/bpf/bpftool.js';

export interface ObjectIds {
  progs: Set<number>;
  links: Set<number>;
  maps: Set<number>;
}

export const emptyIds = (): ObjectIds => ({ progs: new Set(), links: new Set(), maps: new Set() });

/** bpftool -j …; `link show pinned` can print the link and still exit 255, so stdout decides. */
async function bpftoolJson(args: string[]): Promise<unknown> {
  const r = await execa('bpftool', ['-j', ...args], { reject: false });
  try {
    return JSON.parse(r.stdout) as unknown;
  } catch {
    return undefined;
  }
}

const idOf = (o: unknown): number | undefined => {
  const id = (o as { id?: unknown } | undefined)?.id;
  return typeof id === 'number' ? id : undefined;
};

/** Programs attached directly to a cgroup: { id, name, attach_type }. */
export async function cgroupAttachments(
  cgroupDir: string,
): Promise<{ id: number; name: string; attach_type: string }[]> {
  const out = await bpftoolJson(['cgroup', 'show', cgroupDir]);
  return Array.isArray(out) ? (out as { id: number; name: string; attach_type: string }[]) : [];
}

/** Every object pinned (at any depth) under dir, by kind; a link also holds its program. */
export async function pinnedObjects(dir: string): Promise<ObjectIds> {
  const ids = emptyIds();
  let files: string[];
  try {
    files = (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name));
  } catch {
    return ids;
  }
  for (const f of files) {
    const link = await bpftoolJson(['link', 'show', 'pinned', f]);
    const linkId = idOf(link);
    if (linkId !== undefined && (link as { prog_id?: unknown }).prog_id !== undefined) {
      ids.links.add(linkId);
      ids.progs.add((link as { prog_id: number }).prog_id);
      continue;
    }
    const prog = idOf(await bpftoolJson(['prog', 'show', 'pinned', f]));
    if (prog !== undefined) {
      ids.progs.add(prog);
      continue;
    }
    const map = idOf(await bpftoolJson(['map', 'show', 'pinned', f]));
    if (map !== undefined) ids.maps.add(map);
  }
  return ids;
}

/** Ids of every program, link and map alive in the kernel now. */
export async function liveIds(): Promise<ObjectIds> {
  const list = async (kind: string) => {
    const out = await bpftoolJson([kind, 'show']);
    return new Set((Array.isArray(out) ? out : []).map(idOf).filter((x) => x !== undefined));
  };
  return { progs: await list('prog'), links: await list('link'), maps: await list('map') };
}

/** The ids of `ids` that are still alive. */
export async function stillAlive(ids: ObjectIds): Promise<ObjectIds> {
  const live = await liveIds();
  const keep = (mine: Set<number>, all: Set<number>) =>
    new Set([...mine].filter((i) => all.has(i)));
  return {
    progs: keep(ids.progs, live.progs),
    links: keep(ids.links, live.links),
    maps: keep(ids.maps, live.maps),
  };
}

export function addIds(into: ObjectIds, from: ObjectIds): void {
  for (const k of ['progs', 'links', 'maps'] as const) for (const id of from[k]) into[k].add(id);
}

/** PIDs of processes whose command line contains every one of `parts`. */
export async function processesWith(...parts: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const text = cmdline.split('\0').join(' ');
    if (parts.every((p) => text.includes(p))) out.push(Number(entry));
  }
  return out;
}

/** The signed little-endian 64-bit values of a map without BTF, read as raw bytes. */
async function int64Values(pin: string): Promise<bigint[]> {
  return (await new Bpftool().mapDumpBytes(pin)).map((e) => {
    if (!e.value) throw new Error(`${pin}: an entry without a value (per-CPU map?)`);
    return e.value.readBigInt64LE(0);
  });
}

/**
 * The fair-share counters of dns_pending (bpf/dns.bpf.c pending_reserve): entries in all, the
 * sum over cgroups, and how many cgroups have a counter. The sums are 0 once every query was
 * answered or swept, unless a release was missed.
 */
export async function pendingShareCounters(
  mapDir: string,
): Promise<{ total: bigint; perCgroup: bigint; cgroups: number }> {
  const [total] = await int64Values(path.join(mapDir, 'dns_pending_count'));
  const counters = await int64Values(path.join(mapDir, 'dns_pending_per_cgroup'));
  return {
    total: total ?? 0n,
    perCgroup: counters.reduce((a, b) => a + b, 0n),
    cgroups: counters.length,
  };
}
