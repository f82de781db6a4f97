// Which Linux capabilities the exporter needs, and a start-up check of its own effective set
// (CapEff in /proc/self/status): a DaemonSet that dropped one too many then says which one
// is missing and why, instead of failing later with a bare "Operation not permitted" from
// bpftool. deploy/kubernetes grants exactly deployCapabilities(profile); a test holds the
// manifests to it. Kernel rules cited below: include/uapi/linux/capability.h (CAP_BPF,
// CAP_PERFMON, 5.8) and kernel/bpf/syscall.c (bpf_prog_attach_check_attach_type).
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import path from 'node:path';
import type { ScalarFamily } from './exposition/model.js';
import { METRIC } from './metrics/names.js';

/** capability(7) bit numbers, Kubernetes spelling (no CAP_ prefix). */
export const CAPABILITY_BITS = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  LINUX_IMMUTABLE: 9,
  NET_BIND_SERVICE: 10,
  NET_BROADCAST: 11,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  IPC_OWNER: 15,
  SYS_MODULE: 16,
  SYS_RAWIO: 17,
  SYS_CHROOT: 18,
  SYS_PTRACE: 19,
  SYS_PACCT: 20,
  SYS_ADMIN: 21,
  SYS_BOOT: 22,
  SYS_NICE: 23,
  SYS_RESOURCE: 24,
  SYS_TIME: 25,
  SYS_TTY_CONFIG: 26,
  MKNOD: 27,
  LEASE: 28,
  AUDIT_WRITE: 29,
  AUDIT_CONTROL: 30,
  SETFCAP: 31,
  MAC_OVERRIDE: 32,
  MAC_ADMIN: 33,
  SYSLOG: 34,
  WAKE_ALARM: 35,
  BLOCK_SUSPEND: 36,
  AUDIT_READ: 37,
  PERFMON: 38,
  BPF: 39,
  CHECKPOINT_RESTORE: 40,
} as const;

export type CapabilityName = keyof typeof CAPABILITY_BITS;

export interface KernelVersion {
  major: number;
  minor: number;
}

/** What the exporter loses without a capability. */
export type Without = 'fatal' | 'degraded' | 'optional';

export interface Requirement {
  capability: CapabilityName;
  /** Why it is needed: what the exporter does with it, and what fails without it. */
  why: string;
  without: Without;
  /** Kernels on which it is needed at all (default: every kernel). */
  neededOn?: (k: KernelVersion, env: CapabilityEnvironment) => boolean;
  /** Capabilities the kernel accepts in its place on kernel k. */
  standIns?: (k: KernelVersion) => CapabilityName[];
  /** false: the least-privilege DaemonSet goes without it, accepting what is lost. */
  leastPrivilege?: false;
}

export interface CapabilityEnvironment {
  /** RLIMIT_MEMLOCK is unlimited (then CAP_SYS_RESOURCE is not needed to raise it). */
  memlockUnlimited: boolean;
}

const atLeast = (k: KernelVersion, major: number, minor: number) =>
  k.major > major || (k.major === major && k.minor >= minor);

/**
 * CAP_BPF and CAP_PERFMON exist since 5.8; bpf_capable() and perfmon_capable() accept
 * CAP_SYS_ADMIN in their place on every kernel (before 5.8 it was the only way).
 */
const sysAdminStandsIn = () => ['SYS_ADMIN'] as CapabilityName[];

/**
 * Measured with the exporter under setpriv on 6.18 (docs/install.md, "Capabilities"): with
 * BPF, PERFMON and NET_ADMIN alone it loads, attaches, reads every map (declared without
 * key/value BTF, so bpftool fetches nothing by ID) and detaches by pinned path on exit.
 */
export const REQUIREMENTS: readonly Requirement[] = [
  {
    capability: 'BPF',
    why: 'create the BPF maps and load the programs and their BTF (bpf(2) BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_BTF_LOAD)',
    without: 'fatal',
    standIns: sysAdminStandsIn,
  },
  {
    capability: 'NET_ADMIN',
    why:
      "attach the cgroup_skb programs to the pods' cgroup (BPF_PROG_ATTACH checks CAP_NET_ADMIN for cgroup_skb; " +
      'CAP_SYS_ADMIN passes too from 6.9) and list them (BPF_PROG_QUERY); read conntrack statistics over netlink ' +
      '(conntrack -S) where /proc/net/stat/nf_conntrack is missing',
    without: 'fatal',
    standIns: (k) => (atLeast(k, 6, 9) ? ['SYS_ADMIN'] : []),
  },
  {
    capability: 'PERFMON',
    why:
      'load the drop-attribution programs (raw tracepoint kfree_skb, fexit __nf_conntrack_confirm), which read kernel ' +
      "memory, the map iterators that read dns_stats and dns_pending, and open the drill-down's perf event buffer; " +
      'without it drop attribution falls back to mode none and those maps are read with slower bpftool dumps',
    without: 'degraded',
    standIns: sysAdminStandsIn,
  },
  {
    capability: 'SYS_ADMIN',
    why:
      "let libbpf find nf_conntrack's module BTF (it walks BTF objects by ID: BPF_BTF_GET_NEXT_ID, " +
      'BPF_BTF_GET_FD_BY_ID) to attach the fexit program to __nf_conntrack_confirm; without it (and where ' +
      'nf_conntrack is a module) drop attribution uses the kfree_skb tracepoint, where a conntrack insert ' +
      'failure counts as a netfilter drop',
    without: 'degraded',
    leastPrivilege: false,
  },
  {
    capability: 'SYS_RESOURCE',
    why: 'raise RLIMIT_MEMLOCK: before 5.11 the kernel charges BPF maps and programs to the locked-memory limit',
    without: 'fatal',
    neededOn: (k, env) => !atLeast(k, 5, 11) && !env.memlockUnlimited,
  },
  {
    capability: 'SYS_PTRACE',
    why: "read a pod's resolv.conf and resolver binary through /proc/<pid>/root for the drill-down doctor (with hostPID)",
    without: 'optional',
  },
];

export type DeployProfile = 'least-privilege' | 'fallback' | 'doctor';

/**
 * The capabilities a deployment profile adds (deploy/kubernetes, Kubernetes spelling):
 * - least-privilege: every non-optional requirement by its own name, but those it goes
 *   without (leastPrivilege: false), for kernels >= 5.11 and runtimes that know CAP_BPF and
 *   CAP_PERFMON;
 * - fallback: CAP_SYS_ADMIN in place of what it stands in for on every kernel, plus
 *   CAP_SYS_RESOURCE for kernels before 5.11 (runtimes or kernels without CAP_BPF);
 * - doctor: what the drill-down doctor adds to either.
 */
export function deployCapabilities(profile: DeployProfile): CapabilityName[] {
  const required = REQUIREMENTS.filter((r) => r.without !== 'optional');
  let caps: CapabilityName[];
  if (profile === 'least-privilege')
    caps = required
      .filter((r) => r.leastPrivilege !== false)
      .filter(
        (r) => !r.neededOn || r.neededOn({ major: 5, minor: 11 }, { memlockUnlimited: false }),
      )
      .map((r) => r.capability);
  else if (profile === 'fallback')
    caps = required.map((r) =>
      r.standIns?.({ major: 4, minor: 19 }).includes('SYS_ADMIN') ? 'SYS_ADMIN' : r.capability,
    );
  else caps = REQUIREMENTS.filter((r) => r.without === 'optional').map((r) => r.capability);
  return [...new Set(caps)].sort();
}

export interface CapabilityCheck {
  capability: CapabilityName;
  /** Needed on this kernel at all. */
  needed: boolean;
  /** In the effective set itself. */
  present: boolean;
  /** A stand-in that is present instead (CAP_SYS_ADMIN for CAP_BPF, …). */
  standIn: CapabilityName | undefined;
  without: Without;
  why: string;
  /** The least-privilege DaemonSet grants it (else its loss there is by design). */
  inLeastPrivilege: boolean;
}

/** Parses the CapEff line of /proc/<pid>/status (proc(5)): 16 hex digits. */
export function parseEffectiveCapabilities(statusText: string): bigint {
  const m = /^CapEff:\s*([0-9a-fA-F]{1,16})\s*$/m.exec(statusText);
  if (!m) throw new Error('no CapEff line in /proc/self/status (is this Linux?)');
  return BigInt(`0x${m[1]}`);
}

/** The names of the capabilities set in mask, in bit order; unknown bits as CAP_<n>. */
export function capabilityNames(mask: bigint): string[] {
  const out: string[] = [];
  const byBit = new Map<number, string>(Object.entries(CAPABILITY_BITS).map(([n, b]) => [b, n]));
  for (let bit = 0; bit < 64; bit++)
    if ((mask >> BigInt(bit)) & 1n) out.push(byBit.get(bit) ?? `CAP_${bit}`);
  return out;
}

/** "6.18.44-fc-v657" → 6.18. */
export function parseKernelRelease(text: string): KernelVersion {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  if (!m) throw new Error(`kernel release '${text}' does not start with MAJOR.MINOR`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** Whether the "Max locked memory" soft limit of /proc/<pid>/limits is unlimited. */
export function parseMemlockUnlimited(limitsText: string): boolean {
  const m = /^Max locked memory\s+(\S+)/m.exec(limitsText);
  if (!m) throw new Error('no "Max locked memory" line in /proc/self/limits');
  return m[1] === 'unlimited';
}

export function maskOf(caps: readonly CapabilityName[]): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(CAPABILITY_BITS[c])), 0n);
}

/** Every requirement checked against an effective set on a kernel. */
export function assessCapabilities(
  effective: bigint,
  kernel: KernelVersion,
  env: CapabilityEnvironment,
): CapabilityCheck[] {
  const has = (c: CapabilityName) => ((effective >> BigInt(CAPABILITY_BITS[c])) & 1n) === 1n;
  return REQUIREMENTS.map((r) => {
    const present = has(r.capability);
    return {
      capability: r.capability,
      needed: r.neededOn ? r.neededOn(kernel, env) : true,
      present,
      standIn: present ? undefined : r.standIns?.(kernel).find(has),
      without: r.without,
      why: r.why,
      inLeastPrivilege: r.leastPrivilege !== false,
    };
  });
}

/** The checks that fail: needed, not present, and no stand-in. */
export function missingCapabilities(checks: readonly CapabilityCheck[]): CapabilityCheck[] {
  return checks.filter((c) => c.needed && !c.present && !c.standIn);
}

interface LoggerLike {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * Reads the exporter's own capabilities and logs one line per missing one: a warning when
 * the exporter fails or degrades without it, info for the optional doctor and for what the
 * least-privilege DaemonSet goes without by design. Never throws:
 * where /proc cannot be read (not Linux) it logs why and returns undefined.
 */
export async function checkOwnCapabilities(
  log: LoggerLike,
  o: { procSelf?: string; kernelRelease?: string } = {},
): Promise<CapabilityCheck[] | undefined> {
  const procSelf = o.procSelf ?? '/proc/self';
  let checks: CapabilityCheck[];
  let effective: bigint;
  try {
    effective = parseEffectiveCapabilities(await readFile(path.join(procSelf, 'status'), 'utf8'));
    const memlockUnlimited = parseMemlockUnlimited(
      await readFile(path.join(procSelf, 'limits'), 'utf8'),
    );
    checks = assessCapabilities(effective, parseKernelRelease(o.kernelRelease ?? release()), {
      memlockUnlimited,
    });
  } catch (err) {
    log.warn({ err }, 'cannot check the capabilities of the exporter');
    return undefined;
  }
  const missing = missingCapabilities(checks);
  for (const c of missing) {
    const fields = { capability: `CAP_${c.capability}`, without: c.without };
    const msg = `missing capability CAP_${c.capability}, needed to ${c.why}`;
    if (c.without === 'optional' || !c.inLeastPrivilege) log.info(fields, msg);
    else log.warn(fields, msg);
  }
  log.debug({ effective: capabilityNames(effective), missing: missing.length }, 'capabilities');
  return checks;
}

/**
 * Self-health family: 1 per capability the exporter has (itself or a stand-in), 0 per one it
 * misses, for the requirements that apply to this kernel.
 */
export function capabilityFamily(checks: readonly CapabilityCheck[]): ScalarFamily {
  return {
    type: 'gauge',
    name: METRIC.capability,
    help: 'Whether the exporter has a Linux capability it needs (1), or a stand-in such as CAP_SYS_ADMIN; 0: missing (the log says why it is needed)',
    samples: checks
      .filter((c) => c.needed)
      .map((c) => ({
        labels: { capability: `CAP_${c.capability}`, without: c.without },
        value: c.present || c.standIn ? 1 : 0,
      })),
  };
}
