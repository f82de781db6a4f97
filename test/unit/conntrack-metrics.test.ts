// Metric families from one conntrack reading: only counters the kernel reports, the gauges,
// and the availability gauge with its source label; rendered through the real text encoder.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  availabilityLogLine,
  CONNTRACK_METRIC,
  conntrackFamilies,
  parseProcStat,
  type ConntrackReading,
  type ConntrackSample,
} from '../../src/conntrack/index.js';
import type { ScalarFamily } from '../../src/exposition/model.js';
import { renderText } from '../../src/exposition/prom-text.js';
import { METRIC } from '../../src/metrics/names.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/conntrack/${name}`, import.meta.url), 'utf8');

const sample = (file: string, extra: Partial<ConntrackSample> = {}): ConntrackSample => ({
  source: 'procfs',
  ...parseProcStat(fixture(file)),
  max: 262144,
  ...extra,
});

const byName = (
  fams: ScalarFamily[],
): Record<string, { type: string; value: number; labels: object }> =>
  Object.fromEntries(
    fams.map((f) => [
      f.name,
      { type: f.type, value: f.samples[0]!.value, labels: f.samples[0]!.labels },
    ]),
  );

describe('conntrackFamilies', () => {
  it('6.18 after the race: every proposed family, one unlabelled sample each', () => {
    const fams = conntrackFamilies(sample('proc-6.18-lab-node-after-race.txt'));
    expect(fams.every((f) => f.samples.length === 1)).toBe(true);
    expect(byName(fams)).toEqual({
      [CONNTRACK_METRIC.insertFailed]: { type: 'counter', value: 0, labels: {} },
      [CONNTRACK_METRIC.drop]: { type: 'counter', value: 0, labels: {} },
      [CONNTRACK_METRIC.earlyDrop]: { type: 'counter', value: 0, labels: {} },
      [CONNTRACK_METRIC.clashResolve]: { type: 'counter', value: 290, labels: {} },
      [CONNTRACK_METRIC.searchRestart]: { type: 'counter', value: 0, labels: {} },
      [CONNTRACK_METRIC.chainTooLong]: { type: 'counter', value: 0, labels: {} },
      [CONNTRACK_METRIC.entries]: { type: 'gauge', value: 733, labels: {} },
      [CONNTRACK_METRIC.max]: { type: 'gauge', value: 262144, labels: {} },
      [CONNTRACK_METRIC.statsAvailable]: { type: 'gauge', value: 1, labels: { source: 'procfs' } },
    });
  });

  it.each([
    [
      '4.19/5.4: no clash_resolve, no chaintoolong',
      'proc-4.19-5.4-handwritten.txt',
      [CONNTRACK_METRIC.clashResolve, CONNTRACK_METRIC.chainTooLong],
    ],
    [
      '5.10: clash_resolve but no chaintoolong',
      'proc-5.10-handwritten.txt',
      [CONNTRACK_METRIC.chainTooLong],
    ],
    [
      'no search_restart column',
      'proc-no-search-restart-handwritten.txt',
      [
        CONNTRACK_METRIC.clashResolve,
        CONNTRACK_METRIC.chainTooLong,
        CONNTRACK_METRIC.searchRestart,
      ],
    ],
  ])('%s: those families are left out, not zero', (_t, file, absent) => {
    const names = conntrackFamilies(sample(file)).map((f) => f.name);
    for (const a of absent) expect(names).not.toContain(a);
    expect(names).toContain(CONNTRACK_METRIC.insertFailed);
    expect(names).toContain(CONNTRACK_METRIC.drop);
  });

  it('leaves out the gauges it has no number for, and labels the source', () => {
    const s: ConntrackSample = { source: 'netlink', counters: { drop: 1 }, cpus: 1 };
    expect(byName(conntrackFamilies(s))).toEqual({
      [CONNTRACK_METRIC.drop]: { type: 'counter', value: 1, labels: {} },
      [CONNTRACK_METRIC.statsAvailable]: { type: 'gauge', value: 1, labels: { source: 'netlink' } },
    });
  });

  it('unavailable: only the availability gauge, 0 with source="none"', () => {
    const r: ConntrackReading = { source: 'none', reason: 'no-source', message: 'x' };
    expect(byName(conntrackFamilies(r))).toEqual({
      [CONNTRACK_METRIC.statsAvailable]: { type: 'gauge', value: 0, labels: { source: 'none' } },
    });
  });

  it('renders as Prometheus text with HELP, TYPE and the value', async () => {
    const text = await renderText(
      conntrackFamilies(sample('proc-6.18-lab-node-after-race.txt')),
      'prometheus',
    );
    expect(text).toContain('# TYPE dnsrace_conntrack_clash_resolve_total counter');
    expect(text).toMatch(/^dnsrace_conntrack_clash_resolve_total 290$/m);
    expect(text).toMatch(/^dnsrace_conntrack_stats_available\{source="procfs"\} 1$/m);
    expect(text).toMatch(/^dnsrace_conntrack_entries 733$/m);
  });

  it('names follow the conventions and do not collide with the existing contract', () => {
    const existing = new Set<string>(Object.values(METRIC));
    for (const f of conntrackFamilies(sample('proc-6.18-lab-node-after-race.txt'))) {
      expect(f.name).toMatch(/^dnsrace_conntrack_[a-z_]+$/);
      expect(f.name.endsWith('_total')).toBe(f.type === 'counter');
      expect(existing.has(f.name)).toBe(false);
      expect(f.help.length).toBeGreaterThan(20);
    }
  });
});

describe('availabilityLogLine', () => {
  const procfs = sample('proc-6.18-root-netns.txt');
  const noTool: ConntrackReading = {
    source: 'none',
    reason: 'no-source',
    message: '/proc/net/stat/nf_conntrack does not exist ... install conntrack-tools',
  };
  const notLoaded: ConntrackReading = {
    source: 'none',
    reason: 'not-loaded',
    message: 'nf_conntrack is not loaded',
  };

  it.each<[string, ConntrackReading | undefined, ConntrackReading, string | undefined]>([
    ['first reading, available', undefined, procfs, 'info'],
    ['same source again', procfs, { ...procfs, counters: { drop: 9 } }, undefined],
    ['source lost', procfs, noTool, 'warn'],
    ['still lost, same reason', noTool, { ...noTool, message: 'other text' }, undefined],
    ['no conntrack on the node is not a fault', undefined, notLoaded, 'info'],
    ['reason changed', notLoaded, noTool, 'warn'],
    ['back again', noTool, procfs, 'info'],
  ])('%s', (_t, prev, next, level) => {
    expect(availabilityLogLine(prev, next)?.level).toBe(level);
  });

  it('the warning carries the message that says what to do', () => {
    expect(availabilityLogLine(undefined, noTool)?.msg).toContain('install conntrack-tools');
  });
});
