// Renders the model with prom-client: Prometheus text 0.0.4 or OpenMetrics, chosen by the
// scrape's Accept header. Each family becomes a prom-client metric whose values come from
// the model, so prom-client does the escaping and formatting.
import { Registry, type RegistryContentType } from 'prom-client';
import { exemplarsPerBucket, usable } from './exemplars.js';
import type { Family } from './model.js';

interface PromValue {
  metricName?: string;
  labels: Record<string, string>;
  value: number;
  /** prom-client writes it after the value, in OpenMetrics only: ` # {labels} value timestamp`. */
  exemplar?: { labelSet: Record<string, string>; value: number; timestamp: number };
}

function formatLe(le: number): string {
  return le === Infinity ? '+Inf' : String(le);
}

function valuesOf(f: Family): PromValue[] {
  if (f.type !== 'histogram')
    return f.samples.map((s) => ({
      labels: s.labels,
      value: s.value,
      ...(f.type === 'counter' &&
        s.exemplar &&
        usable(s.exemplar) && {
          exemplar: {
            labelSet: s.exemplar.labels,
            value: s.exemplar.value,
            timestamp: s.exemplar.timestampSeconds,
          },
        }),
    }));
  const out: PromValue[] = [];
  for (const s of f.samples) {
    const exemplars = exemplarsPerBucket(s);
    s.buckets.forEach((b, i) => {
      const e = exemplars[i];
      out.push({
        metricName: `${f.name}_bucket`,
        labels: { ...s.labels, le: formatLe(b.le) },
        value: b.count,
        ...(e && {
          exemplar: { labelSet: e.labels, value: e.value, timestamp: e.timestampSeconds },
        }),
      });
    });
    out.push({ metricName: `${f.name}_sum`, labels: s.labels, value: s.sum });
    out.push({ metricName: `${f.name}_count`, labels: s.labels, value: s.count });
  }
  return out;
}

/** Adapts one family to prom-client's collector interface (name, help, type, get()). */
function asPromMetric(f: Family) {
  const metric = {
    // prom-client renames counters for OpenMetrics (strips _total) through this field.
    name: f.name,
    help: f.help,
    type: f.type,
    aggregator: 'sum',
    get: async () => ({
      name: metric.name,
      help: f.help,
      type: f.type,
      aggregator: 'sum',
      values: valuesOf(f),
    }),
    reset: () => undefined,
  };
  return metric;
}

export type TextFormat = 'prometheus' | 'openmetrics';

export function contentTypeOf(format: TextFormat): string {
  return format === 'openmetrics'
    ? Registry.OPENMETRICS_CONTENT_TYPE
    : Registry.PROMETHEUS_CONTENT_TYPE;
}

export async function renderText(families: readonly Family[], format: TextFormat): Promise<string> {
  const registry = new Registry<RegistryContentType>();
  registry.setContentType(contentTypeOf(format) as RegistryContentType);
  // prom-client's registry accepts any object with this shape; its typings only name its own classes.
  for (const f of families) registry.registerMetric(asPromMetric(f) as never);
  return registry.metrics();
}
