// The JSON shapes of the drill-down API (docs/drilldown.md), built from the exporter's last
// snapshot, the recent lookups and the doctor's report. Pure: no I/O, no clock of its own.
import { groupLabels } from '../dns/aggregate.js';
import type { DnsStatsRow } from '../dns/stats-row.js';
import { addRow, emptyTotals, sum, type Totals } from '../dns/totals.js';
import { LAT_SLOTS, slotUpperBoundSeconds } from '../bpf/latency-buckets.js';
import {
  CAUSE_LABELS,
  QTYPE_LABELS,
  RCODE_LABELS,
  type CauseLabel,
  type QtypeLabel,
} from '../metrics/names.js';
import type { Snapshot } from '../snapshot.js';
import type { DoctorReport, PodCounters } from './doctor.js';
import type { Diagnosis, Lookup } from './lookup.js';
import type { CgroupRing, EventRings } from './rings.js';

export type PodRef = { namespace: string; pod: string };
export type NameOf = (cgroupId: bigint) => PodRef;

/** Pod page URL pattern; dashboards link here (podPagePath fills it in). */
export const POD_PAGE_PATTERN = '/pods/{namespace}/{pod}';

export function podPagePath(namespace: string, pod: string): string {
  return POD_PAGE_PATTERN.replace('{namespace}', encodeURIComponent(namespace)).replace(
    '{pod}',
    encodeURIComponent(pod),
  );
}

/** What a pod's or a namespace's trouble is, named by its most important cause. */
export type Headline =
  | 'netfilter_drop'
  | 'conntrack_insert_failed'
  | 'unanswered'
  | 'server_error'
  | 'slow_server'
  | 'search_amplification'
  | 'retransmitted'
  | 'slow'
  | 'ok';

export interface CauseCount {
  cause: Headline | 'nxdomain';
  count: number;
}

export interface TroubleSummary {
  queries: number;
  answered: number;
  timeouts: number;
  retransmits: number;
  /** Packets dropped by netfilter (netfilter_drop + conntrack_insert_failed). */
  drops: number;
  servfail: number;
  nxdomain: number;
  /** Queries sent per query answered NOERROR; null before the first. */
  amplification: number | null;
  p50Seconds: number | null;
  p99Seconds: number | null;
  /** Slow, failed or timed-out lookups among the recent events. */
  slowLookups: number;
  headline: { cause: Headline; text: string };
  topCauses: CauseCount[];
  /** Orders the lists: 100·timeouts + 30·drops + 20·retransmits + 10·servfail + 5·slow lookups. */
  troubleScore: number;
}

export interface NamespaceSummary extends TroubleSummary {
  namespace: string;
  pods: number;
  worstPod: { pod: string; headline: Headline; href: string } | null;
}

export interface PodSummary extends TroubleSummary {
  namespace: string;
  pod: string;
  href: string;
  lastEventAt: number | null;
}

export interface LookupView {
  at: number;
  kind: Lookup['kind'];
  role: Lookup['role'];
  name: string;
  nameTruncated: boolean;
  qtype: string;
  rcode: string | null;
  diagnosis: Diagnosis;
  cause: CauseLabel;
  latencySeconds: number;
  serverSideSeconds: number | null;
  serverPod: string | null;
  serverRcode: string | null;
  retransmits: number;
  retriedFromNewSocket: boolean;
  socket: Lookup['socket'];
  server: string;
  client: string;
  clientPort: number;
  dnsId: number;
  firstSentAt: number;
}

export interface PodDetail {
  summary: PodSummary;
  histogram: { le: number; count: number }[];
  rcodes: Record<string, number>;
  /** null when the per-qtype counters could not be read. */
  qtypes: Record<
    QtypeLabel,
    { queries: number; answered: number; timeouts: number; retransmits: number; nxdomain: number }
  > | null;
  recent: LookupView[];
  doctor: DoctorReport;
  /** Only for DNS server pods: what they answered. */
  server: {
    queries: number;
    answered: number;
    p50Seconds: number | null;
    p99Seconds: number | null;
  } | null;
}

const RC = (name: (typeof RCODE_LABELS)[number]) => RCODE_LABELS.indexOf(name);
const CAUSE = (name: CauseLabel) => CAUSE_LABELS.indexOf(name);
const BAD_KINDS = new Set<Lookup['kind']>(['slow', 'failed', 'timeout', 'retransmit']);

export function quantileSeconds(latency: readonly number[], q: number): number | null {
  const total = sum(latency);
  if (total === 0) return null;
  let acc = 0;
  for (let i = 0; i < latency.length; i++) {
    acc += latency[i]!;
    if (acc >= q * total) return slotUpperBoundSeconds(i);
  }
  return slotUpperBoundSeconds(LAT_SLOTS - 1);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

interface DropCounts {
  netfilter_drop: number;
  conntrack_insert_failed: number;
}

export function summarize(t: Totals, drops: DropCounts, recent: readonly Lookup[]): TroubleSummary {
  const timeouts = sum(t.timeouts);
  const retransmits = sum(t.retransmits);
  const dropTotal = drops.netfilter_drop + drops.conntrack_insert_failed;
  const servfail = t.responses[RC('SERVFAIL')]!;
  const nxdomain = t.responses[RC('NXDOMAIN')]!;
  const noerror = t.responses[RC('NOERROR')]!;
  const amplification = noerror > 0 ? Math.round((t.queries / noerror) * 100) / 100 : null;
  const bad = recent.filter((l) => BAD_KINDS.has(l.kind));
  const slowServer = bad.filter((l) => l.diagnosis === 'slow_server').length;
  const byCause = (c: CauseLabel) => t.timeouts[CAUSE(c)]! + t.retransmits[CAUSE(c)]!;
  const ct = Math.max(drops.conntrack_insert_failed, byCause('conntrack_insert_failed'));
  const nf = Math.max(drops.netfilter_drop, byCause('netfilter_drop'));
  const topCauses: CauseCount[] = [
    { cause: 'conntrack_insert_failed' as const, count: ct },
    { cause: 'netfilter_drop' as const, count: nf },
    { cause: 'unanswered' as const, count: t.timeouts[CAUSE('unanswered')]! },
    { cause: 'server_error' as const, count: servfail },
    { cause: 'slow_server' as const, count: slowServer },
    { cause: 'retransmitted' as const, count: t.retransmits[CAUSE('unanswered')]! },
    { cause: 'slow' as const, count: bad.filter((l) => l.kind === 'slow').length - slowServer },
    { cause: 'nxdomain' as const, count: nxdomain },
  ]
    .filter((c) => c.count > 0)
    .sort((a, b) => b.count - a.count);

  const dropTimeouts =
    t.timeouts[CAUSE('netfilter_drop')]! + t.timeouts[CAUSE('conntrack_insert_failed')]!;
  const dropResends =
    t.retransmits[CAUSE('netfilter_drop')]! + t.retransmits[CAUSE('conntrack_insert_failed')]!;
  let headline: TroubleSummary['headline'];
  if (ct + nf > 0) {
    const cause = ct > 0 ? 'conntrack_insert_failed' : 'netfilter_drop';
    headline = {
      cause,
      text:
        `${plural(Math.max(dropTotal, dropTimeouts + dropResends), 'DNS packet')} dropped by ` +
        `${ct > 0 ? 'conntrack insert failures' : 'netfilter'} on this node → ` +
        `${plural(dropTimeouts, 'timeout')}, ${plural(dropResends, 're-send')}`,
    };
  } else if (t.timeouts[CAUSE('unanswered')]! > 0)
    headline = {
      cause: 'unanswered',
      text: `${plural(t.timeouts[CAUSE('unanswered')]!, 'lookup')} never answered (no drop seen on this node)`,
    };
  else if (servfail > 0)
    headline = { cause: 'server_error', text: `${plural(servfail, 'SERVFAIL answer')}` };
  else if (slowServer > 0)
    headline = {
      cause: 'slow_server',
      text: `${plural(slowServer, 'slow lookup')}: the DNS server itself was slow`,
    };
  else if (amplification !== null && amplification >= 2 && nxdomain > 0)
    headline = {
      cause: 'search_amplification',
      text: `×${amplification} queries per answer: the search list is walked (${plural(nxdomain, 'NXDOMAIN')})`,
    };
  else if (retransmits > 0)
    headline = {
      cause: 'retransmitted',
      text: `${plural(retransmits, 're-send')}, no drop seen on this node`,
    };
  else if (bad.length > 0)
    headline = { cause: 'slow', text: `${plural(bad.length, 'slow lookup')}` };
  else headline = { cause: 'ok', text: 'no trouble seen' };

  return {
    queries: t.queries,
    answered: t.latencyCount,
    timeouts,
    retransmits,
    drops: dropTotal,
    servfail,
    nxdomain,
    amplification,
    p50Seconds: quantileSeconds(t.latency, 0.5),
    p99Seconds: quantileSeconds(t.latency, 0.99),
    slowLookups: bad.length,
    headline,
    topCauses,
    troubleScore:
      100 * timeouts + 30 * dropTotal + 20 * retransmits + 10 * servfail + 5 * bad.length,
  };
}

/** Recent lookups of every cgroup, grouped by pod (client and server role alike), oldest first. */
export function lookupsByPod(
  rings: EventRings,
  nameOf: NameOf,
): Map<string, Map<string, Lookup[]>> {
  const out = new Map<string, Map<string, Lookup[]>>();
  for (const ring of rings.all()) {
    const { namespace, pod } = nameOf(ring.cgroupId);
    let pods = out.get(namespace);
    if (!pods) out.set(namespace, (pods = new Map()));
    const list = pods.get(pod);
    if (list) list.push(...ring.lookups);
    else pods.set(pod, [...ring.lookups]);
  }
  for (const pods of out.values())
    for (const list of pods.values()) list.sort((a, b) => a.seq - b.seq);
  return out;
}

export function ringsOfPod(rings: EventRings, nameOf: NameOf, ref: PodRef): CgroupRing[] {
  return [...rings.all()].filter((r) => {
    const n = nameOf(r.cgroupId);
    return n.namespace === ref.namespace && n.pod === ref.pod;
  });
}

function dropsByPod(snapshot: Snapshot | undefined): Map<string, Map<string, DropCounts>> {
  const out = new Map<string, Map<string, DropCounts>>();
  for (const { labels, value } of snapshot?.drops?.agg.netfilter.values() ?? []) {
    const ns = labels.namespace ?? '';
    const pod = labels.pod ?? '';
    let pods = out.get(ns);
    if (!pods) out.set(ns, (pods = new Map()));
    let d = pods.get(pod);
    if (!d) pods.set(pod, (d = { netfilter_drop: 0, conntrack_insert_failed: 0 }));
    if (labels.reason === 'conntrack_insert_failed') d.conntrack_insert_failed += value;
    else if (labels.reason === 'netfilter_drop') d.netfilter_drop += value;
  }
  return out;
}

function addDrops(a: DropCounts, b: DropCounts): DropCounts {
  return {
    netfilter_drop: a.netfilter_drop + b.netfilter_drop,
    conntrack_insert_failed: a.conntrack_insert_failed + b.conntrack_insert_failed,
  };
}

const NO_DROPS: DropCounts = { netfilter_drop: 0, conntrack_insert_failed: 0 };

function byTrouble<T extends { troubleScore: number; queries: number }>(a: T, b: T): number {
  return b.troubleScore - a.troubleScore || b.queries - a.queries;
}

export function podSummaries(
  namespace: string,
  snapshot: Snapshot | undefined,
  recentByPod: Map<string, Lookup[]> | undefined,
): PodSummary[] {
  const totals = snapshot?.dns.pods.get(namespace) ?? new Map<string, Totals>();
  const drops = dropsByPod(snapshot).get(namespace) ?? new Map<string, DropCounts>();
  const names = new Set([...totals.keys(), ...drops.keys(), ...(recentByPod?.keys() ?? [])]);
  const out: PodSummary[] = [];
  for (const pod of names) {
    const recent = recentByPod?.get(pod) ?? [];
    const last = recent.at(-1);
    out.push({
      namespace,
      pod,
      href: podPagePath(namespace, pod),
      lastEventAt: last ? last.atUnixSeconds : null,
      ...summarize(totals.get(pod) ?? emptyTotals(), drops.get(pod) ?? NO_DROPS, recent),
    });
  }
  return out.sort(byTrouble);
}

export function namespaceSummaries(
  snapshot: Snapshot | undefined,
  recent: Map<string, Map<string, Lookup[]>>,
): NamespaceSummary[] {
  const totals = new Map<string, Totals>();
  for (const [group, byQtype] of snapshot?.dns.client ?? []) {
    const ns = groupLabels(group).namespace!;
    let t = totals.get(ns);
    if (!t) totals.set(ns, (t = emptyTotals()));
    for (const q of byQtype.values()) addRow(t, q);
  }
  const drops = dropsByPod(snapshot);
  const names = new Set([...totals.keys(), ...drops.keys(), ...recent.keys()]);
  const out: NamespaceSummary[] = [];
  for (const namespace of names) {
    let d = NO_DROPS;
    for (const pd of drops.get(namespace)?.values() ?? []) d = addDrops(d, pd);
    const lookups = [...(recent.get(namespace)?.values() ?? [])].flat();
    const pods = podSummaries(namespace, snapshot, recent.get(namespace));
    const worst = pods[0];
    out.push({
      namespace,
      pods: pods.length,
      worstPod:
        worst && worst.troubleScore > 0
          ? { pod: worst.pod, headline: worst.headline.cause, href: worst.href }
          : null,
      ...summarize(totals.get(namespace) ?? emptyTotals(), d, lookups),
    });
  }
  return out.sort(byTrouble);
}

export function lookupView(l: Lookup, nameOf: NameOf): LookupView {
  const server = l.serverCgroupId === undefined ? undefined : nameOf(l.serverCgroupId);
  return {
    at: l.atUnixSeconds,
    kind: l.kind,
    role: l.role,
    name: l.name,
    nameTruncated: l.nameTruncated,
    qtype: l.qtype,
    rcode: l.rcode,
    diagnosis: l.diagnosis,
    cause: l.cause,
    latencySeconds: l.latencySeconds,
    serverSideSeconds: l.serverSideSeconds,
    serverPod: server ? `${server.namespace}/${server.pod}` : null,
    serverRcode: l.serverRcode,
    retransmits: l.retransmits,
    retriedFromNewSocket: l.retriedFromNewSocket,
    socket: l.socket,
    server: l.server,
    client: l.client,
    clientPort: l.clientPort,
    dnsId: l.dnsId,
    firstSentAt: l.firstSentUnixSeconds,
  };
}

/** The pod's client counters from its dns_stats rows, summed over qtypes and by qtype. */
export function podCountersFromRows(rows: readonly DnsStatsRow[]): {
  client: Totals;
  server: Totals;
  byQtype: Map<QtypeLabel, Totals>;
} {
  const client = emptyTotals();
  const server = emptyTotals();
  const byQtype = new Map<QtypeLabel, Totals>(QTYPE_LABELS.map((q) => [q, emptyTotals()]));
  for (const r of rows) {
    if (r.role === 'server') {
      addRow(server, r);
      continue;
    }
    addRow(client, r);
    addRow(byQtype.get(r.qtype)!, r);
  }
  return { client, server, byQtype };
}

export function doctorCounters(t: Totals): PodCounters {
  const byCause = (arr: number[]) =>
    Object.fromEntries(CAUSE_LABELS.map((c, i) => [c, arr[i] ?? 0])) as Record<CauseLabel, number>;
  return {
    queries: t.queries,
    noerror: t.responses[RC('NOERROR')]!,
    nxdomain: t.responses[RC('NXDOMAIN')]!,
    servfail: t.responses[RC('SERVFAIL')]!,
    retransmits: byCause(t.retransmits),
    timeouts: byCause(t.timeouts),
  };
}

export function podDropCounts(snapshot: Snapshot | undefined, ref: PodRef): DropCounts {
  return dropsByPod(snapshot).get(ref.namespace)?.get(ref.pod) ?? NO_DROPS;
}

export function podDetail(o: {
  ref: PodRef;
  snapshot: Snapshot | undefined;
  /** The pod's dns_stats rows, when they could be read; else the snapshot's per-pod totals. */
  rows: readonly DnsStatsRow[] | undefined;
  recent: readonly Lookup[];
  doctor: DoctorReport;
  nameOf: NameOf;
  limit: number;
}): PodDetail {
  const fromRows = o.rows && o.rows.length > 0 ? podCountersFromRows(o.rows) : undefined;
  const totals =
    fromRows?.client ?? o.snapshot?.dns.pods.get(o.ref.namespace)?.get(o.ref.pod) ?? emptyTotals();
  const last = o.recent.at(-1);
  const summary: PodSummary = {
    namespace: o.ref.namespace,
    pod: o.ref.pod,
    href: podPagePath(o.ref.namespace, o.ref.pod),
    lastEventAt: last ? last.atUnixSeconds : null,
    ...summarize(totals, podDropCounts(o.snapshot, o.ref), o.recent),
  };
  const first = totals.latency.findIndex((c) => c > 0);
  const lastSlot = totals.latency.findLastIndex((c) => c > 0);
  const histogram =
    first < 0
      ? []
      : totals.latency
          .slice(first, lastSlot + 1)
          .map((count, i) => ({ le: slotUpperBoundSeconds(first + i), count }));
  const rcodes = Object.fromEntries(RCODE_LABELS.map((r, i) => [r, totals.responses[i] ?? 0]));
  const qtypes = fromRows
    ? (Object.fromEntries(
        [...fromRows.byQtype].map(([q, t]) => [
          q,
          {
            queries: t.queries,
            answered: t.latencyCount,
            timeouts: sum(t.timeouts),
            retransmits: sum(t.retransmits),
            nxdomain: t.responses[RC('NXDOMAIN')]!,
          },
        ]),
      ) as PodDetail['qtypes'])
    : null;
  const server =
    fromRows && fromRows.server.queries > 0
      ? {
          queries: fromRows.server.queries,
          answered: fromRows.server.latencyCount,
          p50Seconds: quantileSeconds(fromRows.server.latency, 0.5),
          p99Seconds: quantileSeconds(fromRows.server.latency, 0.99),
        }
      : null;
  return {
    summary,
    histogram,
    rcodes,
    qtypes,
    recent: [...o.recent]
      .reverse()
      .slice(0, o.limit)
      .map((l) => lookupView(l, o.nameOf)),
    doctor: o.doctor,
    server,
  };
}

export interface LookupExemplar {
  pod: string;
  dnsId: number;
  /** First send to answer (slow) or to the timeout sweep (timeout). */
  latencySeconds: number;
  atUnixSeconds: number;
  cause: CauseLabel;
}

/** What an exemplar points at: an answered lookup at or above the slow threshold, or one that timed out. */
export type ExemplarKind = 'slow' | 'timeout';

const exemplarKey = (namespace: string, qtype: string, kind: ExemplarKind) =>
  `${namespace}\0${qtype}\0${kind}`;

/** Recent lookups for exemplars, by namespace, qtype and kind. */
export interface ExemplarIndex {
  get(namespace: string, qtype: QtypeLabel, kind: ExemplarKind): LookupExemplar[];
}

/**
 * Recent client lookups by namespace, qtype and kind, newest first, at most limit each: slow
 * ones for exemplars on dnsrace_dns_query_duration_seconds, timed-out ones for exemplars on
 * dnsrace_dns_timeouts_total (a timeout has no latency observation to sit on). One pass over
 * the rings and one nameOf per cgroup: a scrape asks for every series, and the rings hold up
 * to a thousand cgroups, most of them of pods gone.
 */
export function exemplarIndex(rings: EventRings, nameOf: NameOf, limit: number): ExemplarIndex {
  const found = new Map<string, (LookupExemplar & { seq: number })[]>();
  for (const ring of rings.all()) {
    let n: PodRef | undefined;
    for (const l of ring.lookups) {
      if ((l.kind !== 'slow' && l.kind !== 'timeout') || l.role !== 'client') continue;
      n ??= nameOf(ring.cgroupId);
      const key = exemplarKey(n.namespace, l.qtypeClass, l.kind);
      let list = found.get(key);
      if (!list) found.set(key, (list = []));
      list.push({
        pod: n.pod,
        dnsId: l.dnsId,
        latencySeconds: l.latencySeconds,
        atUnixSeconds: l.atUnixSeconds,
        cause: l.cause,
        seq: l.seq,
      });
    }
  }
  const byKey = new Map<string, LookupExemplar[]>();
  for (const [key, list] of found)
    byKey.set(
      key,
      list
        .sort((a, b) => b.seq - a.seq)
        .slice(0, limit)
        .map(({ seq: _seq, ...e }) => e),
    );
  return { get: (namespace, qtype, kind) => byKey.get(exemplarKey(namespace, qtype, kind)) ?? [] };
}
