// Proposed metric families for the node's conntrack statistics (docs/conntrack.md explains
// each counter per kernel version). Built by a pure function from one reading; the lead wires
// the names into src/metrics/names.ts and the families into the exporter.
import type { ScalarFamily } from '../exposition/model.js';
import { isAvailable, type ConntrackReading } from './sample.js';

export const CONNTRACK_METRIC = {
  insertFailed: 'dnsrace_conntrack_insert_failed_total',
  drop: 'dnsrace_conntrack_drop_total',
  earlyDrop: 'dnsrace_conntrack_early_drop_total',
  clashResolve: 'dnsrace_conntrack_clash_resolve_total',
  searchRestart: 'dnsrace_conntrack_search_restart_total',
  /** Not in the brief's list: splits insert_failed on ≥ 5.15 into clashes and long chains. */
  chainTooLong: 'dnsrace_conntrack_chain_too_long_total',
  entries: 'dnsrace_conntrack_entries',
  max: 'dnsrace_conntrack_max',
  statsAvailable: 'dnsrace_conntrack_stats_available',
} as const;

/** Counter family -> the ctnetlink counter behind it, and its help text. */
export const CONNTRACK_COUNTERS: readonly { name: string; counter: string; help: string }[] = [
  {
    name: CONNTRACK_METRIC.insertFailed,
    counter: 'insert_failed',
    help:
      'Conntrack entries that could not be inserted, summed over CPUs. Since Linux 5.10 each one ' +
      'is a dropped packet (an unresolved clash or, since 5.15, a too long hash chain); ' +
      'before 5.10 it also counts clashes that were resolved without a drop.',
  },
  {
    name: CONNTRACK_METRIC.drop,
    counter: 'drop',
    help:
      'Packets conntrack dropped: insert clashes it could not resolve, and packets it could ' +
      'not track (table full with nothing to evict), summed over CPUs.',
  },
  {
    name: CONNTRACK_METRIC.earlyDrop,
    counter: 'early_drop',
    help: 'Unreplied conntrack entries evicted to make room in a full table, summed over CPUs.',
  },
  {
    name: CONNTRACK_METRIC.clashResolve,
    counter: 'clash_resolve',
    help:
      'Insert clashes (e.g. parallel A and AAAA queries from one socket) resolved without ' +
      'dropping the packet, summed over CPUs. Exported only by Linux 5.10 and later.',
  },
  {
    name: CONNTRACK_METRIC.searchRestart,
    counter: 'search_restart',
    help:
      'Conntrack lookups restarted because the hash chain changed under them (an entry was ' +
      'freed and reused, or the table resized), summed over CPUs.',
  },
  {
    name: CONNTRACK_METRIC.chainTooLong,
    counter: 'chaintoolong',
    help:
      'Inserts refused because a conntrack hash chain was too long (counted in insert_failed ' +
      'too; the packet is dropped), summed over CPUs. Exported only by Linux 5.15 and later.',
  },
];

export const CONNTRACK_HELP = {
  entries: 'Entries in the conntrack table of the exporter network namespace.',
  max: 'Conntrack table limit (nf_conntrack_max); past it new flows are dropped.',
  statsAvailable:
    '1 when conntrack statistics were read, from source procfs or netlink; 0 with source="none" ' +
    '(the exporter log says why and what to do).',
} as const;

/**
 * Families for one reading. A counter the kernel does not report gets no family at all (not a
 * zero series), so `absent(dnsrace_conntrack_clash_resolve_total)` tells a pre-5.10 kernel.
 * When no source worked, only the availability gauge is returned.
 */
export function conntrackFamilies(r: ConntrackReading): ScalarFamily[] {
  const available: ScalarFamily = {
    type: 'gauge',
    name: CONNTRACK_METRIC.statsAvailable,
    help: CONNTRACK_HELP.statsAvailable,
    samples: [{ labels: { source: r.source }, value: isAvailable(r) ? 1 : 0 }],
  };
  if (!isAvailable(r)) return [available];
  const out: ScalarFamily[] = [];
  for (const c of CONNTRACK_COUNTERS) {
    const v = r.counters[c.counter];
    if (v !== undefined) {
      out.push({
        type: 'counter',
        name: c.name,
        help: c.help,
        samples: [{ labels: {}, value: v }],
      });
    }
  }
  const gauge = (name: string, help: string, value: number | undefined): void => {
    if (value !== undefined)
      out.push({ type: 'gauge', name, help, samples: [{ labels: {}, value }] });
  };
  gauge(CONNTRACK_METRIC.entries, CONNTRACK_HELP.entries, r.entries);
  gauge(CONNTRACK_METRIC.max, CONNTRACK_HELP.max, r.max);
  out.push(available);
  return out;
}
