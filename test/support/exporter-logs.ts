// The exporter's pino output as entries, for asserting on log lines (level, msg, fields).
export interface LogEntry {
  /** pino levels: 20 debug, 30 info, 40 warn, 50 error, 60 fatal */
  level: number;
  msg: string;
  [field: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** JSON log lines of `output` from character offset `from`; other lines (and a cut one) are skipped. */
export function logEntries(output: string, from = 0): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of output.slice(from).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as unknown;
      if (typeof o === 'object' && o && typeof (o as LogEntry).msg === 'string')
        out.push(o as LogEntry);
    } catch {
      // a partial line at the cut, or not a log line
    }
  }
  return out;
}

/** Entries at `level` or above, as "level msg" strings: readable in a failed assertion. */
export function linesAtLeast(entries: readonly LogEntry[], level: number): string[] {
  return entries.filter((e) => e.level >= level).map((e) => `${e.level} ${e.msg}`);
}
