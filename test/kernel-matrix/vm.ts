// Boots one guest under `timeout` and collects its console log and JSON report.
import { execa } from 'execa';
import { createWriteStream } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { qemuArgs, type GuestSpec } from './qemu.js';

export interface VmRun {
  exitCode: number | undefined;
  timedOut: boolean;
  seconds: number;
  /** what the guest wrote to /dev/ttyS1 */
  report: string;
}

/**
 * Boots the guest; its console goes to consoleLog, and the command line to `script` so that
 * a human can boot the same guest again (sh <script>).
 */
export async function runVm(
  guest: GuestSpec,
  opts: { timeoutSeconds: number; consoleLog: string; script: string },
): Promise<VmRun> {
  await rm(guest.reportPath, { force: true });
  const argv = ['qemu-system-x86_64', ...qemuArgs(guest)];
  await writeFile(
    opts.script,
    `#!/bin/sh\n# boots the ${guest.params.km_kernel ?? ''} guest of the last kernel-matrix run\n` +
      `exec ${argv.map(shellQuote).join(' \\\n  ')}\n`,
    { mode: 0o755 },
  );
  const log = createWriteStream(opts.consoleLog);
  const started = performance.now();
  // timeout(1), not a JS timer: a KVM internal error pauses the VM instead of exiting, and
  // a VM must end even when the node process that started it was killed.
  const sub = execa('timeout', ['--kill-after=10', String(opts.timeoutSeconds), ...argv], {
    reject: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
  });
  sub.stdout?.pipe(log, { end: false });
  sub.stderr?.pipe(log, { end: false });
  const r = await sub;
  await new Promise<void>((resolve) => log.end(resolve));
  const report = await readFile(guest.reportPath, 'utf8').catch(() => '');
  return {
    exitCode: r.exitCode,
    timedOut: r.exitCode === 124 || r.exitCode === 137,
    seconds: (performance.now() - started) / 1000,
    report,
  };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
