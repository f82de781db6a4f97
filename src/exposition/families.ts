// Builds every metric family from the exporter's state. Pure: the same state always
// renders the same families, whichever exposition format is asked for.
import { METRIC, QTYPE_LABELS, RCODE_LABELS } from '../metrics/names.js';
import { cumulativeBuckets, NAMESPACE_LE_INDICES, POD_LE_INDICES } from '../dns/classic-buckets.js';
import type { Totals } from '../dns/totals.js';
import type { DnsAggregate } from '../dns/aggregate.js';
import { OVERFLOW_COUNTERS, PARSE_ERROR_REASONS } from '../bpf/dns-health.js';
import type { ExporterState } from '../snapshot.js';
import type { Family, HistogramFamily, ScalarFamily } from './model.js';

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
  for (const [namespace, byQtype] of byNs)
    for (const qtype of QTYPE_LABELS) {
      const t = byQtype.get(qtype);
      if (t) f.samples.push({ labels: { namespace, qtype }, value: pick(t) });
    }
  return f;
}

function responses(byNs: ByNamespace, name: string, help: string): ScalarFamily {
  const f = scalar('counter', name, help);
  for (const [namespace, byQtype] of byNs)
    for (const qtype of QTYPE_LABELS) {
      const t = byQtype.get(qtype);
      if (!t) continue;
      RCODE_LABELS.forEach((rcode, i) =>
        f.samples.push({ labels: { namespace, qtype, rcode }, value: t.responses[i] ?? 0 }),
      );
    }
  return f;
}

function histogram(byNs: ByNamespace, name: string, help: string): HistogramFamily {
  const f: HistogramFamily = { type: 'histogram', name, help, samples: [] };
  for (const [namespace, byQtype] of byNs)
    for (const qtype of QTYPE_LABELS) {
      const t = byQtype.get(qtype);
      if (!t) continue;
      f.samples.push({
        labels: { namespace, qtype },
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
      r.samples.push({ labels, value: tot.retransmits });
      t.samples.push({ labels, value: tot.timeouts });
      h.samples.push({
        labels,
        buckets: cumulativeBuckets(tot.latency, POD_LE_INDICES),
        sum: tot.latencySumSeconds,
        count: tot.latencyCount,
      });
    }
  return [q, r, t, h];
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
    ),
    perQtype(
      client,
      'counter',
      METRIC.dnsRetransmits,
      'DNS queries re-sent by pods (same socket, or the same question and id from a new socket).',
      (t) => t.retransmits,
    ),
    perQtype(
      client,
      'counter',
      METRIC.dnsTimeouts,
      'DNS queries of pods never answered within the timeout deadline.',
      (t) => t.timeouts,
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
      (t) => t.timeouts,
    ),
    ...podFamilies(pods),
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
