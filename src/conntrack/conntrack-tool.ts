// Parsers of conntrack-tools output, the fallback source when the kernel has no procfs stat
// file: `conntrack -S` prints one line per CPU of ctnetlink counters
//   cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 ...
// and `conntrack -C` prints the entry count.
import { counterName, type ConntrackStats } from './sample.js';

const PAIR_RE = /^([a-z][a-z0-9_]*)=(\d+)$/;

/** Sums `conntrack -S` CPU lines. `entries` only appears when the tool itself fell back to /proc. */
export function parseConntrackS(stdout: string): ConntrackStats {
  const sums = new Map<string, number>();
  let entries: number | undefined;
  let cpus = 0;
  for (const line of stdout.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    if (!tokens[0]?.startsWith('cpu=')) continue;
    cpus++;
    for (const t of tokens.slice(1)) {
      const m = PAIR_RE.exec(t);
      if (!m) throw new Error(`conntrack -S: cannot parse ${JSON.stringify(t)} in: ${line.trim()}`);
      const name = counterName(m[1]!);
      const v = Number(m[2]);
      if (name === 'entries') entries ??= v;
      else sums.set(name, (sums.get(name) ?? 0) + v);
    }
  }
  if (cpus === 0)
    throw new Error(`conntrack -S printed no cpu= lines: ${stdout.trim().slice(0, 200)}`);
  return { counters: Object.fromEntries(sums), entries, cpus };
}

/** `conntrack -C`: one decimal number. */
export function parseConntrackCount(stdout: string): number {
  const t = stdout.trim();
  if (!/^\d+$/.test(t))
    throw new Error(`conntrack -C printed ${JSON.stringify(t.slice(0, 100))}, not a count`);
  return Number(t);
}
