// Median and spread of repeated measurements (pure).
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error('summarize: no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, min: s[0]!, max: s.at(-1)! };
}

export function fmt(s: Summary, digits = 0): string {
  const f = (x: number) => x.toFixed(digits);
  return `${f(s.median)} (${f(s.min)}-${f(s.max)}, n=${s.n})`;
}
