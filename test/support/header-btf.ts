// BTF of the structs in bpf/dns.h and bpf/drops.h, compiled on the spot: the maps are declared
// by size (bpf/dns.bpf.c), so the objects' BTF no longer carries their key and value types.
// A tiny C file with one global of each struct gives clang a reason to emit them all.
// Needs clang (apt-get install clang) and bpftool.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** `bpftool -j btf dump file` of an object holding one global of each named struct. */
export async function headerBtf(structs: readonly string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dnsrace-header-btf-'));
  try {
    const src = join(dir, 'anchor.c');
    const obj = join(dir, 'anchor.o');
    await writeFile(
      src,
      ['#include "vmlinux.h"', '#include "dns.h"', '#include "drops.h"']
        .concat(structs.map((s) => `struct ${s} anchor_${s};`))
        .join('\n') + '\n',
    );
    const cc = await execa(
      'clang',
      ['-g', '-O2', '-target', 'bpf', '-I', join(REPO, 'bpf'), '-c', src, '-o', obj],
      { reject: false },
    );
    if (cc.exitCode !== 0)
      throw new Error(
        `clang (apt-get install clang) failed on bpf/dns.h: ${cc.stderr || cc.message}`,
      );
    const dump = await execa('bpftool', ['-j', 'btf', 'dump', 'file', obj], { reject: false });
    if (dump.exitCode !== 0)
      throw new Error(`bpftool btf dump (install bpftool >= 7.2) failed: ${dump.stderr}`);
    return dump.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
