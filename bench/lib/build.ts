// Compiles the bench's C helpers, the empty BPF program and the exporter itself (to JavaScript,
// as scripts/run.sh and the image run it: tsx would add ~100 MB to its RSS) into .cache/bench
// (not committed).
import { execa } from 'execa';
import { mkdir } from 'node:fs/promises';
import { arch } from 'node:os';
import path from 'node:path';

export interface BenchBinaries {
  udpload: string;
  mapbatch: string;
  noopObj: string;
  /** a DNS server answering after a random delay, and an open-loop client (section 4) */
  spreadLoad: string;
  /** The compiled exporter's entry point. */
  exporterMain: string;
}

export async function buildHelpers(root: string): Promise<BenchBinaries> {
  const src = path.join(root, 'bench', 'c');
  const out = path.join(root, '.cache', 'bench');
  await mkdir(out, { recursive: true });
  const b: BenchBinaries = {
    udpload: path.join(out, 'udpload'),
    mapbatch: path.join(out, 'mapbatch'),
    noopObj: path.join(out, 'noop.bpf.o'),
    spreadLoad: path.join(out, 'spread-load'),
    exporterMain: path.join(out, 'dist', 'src', 'main.js'),
  };
  const triple = arch() === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const steps: [string, string[], string][] = [
    [
      'cc',
      ['-O2', '-Wall', '-Werror', '-o', b.udpload, path.join(src, 'udpload.c')],
      'apt-get install -y gcc',
    ],
    [
      'cc',
      ['-O2', '-Wall', '-Werror', '-o', b.spreadLoad, path.join(src, 'spread-load.c'), '-lm'],
      'apt-get install -y gcc',
    ],
    [
      'cc',
      ['-O2', '-Wall', '-Werror', '-o', b.mapbatch, path.join(src, 'mapbatch.c'), '-lbpf'],
      'apt-get install -y gcc libbpf-dev',
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
      'apt-get install -y clang libbpf-dev',
    ],
  ];
  steps.push([
    'npx',
    [
      'tsc',
      '-p',
      path.join(root, 'deploy/image/tsconfig.build.json'),
      '--outDir',
      path.join(out, 'dist'),
    ],
    'the TypeScript compile failed: npm ci, then npx tsc -p deploy/image/tsconfig.build.json',
  ]);
  for (const [cmd, args, hint] of steps) {
    try {
      await execa(cmd, args);
    } catch (err) {
      throw new Error(`building ${args.at(-1)} failed (${hint})`, {
        cause: err,
      });
    }
  }
  return b;
}
