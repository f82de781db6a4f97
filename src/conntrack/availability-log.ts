// Decides when the conntrack source deserves a log line: on the first reading and whenever the
// source or the reason changes, not on every scrape. Pure; the caller owns the logger.
import { isAvailable, type ConntrackReading } from './sample.js';

export interface LogLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

const key = (r: ConntrackReading): string => (isAvailable(r) ? r.source : `none:${r.reason}`);

export function availabilityLogLine(
  previous: ConntrackReading | undefined,
  next: ConntrackReading,
): LogLine | undefined {
  if (previous && key(previous) === key(next)) return undefined;
  if (isAvailable(next)) {
    return {
      level: 'info',
      msg: `conntrack statistics from ${next.source}`,
      fields: { source: next.source, counters: Object.keys(next.counters).sort() },
    };
  }
  // A node without conntrack has nothing to report; that is not a fault.
  return {
    level: next.reason === 'not-loaded' ? 'info' : 'warn',
    msg: `conntrack statistics unavailable: ${next.message}`,
    fields: {
      reason: next.reason,
      err: next.cause instanceof Error ? next.cause.message : undefined,
    },
  };
}
