// Everything the generator writes, rendered in memory: the dashboards' JSON, the rule files
// and the promtool tests. The staleness test renders the same and compares.
import { format, resolveConfig } from 'prettier';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { namespaceDashboard } from './namespace.js';
import { overviewDashboard } from './overview.js';
import { podDashboard } from './pod.js';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from './rules/config.js';
import { alertRulesYaml, recordingRulesYaml, RULE_FILES } from './rules/index.js';
import { promtoolTestFiles } from './rules/promtool-tests.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Directories the generator owns: every file in them is generated. */
export const GENERATED_DIRS = {
  dashboards: 'dashboards/generated',
  rules: 'deploy/prometheus/rules',
  tests: 'deploy/prometheus/tests',
} as const;

export interface RenderedFile {
  /** Relative to the output root (the repository by default). */
  path: string;
  content: string;
}

export function dashboards() {
  return [overviewDashboard(), namespaceDashboard(), podDashboard()];
}

async function prettierYaml(file: string, text: string): Promise<string> {
  const options = (await resolveConfig(path.join(REPO_ROOT, file))) ?? {};
  return format(text, { ...options, filepath: file });
}

export async function renderAll(c: RulesConfig = DEFAULT_RULES_CONFIG): Promise<RenderedFile[]> {
  const out: RenderedFile[] = dashboards().map((d) => ({
    path: `${GENERATED_DIRS.dashboards}/${d.uid}.json`,
    content: `${JSON.stringify(d, null, 2)}\n`,
  }));
  const yaml: RenderedFile[] = [
    { path: `${GENERATED_DIRS.rules}/${RULE_FILES.recording}`, content: recordingRulesYaml() },
    { path: `${GENERATED_DIRS.rules}/${RULE_FILES.alerts}`, content: alertRulesYaml(c) },
    ...promtoolTestFiles().map((t) => ({
      path: `${GENERATED_DIRS.tests}/${t.file}`,
      content: t.yaml,
    })),
  ];
  for (const f of yaml) out.push({ path: f.path, content: await prettierYaml(f.path, f.content) });
  return out;
}
