// What one read of the kernel's conntrack statistics yields, in one shape whichever source
// (procfs or ctnetlink through `conntrack -S`) it came from.

/** Where the numbers came from; 'none' when no source worked (see ConntrackUnavailable). */
export type ConntrackSource = 'procfs' | 'netlink';

/**
 * Per-CPU counters of `struct ip_conntrack_stat`, summed over CPUs and keyed by their
 * ctnetlink names (CTA_STATS_*: `insert_failed`, `clash_resolve`, `chaintoolong`, ...).
 * Only the counters this kernel reports are present: a kernel without clash_resolve has no
 * `clash_resolve` key, never a made-up 0.
 */
export type ConntrackCounters = Readonly<Record<string, number>>;

export interface ConntrackStats {
  counters: ConntrackCounters;
  /** Entries in this netns's table (the same global number is printed on every CPU row). */
  entries?: number;
  /** CPU rows summed. */
  cpus: number;
}

export interface ConntrackSample extends ConntrackStats {
  source: ConntrackSource;
  /** nf_conntrack_max: the table limit (one global value; every netns is held to it). */
  max?: number;
}

export type UnavailableReason =
  /** No /sys/module/nf_conntrack: the node does no connection tracking at all. */
  | 'not-loaded'
  /** nf_conntrack runs, but there is no procfs stat file and no usable `conntrack` binary. */
  | 'no-source'
  /** A source exists but reading or parsing it failed. */
  | 'failed';

export interface ConntrackUnavailable {
  source: 'none';
  reason: UnavailableReason;
  /** One line for the log: what is missing and what the operator can do about it. */
  message: string;
  cause?: unknown;
}

export type ConntrackReading = ConntrackSample | ConntrackUnavailable;

export const isAvailable = (r: ConntrackReading): r is ConntrackSample => r.source !== 'none';

/**
 * /proc/net/stat/nf_conntrack column -> ctnetlink name, where they differ. The procfs header
 * kept old column names and reused retired columns for new counters:
 * - `clashres` replaced the retired `searched` column in 5.10 and shows clash_resolve
 *   (commits bc92470413f3 "add clash resolution stat counter" and "proc: rename stat column");
 * - `chainlength` replaced the retired `delete_list` column in 5.15 and shows chaintoolong
 *   ("refuse insertion if chain has grown too large");
 * - `icmp_error` has always shown the `error` counter.
 * The `conntrack` tool prints the same procfs names when it falls back to /proc.
 */
const PROCFS_ALIASES: Readonly<Record<string, string>> = {
  clashres: 'clash_resolve',
  chainlength: 'chaintoolong',
  icmp_error: 'error',
};

export function counterName(column: string): string {
  return PROCFS_ALIASES[column] ?? column;
}
