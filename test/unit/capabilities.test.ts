// The start-up capability check: CapEff parsed from /proc/self/status texts recorded in this
// VM (cat /proc/self/status under setpriv --bounding-set, kernel 6.18), judged against the
// kernel the exporter runs on, and the deployment profiles that deploy/kubernetes grants.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assessCapabilities,
  capabilityFamily,
  capabilityNames,
  checkOwnCapabilities,
  deployCapabilities,
  maskOf,
  missingCapabilities,
  parseEffectiveCapabilities,
  parseKernelRelease,
  parseMemlockUnlimited,
  REQUIREMENTS,
  type CapabilityName,
  type KernelVersion,
} from '../../src/capabilities.js';

/** root in this VM (every capability but CAP_SYS_RESOURCE), kernel 6.18. */
const ROOT = `Name:	cat
Umask:	0022
State:	R (running)
Tgid:	14296
Ngid:	0
Pid:	14296
PPid:	14293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	14296
NSpid:	14296
NSpgid:	14293
NSsid:	10264
Kthread:	0
VmPeak:	    3060 kB
VmSize:	    3060 kB
VmLck:	       0 kB
VmPin:	       0 kB
VmHWM:	    1748 kB
VmRSS:	    1748 kB
RssAnon:	     116 kB
RssFile:	    1632 kB
RssShmem:	       0 kB
VmData:	     360 kB
VmStk:	     132 kB
VmExe:	      20 kB
VmLib:	    1528 kB
VmPTE:	      48 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	1/96551
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	0000000000000000
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	000001fffeffffff
CapEff:	000001fffeffffff
CapBnd:	000001fffeffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	thread vulnerable
SpeculationIndirectBranch:	conditional enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	0
nonvoluntary_ctxt_switches:	0
`;

/** the least-privilege DaemonSet: only BPF, PERFMON and NET_ADMIN (setpriv --bounding-set). */
const BPF_PERFMON_NET_ADMIN = `Name:	cat
Umask:	0022
State:	R (running)
Tgid:	14297
Ngid:	0
Pid:	14297
PPid:	14293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	14297
NSpid:	14297
NSpgid:	14293
NSsid:	10264
Kthread:	0
VmPeak:	    3060 kB
VmSize:	    3060 kB
VmLck:	       0 kB
VmPin:	       0 kB
VmHWM:	    1704 kB
VmRSS:	    1704 kB
RssAnon:	     108 kB
RssFile:	    1596 kB
RssShmem:	       0 kB
VmData:	     360 kB
VmStk:	     132 kB
VmExe:	      20 kB
VmLib:	    1528 kB
VmPTE:	      48 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	1/96551
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	0000000000000000
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	000000c000001000
CapEff:	000000c000001000
CapBnd:	000000c000001000
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	thread vulnerable
SpeculationIndirectBranch:	conditional enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	0
nonvoluntary_ctxt_switches:	0
`;

/** BPF, PERFMON, NET_ADMIN and SYS_ADMIN, no_new_privs (the DaemonSet of earlier versions). */
const WITH_SYS_ADMIN = `Name:	cat
Umask:	0022
State:	R (running)
Tgid:	14298
Ngid:	0
Pid:	14298
PPid:	14293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	14298
NSpid:	14298
NSpgid:	14293
NSsid:	10264
Kthread:	0
VmPeak:	    3060 kB
VmSize:	    3060 kB
VmLck:	       0 kB
VmPin:	       0 kB
VmHWM:	    1640 kB
VmRSS:	    1640 kB
RssAnon:	     112 kB
RssFile:	    1528 kB
RssShmem:	       0 kB
VmData:	     360 kB
VmStk:	     132 kB
VmExe:	      20 kB
VmLib:	    1528 kB
VmPTE:	      44 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	1/96551
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	0000000000000000
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	000000c000201000
CapEff:	000000c000201000
CapBnd:	000000c000201000
CapAmb:	0000000000000000
NoNewPrivs:	1
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	thread vulnerable
SpeculationIndirectBranch:	conditional enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	0
nonvoluntary_ctxt_switches:	1
`;

/** every capability a pre-5.8 kernel knows (no PERFMON, BPF, CHECKPOINT_RESTORE), as a privileged container there; CAP_SYS_RESOURCE absent in this VM. */
const PRIVILEGED_PRE_5_8 = `Name:	cat
Umask:	0022
State:	R (running)
Tgid:	14299
Ngid:	0
Pid:	14299
PPid:	14293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	14299
NSpid:	14299
NSpgid:	14293
NSsid:	10264
Kthread:	0
VmPeak:	    3060 kB
VmSize:	    3060 kB
VmLck:	       0 kB
VmPin:	       0 kB
VmHWM:	    1696 kB
VmRSS:	    1696 kB
RssAnon:	     112 kB
RssFile:	    1584 kB
RssShmem:	       0 kB
VmData:	     360 kB
VmStk:	     132 kB
VmExe:	      20 kB
VmLib:	    1528 kB
VmPTE:	      44 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	1/96551
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	0000000000000000
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	0000003ffeffffff
CapEff:	0000003ffeffffff
CapBnd:	0000003ffeffffff
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	thread vulnerable
SpeculationIndirectBranch:	conditional enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	0
nonvoluntary_ctxt_switches:	1
`;

/** NET_ADMIN and PERFMON only: CAP_BPF missing and no CAP_SYS_ADMIN to stand in. */
const NO_BPF = `Name:	cat
Umask:	0022
State:	R (running)
Tgid:	14300
Ngid:	0
Pid:	14300
PPid:	14293
TracerPid:	0
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	256
Groups:	 
NStgid:	14300
NSpid:	14300
NSpgid:	14293
NSsid:	10264
Kthread:	0
VmPeak:	    3060 kB
VmSize:	    3060 kB
VmLck:	       0 kB
VmPin:	       0 kB
VmHWM:	    1748 kB
VmRSS:	    1748 kB
RssAnon:	     112 kB
RssFile:	    1636 kB
RssShmem:	       0 kB
VmData:	     360 kB
VmStk:	     132 kB
VmExe:	      20 kB
VmLib:	    1528 kB
VmPTE:	      44 kB
VmSwap:	       0 kB
HugetlbPages:	       0 kB
CoreDumping:	0
THP_enabled:	1
untag_mask:	0xffffffffffffffff
Threads:	1
SigQ:	1/96551
SigPnd:	0000000000000000
ShdPnd:	0000000000000000
SigBlk:	0000000000000000
SigIgn:	0000000000000000
SigCgt:	0000000000000000
CapInh:	0000000000000000
CapPrm:	0000004000001000
CapEff:	0000004000001000
CapBnd:	0000004000001000
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	0
Seccomp_filters:	0
Speculation_Store_Bypass:	thread vulnerable
SpeculationIndirectBranch:	conditional enabled
Cpus_allowed:	3
Cpus_allowed_list:	0-1
Mems_allowed:	00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001
Mems_allowed_list:	0
voluntary_ctxt_switches:	0
nonvoluntary_ctxt_switches:	0
`;

const K = (text: string): KernelVersion => parseKernelRelease(text);
const LIMITED = { memlockUnlimited: false };
/** Missing capabilities the exporter fails or degrades without (the doctor's is optional). */
const requiredMissing = (checks: ReturnType<typeof assessCapabilities>) =>
  missingCapabilities(checks)
    .filter((c) => c.without !== 'optional')
    .map((c) => c.capability);
const missingOf = (status: string, kernel: string, env = LIMITED) =>
  requiredMissing(assessCapabilities(parseEffectiveCapabilities(status), K(kernel), env));

describe('parseEffectiveCapabilities', () => {
  it.each([
    ['root', ROOT, 0x1fffeffffffn],
    ['BPF+PERFMON+NET_ADMIN', BPF_PERFMON_NET_ADMIN, 0xc000001000n],
    ['the DaemonSet', WITH_SYS_ADMIN, 0xc000201000n],
    ['privileged before 5.8', PRIVILEGED_PRE_5_8, 0x3ffeffffffn],
    ['no BPF', NO_BPF, 0x4000001000n],
  ])('reads CapEff of %s', (_what, status, mask) => {
    expect(parseEffectiveCapabilities(status)).toBe(mask);
  });

  it('reads CapEff, not CapPrm or CapBnd', () => {
    const status =
      'CapPrm:\t0000000000000001\nCapEff:\t0000000000001000\nCapBnd:\t000001ffffffffff\n';
    expect(capabilityNames(parseEffectiveCapabilities(status))).toEqual(['NET_ADMIN']);
  });

  it.each([
    ['no CapEff line', 'Name:\tnode\nCapPrm:\t0000000000000000\n'],
    ['a CapEff that is not hex', 'CapEff:\tzz\n'],
    ['a CapEff wider than 64 bits', 'CapEff:\t00000000000000000\n'],
  ])('refuses %s, naming the file', (_what, status) => {
    expect(() => parseEffectiveCapabilities(status)).toThrow(/CapEff line in \/proc\/self\/status/);
  });
});

describe('capabilityNames', () => {
  it.each([
    [0xc000201000n, ['NET_ADMIN', 'SYS_ADMIN', 'PERFMON', 'BPF']],
    [0n, []],
    [1n << 41n, ['CAP_41']],
  ])('names the bits of %s', (mask, names) => {
    expect(capabilityNames(mask)).toEqual(names);
  });
});

describe('parseKernelRelease and parseMemlockUnlimited', () => {
  it.each([
    ['6.18.44-fc-v657', { major: 6, minor: 18 }],
    ['5.10.0-33-amd64', { major: 5, minor: 10 }],
    ['4.19.0-27-cloud-amd64', { major: 4, minor: 19 }],
  ])('%s', (text, version) => {
    expect(parseKernelRelease(text)).toEqual(version);
  });

  it('refuses a release without MAJOR.MINOR', () => {
    expect(() => parseKernelRelease('linux')).toThrow(/MAJOR\.MINOR/);
  });

  it.each([
    ['Max locked memory         8388608              8388608              bytes', false],
    ['Max locked memory         unlimited            unlimited            bytes', true],
  ])('%s', (line, unlimited) => {
    const limits = `Limit                     Soft Limit           Hard Limit           Units\n${line}\n`;
    expect(parseMemlockUnlimited(limits)).toBe(unlimited);
  });
});

describe('assessCapabilities on recorded effective sets', () => {
  it.each([
    ['root, 6.18', ROOT, '6.18.44-fc-v657', LIMITED, []],
    // Only the fexit program's module BTF lookup is lost (degraded: tracepoint mode).
    [
      'the least-privilege DaemonSet, 6.18',
      BPF_PERFMON_NET_ADMIN,
      '6.18.44',
      LIMITED,
      ['SYS_ADMIN'],
    ],
    ['with SYS_ADMIN, 6.18', WITH_SYS_ADMIN, '6.18.44', LIMITED, []],
    ['with SYS_ADMIN, 5.11', WITH_SYS_ADMIN, '5.11.0', LIMITED, []],
    // Before 5.11 maps are charged to RLIMIT_MEMLOCK: 8 MiB here, so raising it needs SYS_RESOURCE.
    ['with SYS_ADMIN, 5.10', WITH_SYS_ADMIN, '5.10.0-33-amd64', LIMITED, ['SYS_RESOURCE']],
    [
      'with SYS_ADMIN, 5.10, memlock unlimited',
      WITH_SYS_ADMIN,
      '5.10.0',
      { memlockUnlimited: true },
      [],
    ],
    // CAP_BPF does not exist before 5.8: CAP_SYS_ADMIN stands in for it and for CAP_PERFMON.
    [
      'privileged on 5.4, memlock unlimited',
      PRIVILEGED_PRE_5_8,
      '5.4.0-216-generic',
      { memlockUnlimited: true },
      [],
    ],
    [
      'privileged on 4.19, 8 MiB memlock',
      PRIVILEGED_PRE_5_8,
      '4.19.0-27-amd64',
      LIMITED,
      ['SYS_RESOURCE'],
    ],
    ['no BPF and no SYS_ADMIN, 6.18', NO_BPF, '6.18.44', LIMITED, ['BPF', 'SYS_ADMIN']],
  ])('%s: missing %j', (_what, status, kernel, env, missing) => {
    expect(missingOf(status, kernel, env)).toEqual(missing);
  });

  it('names the stand-in for CAP_BPF and CAP_PERFMON on a kernel without them', () => {
    const checks = assessCapabilities(parseEffectiveCapabilities(PRIVILEGED_PRE_5_8), K('5.4.0'), {
      memlockUnlimited: true,
    });
    const of = (c: CapabilityName) => checks.find((x) => x.capability === c);
    expect(of('BPF')).toMatchObject({ present: false, standIn: 'SYS_ADMIN', needed: true });
    expect(of('PERFMON')).toMatchObject({ present: false, standIn: 'SYS_ADMIN' });
    expect(of('NET_ADMIN')).toMatchObject({ present: true, standIn: undefined });
  });

  it.each([
    // kernel/bpf/syscall.c: capable(CAP_NET_ADMIN) until 6.8, bpf_token_capable() (which
    // falls back to CAP_SYS_ADMIN) from 6.9.
    ['6.8.0', ['NET_ADMIN']],
    ['6.9.0', []],
  ])('without NET_ADMIN on %s, SYS_ADMIN alone misses %j', (kernel, missing) => {
    const effective = maskOf(['BPF', 'PERFMON', 'SYS_ADMIN']);
    expect(requiredMissing(assessCapabilities(effective, K(kernel), LIMITED))).toEqual(missing);
  });
});

describe('deployCapabilities', () => {
  it.each([
    ['least-privilege', ['BPF', 'NET_ADMIN', 'PERFMON']],
    ['fallback', ['NET_ADMIN', 'SYS_ADMIN', 'SYS_RESOURCE']],
    ['doctor', ['SYS_PTRACE']],
  ] as const)('%s grants %j', (profile, caps) => {
    expect(deployCapabilities(profile)).toEqual(caps);
  });

  it.each([
    ['least-privilege', ['5.11.0', '6.1.0', '6.18.44'], ['SYS_ADMIN', 'SYS_PTRACE']],
    ['fallback', ['4.19.0', '5.4.0', '5.10.0', '6.18.44'], ['SYS_PTRACE']],
  ] as const)(
    '%s leaves nothing missing on %j but what it goes without by design: %j',
    (profile, kernels, byDesign) => {
      for (const kernel of kernels) {
        const checks = assessCapabilities(maskOf(deployCapabilities(profile)), K(kernel), LIMITED);
        const missing = missingCapabilities(checks);
        expect(missing.map((c) => c.capability)).toEqual(byDesign);
        // Only optional or degraded-by-design ones: nothing fatal.
        for (const c of missing)
          expect(c.without === 'optional' || !c.inLeastPrivilege, c.capability).toBe(true);
      }
    },
  );

  it('every requirement says why, in words an operator can act on', () => {
    for (const r of REQUIREMENTS) expect(r.why.length, r.capability).toBeGreaterThan(40);
  });
});

describe('checkOwnCapabilities', () => {
  async function withProc(status: string, limits: string, fn: (dir: string) => Promise<void>) {
    const dir = await mkdtemp(path.join(tmpdir(), 'dnsrace-caps-'));
    try {
      await writeFile(path.join(dir, 'status'), status);
      await writeFile(path.join(dir, 'limits'), limits);
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const LIMITS = 'Max locked memory         8388608              8388608              bytes\n';

  function recorder() {
    const lines: { level: string; obj: object; msg: string }[] = [];
    const at = (level: string) => (obj: object, msg: string) => lines.push({ level, obj, msg });
    return { lines, log: { warn: at('warn'), info: at('info'), debug: at('debug') } };
  }

  it('warns once per missing capability, saying why it is needed', async () => {
    await withProc(NO_BPF, LIMITS, async (dir) => {
      const { lines, log } = recorder();
      await checkOwnCapabilities(log, { procSelf: dir, kernelRelease: '6.18.44' });
      expect(lines.filter((l) => l.level === 'warn')).toEqual([
        {
          level: 'warn',
          obj: { capability: 'CAP_BPF', without: 'fatal' },
          msg: expect.stringMatching(/^missing capability CAP_BPF, needed to create the BPF maps/),
        },
      ]);
      // What the least-privilege DaemonSet goes without, and the doctor's: info, not warnings.
      expect(lines.filter((l) => l.level === 'info').map((l) => l.obj)).toEqual([
        { capability: 'CAP_SYS_ADMIN', without: 'degraded' },
        { capability: 'CAP_SYS_PTRACE', without: 'optional' },
      ]);
    });
  });

  it('warns about nothing for the least-privilege DaemonSet on 6.18', async () => {
    await withProc(BPF_PERFMON_NET_ADMIN, LIMITS, async (dir) => {
      const { lines, log } = recorder();
      const checks = await checkOwnCapabilities(log, { procSelf: dir, kernelRelease: '6.18.44' });
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
      expect(checks?.find((c) => c.capability === 'SYS_ADMIN')?.present).toBe(false);
      expect(checks?.find((c) => c.capability === 'BPF')?.present).toBe(true);
    });
  });

  it('warns and goes on where /proc cannot be read', async () => {
    const { lines, log } = recorder();
    const checks = await checkOwnCapabilities(log, { procSelf: '/nonexistent/proc/self' });
    expect(checks).toBeUndefined();
    expect(lines.map((l) => `${l.level}: ${l.msg}`)).toEqual([
      'warn: cannot check the capabilities of the exporter',
    ]);
  });
});

describe('capabilityFamily (self-health gauge)', () => {
  it('is 1 per capability held or stood in for and 0 per missing one', () => {
    const checks = assessCapabilities(
      parseEffectiveCapabilities(PRIVILEGED_PRE_5_8),
      K('4.19.0'),
      LIMITED,
    );
    const family = capabilityFamily(checks);
    expect(family.name).toBe('dnsrace_capability');
    expect(Object.fromEntries(family.samples.map((s) => [s.labels.capability, s.value]))).toEqual({
      CAP_BPF: 1,
      CAP_NET_ADMIN: 1,
      CAP_PERFMON: 1,
      CAP_SYS_ADMIN: 1,
      CAP_SYS_RESOURCE: 0,
      CAP_SYS_PTRACE: 1,
    });
  });
});
