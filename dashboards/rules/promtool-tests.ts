// promtool unit tests of the rules, written as data: for every alert a case where it must
// not fire yet (condition true for less than `for`, or below its threshold) and a case
// where it fires, with the exact labels and annotations expected; plus checks of the
// kernel-aware and classic-histogram recording rules. Emitted as
// deploy/prometheus/tests/*.yaml and run by test/unit/dashboards-rules-promtool.test.ts.
//
// promtool 2.42 cannot feed native histograms, so these use classic buckets; the native
// side of every rule runs against the real exporter in test/e2e/dashboards-rules.test.ts.
import { DEFAULT_RULES_CONFIG } from './config.js';
import { RULE_FILES } from './index.js';
import { toYaml, type YamlValue } from './yaml.js';

interface Series {
  series: string;
  values: string;
}

interface ExpectedAlert {
  labels: Record<string, string>;
  summary: string;
  description: string;
}

export interface AlertTest {
  alert: string;
  /** What the test shows, for the test's name. */
  scenario: string;
  input: Series[];
  /** Eval times at which nothing may fire: the condition holds for less than `for`. */
  notYet: string[];
  /** Eval times at which exactly these alerts fire. */
  firing: { at: string; alerts: ExpectedAlert[] }[];
}

export interface ExprTest {
  scenario: string;
  input: Series[];
  checks: { expr: string; at: string; samples: { labels: string; value: number }[] }[];
}

/** A series written as Prometheus text: name{labels}. */
function s(name: string, labels: Record<string, string>, values: string): Series {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return { series: `${name}{${l}}`, values };
}

const NODE1 = { instance: 'node-1:9853', job: 'dnsrace' };
const NODE2 = { instance: 'node-2:9853', job: 'dnsrace' };
const NODE3 = { instance: 'node-3:9853', job: 'dnsrace' };
const buildInfo = (node: Record<string, string>, name: string) =>
  s('dnsrace_build_info', { ...node, node: name, version: '0.1.0' }, '1x40');

/** DNS traffic of two namespaces in cluster "prod" on node-1: payments stalls, team-a does not. */
const PAYMENTS = { cluster: 'prod', ...NODE1, namespace: 'payments' };
const TEAM_A = { cluster: 'prod', ...NODE1, namespace: 'team-a' };
const H_BASE = 'dnsrace_dns_query_duration_seconds';
const H = `${H_BASE}_bucket`;
const DNS_TRAFFIC: Series[] = [
  // payments: 1 query/s; 0.1/s time out, half of them dropped on the node.
  s('dnsrace_dns_queries_total', { ...PAYMENTS, qtype: 'A' }, '0+60x40'),
  s(
    'dnsrace_dns_timeouts_total',
    { ...PAYMENTS, qtype: 'AAAA', cause: 'netfilter_drop' },
    '0+3x40',
  ),
  s('dnsrace_dns_timeouts_total', { ...PAYMENTS, qtype: 'AAAA', cause: 'unanswered' }, '0+3x40'),
  s(
    'dnsrace_dns_retransmits_total',
    { ...PAYMENTS, qtype: 'AAAA', cause: 'netfilter_drop' },
    '0+5x40',
  ),
  // 60 answers a minute, 10 of them in (4, 5.66] s: 5 s stalls.
  s(H, { ...PAYMENTS, qtype: 'A', le: '0.015625' }, '0+50x40'),
  s(H, { ...PAYMENTS, qtype: 'A', le: '1' }, '0+50x40'),
  s(H, { ...PAYMENTS, qtype: 'A', le: '4' }, '0+50x40'),
  s(H, { ...PAYMENTS, qtype: 'A', le: '5.65685424949238' }, '0+60x40'),
  s(H, { ...PAYMENTS, qtype: 'A', le: '+Inf' }, '0+60x40'),
  s(`${H_BASE}_count`, { ...PAYMENTS, qtype: 'A' }, '0+60x40'),
  s(`${H_BASE}_sum`, { ...PAYMENTS, qtype: 'A' }, '0+50.5x40'),
  s(
    'dnsrace_dns_query_drops_total',
    { ...PAYMENTS, qtype: 'AAAA', reason: 'netfilter_drop' },
    '0+6x40',
  ),
  // team-a: 10 queries/s, 0.05/s time out (0.5 %, under the 1 % threshold), all fast.
  s('dnsrace_dns_queries_total', { ...TEAM_A, qtype: 'A' }, '0+600x40'),
  s('dnsrace_dns_timeouts_total', { ...TEAM_A, qtype: 'A', cause: 'unanswered' }, '0+3x40'),
  s('dnsrace_dns_retransmits_total', { ...TEAM_A, qtype: 'A', cause: 'unanswered' }, '0x40'),
  s(H, { ...TEAM_A, qtype: 'A', le: '0.015625' }, '0+600x40'),
  s(H, { ...TEAM_A, qtype: 'A', le: '1' }, '0+600x40'),
  s(H, { ...TEAM_A, qtype: 'A', le: '4' }, '0+600x40'),
  s(H, { ...TEAM_A, qtype: 'A', le: '5.65685424949238' }, '0+600x40'),
  s(H, { ...TEAM_A, qtype: 'A', le: '+Inf' }, '0+600x40'),
  s(`${H_BASE}_count`, { ...TEAM_A, qtype: 'A' }, '0+600x40'),
  s(`${H_BASE}_sum`, { ...TEAM_A, qtype: 'A' }, '0+3x40'),
  // Drops that are not netfilter's (the resolver had closed its socket) do not count.
  s('dnsrace_dns_query_drops_total', { ...TEAM_A, qtype: 'A', reason: 'no_socket' }, '0+6x40'),
];

/**
 * Conntrack on three nodes: node-1 runs a kernel >= 5.10 (clash_resolve exists) and loses
 * packets; node-2 a kernel < 5.10 whose insert_failed counts resolved clashes only (no
 * drop: nothing lost); node-3 a kernel < 5.10 that drops.
 */
const CONNTRACK: Series[] = [
  s('dnsrace_conntrack_insert_failed_total', NODE1, '0+30x40'),
  s('dnsrace_conntrack_drop_total', NODE1, '0+30x40'),
  s('dnsrace_conntrack_clash_resolve_total', NODE1, '0+600x40'),
  s('dnsrace_conntrack_insert_failed_total', NODE2, '0+600x40'),
  s('dnsrace_conntrack_drop_total', NODE2, '0x40'),
  s('dnsrace_conntrack_insert_failed_total', NODE3, '0+12x40'),
  s('dnsrace_conntrack_drop_total', NODE3, '0+12x40'),
  buildInfo(NODE1, 'worker-1'),
  buildInfo(NODE2, 'worker-2'),
  buildInfo(NODE3, 'worker-3'),
];

const STALL_SIGNATURE =
  'This is the signature of lost queries: the conntrack insert race of parallel A and AAAA lookups, or a netfilter drop.';

export const ALERT_TESTS: AlertTest[] = [
  {
    alert: 'DnsraceDNSTimeouts',
    scenario: '10 % of payments queries time out; team-a 0.5 %, under the threshold',
    input: DNS_TRAFFIC,
    notYet: ['5m'],
    firing: [
      {
        at: '15m',
        alerts: [
          {
            labels: { severity: 'warning', cluster: 'prod', namespace: 'payments' },
            summary: 'DNS queries of namespace payments time out',
            description:
              '10% of the DNS queries that pods in namespace payments sent over the last 5 minutes were never answered (threshold 1%). Caused by a drop on the node: 50% of them (the rest: no answer, cause "unanswered").',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceDNSLatencyHigh',
    scenario: 'payments answers 1 in 6 lookups after ~5 s; team-a answers all within 15.6 ms',
    input: DNS_TRAFFIC,
    notYet: ['10m'],
    firing: [
      {
        at: '20m',
        alerts: [
          {
            labels: {
              severity: 'warning',
              cluster: 'prod',
              namespace: 'payments',
              quantile: '0.99',
            },
            summary: 'p99 DNS latency of namespace payments is 5.557s',
            description:
              'The 99th percentile of DNS lookup latency (first send to answer) seen by pods in namespace payments has stayed above 1s. A p99 near 5 s, 10 s or 15 s means resolver timeouts (DnsraceDNSStalls); a p99 spread between 1 s and 5 s points at slow DNS servers or upstreams.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceDNSStalls',
    scenario: 'payments: 10 answers a minute after 4 s and 5 re-sends; team-a: none',
    input: DNS_TRAFFIC,
    notYet: ['5m'],
    firing: [
      {
        at: '15m',
        alerts: [
          {
            labels: { severity: 'warning', cluster: 'prod', namespace: 'payments' },
            summary: 'Pods in namespace payments stall on DNS for 5 s at a time',
            description: `Pods in namespace payments keep waiting out resolver timeouts. In the last 5 minutes about 50 answers came after more than 4 s and 25 queries were re-sent. ${STALL_SIGNATURE}`,
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceDNSQueriesDropped',
    scenario: 'payments AAAA queries dropped by netfilter; team-a only no_socket drops',
    input: DNS_TRAFFIC,
    notYet: ['4m'],
    firing: [
      {
        at: '10m',
        alerts: [
          {
            labels: { severity: 'warning', cluster: 'prod', namespace: 'payments' },
            summary: 'The nodes drop DNS queries of namespace payments',
            description:
              'Netfilter on the nodes dropped 0.1 DNS queries per second sent by pods in namespace payments over the last 5 minutes (reasons netfilter_drop and conntrack_insert_failed). Each dropped query costs its lookup a resolver timeout.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceConntrackInsertFailed',
    scenario:
      'node-1 (>= 5.10) and node-3 (< 5.10, drop) lose packets; node-2 (< 5.10) counts only resolved clashes',
    input: CONNTRACK,
    notYet: ['5m'],
    firing: [
      {
        at: '15m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-1:9853' },
            summary: 'Conntrack drops packets on node worker-1',
            description:
              'Conntrack on node worker-1 lost 0.5 packets per second over the last 5 minutes (insert_failed on kernels >= 5.10, drop on older ones; docs/conntrack.md). Clashes the kernel absorbed without loss (clash_resolve): 10/s. When DNS timeouts rise with it, the insert race of parallel A and AAAA queries is stalling lookups.',
          },
          {
            labels: { severity: 'warning', instance: 'node-3:9853' },
            summary: 'Conntrack drops packets on node worker-3',
            description:
              'Conntrack on node worker-3 lost 0.2 packets per second over the last 5 minutes (insert_failed on kernels >= 5.10, drop on older ones; docs/conntrack.md). Clashes the kernel absorbed without loss (clash_resolve): not counted by this kernel (< 5.10). When DNS timeouts rise with it, the insert race of parallel A and AAAA queries is stalling lookups.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceConntrackTableNearlyFull',
    scenario: 'node-1 at 95 % of nf_conntrack_max, node-2 at 50 %',
    input: [
      s('dnsrace_conntrack_entries', NODE1, '95000x20'),
      s('dnsrace_conntrack_max', NODE1, '100000x20'),
      s('dnsrace_conntrack_entries', NODE2, '50000x20'),
      s('dnsrace_conntrack_max', NODE2, '100000x20'),
      buildInfo(NODE1, 'worker-1'),
    ],
    notYet: ['4m'],
    firing: [
      {
        at: '6m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-1:9853' },
            summary: 'The conntrack table of node worker-1 is 95% full',
            description:
              'Node worker-1 tracks more than 90% of nf_conntrack_max connections. When it is full, conntrack evicts unreplied entries (early_drop, which can lose DNS answers) and then drops new flows.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceExporterDown',
    scenario: 'node-2 cannot be scraped, node-1 can',
    input: [s('up', NODE1, '1x20'), s('up', NODE2, '0x20')],
    notYet: ['4m'],
    firing: [
      {
        at: '6m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-2:9853', job: 'dnsrace' },
            summary: 'The dnsrace exporter node-2:9853 is down',
            description:
              'Prometheus cannot scrape the dnsrace exporter at node-2:9853 (job dnsrace): DNS stalls on its node go unseen.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceExporterDown',
    scenario: 'no target in the job at all (absent)',
    input: [s('up', { instance: 'other:9100', job: 'node-exporter' }, '1x20')],
    notYet: ['4m'],
    firing: [
      {
        at: '6m',
        alerts: [
          {
            labels: { severity: 'warning', job: 'dnsrace' },
            summary: 'No dnsrace exporter is scraped',
            description:
              'Prometheus has no target in job dnsrace: DNS stalls go unseen on every node.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceProgramsNotAttached',
    scenario: 'node-2 detaches its programs at 2m; node-1 stays attached',
    input: [
      s('dnsrace_bpf_programs_attached', NODE1, '1x20'),
      s('dnsrace_bpf_programs_attached', NODE2, '1 1 0x18'),
      buildInfo(NODE2, 'worker-2'),
    ],
    notYet: ['6m'],
    firing: [
      {
        at: '8m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-2:9853', job: 'dnsrace' },
            summary: "dnsrace's DNS programs are not attached on node worker-2",
            description:
              "The exporter on node worker-2 runs but its BPF programs are not attached to the pods' cgroup: it counts no lookups. Its log says why.",
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceBPFMapFull',
    scenario: 'inserts into dns_pending start failing at 6m on node-1',
    input: [
      s(
        'dnsrace_bpf_map_overflows_total',
        { ...NODE1, map: 'dns_pending' },
        '0 0 0 0 0 0 10+10x14',
      ),
      s('dnsrace_bpf_map_entries', { ...NODE1, map: 'dns_pending' }, '100x20'),
      s('dnsrace_bpf_map_max_entries', { ...NODE1, map: 'dns_pending' }, '1000x20'),
      buildInfo(NODE1, 'worker-1'),
    ],
    notYet: ['10m'],
    firing: [
      {
        at: '12m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-1:9853', map: 'dns_pending' },
            summary: 'BPF map dns_pending is full on node worker-1',
            description:
              'The exporter on node worker-1 cannot track everything: map dns_pending is 10% full and 50 inserts failed in the last 5 minutes. Queries that do not fit in dns_pending are neither paired nor timed out; rows that do not fit in dns_stats are not counted.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceBPFMapFull',
    scenario: 'dns_stats 95 % full on node-2; the LRU map dns_client_addrs full is normal',
    input: [
      s('dnsrace_bpf_map_overflows_total', { ...NODE2, map: 'dns_stats' }, '0x20'),
      s('dnsrace_bpf_map_entries', { ...NODE2, map: 'dns_stats' }, '950x20'),
      s('dnsrace_bpf_map_max_entries', { ...NODE2, map: 'dns_stats' }, '1000x20'),
      s('dnsrace_bpf_map_entries', { ...NODE2, map: 'dns_client_addrs' }, '1000x20'),
      s('dnsrace_bpf_map_max_entries', { ...NODE2, map: 'dns_client_addrs' }, '1000x20'),
      buildInfo(NODE2, 'worker-2'),
    ],
    notYet: ['4m'],
    firing: [
      {
        at: '6m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-2:9853', map: 'dns_stats' },
            summary: 'BPF map dns_stats is full on node worker-2',
            description:
              'The exporter on node worker-2 cannot track everything: map dns_stats is 95% full and 0 inserts failed in the last 5 minutes. Queries that do not fit in dns_pending are neither paired nor timed out; rows that do not fit in dns_stats are not counted.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsracePodDNSFlood',
    scenario: 'a pod on node-1 goes over its share of dns_pending from 2m; node-2 stays at 0',
    input: [
      s('dnsrace_bpf_pending_share_exceeded_total', NODE1, '0 0 100+100x18'),
      s('dnsrace_bpf_pending_share_exceeded_total', NODE2, '0x20'),
      buildInfo(NODE1, 'worker-1'),
      buildInfo(NODE2, 'worker-2'),
    ],
    notYet: ['6m'],
    firing: [
      {
        at: '8m',
        alerts: [
          {
            labels: { severity: 'warning', instance: 'node-1:9853' },
            summary: 'A pod floods DNS without answers on node worker-1',
            description:
              'On node worker-1 a pod has an eighth of dns_pending awaiting answers: 500 of its queries in the last 5 minutes were counted but not tracked (no latency, no timeout). The other pods are still tracked. Usually a client re-sends to a DNS server that does not answer: topk(5, rate(dnsrace_dns_pod_queries_total[1m])) on that node names it.',
          },
        ],
      },
    ],
  },
  {
    alert: 'DnsraceIdentitySourceDegraded',
    scenario: 'kube-api goes from connected to degraded at 2m; pod-log-dir stays connected',
    input: [
      // One series per source, for its current state only (value 1).
      s(
        'dnsrace_identity_source',
        { ...NODE1, source: 'kube-api', state: 'connected' },
        '1 1 _x18',
      ),
      s('dnsrace_identity_source', { ...NODE1, source: 'kube-api', state: 'degraded' }, '_ _ 1x18'),
      s('dnsrace_identity_source', { ...NODE1, source: 'pod-log-dir', state: 'connected' }, '1x20'),
      buildInfo(NODE1, 'worker-1'),
    ],
    notYet: ['16m'],
    firing: [
      {
        at: '18m',
        alerts: [
          {
            labels: { severity: 'info', instance: 'node-1:9853', source: 'kube-api' },
            summary: 'Pod identity source kube-api is degraded on node worker-1',
            description:
              'The exporter on node worker-1 cannot use its pod identity source kube-api. Pods it has not named yet are counted in namespace _unknown (pod _uid-<uid>) until another source names them.',
          },
        ],
      },
    ],
  },
];

export const EXPR_TESTS: ExprTest[] = [
  {
    scenario: 'conntrack drops that cost packets, per kernel generation',
    input: CONNTRACK,
    checks: [
      {
        expr: 'instance:dnsrace_conntrack_stall_drops:rate5m',
        at: '15m',
        samples: [
          {
            labels: 'instance:dnsrace_conntrack_stall_drops:rate5m{instance="node-1:9853"}',
            value: 0.5,
          },
          {
            labels: 'instance:dnsrace_conntrack_stall_drops:rate5m{instance="node-2:9853"}',
            value: 0,
          },
          {
            labels: 'instance:dnsrace_conntrack_stall_drops:rate5m{instance="node-3:9853"}',
            value: 0.2,
          },
        ],
      },
    ],
  },
  {
    scenario: 'per-namespace rates and stalls from classic histograms',
    input: DNS_TRAFFIC,
    checks: [
      {
        // Per minute, rounded: rates of 1/6 carry float noise that promtool compares exactly.
        expr: 'round(namespace:dnsrace_dns_slow_answers:rate5m * 60, 0.001)',
        at: '15m',
        samples: [
          { labels: '{cluster="prod", namespace="payments"}', value: 10 },
          { labels: '{cluster="prod", namespace="team-a"}', value: 0 },
        ],
      },
      {
        expr: 'namespace:dnsrace_dns_query_duration_seconds_count:rate5m',
        at: '15m',
        samples: [
          {
            labels:
              'namespace:dnsrace_dns_query_duration_seconds_count:rate5m{cluster="prod", namespace="payments"}',
            value: 1,
          },
          {
            labels:
              'namespace:dnsrace_dns_query_duration_seconds_count:rate5m{cluster="prod", namespace="team-a"}',
            value: 10,
          },
        ],
      },
      {
        expr: 'namespace:dnsrace_dns_timeouts_per_query:ratio_rate5m',
        at: '15m',
        samples: [
          {
            labels:
              'namespace:dnsrace_dns_timeouts_per_query:ratio_rate5m{cluster="prod", namespace="payments"}',
            value: 0.1,
          },
          {
            labels:
              'namespace:dnsrace_dns_timeouts_per_query:ratio_rate5m{cluster="prod", namespace="team-a"}',
            value: 0.005,
          },
        ],
      },
      {
        // p50 of payments: 0.5 of 1/s lies in the first bucket, holding 5/6 of the answers.
        expr: 'namespace_quantile:dnsrace_dns_query_duration_seconds:histogram_quantile{quantile="0.5", namespace="payments"}',
        at: '15m',
        samples: [
          {
            labels:
              'namespace_quantile:dnsrace_dns_query_duration_seconds:histogram_quantile{cluster="prod", namespace="payments", quantile="0.5"}',
            value: 0.015625 * 0.6,
          },
        ],
      },
    ],
  },
];

const runbook = (alert: string) => `${DEFAULT_RULES_CONFIG.runbookBaseUrl}/${alert}.md`;

function alertGroup(t: AlertTest): YamlValue {
  return {
    name: `${t.alert}: ${t.scenario}`,
    interval: '1m',
    input_series: t.input as unknown as YamlValue,
    alert_rule_test: [
      ...t.notYet.map((at) => ({ eval_time: at, alertname: t.alert, exp_alerts: [] })),
      ...t.firing.map((f) => ({
        eval_time: f.at,
        alertname: t.alert,
        exp_alerts: f.alerts.map((a) => ({
          exp_labels: a.labels,
          exp_annotations: {
            summary: a.summary,
            description: a.description,
            runbook_url: runbook(t.alert),
          },
        })),
      })),
    ],
  };
}

function exprGroup(t: ExprTest): YamlValue {
  return {
    name: t.scenario,
    interval: '1m',
    input_series: t.input as unknown as YamlValue,
    promql_expr_test: t.checks.map((c) => ({
      expr: c.expr,
      eval_time: c.at,
      exp_samples: c.samples as unknown as YamlValue,
    })),
  };
}

const NOTE =
  'Generated by `npx tsx dashboards/generate.ts` from dashboards/rules/promtool-tests.ts: do not edit.\nRun: promtool test rules deploy/prometheus/tests/*.yaml';

export const PROMTOOL_TEST_FILES = {
  alerts: 'dnsrace-alerts.test.yaml',
  recording: 'dnsrace-recording-rules.test.yaml',
} as const;

export function promtoolTestFiles(): { file: string; yaml: string }[] {
  const ruleFiles = [RULE_FILES.recording, RULE_FILES.alerts].map((f) => `../rules/${f}`);
  const file = (tests: YamlValue[]) =>
    toYaml({ rule_files: ruleFiles, evaluation_interval: '1m', tests }, NOTE);
  return [
    { file: PROMTOOL_TEST_FILES.alerts, yaml: file(ALERT_TESTS.map(alertGroup)) },
    { file: PROMTOOL_TEST_FILES.recording, yaml: file(EXPR_TESTS.map(exprGroup)) },
  ];
}
