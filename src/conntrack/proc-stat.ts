// Parser of /proc/net/stat/nf_conntrack (ct_cpu_seq_show in nf_conntrack_standalone.c):
// a header of column names, then one row of %08x values per possible CPU. The columns differ
// between kernels, so every value is looked up through the header, never by position.
import { counterName, type ConntrackStats } from './sample.js';

const COLUMN_RE = /^[a-z][a-z0-9_]*$/;
const HEX_RE = /^[0-9a-f]{1,16}$/i;

/** Sums the per-CPU counters; `entries` is per netns, printed alike on every row, so row 1 is taken. */
export function parseProcStat(text: string): ConntrackStats {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const [header, ...rows] = lines;
  if (header === undefined) throw new Error('conntrack stat file is empty');
  const columns = header.trim().split(/\s+/);
  const bad = columns.find((c) => !COLUMN_RE.test(c));
  if (bad !== undefined) {
    throw new Error(
      `conntrack stat header has a non-name column ${JSON.stringify(bad)}: ${header}`,
    );
  }
  const names = columns.map(counterName);
  if (new Set(names).size !== names.length) {
    throw new Error(`conntrack stat header names a column twice: ${header}`);
  }
  if (rows.length === 0) throw new Error('conntrack stat file has a header but no CPU rows');

  const sums = new Map<string, number>(names.map((n) => [n, 0]));
  let entries: number | undefined;
  rows.forEach((row, i) => {
    const fields = row.trim().split(/\s+/);
    if (fields.length !== names.length) {
      throw new Error(
        `conntrack stat row ${i + 1} has ${fields.length} values, the header ${names.length}: ${row}`,
      );
    }
    fields.forEach((f, j) => {
      if (!HEX_RE.test(f)) throw new Error(`conntrack stat row ${i + 1}: ${f} is not hex`);
      const name = names[j]!;
      const v = parseInt(f, 16);
      if (name === 'entries') entries ??= v;
      else sums.set(name, sums.get(name)! + v);
    });
  });
  sums.delete('entries');
  return { counters: Object.fromEntries(sums), entries, cpus: rows.length };
}
