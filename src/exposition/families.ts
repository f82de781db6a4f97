// Builds every metric family from the exporter's state. Pure: the same state always
// renders the same families, whichever exposition format is asked for.
import { CAUSE_LABELS, METRIC, QTYPE_LABELS, RCODE_LABELS } from '../metrics/names.js';
import { cumulativeBuckets, NAMESPACE_LE_INDICES, POD_LE_INDICES } from '../dns/classic-buckets.js';
import { sum, type Totals } from '../dns/totals.js';
import { groupLabels, type DnsAggregate } from '../dns/aggregate.js';
import { OVERFLOW_COUNTERS, PARSE_ERROR_REASONS } from '../bpf/dns-health.js';
import type { ExporterState } from '../snapshot.js';
import type { ProcessStats } from '../process-stats.js';
import { conntrackFamilies } from '../conntrack/index.js';
import { capabilityFamily } from '../capabilities.js';
import type { Exemplar, Family, HistogramFamily, ScalarFamily } from './model.js';

type ByNamespace = DnsAggregate['client'];

function scalar(
  type: 'counter' | 'gauge',
  name: string,
  help: string,
  samples: ScalarFamily['samples'] = [],
): ScalarFamily {
  return { type, name, help, samples };
}

function perQtype(
  byNs: ByNamespace,
  type: 'counter',
  name: string,
  help: string,
  pick: (t: Totals) => number,
): ScalarFamily {
  const f = scalar(type, name, help);
  for (const [group, byQtype] of byNs)
    for (const qtype of QTYPE_LABELS) {
      const t = byQtype.get(qtype);
      if (t) f.samples.push({ labels: { ...groupLabels(group), qtype }, value: pick(t) });
    }
  return f;
}

/**
 * A counter split by qtype and one more closed label (rcode, cause) whose values index
 * pick(t); exemplarOf, if given, names the latest event behind a sample.
 */
function perQtypeAnd(
  byNs: ByNamespace,
  name: string,
  help: string,
  label: string,
  values: readonly string[],
  pick: (t: Totals) => readonly number[],
  exemplarOf?: (namespace: string, qtype: string, value: string) => Exemplar | undefined,
): ScalarFamily {
  const f = scalar('counter', name, help);
  for (const [group, byQtype] of byNs)
    for (const qtype of QTYPE_LABELS) {
      const t = byQtype.get(qtype);
      if (!t) continue;
      const counts = pick(t);
      values.forEach((v, i) => {
        const exemplar = exemplarOf?.(groupLabels(group).namespace!, qtype, v);
        f.samples.push({
          labels: { ...groupLabels(group), qtype, [label]: v },
          value: counts[i] ?? 0,
          ...(exemplar && { exemplar }),
        });
      });
    }
  return f;
}

/**
 * The latest timed-out lookup of a namespace, qtype and cause as a counter exemplar: value
 * 1 (one timeout), {pod, dns_id} as on the latency buckets, so that a timeouts panel leads
 * to a pod as the p99 panel does.
 */
function timeoutExemplar(exemplarsOf: ExemplarsOf) {
  return (namespace: string, qtype: string, cause: string): Exemplar | undefined => {
    const e = exemplarsOf(namespace, qtype, 'timeout').find((x) => x.cause === cause);
    return e && { labels: lookupLabels(e), value: 1, timestampSeconds: e.atUnixSeconds };
  };
}

/** Exemplar labels: a pod and a DNS id, never the query name. */
function lookupLabels(e: { pod: string; dnsId: number }) {
  return { pod: e.pod, dns_id: String(e.dnsId) };
}

function responses(byNs: ByNamespace, name: string, help: string): ScalarFamily {
  return perQtypeAnd(byNs, name, help, 'rcode', RCODE_LABELS, (t) => t.responses);
}

type ExemplarsOf = ExporterState['exemplars'];

function histogram(
  byNs: ByNamespace,
  name: string,
  help: string,
  exemplarsOf?: ExemplarsOf,
): HistogramFamily {
  const f: HistogramFamily = { type: 'histogram', name, help, samples: [] };
  for (const [group, byQtype] of byNs)
    for (const qtype of QTYPE_LABELS) {
      const t = byQtype.get(qtype);
      if (!t) continue;
      f.samples.push({
        labels: { ...groupLabels(group), qtype },
        ...(exemplarsOf
          ? {
              // Slow lookups name a pod and DNS id (never the query name): one click from a
              // namespace's p99 to the pod (src/drilldown).
              exemplars: exemplarsOf(groupLabels(group).namespace!, qtype, 'slow').map((e) => ({
                labels: lookupLabels(e),
                value: e.latencySeconds,
                timestampSeconds: e.atUnixSeconds,
              })),
            }
          : {}),
        buckets: cumulativeBuckets(t.latency, NAMESPACE_LE_INDICES),
        sum: t.latencySumSeconds,
        count: t.latencyCount,
        slots: t.latency,
      });
    }
  return f;
}

function podFamilies(pods: DnsAggregate['pods']): Family[] {
  const q = scalar('counter', METRIC.podQueries, 'DNS queries sent by the pod (first sends).');
  const r = scalar('counter', METRIC.podRetransmits, 'DNS queries the pod re-sent.');
  const t = scalar('counter', METRIC.podTimeouts, 'DNS queries of the pod never answered.');
  const h: HistogramFamily = {
    type: 'histogram',
    name: METRIC.podQueryDuration,
    help: 'DNS lookup latency of the pod, first send to answer (coarse buckets).',
    samples: [],
  };
  for (const [namespace, byPod] of pods)
    for (const [pod, tot] of byPod) {
      const labels = { namespace, pod };
      q.samples.push({ labels, value: tot.queries });
      r.samples.push({ labels, value: sum(tot.retransmits) });
      t.samples.push({ labels, value: sum(tot.timeouts) });
      h.samples.push({
        labels,
        buckets: cumulativeBuckets(tot.latency, POD_LE_INDICES),
        sum: tot.latencySumSeconds,
        count: tot.latencyCount,
      });
    }
  return [q, r, t, h];
}

function dropFamilies(
  state: ExporterState,
  snap: NonNullable<ExporterState['snapshot']>,
): Family[] {
  const modes = ['fexit', 'tracepoint', 'none'] as const;
  const out: Family[] = [
    scalar(
      'gauge',
      METRIC.dropAttributionMode,
      'How drops are attributed: fexit (exact conntrack insert failures), tracepoint (kfree_skb netfilter drops), none. 1 for the mode in use.',
      state.dropMode
        ? modes.map((mode) => ({ labels: { mode }, value: state.dropMode === mode ? 1 : 0 }))
        : [],
    ),
  ];
  const d = snap.drops;
  if (!d) return out;
  const values = (m: Map<string, { labels: Record<string, string>; value: number }>) => [
    ...m.values(),
  ];
  out.push(
    scalar(
      'counter',
      METRIC.netfilterDrops,
      'Packets of pods dropped by netfilter (reason netfilter_drop) or by a conntrack insert failure (fexit mode), by pod address.',
      values(d.agg.netfilter),
    ),
    scalar(
      'counter',
      METRIC.dnsQueryDrops,
      'DNS queries of pods dropped on the node before reaching a server, by reason.',
      values(d.agg.dnsQueries),
    ),
    scalar(
      'counter',
      METRIC.dnsAnswerDrops,
      'DNS answers dropped on their way to pods (no_socket: the resolver had given up), by reason.',
      values(d.agg.dnsAnswers),
    ),
    scalar(
      'counter',
      METRIC.dropProgramEvents,
      'What the drop programs saw: events counted, unattributed drops (no known pod address), parse failures, full maps, conntrack confirm drops.',
      Object.entries(d.health).map(([kind, value]) => ({ labels: { kind }, value })),
    ),
  );
  return out;
}

function processFamilies(p: ProcessStats): Family[] {
  const one = (type: 'counter' | 'gauge', name: string, help: string, value: number) =>
    scalar(type, name, help, [{ labels: {}, value }]);
  return [
    one('counter', METRIC.processCpu, 'User and system CPU time of the exporter.', p.cpuSeconds),
    one('gauge', METRIC.processResident, 'Resident memory of the exporter.', p.residentBytes),
    one('gauge', METRIC.processStartTime, 'Start of the exporter, Unix time.', p.startTimeSeconds),
    one('gauge', METRIC.heapUsed, 'V8 heap in use.', p.heapUsedBytes),
    one('gauge', METRIC.heapTotal, 'V8 heap reserved.', p.heapTotalBytes),
    one(
      'gauge',
      METRIC.externalMemory,
      'Memory of JS objects outside the V8 heap (Buffers, ArrayBuffers).',
      p.externalBytes,
    ),
  ];
}

export function buildFamilies(state: ExporterState): Family[] {
  const out: Family[] = [];
  out.push(
    scalar(
      'gauge',
      METRIC.buildInfo,
      'Build and environment of this exporter; value is always 1.',
      [{ labels: { ...state.build }, value: 1 }],
    ),
    scalar('gauge', METRIC.up, '1 when the DNS programs are attached to the cgroup root.', [
      { labels: {}, value: state.attached ? 1 : 0 },
    ]),
    scalar(
      'counter',
      METRIC.bpftoolFailures,
      'bpftool calls that failed, by operation.',
      [...state.bpftoolFailures].map(([operation, value]) => ({ labels: { operation }, value })),
    ),
  );
  out.push(
    scalar(
      'gauge',
      METRIC.identitySource,
      'State of each pod identity source (kube-api: connecting, connected, degraded or disabled; pod-log-dir: connected or degraded); value is always 1.',
      state.identitySources().map((s) => ({ labels: s, value: 1 })),
    ),
  );
  if (state.processStats) out.push(...processFamilies(state.processStats()));
  if (state.capabilities) out.push(capabilityFamily(state.capabilities));
  if (state.conntrack) out.push(...conntrackFamilies(state.conntrack));
  const snap = state.snapshot;
  if (!snap) return out;
  const { client, server, pods } = snap.dns;
  out.push(
    perQtype(
      client,
      'counter',
      METRIC.dnsQueries,
      'DNS queries sent by pods (first sends, retransmits excluded).',
      (t) => t.queries,
    ),
    responses(client, METRIC.dnsResponses, 'DNS answers received by pods, by rcode.'),
    histogram(
      client,
      METRIC.dnsQueryDuration,
      "DNS lookup latency seen by pods, from a query's first send to its answer.",
      state.exemplars,
    ),
    perQtypeAnd(
      client,
      METRIC.dnsRetransmits,
      'DNS queries re-sent by pods (same socket, or the same question and id from a new socket), by the cause the node saw.',
      'cause',
      CAUSE_LABELS,
      (t) => t.retransmits,
    ),
    perQtypeAnd(
      client,
      METRIC.dnsTimeouts,
      'DNS queries of pods never answered within the timeout deadline, by the cause the node saw.',
      'cause',
      CAUSE_LABELS,
      (t) => t.timeouts,
      timeoutExemplar(state.exemplars),
    ),
    perQtype(
      server,
      'counter',
      METRIC.dnsServerQueries,
      'DNS queries received by DNS server pods.',
      (t) => t.queries,
    ),
    responses(server, METRIC.dnsServerResponses, 'DNS answers sent by DNS server pods, by rcode.'),
    histogram(
      server,
      METRIC.dnsServerDuration,
      'Time DNS server pods took from receiving a query to sending its answer.',
    ),
    perQtype(
      server,
      'counter',
      METRIC.dnsServerTimeouts,
      'DNS queries received by server pods and never answered.',
      (t) => sum(t.timeouts),
    ),
    ...podFamilies(pods),
    ...dropFamilies(state, snap),
    scalar(
      'counter',
      METRIC.events,
      'Drill-down events (slow, failed, timed-out lookups) the BPF programs sent.',
      [{ labels: {}, value: snap.health.events_sent ?? 0 }],
    ),
    scalar(
      'counter',
      METRIC.eventsDropped,
      'Drill-down events lost: rate_limit (a pod over its token bucket), output_failed (no reader or ring full), perf_lost (lost before bpftool read them).',
      [
        { labels: { reason: 'rate_limit' }, value: snap.health.events_rate_limited ?? 0 },
        { labels: { reason: 'output_failed' }, value: snap.health.events_output_failed ?? 0 },
        { labels: { reason: 'perf_lost' }, value: state.eventStats()?.perfLost ?? 0 },
      ],
    ),
    scalar('counter', METRIC.dnsPackets, 'Packets the BPF programs parsed as DNS.', [
      { labels: {}, value: snap.health.dns_packets ?? 0 },
    ]),
    scalar(
      'counter',
      METRIC.parseErrors,
      'Port-53 packets the BPF programs could not parse, by reason.',
      Object.entries(PARSE_ERROR_REASONS).map(([reason, c]) => ({
        labels: { reason },
        value: snap.health[c] ?? 0,
      })),
    ),
    scalar(
      'counter',
      METRIC.unmatchedAnswers,
      'DNS answers with no pending query (late, duplicate, or sent before attach).',
      [{ labels: {}, value: snap.health.unmatched_answers ?? 0 }],
    ),
    scalar(
      'counter',
      METRIC.mapOverflows,
      'Inserts that failed because a BPF map was full: those queries or rows were not tracked.',
      Object.entries(OVERFLOW_COUNTERS).map(([map, c]) => ({
        labels: { map },
        value: snap.health[c] ?? 0,
      })),
    ),
    scalar(
      'counter',
      METRIC.pendingShareExceeded,
      'DNS queries not tracked because their cgroup already had its share (an eighth) of ' +
        'dns_pending awaiting answers while the map was half full: counted, but no latency and no timeout.',
      [{ labels: {}, value: snap.health.pending_share_full ?? 0 }],
    ),
    scalar(
      'gauge',
      METRIC.mapEntries,
      'Entries in each BPF map at the last read.',
      snap.maps.map((m) => ({ labels: { map: m.map }, value: m.entries })),
    ),
    scalar(
      'gauge',
      METRIC.mapMaxEntries,
      'Capacity of each BPF map.',
      snap.maps.map((m) => ({ labels: { map: m.map }, value: m.maxEntries })),
    ),
    scalar('gauge', METRIC.mapReadDuration, 'Duration of the last read of the kernel maps.', [
      { labels: {}, value: snap.readDurationSeconds },
    ]),
    scalar(
      'gauge',
      METRIC.mapReadTimestamp,
      'Unix time of the last successful read of the kernel maps.',
      [{ labels: {}, value: snap.readTimestampSeconds }],
    ),
    scalar(
      'gauge',
      METRIC.podSeriesDropped,
      'Pods summed into pod="_other" because --pod-series-limit was reached.',
      [{ labels: {}, value: snap.podSeriesOverflow }],
    ),
  );
  return out;
}
