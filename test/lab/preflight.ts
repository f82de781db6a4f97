import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { exec, run } from './exec.js';

/** Tool the lab runs -> the Debian package that ships it. */
export const REQUIRED_TOOLS: Record<string, string> = {
  ip: 'iproute2',
  iptables: 'iptables',
  'iptables-restore': 'iptables',
  ip6tables: 'iptables',
  'ip6tables-restore': 'iptables',
  dnsmasq: 'dnsmasq-base',
  'musl-gcc': 'musl-tools',
  dig: 'bind9-dnsutils',
  tcpdump: 'tcpdump',
  bpftool: 'bpftool (bookworm-backports: apt-get install -t bookworm-backports bpftool)',
  nsenter: 'util-linux',
  getent: 'libc-bin',
  gcc: 'gcc',
  conntrack: 'conntrack',
  python3: 'python3',
  sysctl: 'procps',
};

export async function which(
  tool: string,
  path = process.env.PATH ?? '',
): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const p = join(dir, tool);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next dir */
    }
  }
  return undefined;
}

/** The message for missing tools, or undefined when all are there. Pure, for testing. */
export function missingToolsMessage(missing: string[]): string | undefined {
  if (missing.length === 0) return undefined;
  const pkgs = [...new Set(missing.map((t) => (REQUIRED_TOOLS[t] ?? t).split(' ')[0]))];
  const lines = missing.map((t) => `  ${t}: install package ${REQUIRED_TOOLS[t] ?? '?'}`);
  return `lab preflight: missing tools:\n${lines.join('\n')}\n  apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

/**
 * Fails with a message naming what to install or fix. Mounts bpffs when it is not mounted
 * (fresh machines; the lab pins its fault-injection programs there).
 */
export async function preflight(bpffs = '/sys/fs/bpf'): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'lab preflight: the lab needs root (netns, cgroups, iptables, bpftool); run the e2e tests as root',
    );
  }
  const missing: string[] = [];
  for (const tool of Object.keys(REQUIRED_TOOLS)) if (!(await which(tool))) missing.push(tool);
  const msg = missingToolsMessage(missing);
  if (msg) throw new Error(msg);
  if ((await exec(['mountpoint', '-q', bpffs])).exitCode !== 0) {
    await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
  }
}
