// Small statistics for load tests: medians, percentiles, and the "no upward trend" check
// of the soak (the last third of a series against its first third).

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const pos = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[pos]!;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export interface Trend {
  firstMedian: number;
  lastMedian: number;
  /** lastMedian - firstMedian */
  growth: number;
  /** growth / firstMedian (0 when the first third is 0 and nothing grew). */
  ratio: number;
}

/** Medians of the first and the last third of a time series (at least 3 points). */
export function thirdsTrend(values: readonly number[]): Trend {
  if (values.length < 3) throw new Error(`a trend needs at least 3 samples, got ${values.length}`);
  const third = Math.floor(values.length / 3);
  const firstMedian = median(values.slice(0, third));
  const lastMedian = median(values.slice(values.length - third));
  const growth = lastMedian - firstMedian;
  return {
    firstMedian,
    lastMedian,
    growth,
    ratio: firstMedian === 0 ? (growth === 0 ? 0 : Infinity) : growth / firstMedian,
  };
}

/**
 * True when the series shows no leak: the last third's median exceeds the first third's by
 * at most `relative` of it plus `absolute` (the absolute part absorbs noise of small series).
 */
export function withinTrend(t: Trend, relative: number, absolute: number): boolean {
  return t.lastMedian <= t.firstMedian * (1 + relative) + absolute;
}
