// PromQL building blocks shared by the dashboards and the Prometheus rules, so that a panel
// and the alert behind it compute the same thing. Pure string functions.
import { CONNTRACK_METRIC, METRIC } from '../../src/metrics/names.js';
import { leSeconds, NAMESPACE_LE_INDICES, POD_LE_INDICES } from '../../src/dns/classic-buckets.js';

/** Label matchers, each written out: `namespace="$namespace"`, `cluster=~".*"`. */
export type Matchers = readonly string[];

/**
 * A node is a scrape target: `instance` (always there, one exporter per node) within
 * `cluster` (an optional target label; absent means ""). Node names for legends come from
 * `dnsrace_build_info{node}` (dashboards/README.md, "Nodes").
 */
export const NODE_KEY = ['cluster', 'instance'] as const;

/**
 * Answers slower than this are "5 s-class stalls": the (4, 5.66] s bucket and above, which
 * holds the answers that came only after a resolver timeout (glibc's default is 5 s, musl's
 * first retry is at 2.5 s but its answers still land above 4 s only after a timeout too).
 * A bucket boundary in both histograms, so the classic count is exact and the native
 * histogram_fraction() does not interpolate.
 */
const STALL_LE_INDEX = 8;
export const STALL_SECONDS = leSeconds(STALL_LE_INDEX);
if (
  !(NAMESPACE_LE_INDICES as readonly number[]).includes(STALL_LE_INDEX) ||
  !(POD_LE_INDICES as readonly number[]).includes(STALL_LE_INDEX)
)
  throw new Error(`the stall boundary ${STALL_SECONDS} s is no longer a classic bucket boundary`);

/**
 * Matches one classic bucket whichever way its bound was written: Prometheus 2.x keeps the
 * text format's `le="4"` but writes `le="4.0"` for a protobuf scrape (OpenMetrics float
 * formatting), and 3.x normalises every format to "4.0".
 */
export function leMatcher(seconds: number): string {
  // "4|4.0": the unescaped dot also matches "4x0", which no bound is.
  return Number.isInteger(seconds) ? `le=~"${seconds}|${seconds}.0"` : `le="${seconds}"`;
}

export function sel(metric: string, m: Matchers = []): string {
  return m.length === 0 ? metric : `${metric}{${m.join(', ')}}`;
}

function sumBy(labels: readonly string[], inner: string): string {
  return labels.length === 0 ? `sum(${inner})` : `sum by (${labels.join(', ')}) (${inner})`;
}

export type RangeFn = 'rate' | 'increase';

/** `sum by (labels) (rate(metric{m}[w]))`. */
export function sumRate(
  metric: string,
  m: Matchers,
  by: readonly string[],
  w: string,
  fn: RangeFn = 'rate',
): string {
  return sumBy(by, `${fn}(${sel(metric, m)}[${w}])`);
}

/**
 * A latency histogram that may be stored as a native histogram (Prometheus with native
 * histograms: no _bucket/_count/_sum series at all) or as a classic one. Every query below
 * is "native or classic" (docs/native-histograms.md): the native result wins where both exist.
 */
export const histogram = {
  quantile(q: number, metric: string, m: Matchers, by: readonly string[], w: string): string {
    return [
      `histogram_quantile(${q}, ${sumRate(metric, m, by, w)})`,
      `or`,
      `histogram_quantile(${q}, ${sumRate(`${metric}_bucket`, m, [...by, 'le'], w)})`,
    ].join('\n');
  },

  /** Answered lookups per second (or in the window, with increase). */
  count(metric: string, m: Matchers, by: readonly string[], w: string, fn: RangeFn = 'rate') {
    return [
      `histogram_count(${sumRate(metric, m, by, w, fn)})`,
      `or`,
      sumRate(`${metric}_count`, m, by, w, fn),
    ].join('\n');
  },

  /**
   * Answers slower than STALL_SECONDS per second (or in the window). NaN where a native
   * histogram had no answers in the window (0 × NaN fraction); `> 0` filters that out.
   */
  slowerThanStall(
    metric: string,
    m: Matchers,
    by: readonly string[],
    w: string,
    fn: RangeFn = 'rate',
  ): string {
    const native = sumRate(metric, m, by, w, fn);
    return [
      `histogram_count(${native}) * histogram_fraction(${STALL_SECONDS}, Inf, ${native})`,
      `or`,
      `(${sumRate(`${metric}_bucket`, [...m, 'le="+Inf"'], by, w, fn)} - ${sumRate(`${metric}_bucket`, [...m, leMatcher(STALL_SECONDS)], by, w, fn)})`,
    ].join('\n');
  },

  /**
   * Heatmap rows: one native histogram, or the classic buckets by `le` when no native one
   * exists (a Prometheus keeping both kinds would otherwise return both).
   */
  heatmap(metric: string, m: Matchers, w: string): string {
    const native = sumRate(metric, m, [], w);
    return [
      native,
      `or`,
      `(${sumRate(`${metric}_bucket`, m, ['le'], w)} unless on () ${native})`,
    ].join('\n');
  },
};

/**
 * Conntrack drops that cost a packet, per node, the same on every kernel
 * (docs/conntrack.md): from 5.10 on (clash_resolve exists) every insert_failed is a lost
 * packet; before, insert_failed also counts resolved clashes and only `drop` is a loss.
 */
export function conntrackStallDrops(m: Matchers, w: string, fn: RangeFn = 'rate'): string {
  const key = NODE_KEY.join(', ');
  const clash = sel(CONNTRACK_METRIC.clashResolve, m);
  return [
    `sum by (${key}) (`,
    `    ${fn}(${sel(CONNTRACK_METRIC.insertFailed, m)}[${w}]) and on (${key}) ${clash}`,
    `  or`,
    `    ${fn}(${sel(CONNTRACK_METRIC.drop, m)}[${w}]) unless on (${key}) ${clash}`,
    `)`,
  ].join('\n');
}

/** Adds the node name (from dnsrace_build_info) to a per-node result, for legends. */
export function withNodeName(perNode: string, m: Matchers): string {
  const key = NODE_KEY.join(', ');
  return `(${perNode})\n* on (${key}) group_left (node) max by (${key}, node) (${sel(METRIC.buildInfo, m)})`;
}
