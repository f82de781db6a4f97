// Compiles the bench's C helpers and the empty BPF program into .cache/bench (not committed).
import { execa } from 'execa';
import { mkdir } from 'node:fs/promises';
import { arch } from 'node:os';
import path from 'node:path';

export interface BenchBinaries {
  udpload: string;
  mapbatch: string;
  noopObj: string;
}

export async function buildHelpers(root: string): Promise<BenchBinaries> {
  const src = path.join(root, 'bench', 'c');
  const out = path.join(root, '.cache', 'bench');
  await mkdir(out, { recursive: true });
  const b: BenchBinaries = {
    udpload: path.join(out, 'udpload'),
    mapbatch: path.join(out, 'mapbatch'),
    noopObj: path.join(out, 'noop.bpf.o'),
  };
  const triple = arch() === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const steps: [string, string[], string][] = [
    ['cc', ['-O2', '-Wall', '-Werror', '-o', b.udpload, path.join(src, 'udpload.c')], 'gcc'],
    [
      'cc',
      ['-O2', '-Wall', '-Werror', '-o', b.mapbatch, path.join(src, 'mapbatch.c'), '-lbpf'],
      'gcc libbpf-dev',
    ],
    [
      'clang',
      [
        '-g',
        '-O2',
        '-Wall',
        '-Werror',
        '-target',
        'bpf',
        `-I/usr/include/${triple}`,
        '-c',
        path.join(src, 'noop.bpf.c'),
        '-o',
        b.noopObj,
      ],
      'clang libbpf-dev',
    ],
  ];
  for (const [cmd, args, pkgs] of steps) {
    try {
      await execa(cmd, args);
    } catch (err) {
      throw new Error(`building ${args.at(-1)} failed (apt-get install -y ${pkgs})`, {
        cause: err,
      });
    }
  }
  return b;
}
