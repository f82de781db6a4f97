// The generated rules through Prometheus's own promtool: `check rules`, and `test rules`
// with a "not yet" and a "firing" case per alert. Variants of the rules prove that the
// cases bite: with `for` far longer every firing case fails, with `for: 0s` every
// "not yet" case fails (so the condition already holds there).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GENERATED_DIRS, REPO_ROOT } from '../../dashboards/render.js';
import { alertRules } from '../../dashboards/rules/alerts.js';
import { DEFAULT_RULES_CONFIG, type RulesConfig } from '../../dashboards/rules/config.js';
import { alertRulesYaml, recordingRulesYaml, RULE_FILES } from '../../dashboards/rules/index.js';
import { recordingRules } from '../../dashboards/rules/recording.js';
import {
  ALERT_TESTS,
  PROMTOOL_TEST_FILES,
  promtoolTestFiles,
} from '../../dashboards/rules/promtool-tests.js';

const PROMTOOL = '/usr/bin/promtool';
const rulesDir = path.join(REPO_ROOT, GENERATED_DIRS.rules);
const testsDir = path.join(REPO_ROOT, GENERATED_DIRS.tests);

function requirePromtool(): void {
  if (!existsSync(PROMTOOL))
    throw new Error(
      `${PROMTOOL} not found: install Prometheus's promtool (Debian: apt-get install prometheus)`,
    );
}

async function promtool(args: string[], cwd: string) {
  requirePromtool();
  return execa(PROMTOOL, args, { cwd, reject: false, all: true });
}

/** A copy of rules/ and tests/ with the alert rules built from `c`. */
async function variant(root: string, c: RulesConfig): Promise<string> {
  await mkdir(path.join(root, 'rules'), { recursive: true });
  await mkdir(path.join(root, 'tests'), { recursive: true });
  await writeFile(path.join(root, 'rules', RULE_FILES.recording), recordingRulesYaml());
  await writeFile(path.join(root, 'rules', RULE_FILES.alerts), alertRulesYaml(c));
  for (const t of promtoolTestFiles()) await writeFile(path.join(root, 'tests', t.file), t.yaml);
  return path.join(root, 'tests');
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'dnsrace-promtool-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const ALERTS = alertRules(DEFAULT_RULES_CONFIG).map((a) => a.alert);

describe('rules under promtool', () => {
  it('pass `promtool check rules`', async () => {
    const r = await promtool(['check', 'rules', RULE_FILES.recording, RULE_FILES.alerts], rulesDir);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toContain(`SUCCESS: ${recordingRules().length} rules found`);
    expect(r.all).toContain(`SUCCESS: ${ALERTS.length} rules found`);
  });

  it('pass `promtool test rules`', async () => {
    const r = await promtool(
      ['test', 'rules', PROMTOOL_TEST_FILES.alerts, PROMTOOL_TEST_FILES.recording],
      testsDir,
    );
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all!.match(/SUCCESS/g)).toHaveLength(2);
  });

  it.each(ALERTS)('%s has a "not yet" and a "firing" case', (alert) => {
    const tests = ALERT_TESTS.filter((t) => t.alert === alert);
    expect(tests.flatMap((t) => t.notYet).length).toBeGreaterThan(0);
    expect(
      tests.flatMap((t) => t.firing.filter((f) => f.alerts.length > 0)).length,
    ).toBeGreaterThan(0);
  });

  it('fail every firing case when `for` is far longer', async () => {
    const dir = await variant(path.join(tmp, 'long-for'), {
      ...DEFAULT_RULES_CONFIG,
      forOverride: '2h',
    });
    const r = await promtool(['test', 'rules', PROMTOOL_TEST_FILES.alerts], dir);
    expect(r.exitCode).not.toBe(0);
    for (const t of ALERT_TESTS) {
      expect(r.all).toContain(`name: ${t.alert}: ${t.scenario},`);
      for (const f of t.firing)
        expect(r.all, `${t.alert} at ${f.at} should have failed`).toContain(
          `alertname: ${t.alert}, time: ${f.at},`,
        );
    }
  });

  it('fail every "not yet" case when `for` is 0s: the condition already holds there', async () => {
    const dir = await variant(path.join(tmp, 'no-for'), {
      ...DEFAULT_RULES_CONFIG,
      forOverride: '0s',
    });
    const r = await promtool(['test', 'rules', PROMTOOL_TEST_FILES.alerts], dir);
    expect(r.exitCode).not.toBe(0);
    for (const t of ALERT_TESTS) {
      expect(r.all).toContain(`name: ${t.alert}: ${t.scenario},`);
      for (const at of t.notYet)
        expect(r.all, `${t.alert} at ${at} should have failed`).toContain(
          `alertname: ${t.alert}, time: ${at},`,
        );
    }
  });
});
