// What every dashboard and rule must be, checked on the generated objects: fixed uids,
// variables, datasource, scope matchers, metric names that the exporter serves, the
// "native or classic" pattern for every histogram, and alerts with runbooks.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CONNTRACK_METRIC, METRIC } from '../../src/metrics/names.js';
import { dashboards, REPO_ROOT } from '../../dashboards/render.js';
import { EXPORTER_POD_PAGE_PATH, UID } from '../../dashboards/lib/links.js';
import {
  fillVariables,
  panelQueries,
  variableQueries,
  variableReferences,
} from '../../dashboards/lib/queries.js';
import { alertRules } from '../../dashboards/rules/alerts.js';
import { DEFAULT_RULES_CONFIG } from '../../dashboards/rules/config.js';
import { recordingRules } from '../../dashboards/rules/recording.js';

const DASHBOARDS = dashboards();
const ALERTS = alertRules(DEFAULT_RULES_CONFIG);
const RECORDING = recordingRules();

const HISTOGRAMS = [METRIC.dnsQueryDuration, METRIC.dnsServerDuration, METRIC.podQueryDuration];
const KNOWN = new Set<string>([
  ...Object.values(METRIC),
  ...Object.values(CONNTRACK_METRIC),
  ...HISTOGRAMS.flatMap((h) => ['_bucket', '_count', '_sum'].map((s) => `${h}${s}`)),
]);
const GRAFANA_VARIABLES = new Set(['__rate_interval', '__range', '__interval']);

/** dnsrace_* names used as metrics (not inside a recorded name like ns:dnsrace_x:rate5m). */
function metricNames(text: string): string[] {
  return [...text.matchAll(/(?<![:\w])(dnsrace_[a-z0-9_]+)(?![:\w])/g)].map((m) => m[1]!);
}

/** Every dnsrace_* selector with its matchers ('' when it has none). */
function selectors(expr: string): { metric: string; matchers: string }[] {
  return [...expr.matchAll(/(?<![:\w])(dnsrace_[a-z0-9_]+)(?![:\w])(\{[^}]*\})?/g)].map((m) => ({
    metric: m[1]!,
    matchers: m[2] ?? '',
  }));
}

const dashboardExprs = DASHBOARDS.flatMap((d) => panelQueries(d));
const allExprs: { where: string; text: string }[] = [
  ...dashboardExprs.map((q) => ({
    where: `${q.dashboard} / ${q.panel} / ${q.refId}`,
    text: q.expr,
  })),
  ...DASHBOARDS.flatMap((d) =>
    variableQueries(d).map((v) => ({ where: `${d.uid} $${v.name}`, text: v.promql })),
  ),
  ...RECORDING.map((r) => ({ where: r.record, text: r.expr })),
  ...ALERTS.map((a) => ({
    where: a.alert,
    text: [a.expr, a.annotations.summary, a.annotations.description].join('\n'),
  })),
];

describe('dashboards', () => {
  it('have their fixed uids', () => {
    expect(DASHBOARDS.map((d) => d.uid)).toEqual([UID.overview, UID.namespace, UID.pod]);
  });

  it.each(DASHBOARDS.map((d) => [d.uid!, d] as const))(
    '%s: datasource, cluster, node and namespace variables',
    (_uid, d) => {
      const vars = d.templating.list ?? [];
      const ds = vars.find((v) => v.name === 'datasource');
      expect(ds?.type).toBe('datasource');
      expect(ds?.query).toBe('prometheus');
      for (const name of ['cluster', 'node', 'namespace'])
        expect(vars.map((v) => v.name)).toContain(name);
      for (const name of ['cluster', 'node']) {
        const v = vars.find((x) => x.name === name)!;
        expect(v.includeAll && v.allValue).toBe('.*');
      }
    },
  );

  it.each(DASHBOARDS.map((d) => [d.uid!, d] as const))(
    '%s: panels query ${datasource}, with unique ids and refIds',
    (_uid, d) => {
      const ids = (d.panels ?? []).map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of d.panels ?? []) {
        if (p.type === 'row') continue;
        const panel = p as { title: string; datasource?: unknown; targets?: { refId?: string }[] };
        expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
        const refs = (panel.targets ?? []).map((t) => t.refId);
        expect(refs.length, panel.title).toBeGreaterThan(0);
        expect(new Set(refs).size, panel.title).toBe(refs.length);
        for (const r of refs) expect(r, panel.title).toMatch(/^[A-Z]$/);
      }
    },
  );

  it.each(DASHBOARDS.map((d) => [d.uid!, d] as const))(
    '%s: every selector is scoped to the chosen cluster and node, and every variable exists',
    (_uid, d) => {
      const defined = new Set((d.templating.list ?? []).map((v) => v.name));
      for (const q of panelQueries(d)) {
        for (const s of selectors(q.expr)) {
          expect(s.matchers, `${q.panel}: ${s.metric}`).toContain('cluster=~"$cluster"');
          expect(s.matchers, `${q.panel}: ${s.metric}`).toContain('instance=~"$node"');
        }
        for (const v of variableReferences(q.expr))
          expect(defined.has(v) || GRAFANA_VARIABLES.has(v), `${q.panel}: $${v}`).toBe(true);
      }
    },
  );

  it('link the pod dashboard to the exporter page of the pod', () => {
    const json = JSON.stringify(DASHBOARDS.find((d) => d.uid === UID.pod));
    const page = EXPORTER_POD_PAGE_PATH.replace('{namespace}', '').replace('{pod}', '');
    expect(page).toBe('/pods//');
    expect(json).toContain(
      'http://${__field.labels.instance}/pods/${__field.labels.namespace:percentencode}/${__field.labels.pod:percentencode}',
    );
    expect(json).toContain(
      'http://${__data.fields.instance}/pods/${__data.fields.namespace:percentencode}/${__data.fields.pod:percentencode}',
    );
  });
});

describe('queries of dashboards and rules', () => {
  it.each(allExprs.map((e) => [e.where, e.text] as const))(
    '%s: uses only families the exporter serves',
    (where, text) => {
      const names = metricNames(text);
      for (const n of names)
        expect(KNOWN.has(n), `${where}: ${n} is not in src/metrics/names.ts`).toBe(true);
    },
  );

  it.each(allExprs.map((e) => [e.where, e.text] as const))(
    '%s: reads every histogram both ways, native and classic',
    (where, text) => {
      for (const h of HISTOGRAMS) {
        // Recorded names (ns:dnsrace_…:rate5m) contain family names; they do not count.
        const native = new RegExp(`(?<![:\\w])${h}(?![:\\w])`).test(text);
        const classic = new RegExp(`(?<![:\\w])${h}_(bucket|count|sum)(?![:\\w])`).test(text);
        expect(native, `${where}: ${h} native half`).toBe(classic);
      }
    },
  );

  it('alerts read only recorded series that the recording rules define', () => {
    const recorded = new Set(RECORDING.map((r) => r.record));
    for (const a of ALERTS) {
      const text = [a.expr, a.annotations.description, a.annotations.summary].join('\n');
      for (const m of text.matchAll(/\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b/g))
        expect(recorded, `${a.alert}: ${m[0]}`).toContain(m[0]);
    }
  });

  it.each([
    ['sum(rate(x{a="$namespace"}[$__rate_interval]))', ['namespace', '__rate_interval']],
    ['${datasource} ${pod:regex} $node', ['datasource', 'pod', 'node']],
    ['no variables', []],
  ])('finds the variables of %s', (expr, names) => {
    expect(variableReferences(expr)).toEqual(names);
  });

  it.each([
    ['x{ns="$namespace"}[$__range]', 'x{ns="payments"}[2m]'],
    ['x{ns="${namespace}", pod=~"${pod:regex}"}', 'x{ns="payments", pod=~"web-1"}'],
  ])('fills %s', (expr, filled) => {
    expect(fillVariables(expr, { namespace: 'payments', pod: 'web-1', __range: '2m' })).toBe(
      filled,
    );
  });

  it('refuses to leave a variable unfilled', () => {
    expect(() => fillVariables('x{a="$cluster"}', {})).toThrow(/no value for \$cluster/);
  });
});

describe('alerts', () => {
  it.each(ALERTS.map((a) => [a.alert, a] as const))(
    '%s: severity, for, summary, description and runbook',
    (alert, a) => {
      expect(['critical', 'warning', 'info']).toContain(a.labels.severity);
      expect(a.for).toMatch(/^\d+[smh]$/);
      expect(a.annotations.summary.length).toBeGreaterThan(10);
      expect(a.annotations.description.length).toBeGreaterThan(a.annotations.summary.length);
      expect(a.annotations.runbook_url).toBe(`docs/runbooks/${alert}.md`);
      expect(existsSync(path.join(REPO_ROOT, a.annotations.runbook_url))).toBe(true);
    },
  );

  it('have one runbook each, and no runbook without an alert', async () => {
    const files = (await readdir(path.join(REPO_ROOT, 'docs/runbooks'))).filter(
      (f) => f.endsWith('.md') && f !== 'README.md' && f !== 'fixes.md',
    );
    expect(files.sort()).toEqual(ALERTS.map((a) => `${a.alert}.md`).sort());
  });

  it.each(ALERTS.map((a) => [a.alert] as const))(
    '%s: the runbook says what it means, how to confirm it and what fixes it',
    async (alert) => {
      const text = await readFile(path.join(REPO_ROOT, 'docs/runbooks', `${alert}.md`), 'utf8');
      expect(text).toMatch(new RegExp(`^# ${alert}\\b`));
      for (const h of ['## Meaning', '## Confirm', '## Fix']) expect(text, h).toContain(h);
    },
  );

  it('the lab variant changes `for` and nothing else', () => {
    const lab = alertRules({ ...DEFAULT_RULES_CONFIG, forOverride: '10s' });
    expect(lab.map((a) => a.for)).toEqual(ALERTS.map(() => '10s'));
    expect(lab.map((a) => ({ ...a, for: '' }))).toEqual(ALERTS.map((a) => ({ ...a, for: '' })));
  });

  it('take the runbook prefix and the exporter job from the configuration', () => {
    const custom = alertRules({
      runbookBaseUrl: 'https://example.org/rb',
      exporterJob: 'ds/dnsrace',
    });
    expect(custom[0]!.annotations.runbook_url).toBe(
      `https://example.org/rb/${ALERTS[0]!.alert}.md`,
    );
    expect(custom.find((a) => a.alert === 'DnsraceExporterDown')!.expr).toContain(
      'up{job="ds/dnsrace"}',
    );
  });
});
