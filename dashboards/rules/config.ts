// What a deployment may change about the generated rules, in one place. The committed
// files under deploy/prometheus/rules/ use DEFAULT_RULES_CONFIG; generate your own with
// `npx tsx dashboards/generate.ts --out DIR --runbook-base-url URL --job NAME`.

export interface RulesConfig {
  /**
   * Prefix of every alert's runbook_url: `<prefix>/<AlertName>.md`. The default is the
   * repository path of docs/runbooks; point it at where your copy is browsable, e.g.
   * https://github.com/<org>/dnsrace/blob/main/docs/runbooks.
   */
  runbookBaseUrl: string;
  /** The scrape job of the exporters, for `up` (DnsraceExporterDown). */
  exporterJob: string;
  /**
   * Replaces every alert's `for` (a lab or demo variant only: the e2e test uses it to see
   * alerts fire within a few minutes). Never set in the committed rules.
   */
  forOverride?: string;
}

export const DEFAULT_RULES_CONFIG: RulesConfig = {
  runbookBaseUrl: 'docs/runbooks',
  exporterJob: 'dnsrace',
};

/** Alert thresholds, named so that runbooks and tests can quote them. */
export const THRESHOLD = {
  /** Share of a namespace's queries that time out. */
  timeoutRatio: 0.01,
  /** p99 lookup latency of a namespace, seconds. */
  p99Seconds: 1,
  /** Share of the conntrack table in use. */
  conntrackFill: 0.9,
  /** Share of a BPF map in use. */
  bpfMapFill: 0.9,
} as const;
