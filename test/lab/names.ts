import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every object a lab creates (netns, cgroup dir, /etc/netns entry, bpffs dir, lab root) is
 * named `dnsrace-test-lab-<runid>...`. The `lab-` part keeps the crash-cleanup CLI away
 * from other test suites' `/sys/fs/bpf/dnsrace-test-*` dirs and cgroups.
 */
export const LAB_PREFIX = 'dnsrace-test-lab-';
const RUN_ID_RE = /^[0-9a-f]{6}$/;
const NAME_RE = /^dnsrace-test-lab-([0-9a-f]{6})(?:-|$)/;

export function newRunId(): string {
  return randomBytes(3).toString('hex');
}

/** The run id inside a lab-made name, or undefined when the name is not a lab's. */
export function runIdOf(name: string): string | undefined {
  return NAME_RE.exec(name)?.[1];
}

export interface LabNames {
  runId: string;
  /** `dnsrace-test-lab-<runid>`: the cgroup dir, bpffs dir and lab root basename. */
  labName: string;
  nodeNetns: string;
  bpffsDir: string;
  rootDir: string;
  podNetns(index: number, podName: string): string;
}

export function labNames(runId: string, opts: { bpffs?: string; tmp?: string } = {}): LabNames {
  if (!RUN_ID_RE.test(runId))
    throw new Error(`lab run id ${JSON.stringify(runId)} is not 6 hex chars`);
  const labName = LAB_PREFIX + runId;
  return {
    runId,
    labName,
    nodeNetns: `${labName}-node`,
    bpffsDir: join(opts.bpffs ?? '/sys/fs/bpf', labName),
    rootDir: join(opts.tmp ?? tmpdir(), labName),
    // The pod name only makes `ip netns list` readable; the index keeps it unique.
    podNetns: (index, podName) =>
      `${labName}-p${index}-${podName
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 20)}`,
  };
}

/** Host-side veth of pod `index`, inside the node netns (so a short fixed name is enough). */
export function hostVethName(index: number): string {
  return `vp${index}`;
}

export const BRIDGE_NAME = 'cbr0';
