import { readFile } from 'node:fs/promises';

// /proc/<pid>/mountinfo, one mount per line (proc(5)):
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   id parent major:minor root mount-point mount-options [optional] - fstype source super-options
// Paths escape space, tab, newline and backslash as octal (\040, \011, \012, \134).

export interface MountInfoEntry {
  readonly mountId: number;
  readonly parentId: number;
  readonly majorMinor: string;
  /** Path inside the filesystem that this mount shows ('/' for the whole filesystem). */
  readonly root: string;
  readonly mountPoint: string;
  readonly mountOptions: string;
  readonly optionalFields: readonly string[];
  readonly fsType: string;
  readonly source: string;
  readonly superOptions: string;
}

export interface Cgroup2Mount {
  readonly mountPoint: string;
  /** Hierarchy path shown at mountPoint; pass it to CgroupIndex as hierarchyRoot. */
  readonly root: string;
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    const [id, parent, majorMinor, root, mountPoint, mountOptions] = fields;
    const fsType = fields[separator + 1];
    const source = fields[separator + 2];
    if (
      separator < 0 ||
      id === undefined ||
      parent === undefined ||
      majorMinor === undefined ||
      root === undefined ||
      mountPoint === undefined ||
      mountOptions === undefined ||
      fsType === undefined ||
      source === undefined ||
      !/^\d+$/.test(id) ||
      !/^\d+$/.test(parent)
    ) {
      throw new Error(`mountinfo line ${index + 1} is malformed: ${JSON.stringify(line)}`);
    }
    entries.push({
      mountId: Number(id),
      parentId: Number(parent),
      majorMinor,
      root: unescapeOctal(root),
      mountPoint: unescapeOctal(mountPoint),
      mountOptions,
      optionalFields: fields.slice(6, separator),
      fsType,
      source: unescapeOctal(source),
      superOptions: fields[separator + 3] ?? '',
    });
  }
  return entries;
}

/**
 * The cgroup2 mount to walk. Several can exist (a container that sees the host's hierarchy and
 * its own, bind mounts of sub-cgroups): prefer one that shows the whole hierarchy (root '/'),
 * then the first listed, which is the earliest mounted.
 */
export function findCgroup2Mount(entries: readonly MountInfoEntry[]): Cgroup2Mount | undefined {
  const cgroup2 = entries.filter((e) => e.fsType === 'cgroup2');
  const chosen = cgroup2.find((e) => e.root === '/') ?? cgroup2[0];
  return chosen === undefined ? undefined : { mountPoint: chosen.mountPoint, root: chosen.root };
}

/** Reads mountinfo (injected path for tests and for a host /proc mounted elsewhere). */
export async function readCgroup2Mount(
  mountInfoPath = '/proc/self/mountinfo',
): Promise<Cgroup2Mount> {
  let text: string;
  try {
    text = await readFile(mountInfoPath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${mountInfoPath} to find the cgroup2 mount`, { cause: err });
  }
  const mount = findCgroup2Mount(parseMountInfo(text));
  if (mount === undefined) {
    throw new Error(
      `no cgroup2 filesystem is mounted according to ${mountInfoPath}; mount one ` +
        '(mount -t cgroup2 none /sys/fs/cgroup/unified) or pass its path explicitly',
    );
  }
  return mount;
}

function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}
