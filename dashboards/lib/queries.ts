// Reading the queries back out of generated dashboard JSON, and filling in template
// variables the way Grafana would, so that tests can run every panel against Prometheus.

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
}

interface JsonPanel {
  type?: string;
  title?: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: JsonPanel[];
}

/** Every Prometheus expression of every panel (rows' nested panels included). */
export function panelQueries(d: { uid?: string; panels?: unknown[] }): PanelQuery[] {
  const out: PanelQuery[] = [];
  const walk = (panels: JsonPanel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? [])
        if (t.expr !== undefined)
          out.push({
            dashboard: d.uid ?? '',
            panel: p.title ?? '',
            refId: t.refId ?? '',
            expr: t.expr,
          });
      if (p.panels) walk(p.panels);
    }
  };
  walk((d.panels ?? []) as JsonPanel[]);
  return out;
}

/** `$name` and `${name}` (optionally `${name:format}`) references in an expression. */
export function variableReferences(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g)) names.add((m[1] ?? m[2])!);
  return [...names];
}

/** Replaces every variable reference; throws on one without a value. */
export function fillVariables(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (ref, braced?: string, bare?: string) => {
    const name = (braced ?? bare)!;
    const v = values[name];
    if (v === undefined) throw new Error(`no value for ${ref} in: ${expr}`);
    return v;
  });
}

export interface VariableQuery {
  dashboard: string;
  name: string;
  /** PromQL that returns what Grafana lists: label_values(m, l) -> group by (l) (m). */
  promql: string;
  /** The label whose values are the options (label_values), or undefined (query_result). */
  label?: string;
  /** Grafana's /regex/ on the options, with named groups text and value. */
  regex?: string;
}

/** Every Prometheus query variable of a dashboard, as PromQL. */
export function variableQueries(d: {
  uid?: string;
  templating?: { list?: { name: string; type: string; query?: unknown; regex?: string }[] };
}): VariableQuery[] {
  const out: VariableQuery[] = [];
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query' || typeof v.query !== 'string') continue;
    const base = { dashboard: d.uid ?? '', name: v.name, ...(v.regex && { regex: v.regex }) };
    const lv = /^label_values\((.*),\s*(\w+)\)$/s.exec(v.query);
    const qr = /^query_result\((.*)\)$/s.exec(v.query);
    if (lv) out.push({ ...base, promql: `group by (${lv[2]}) (${lv[1]})`, label: lv[2] });
    else if (qr) out.push({ ...base, promql: qr[1]! });
    else throw new Error(`variable ${v.name} of ${d.uid}: unknown query form ${v.query}`);
  }
  return out;
}

/** A query_result() option line as Grafana renders it: name{l="v",...} value timestamp-ms. */
export function queryResultLine(metric: Record<string, string>, value: [number, string]): string {
  const labels = Object.entries(metric)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return `${metric.__name__ ?? ''}{${labels}} ${value[1]} ${value[0] * 1000}`;
}
