// Stand-in bpftool scripts for fault tests: an old bpftool (only `version` works), and a
// wrapper around the real bpftool whose `map dump` hangs or prints garbage while a mode file
// says so. Real bpftool 7.1 or a hung bpftool cannot be had on demand, hence stand-ins.
import { execa } from 'execa';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Writes `<dir>/bpftool` that reports `version` for `bpftool [-j] version` and fails otherwise. */
export async function writeOldBpftool(dir: string, version: string): Promise<string> {
  const file = path.join(dir, 'bpftool');
  const json = JSON.stringify({ version, libbpf_version: '1.1', features: {} });
  await writeFile(
    file,
    [
      '#!/bin/sh',
      '# stand-in for an old bpftool: answers version, nothing else',
      'case "$*" in',
      `*version*) case "$1" in -j) echo '${json}' ;; *) echo "bpftool v${version}" ;; esac; exit 0 ;;`,
      'esac',
      'echo "Error: stand-in bpftool knows only version" >&2; exit 255',
      '',
    ].join('\n'),
  );
  await chmod(file, 0o755);
  return file;
}

export type DumpFault = 'pass' | 'hang' | 'garbage';

/** Bytes a broken bpftool might print: truncated JSON, a stray line, a NUL and invalid UTF-8. */
const GARBAGE = Buffer.concat([
  Buffer.from('[{"key": ["0x01", \nSegmentation fault?\n'),
  Buffer.from([0, 0xff, 0xfe]),
  Buffer.from(' {{{'),
]);

/**
 * `<dir>/bpftool`: runs the real bpftool, except that any `map dump` (also one in a `batch
 * file`) sleeps forever (hang) or prints garbage and exits 0 (garbage) while the mode file
 * says so. Every faulted dump appends
 * "<pid> <mode>" to calls.log, so that a test can check the hung processes were killed.
 */
export class FaultyBpftool {
  readonly path: string;
  private readonly modeFile: string;
  private readonly callsFile: string;
  private readonly garbageFile: string;

  private constructor(dir: string) {
    this.path = path.join(dir, 'bpftool');
    this.modeFile = path.join(dir, 'mode');
    this.callsFile = path.join(dir, 'calls.log');
    this.garbageFile = path.join(dir, 'garbage.out');
  }

  static async create(dir: string): Promise<FaultyBpftool> {
    const real = (await execa('sh', ['-c', 'command -v bpftool'], { reject: false })).stdout;
    if (!real) throw new Error('bpftool not found: apt-get install -t bookworm-backports bpftool');
    const f = new FaultyBpftool(dir);
    await f.set('pass');
    await writeFile(f.callsFile, '');
    await writeFile(f.garbageFile, GARBAGE);
    await writeFile(
      f.path,
      [
        '#!/bin/sh',
        `# stand-in bpftool: the real one (${real}), but map dump obeys ${f.modeFile}`,
        'dump=',
        'case " $* " in *" map dump "*) dump=1 ;; esac',
        '# a batch file with a dump in it counts too',
        'prev=; for a; do [ "$prev" = file ] && grep -qs "map dump" "$a" && dump=1; prev=$a; done',
        'if [ -n "$dump" ]; then',
        `  case $(cat '${f.modeFile}') in`,
        `  hang) echo "$$ hang" >> '${f.callsFile}'; exec sleep 3600 ;;`,
        `  garbage) echo "$$ garbage" >> '${f.callsFile}'; cat '${f.garbageFile}'; exit 0 ;;`,
        '  esac',
        'fi',
        `exec '${real}' "$@"`,
        '',
      ].join('\n'),
    );
    await chmod(f.path, 0o755);
    return f;
  }

  set(mode: DumpFault): Promise<void> {
    return writeFile(this.modeFile, mode);
  }

  /** PIDs of the dumps that were faulted in the given mode, in order. */
  async faulted(mode: Exclude<DumpFault, 'pass'>): Promise<number[]> {
    const text = await readFile(this.callsFile, 'utf8');
    return text
      .split('\n')
      .map((l) => l.split(' '))
      .filter(([, m]) => m === mode)
      .map(([pid]) => Number(pid));
  }
}
