// The Quick start commands stop with one line that says what is missing and how to get it.
// Each case runs the real scripts/run.sh with one prerequisite taken away.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const RUN = path.resolve('scripts/run.sh');

async function run(env: Record<string, string>, uid?: number) {
  const argv =
    uid === undefined
      ? ['bash', RUN]
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'bash', RUN];
  const r = await execa(argv[0]!, argv.slice(1), {
    reject: false,
    env: { ...env, DNSRACE_NO_INSTALL: '1' },
  });
  return { code: r.exitCode, lines: r.stderr.trim().split('\n') };
}

describe('scripts/run.sh preflight', () => {
  it('refuses to run without root', async () => {
    const r = await run({}, 65534);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^dnsrace: must run as root .*sudo/);
  });

  it('says the kernel has no BTF', async () => {
    const r = await run({ DNSRACE_BTF_PATH: '/nonexistent/vmlinux' });
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/kernel has no BTF .*CONFIG_DEBUG_INFO_BTF=y/)]);
  });

  it('says there is no cgroup2 mount', async () => {
    const r = await run({ DNSRACE_MOUNTINFO: '/dev/null' });
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/no cgroup2 mount found: mount it/)]);
  });

  it('says bpftool is too old (a stand-in bpftool that reports 7.1.0, since the real old one is not installed)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dnsrace-oldbpftool-'));
    try {
      const fake = path.join(dir, 'bpftool');
      await writeFile(fake, '#!/bin/sh\necho "bpftool v7.1.0"\necho "using libbpf v1.1"\n');
      await chmod(fake, 0o755);
      const r = await run({ PATH: `${dir}:${process.env.PATH}` });
      expect(r.code).toBe(1);
      expect(r.lines).toEqual([
        expect.stringMatching(/bpftool 7\.1\.0 is too old: need >= 7\.2 .*bookworm-backports/),
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints --help without root or BPF', async () => {
    const r = await execa(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', RUN, '--help'],
      {
        reject: false,
        env: { DNSRACE_NO_INSTALL: '1' },
      },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: dnsrace [options]');
    expect(r.stdout).toContain('--cgroup-root');
  }, 60_000);
});
