import { describe, expect, it } from 'vitest';
import { buildFamilies } from '../../src/exposition/families.js';
import { renderText } from '../../src/exposition/prom-text.js';
import { negotiateFormat } from '../../src/http/server.js';
import { emptyTotals } from '../../src/dns/totals.js';
import { LAT_MIN_INDEX } from '../../src/bpf/latency-buckets.js';
import type { ExporterState } from '../../src/snapshot.js';
import { readProcessStats } from '../../src/process-stats.js';

function state(): ExporterState {
  const a = emptyTotals();
  a.queries = 10;
  a.responses[0] = 8;
  a.responses[1] = 1;
  a.timeouts = [0, 1, 0]; // one timeout after a netfilter drop
  a.retransmits = [1, 1, 0];
  a.latencyCount = 9;
  a.latencySumSeconds = 5.5;
  a.latency[-39 - LAT_MIN_INDEX] = 8; // ~1 ms
  a.latency[10 - LAT_MIN_INDEX] = 1; // ~5 s
  return {
    attached: true,
    dropMode: 'tracepoint',
    identitySources: () => [{ source: 'kube-api', state: 'degraded' }],
    eventStats: () => ({ perfLost: 2 }),
    exemplars: (ns, qtype, kind) =>
      ns !== 'team-a' || qtype !== 'A'
        ? []
        : kind === 'slow'
          ? [
              {
                pod: 'web-1',
                dnsId: 4242,
                latencySeconds: 5.1,
                atUnixSeconds: 1_700_000_000,
                cause: 'unanswered',
              },
            ]
          : [
              {
                pod: 'web-2',
                dnsId: 77,
                latencySeconds: 15.2,
                atUnixSeconds: 1_700_000_100.5,
                cause: 'netfilter_drop',
              },
            ],
    conntrack: undefined,
    capabilities: undefined,
    bpftoolFailures: new Map([['map_dump', 2]]),
    build: { version: '0.1.0', node: 'n1', kernel: '6.18', bpftool: '7.5.0' },
    snapshot: {
      dns: {
        client: new Map([['team-a', new Map([['A', a]])]]),
        server: new Map(),
        pods: new Map([['team-a', new Map([['web-1', a]])]]),
      },
      health: { dns_packets: 42, unmatched_answers: 3, pending_full: 1, parse_truncated: 5 },
      maps: [{ map: 'dns_pending', entries: 2, maxEntries: 16384 }],
      readDurationSeconds: 0.012,
      readTimestampSeconds: 1_700_000_000,
      podSeriesOverflow: 0,
      drops: {
        agg: {
          netfilter: new Map([
            [
              'k',
              {
                labels: {
                  namespace: 'team-a',
                  pod: 'web-1',
                  protocol: 'udp',
                  port_class: 'dns',
                  reason: 'netfilter_drop',
                },
                value: 4,
              },
            ],
          ]),
          dnsQueries: new Map([
            [
              'q',
              {
                labels: { namespace: 'team-a', qtype: 'AAAA', reason: 'netfilter_drop' },
                value: 4,
              },
            ],
          ]),
          dnsAnswers: new Map(),
        },
        health: { events: 4, unattributed: 1 },
      },
    },
  };
}

function sample(text: string, line: RegExp): number {
  const found = text.split('\n').find((l) => line.test(l));
  if (!found) throw new Error(`no line matches ${line}`);
  return Number(found.split(' ').at(-1));
}

describe('text exposition', () => {
  it('carries the contract families with namespace and qtype labels', async () => {
    const text = await renderText(buildFamilies(state()), 'prometheus');
    expect(text).toContain('# TYPE dnsrace_dns_queries_total counter');
    expect(sample(text, /^dnsrace_dns_queries_total\{namespace="team-a",qtype="A"\}/)).toBe(10);
    expect(sample(text, /^dnsrace_dns_responses_total\{.*rcode="NXDOMAIN"\}/)).toBe(1);
    expect(sample(text, /^dnsrace_dns_timeouts_total\{.*cause="netfilter_drop"\}/)).toBe(1);
    expect(sample(text, /^dnsrace_dns_timeouts_total\{.*cause="unanswered"\}/)).toBe(0);
    expect(sample(text, /^dnsrace_dns_retransmits_total\{.*cause="unanswered"\}/)).toBe(1);
    expect(sample(text, /^dnsrace_dns_pod_retransmits_total\{/)).toBe(2);
    expect(sample(text, /^dnsrace_dns_query_duration_seconds_bucket\{.*le="0.001953125"\}/)).toBe(
      8,
    );
    expect(sample(text, /^dnsrace_dns_query_duration_seconds_bucket\{.*le="4"\}/)).toBe(8);
    expect(
      sample(text, /^dnsrace_dns_query_duration_seconds_bucket\{.*le="5.65685424949238"\}/),
    ).toBe(9);
    expect(sample(text, /^dnsrace_dns_query_duration_seconds_bucket\{.*le="\+Inf"\}/)).toBe(9);
    expect(sample(text, /^dnsrace_dns_query_duration_seconds_count\{/)).toBe(9);
    expect(sample(text, /^dnsrace_dns_query_duration_seconds_sum\{/)).toBe(5.5);
    expect(sample(text, /^dnsrace_dns_pod_queries_total\{namespace="team-a",pod="web-1"\}/)).toBe(
      10,
    );
    expect(sample(text, /^dnsrace_bpf_parse_errors_total\{reason="truncated"\}/)).toBe(5);
    expect(sample(text, /^dnsrace_bpf_events_dropped_total\{reason="perf_lost"\}/)).toBe(2);
    expect(sample(text, /^dnsrace_bpf_map_overflows_total\{map="dns_pending"\}/)).toBe(1);
    expect(sample(text, /^dnsrace_bpftool_failures_total\{operation="map_dump"\}/)).toBe(2);
    expect(sample(text, /^dnsrace_bpf_programs_attached /)).toBe(1);
    expect(
      sample(
        text,
        /^dnsrace_netfilter_drops_total\{namespace="team-a",pod="web-1",protocol="udp",port_class="dns",reason="netfilter_drop"\}/,
      ),
    ).toBe(4);
    expect(
      sample(
        text,
        /^dnsrace_dns_query_drops_total\{namespace="team-a",qtype="AAAA",reason="netfilter_drop"\}/,
      ),
    ).toBe(4);
    expect(sample(text, /^dnsrace_drop_attribution_mode\{mode="tracepoint"\}/)).toBe(1);
    expect(sample(text, /^dnsrace_drop_attribution_mode\{mode="fexit"\}/)).toBe(0);
    expect(sample(text, /^dnsrace_bpf_drop_events_total\{kind="unattributed"\}/)).toBe(1);
    expect(text).not.toMatch(/qname|svc\.cluster\.local/);
  });

  it('renders OpenMetrics with _total only on samples and a closing # EOF', async () => {
    const text = await renderText(buildFamilies(state()), 'openmetrics');
    // A slow lookup's pod and DNS id ride on its bucket as an exemplar (never its name).
    expect(text).toMatch(
      /^dnsrace_dns_query_duration_seconds_bucket\{namespace="team-a",qtype="A",le="5\.65685424949238"\} 9 # \{pod="web-1",dns_id="4242"\} 5\.1 1700000000$/m,
    );
    // A timed-out lookup rides on the timeouts counter of its cause, value 1 (one timeout).
    expect(text).toMatch(
      /^dnsrace_dns_timeouts_total\{namespace="team-a",qtype="A",cause="netfilter_drop"\} 1 # \{pod="web-2",dns_id="77"\} 1 1700000100\.5$/m,
    );
    expect(text).toMatch(
      /^dnsrace_dns_timeouts_total\{namespace="team-a",qtype="A",cause="unanswered"\} 0$/m,
    );
    expect(text.match(/ # \{/g)).toHaveLength(2);
    expect(text).toContain('# TYPE dnsrace_dns_queries counter');
    expect(text).toMatch(/^dnsrace_dns_queries_total\{namespace="team-a",qtype="A"\} 10$/m);
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
  });

  it('serves only self-health before the first read', async () => {
    const s = state();
    s.snapshot = undefined;
    s.attached = false;
    const text = await renderText(buildFamilies(s), 'prometheus');
    expect(sample(text, /^dnsrace_bpf_programs_attached /)).toBe(0);
    expect(text).not.toContain('dnsrace_dns_queries_total{');
  });

  it.each([
    [undefined, 'prometheus'],
    ['text/plain', 'prometheus'],
    ['application/openmetrics-text; version=1.0.0,text/plain;q=0.5', 'openmetrics'],
  ])('negotiates %s -> %s', (accept, format) => expect(negotiateFormat(accept)).toBe(format));
});

describe('process metrics', () => {
  it('exposes the exporter process under the names of every Prometheus client library', async () => {
    const text = await renderText(
      buildFamilies({
        ...state(),
        processStats: () => ({
          cpuSeconds: 12.5,
          residentBytes: 120e6,
          startTimeSeconds: 1_700_000_000,
          heapUsedBytes: 18e6,
          heapTotalBytes: 21e6,
          externalBytes: 3e6,
        }),
      }),
      'prometheus',
    );
    for (const line of [
      '# TYPE process_cpu_seconds_total counter',
      'process_cpu_seconds_total 12.5',
      'process_resident_memory_bytes 120000000',
      'process_start_time_seconds 1700000000',
      'nodejs_heap_size_used_bytes 18000000',
      'nodejs_heap_size_total_bytes 21000000',
      'nodejs_external_memory_bytes 3000000',
    ])
      expect(text.split('\n')).toContain(line);
  });

  it('reads this process: resident memory holds the heap, CPU time runs', () => {
    const a = readProcessStats();
    for (let i = 0; i < 1e6; i++) Math.sqrt(i);
    const b = readProcessStats();
    expect(a.residentBytes).toBeGreaterThan(a.heapUsedBytes);
    expect(a.heapTotalBytes).toBeGreaterThanOrEqual(a.heapUsedBytes);
    expect(b.cpuSeconds).toBeGreaterThan(a.cpuSeconds);
    expect(a.startTimeSeconds).toBeLessThanOrEqual(Date.now() / 1000);
    expect(a.startTimeSeconds).toBeGreaterThan(Date.now() / 1000 - 3600);
  });
});
