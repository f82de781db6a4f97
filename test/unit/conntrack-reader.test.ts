// ConntrackReader against real files in a temp dir (injected paths): which source it picks,
// and what it reports when none works. The ctnetlink path with the real conntrack binary is
// covered by test/e2e/conntrack-race.test.ts (it needs CAP_NET_ADMIN).
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConntrackReader,
  isAvailable,
  type ConntrackReaderOptions,
} from '../../src/conntrack/index.js';

let dir: string;
let statFile: string;
let moduleDir: string;
let maxFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dnsrace-conntrack-reader-'));
  statFile = join(dir, 'nf_conntrack');
  moduleDir = join(dir, 'module-nf_conntrack');
  maxFile = join(dir, 'nf_conntrack_max');
  await copyFile(
    new URL('../fixtures/conntrack/proc-6.18-lab-node-after-race.txt', import.meta.url),
    statFile,
  );
  await mkdir(moduleDir);
  await writeFile(maxFile, '262144\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const reader = (o: ConntrackReaderOptions): ConntrackReader =>
  new ConntrackReader({ statFile, moduleDir, maxFiles: [maxFile], ...o });

describe('ConntrackReader', () => {
  it('reads procfs when the stat file exists, with the limit', async () => {
    const r = await reader({}).read();
    expect(r).toEqual({
      source: 'procfs',
      counters: expect.objectContaining({ clash_resolve: 290, insert_failed: 0, drop: 0 }),
      entries: 733,
      cpus: 2,
      max: 262144,
    });
  });

  it.each([
    ['the first readable limit file wins', () => [join(dir, 'missing'), maxFile], 262144],
    ['no limit file: no max', () => [join(dir, 'missing')], undefined],
    ['a limit file that is not a number is skipped', () => [statFile], undefined],
  ])('%s', async (_t, files, want) => {
    const r = await reader({ maxFiles: files() }).read();
    if (!isAvailable(r)) throw new Error(`unavailable: ${r.message}`);
    expect(r.max).toBe(want);
  });

  it('without nf_conntrack loaded: not-loaded, and the conntrack tool is never run', async () => {
    const r = await reader({
      statFile: join(dir, 'missing-stat'),
      moduleDir: join(dir, 'missing-module'),
      conntrackCommand: ['/nonexistent/would-fail-differently'],
    }).read();
    expect(r).toMatchObject({ source: 'none', reason: 'not-loaded' });
    expect(!isAvailable(r) && r.message).toMatch(/nf_conntrack is not loaded .*missing-module/);
  });

  it('no procfs file and no conntrack binary: no-source, saying what to install', async () => {
    const r = await reader({
      statFile: join(dir, 'missing-stat'),
      conntrackCommand: [join(dir, 'no-such-conntrack')],
    }).read();
    expect(r).toMatchObject({ source: 'none', reason: 'no-source' });
    expect(!isAvailable(r) && r.message).toMatch(
      /missing-stat does not exist.*apt-get install conntrack/,
    );
  });

  it('no procfs file and the fallback turned off: no-source', async () => {
    const r = await reader({ statFile: join(dir, 'missing-stat'), conntrackCommand: null }).read();
    expect(r).toMatchObject({ source: 'none', reason: 'no-source' });
    expect(!isAvailable(r) && r.message).toMatch(/fallback is off/);
  });

  it.each<[string, string[], RegExp]>([
    ['exits non-zero', ['false'], /missing-stat does not exist.*; false -S failed \(exit 1/],
    ['hangs past the timeout', ['sh', '-c', 'exec sleep 5', 'sh'], /timed out after 200 ms/],
    ['prints something else', ['echo', 'hello'], /printed no cpu= lines/],
  ])('a conntrack command that %s: failed, naming the command', async (_t, cmd, err) => {
    const started = Date.now();
    const r = await reader({
      statFile: join(dir, 'missing-stat'),
      conntrackCommand: cmd,
      timeoutMs: 200,
    }).read();
    expect(r).toMatchObject({ source: 'none', reason: 'failed' });
    expect(!isAvailable(r) && r.message).toMatch(err);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a stat file it cannot parse: failed, asking for the content', async () => {
    const bad = join(dir, 'bad-stat');
    await writeFile(bad, 'entries drop\n00000001\n');
    const r = await reader({ statFile: bad }).read();
    expect(r).toMatchObject({ source: 'none', reason: 'failed' });
    expect(!isAvailable(r) && r.message).toMatch(
      /cannot parse .*bad-stat.*row 1 has 1 values.*report/,
    );
  });

  it('a stat path it cannot read (a directory): failed, not a fallback', async () => {
    const r = await reader({ statFile: dir, conntrackCommand: ['false'] }).read();
    expect(r).toMatchObject({ source: 'none', reason: 'failed' });
    expect(!isAvailable(r) && r.message).toMatch(/cannot read .*EISDIR/);
  });
});
