// Log lines for the faults of the periodic map read: a failed read (bpftool hung, printed
// garbage, vanished), a full BPF map, a pod over its share of dns_pending, and queries of
// cgroups gone before they could be named. Each line says what the operator can do; the metrics
// (dnsrace_bpftool_failures_total, dnsrace_bpf_map_overflows_total,
// dnsrace_bpf_pending_share_exceeded_total) say how often. Pure: the caller owns the logger and
// decides when to call.
import { OVERFLOW_COUNTERS } from './bpf/dns-health.js';
import { groupLabels } from './dns/aggregate.js';
import { UNNAMED_HOLD_MS } from './dns/lifecycle.js';
import { UNKNOWN_NAMESPACE } from './identity/labels.js';
import type { Snapshot } from './snapshot.js';

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

export type ReadFailureKind = 'timeout' | 'unparsable' | 'no-bpftool' | 'pin-gone' | 'other';

const textOf = (err: unknown): string => {
  const parts: string[] = [];
  for (let e = err, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join('\n');
};

/** What went wrong, from the error's text (bpftool.ts words each case in its message). */
export function classifyReadFailure(err: unknown): ReadFailureKind {
  const t = textOf(err);
  if (/timed out after \d+ ms/.test(t)) return 'timeout';
  if (/bpftool not found/.test(t)) return 'no-bpftool';
  if (/cannot parse its output/.test(t)) return 'unparsable';
  if (/No such file or directory/.test(t)) return 'pin-gone';
  return 'other';
}

const ADVICE: Record<ReadFailureKind, (o: ReadFailureContext) => string> = {
  timeout: (o) =>
    `bpftool did not finish within --bpftool-timeout (${o.bpftoolTimeoutMs} ms) and was killed: ` +
    'check the node for CPU or memory pressure, or raise --bpftool-timeout',
  unparsable: () =>
    'bpftool printed output the exporter cannot read: check that --bpftool runs bpftool ≥ 7.2 ' +
    '(`bpftool version`) and that no wrapper prints to its stdout',
  'no-bpftool': () => 'bpftool is gone from the node: reinstall it, or point --bpftool at it',
  'pin-gone': (o) =>
    `a pinned map under ${o.bpffsDir} is gone (removed by hand?): restart the exporter to pin it again`,
  other: () => 'retrying at the next read; if it persists, restart the exporter with this error',
};

export interface ReadFailureContext {
  bpftoolTimeoutMs: number;
  bpffsDir: string;
}

/** Tracks consecutive failed reads: a line per failure, and one when reads work again. */
export class ReadFailureLog {
  private failures = 0;

  constructor(private readonly ctx: ReadFailureContext) {}

  failed(err: unknown, operation: string): LogLine {
    this.failures++;
    const kind = classifyReadFailure(err);
    return {
      level: 'error',
      msg:
        `reading the kernel maps failed (${operation}); serving the previous read ` +
        `(see dnsrace_bpftool_failures_total): ${ADVICE[kind](this.ctx)}`,
      fields: { err, operation, kind, consecutiveFailures: this.failures },
    };
  }

  /** A line only for the first success after failures. */
  succeeded(): LogLine | undefined {
    if (this.failures === 0) return undefined;
    const failed = this.failures;
    this.failures = 0;
    return {
      level: 'info',
      msg: `reading the kernel maps works again after ${failed} failed reads`,
      fields: { failedReads: failed },
    };
  }
}

const OVERFLOW_ADVICE: Record<string, string> = {
  dns_pending:
    'queries beyond it are counted but get no latency and no timeout. Usually one pod floods a ' +
    'server that does not answer: find it with topk(5, rate(dnsrace_dns_pod_queries_total[1m])); ' +
    'entries free up as unanswered queries pass --timeout-deadline',
  dns_retry_index:
    're-sends from a new socket may count as new queries. Usually one pod floods a server that ' +
    'does not answer: find it with topk(5, rate(dnsrace_dns_pod_queries_total[1m]))',
  dns_stats:
    'DNS counts of pods without a row are lost. Rows of deleted pods are retired after ' +
    '--pod-series-grace: shorten it where pods churn fast',
};

/**
 * A failure counter read after read, in episodes rather than a line per read: an episode starts
 * at the first read that sees the counter rise and ends at the first read that sees it still
 * (and canEnd, say the map has room again). The first read only sets the baseline: pinned
 * counters carry over from earlier runs.
 */
class CounterEpisodes {
  private last: number | undefined;
  private total: number | undefined;

  step(value: number, canEnd = true): { started: number } | { ended: number } | undefined {
    const delta = this.last === undefined ? 0 : value - this.last;
    this.last = value;
    if (delta > 0) {
      if (this.total !== undefined) this.total += delta;
      else return { started: (this.total = delta) };
    } else if (this.total !== undefined && canEnd) {
      const ended = this.total;
      this.total = undefined;
      return { ended };
    }
    return undefined;
  }
}

/**
 * Watches the overflow counters of dns_health from read to read. A map that starts failing
 * inserts gets one warning, and one line once it fails no more and has free entries again.
 */
export class OverflowWatch {
  private readonly episodes = new Map<string, CounterEpisodes>();

  update(snap: Pick<Snapshot, 'health' | 'maps'>): LogLine[] {
    const out: LogLine[] = [];
    for (const [map, counter] of Object.entries(OVERFLOW_COUNTERS)) {
      let episodes = this.episodes.get(map);
      if (!episodes) this.episodes.set(map, (episodes = new CounterEpisodes()));
      const occupancy = snap.maps.find((m) => m.map === map);
      const maxEntries = occupancy?.maxEntries;
      const entries = occupancy?.entries ?? 0;
      const e = episodes.step(snap.health[counter] ?? 0, !(entries >= (maxEntries ?? Infinity)));
      if (e && 'started' in e)
        out.push({
          level: 'warn',
          msg: `BPF map ${map} is full (${maxEntries ?? '?'} entries): ${OVERFLOW_ADVICE[map] ?? ''}`,
          fields: { map, failedInserts: e.started, maxEntries },
        });
      else if (e)
        out.push({
          level: 'info',
          msg: `BPF map ${map} has room again (${entries} of ${maxEntries ?? '?'} entries used); ${e.ended} inserts failed while it was full`,
          fields: { map, failedInserts: e.ended, entries, maxEntries },
        });
    }
    return out;
  }
}

/**
 * Watches the share of dns_pending each cgroup may hold once the map is half full
 * (bpf/dns.h PENDING_SHARE): one warning when some pod's queries start going untracked, one
 * line at the first read after which none did.
 */
export class PendingShareWatch {
  private readonly episodes = new CounterEpisodes();

  update(snap: Pick<Snapshot, 'health'>): LogLine | undefined {
    const e = this.episodes.step(snap.health.pending_share_full ?? 0);
    if (!e) return undefined;
    if ('started' in e)
      return {
        level: 'warn',
        msg:
          'a pod has an eighth of dns_pending awaiting answers while the map is half full: its ' +
          'further queries are counted but get no latency and no timeout (the other pods are still ' +
          'tracked). Usually it floods a server that does not answer: find it with ' +
          'topk(5, rate(dnsrace_dns_pod_queries_total[1m]))',
        fields: { untrackedQueries: e.started },
      };
    return {
      level: 'info',
      msg: `no pod is over its share of dns_pending any more; ${e.ended} queries went untracked meanwhile`,
      fields: { untrackedQueries: e.ended },
    };
  }
}

/**
 * Watches the queries counted under namespace="_unknown": cgroups that no source could name,
 * mostly pods that came and went between two reads (their cgroup and /var/log/pods entry were
 * gone before the exporter looked). Said at most once per intervalMs, with the growth since the
 * last line: on a node with fast churn it would otherwise repeat at every read.
 */
export class UnnamedWatch {
  private last: number | undefined;
  private lastLineAt = -Infinity;
  private pending = 0;

  constructor(
    private readonly o: { now: () => number; intervalMs?: number; readIntervalMs: number },
  ) {}

  update(snap: Pick<Snapshot, 'dns'>): LogLine | undefined {
    let queries = 0;
    for (const [group, byQtype] of snap.dns.client)
      if (groupLabels(group).namespace === UNKNOWN_NAMESPACE)
        for (const t of byQtype.values()) queries += t.queries;
    const last = this.last;
    this.last = queries;
    if (last === undefined) return undefined; // pinned counters carry over from earlier runs
    this.pending += Math.max(0, queries - last);
    const now = this.o.now();
    if (this.pending === 0 || now - this.lastLineAt < (this.o.intervalMs ?? 600_000))
      return undefined;
    const line: LogLine = {
      level: 'info',
      msg:
        `${this.pending} DNS queries came from cgroups no source could name and are counted under ` +
        `namespace="${UNKNOWN_NAMESPACE}": pods that lived shorter than --read-interval ` +
        `(${this.o.readIntervalMs} ms) or that no source named within ${UNNAMED_HOLD_MS / 1000} s ` +
        'of their first lookup, or cgroups that are not pods known to /var/log/pods or the ' +
        'Kubernetes API. Lower --read-interval if such short-lived pods matter',
      fields: { queries: this.pending },
    };
    this.pending = 0;
    this.lastLineAt = now;
    return line;
  }
}
