/**
 * Removes what crashed lab runs left behind: processes, cgroups, netns, /etc/netns entries,
 * bpffs pins and lab roots named dnsrace-test-lab-<runid>. Labs whose owner process is still
 * running are left alone unless --force.
 *
 *   npx tsx test/lab/cleanup-cli.ts [--dry-run] [--force]
 */
import { cgroup2Mount } from './cgroup2.js';
import { defaultHostPaths, findLabRuns, removeLabRun, type LabRun } from './cleanup.js';

function describe(r: LabRun): string {
  const parts = [
    ...r.netns.map((n) => `netns ${n}`),
    ...r.etcNetns,
    r.cgroupDir && `cgroup ${r.cgroupDir}`,
    r.bpffsDir && `bpffs ${r.bpffsDir}`,
    r.rootDir && `root ${r.rootDir}`,
  ].filter(Boolean);
  return parts.join(', ');
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--dry-run' && a !== '--force');
  if (unknown.length) {
    process.stderr.write(
      `unknown arguments: ${unknown.join(' ')}\nusage: cleanup-cli.ts [--dry-run] [--force]\n`,
    );
    return 64;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('cleanup-cli: needs root (netns, cgroups, bpffs)\n');
    return 1;
  }
  const dryRun = argv.includes('--dry-run');
  const force = argv.includes('--force');
  const paths = defaultHostPaths(await cgroup2Mount());
  const runs = await findLabRuns(paths);
  if (runs.length === 0) {
    process.stdout.write('no lab leftovers\n');
    return 0;
  }
  let failed = 0;
  for (const r of runs) {
    const label = `lab ${r.runId}`;
    if (r.ownerAlive && !force) {
      process.stdout.write(
        `${label}: skipped, owner pid ${r.ownerPid} is still running (--force to remove)\n`,
      );
      continue;
    }
    if (dryRun) {
      process.stdout.write(`${label}: would remove ${describe(r)}\n`);
      continue;
    }
    try {
      const removed = await removeLabRun(r, paths);
      for (const line of removed) process.stdout.write(`${label}: removed ${line}\n`);
    } catch (err) {
      failed++;
      const errs = err instanceof AggregateError ? err.errors : [err];
      process.stderr.write(
        `${label}: ${(err as Error).message}\n${errs.map((e) => `  ${(e as Error).message}`).join('\n')}\n`,
      );
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
