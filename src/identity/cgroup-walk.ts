import { opendir, stat } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { join } from 'node:path';

export interface WalkOptions {
  /** Levels below the walk root to visit; the root is level 0. */
  readonly maxDepth: number;
  /** Test hook, awaited before each directory below the root is stat'ed and read. */
  readonly beforeVisit?: (absPath: string) => void | Promise<void>;
}

export interface WalkResult {
  /** inode number → path relative to the walk root ('' for the root). */
  readonly inodes: Map<bigint, string>;
  /** Directories skipped because we may not read them (EACCES/EPERM), relative to the root. */
  readonly unreadable: string[];
}

/**
 * Maps the inode number of every directory under root (root included, down to maxDepth) to its
 * path relative to root. On cgroup2 the inode number of a cgroup directory is its cgroup id, the
 * value bpf_skb_cgroup_id() returns (64-bit kernels).
 *
 * Cgroups come and go while we walk: a directory that vanishes (ENOENT) or is replaced by a
 * non-directory (ENOTDIR) after being listed is skipped. One unreadable directory must not blind
 * the whole index, so EACCES/EPERM below the root are reported, not thrown. The root itself must
 * be readable.
 */
export async function walkDirectoryInodes(root: string, opts: WalkOptions): Promise<WalkResult> {
  const found = new Map<bigint, string>();
  const unreadable: string[] = [];
  let rootIno: bigint;
  try {
    const st = await stat(root, { bigint: true });
    if (!st.isDirectory())
      throw Object.assign(new Error(`${root} is not a directory`), { code: 'ENOTDIR' });
    rootIno = st.ino;
  } catch (err) {
    throw new Error(`cannot walk cgroup tree at ${root}`, { cause: err });
  }
  found.set(rootIno, '');

  // Explicit stack: depth is bounded anyway, but no recursion keeps stack traces readable.
  const stack: Array<{ rel: string; depth: number }> = [{ rel: '', depth: 0 }];
  while (stack.length > 0) {
    const { rel, depth } = stack.pop() as { rel: string; depth: number };
    if (depth >= opts.maxDepth) continue;
    const children = await listSubdirectories(join(root, rel), rel === '');
    if (children === 'vanished') continue;
    if (children === 'unreadable') {
      unreadable.push(rel);
      continue;
    }
    for (const name of children) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, childRel);
      await opts.beforeVisit?.(abs);
      const ino = await directoryInode(abs);
      if (ino === 'vanished') continue;
      if (ino === 'unreadable') {
        unreadable.push(childRel);
        continue;
      }
      found.set(ino, childRel);
      stack.push({ rel: childRel, depth: depth + 1 });
    }
  }
  return { inodes: found, unreadable };
}

type Skip = 'vanished' | 'unreadable';

async function listSubdirectories(dir: string, isRoot: boolean): Promise<string[] | Skip> {
  const names: string[] = [];
  try {
    for await (const entry of await opendir(dir)) if (mayBeDirectory(entry)) names.push(entry.name);
  } catch (err) {
    const skip = isRoot ? undefined : skipReason(err);
    if (skip !== undefined) return skip;
    throw new Error(`cannot list cgroup directory ${dir}`, { cause: err });
  }
  return names;
}

async function directoryInode(path: string): Promise<bigint | Skip> {
  try {
    const st = await stat(path, { bigint: true });
    return st.isDirectory() ? st.ino : 'vanished';
  } catch (err) {
    const skip = skipReason(err);
    if (skip !== undefined) return skip;
    throw new Error(`cannot stat cgroup directory ${path}`, { cause: err });
  }
}

// Filesystems that do not fill d_type report no type at all: let stat decide for those.
function mayBeDirectory(entry: Dirent): boolean {
  if (entry.isDirectory()) return true;
  return !(
    entry.isFile() ||
    entry.isSymbolicLink() ||
    entry.isFIFO() ||
    entry.isSocket() ||
    entry.isBlockDevice() ||
    entry.isCharacterDevice()
  );
}

function skipReason(err: unknown): Skip | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'vanished';
  if (code === 'EACCES' || code === 'EPERM') return 'unreadable';
  return undefined;
}
