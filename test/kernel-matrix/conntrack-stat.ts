// /proc/net/stat/nf_conntrack: a header of column names, then one row of hex counters per
// CPU. Pure.

/** The sum over CPUs of one column, e.g. insert_failed. */
export function conntrackStat(text: string, column: string): number {
  const [header, ...rows] = text.trim().split('\n');
  const names = (header ?? '').trim().split(/\s+/);
  const i = names.indexOf(column);
  if (i < 0)
    throw new Error(`/proc/net/stat/nf_conntrack has no column ${column} (${names.join(' ')})`);
  let sum = 0;
  for (const row of rows) {
    const cell = row.trim().split(/\s+/)[i];
    if (cell === undefined || !/^[0-9a-f]+$/i.test(cell)) {
      throw new Error(`/proc/net/stat/nf_conntrack: row '${row.trim()}' has no hex ${column}`);
    }
    sum += parseInt(cell, 16);
  }
  return sum;
}
