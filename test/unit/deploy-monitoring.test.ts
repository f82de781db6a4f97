// The monitoring component carries exactly what other parts of the repository test: the
// PrometheusRule holds the groups of deploy/prometheus/rules/*.yaml (promtool-tested), the
// ConfigMaps hold dashboards/generated/*.json byte for byte, and the generated files are
// fresh (scripts/generate-deploy.ts).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  DASHBOARDS_DIR,
  dashboardConfigMapName,
  groupsBlock,
  literalBlock,
  RULES_DIR,
  staleFiles,
} from '../../scripts/generate-deploy.js';
import { kustomizeBuild, ROOT, type K8sObject } from './deploy-kustomize.js';

const objs = kustomizeBuild('overlays/least-privilege');

describe('PrometheusRule', () => {
  const rule = objs.find((o) => o.kind === 'PrometheusRule') as K8sObject & {
    spec: { groups: { name: string; rules: object[] }[] };
  };
  const ruleFiles = readdirSync(path.join(ROOT, RULES_DIR))
    .filter((n) => n.endsWith('.yaml'))
    .sort();

  it('holds exactly the groups of the tested rule files, in file order', () => {
    const tested = ruleFiles.flatMap(
      (f) =>
        (parse(readFileSync(path.join(ROOT, RULES_DIR, f), 'utf8')) as { groups: object[] }).groups,
    );
    expect(tested.length).toBeGreaterThan(0);
    expect(rule.spec.groups).toEqual(tested);
  });

  it('has every alert and recording rule the files have, none more', () => {
    const names = (groups: { rules: { alert?: string; record?: string }[] }[]) =>
      groups.flatMap((g) => g.rules.map((r) => r.alert ?? r.record)).sort();
    const fromFiles = ruleFiles.flatMap(
      (f) =>
        (
          parse(readFileSync(path.join(ROOT, RULES_DIR, f), 'utf8')) as {
            groups: { rules: { alert?: string; record?: string }[] }[];
          }
        ).groups,
    );
    expect(names(rule.spec.groups as never)).toEqual(names(fromFiles));
  });
});

describe('Grafana dashboards', () => {
  const dashboards = readdirSync(path.join(ROOT, DASHBOARDS_DIR)).filter((n) =>
    n.endsWith('.json'),
  );
  const configMaps = objs.filter((o) => o.kind === 'ConfigMap') as (K8sObject & {
    data: Record<string, string>;
  })[];

  it('one ConfigMap per generated dashboard, labelled for the Grafana sidecar', () => {
    expect(configMaps.map((c) => c.metadata.name).sort()).toEqual(
      dashboards.map(dashboardConfigMapName).sort(),
    );
    for (const c of configMaps) expect(c.metadata.labels?.grafana_dashboard).toBe('1');
  });

  it.each(dashboards)('%s byte for byte, with its fixed uid', (file) => {
    const cm = configMaps.find((c) => c.metadata.name === dashboardConfigMapName(file));
    const text = readFileSync(path.join(ROOT, DASHBOARDS_DIR, file), 'utf8');
    expect(cm?.data[file]).toBe(text);
    expect((JSON.parse(cm!.data[file]!) as { uid: string }).uid).toMatch(/^dnsrace-/);
  });
});

describe('scripts/generate-deploy.ts', () => {
  it('the committed files are fresh (else: npx tsx scripts/generate-deploy.ts)', () => {
    expect(staleFiles(ROOT)).toEqual([]);
  });

  it('re-indents the groups list, block scalars included', () => {
    const text =
      '# c\ngroups:\n  - name: g\n    rules:\n      - expr: |-\n          a\n\n          b\n';
    const block = groupsBlock(text, 'f.yaml', 2);
    expect(block).toBe(
      '    - name: g\n      rules:\n        - expr: |-\n            a\n\n            b\n',
    );
    expect(parse(`groups:\n${block}`)).toEqual(parse(text));
  });

  it.each([
    ['no groups key', 'rules: []\n', /no top-level 'groups:'/],
    [
      'another key after groups',
      'groups:\n  - name: g\nother: 1\n',
      /f\.yaml:3: only the groups list/,
    ],
    ['an empty groups', 'groups:\n', /'groups:' is empty/],
  ])('refuses a rule file with %s', (_what, text, error) => {
    expect(() => groupsBlock(text, 'f.yaml', 2)).toThrow(error);
  });

  it.each([
    ['one trailing newline', '{\n  "a": 1\n}\n'],
    ['none', '{\n  "a": 1\n}'],
    ['two', '{}\n\n'],
    ['an empty line inside', 'a\n\nb\n'],
  ])('a literal block keeps text with %s exactly', (_what, text) => {
    expect(parse(`k: ${literalBlock(text, 2)}`)).toEqual({ k: text });
  });

  it.each([
    ['a tab', 'a\tb\n'],
    ['a leading space', ' a\n'],
  ])('refuses a literal block of text with %s', (_what, text) => {
    expect(() => literalBlock(text, 2)).toThrow(/another YAML style/);
  });

  it.each([
    ['dnsrace-overview.json', 'dnsrace-dashboard-overview'],
    ['dnsrace-pod.json', 'dnsrace-dashboard-pod'],
  ])('names the ConfigMap of %s %s', (file, name) => {
    expect(dashboardConfigMapName(file)).toBe(name);
  });
});

describe('ServiceMonitor', () => {
  it('keeps the exporter’s namespace and pod labels (honorLabels), which every rule and dashboard group by', () => {
    const sm = objs.find((o) => o.kind === 'ServiceMonitor') as K8sObject & {
      spec: { endpoints: { honorLabels?: boolean }[] };
    };
    expect(sm.spec.endpoints.length).toBeGreaterThan(0);
    for (const e of sm.spec.endpoints) expect(e.honorLabels).toBe(true);
  });
});
