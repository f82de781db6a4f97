// Picks the useful lines out of a failed `bpftool prog loadall`. Pure.

/** Objects named by the loader's fallbacks: "fexit: conntrack_fexit.bpf.o: libbpf: ..." */
export function failedObjects(fallbacks: readonly string[]): string[] {
  const out: string[] = [];
  for (const f of fallbacks) {
    const m = /^\w+: ([\w.-]+\.bpf\.o): /.exec(f);
    if (m && !out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

/**
 * The last lines of the program load log (the verifier's reason sits at its end), or of
 * libbpf's output when there is no load log (a missing BTF type fails before the verifier).
 */
export function logTail(stderr: string, lines: number): string[] {
  const all = stderr.split('\n').map((l) => l.trimEnd());
  const end = all.findIndex((l) => l.includes('-- END PROG LOAD LOG --'));
  const begin = all.findIndex((l) => l.includes('-- BEGIN PROG LOAD LOG --'));
  const body = end > begin && begin >= 0 ? all.slice(begin + 1, end) : all;
  return body.filter((l) => l.trim() !== '').slice(-lines);
}
