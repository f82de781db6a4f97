// Scratch directories of bpftool calls: named by their owner's pid, swept once it is gone.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import {
  pidAlive,
  staleTempDirs,
  sweepStaleTempDirs,
  tempDirPrefix,
} from '../../src/bpf/temp-dirs.js';

describe('bpftool scratch directories', () => {
  it('carry the pid of the process that made them', () => {
    expect(tempDirPrefix(4242)).toBe('dnsrace-bpftool-4242-');
  });

  it('are stale when their pid is gone; other names are never touched', () => {
    const names = [
      'dnsrace-bpftool-100-aB3xYz', // dead
      'dnsrace-bpftool-200-q1w2e3', // alive
      'dnsrace-bpftool-Kx81aa', // older name without a pid: ownership unknown
      'dnsrace-test-bench-x',
      'other',
    ];
    expect(staleTempDirs(names, (pid) => pid === 200)).toEqual(['dnsrace-bpftool-100-aB3xYz']);
  });

  it('sweeps the directories of a process that exited, and keeps this one', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'dnsrace-sweep-'));
    try {
      const dead = (await execa('sh', ['-c', 'echo $$'])).stdout.trim(); // exited by now
      expect(pidAlive(Number(dead))).toBe(false);
      expect(pidAlive(process.pid)).toBe(true);
      await mkdir(path.join(root, `${tempDirPrefix(Number(dead))}gone`));
      await mkdir(path.join(root, `${tempDirPrefix()}mine`));
      expect(await sweepStaleTempDirs(root)).toEqual([`${tempDirPrefix(Number(dead))}gone`]);
      expect(await readdir(root)).toEqual([`${tempDirPrefix()}mine`]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
