// The qemu command line of one kernel-matrix guest, the choice of accelerator, and which guest
// crash is worth a second run. Pure.

export type Accel = 'kvm' | 'tcg';

/**
 * KVM only when the CPU has VT-x/AMD-V: a /dev/kvm without vmx/svm in /proc/cpuinfo (PVM,
 * nested "pagetable-based" KVM) runs stock kernels in its instruction emulator, which dies on
 * the first instruction it lacks (cmpxchg16b in SLUB). TCG runs any kernel, just slowly.
 */
export function chooseAccel(
  request: string | undefined,
  cpuinfo: string,
  kvmUsable: boolean,
): Accel {
  if (request === 'kvm' || request === 'tcg') return request;
  if (request && request !== 'auto') {
    throw new Error(`KM_ACCEL=${request}: use auto, kvm or tcg`);
  }
  return kvmUsable && /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo) ? 'kvm' : 'tcg';
}

export interface GuestSpec {
  accel: Accel;
  /** qemu -m */
  memory: string;
  /** vCPUs; under TCG each takes a host core while it runs */
  cpus: number;
  /** vmlinux (PVH entry) or bzImage */
  image: string;
  initrd: string;
  /** file that receives the guest's /dev/ttyS1 (its JSON report) */
  reportPath: string;
  /** km_* parameters; the kernel hands unknown key=value arguments to init as environment */
  params: Record<string, string>;
}

export function qemuArgs(g: GuestSpec): string[] {
  for (const [k, v] of Object.entries(g.params)) {
    if (!/^km_[a-z_]+$/.test(k) || /[\s"]/.test(v) || v === '') {
      throw new Error(
        `guest parameter ${k}=${JSON.stringify(v)} cannot go on a kernel command line`,
      );
    }
  }
  const append = [
    'console=ttyS0',
    'loglevel=4',
    'panic=-1',
    'mitigations=off',
    // RDRAND of -cpu max seeds the CRNG at once: node's startup reads getrandom()
    'random.trust_cpu=on',
    ...Object.entries(g.params).map(([k, v]) => `${k}=${v}`),
  ].join(' ');
  return [
    ...(g.accel === 'kvm'
      ? ['-accel', 'kvm', '-cpu', 'host']
      : // -cpu max exposes BMI2 etc., which the BPF JIT uses
        ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-smp',
    String(g.cpus),
    '-m',
    g.memory,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
    '-chardev',
    `file,id=report,path=${g.reportPath}`,
    '-serial',
    'chardev:report',
    // the host's / (it spans several filesystems: multidevs=remap keeps inode numbers unique)
    '-fsdev',
    'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device',
    'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    '-kernel',
    g.image,
    '-initrd',
    g.initrd,
    '-append',
    append,
  ];
}

/**
 * An "Oops: int3" is a CPU that ran into the breakpoint the kernel plants while it rewrites its
 * own code (text_poke_bp: static keys, ftrace and BPF trampolines) and that the kernel did not
 * recognise as its own. Multi-threaded TCG does not keep the cross-modifying-code guarantees
 * the kernel relies on, and such guests crash now and then (6.12 once in the runs of
 * 2026-11-26, in hash_conntrack_raw while dnsmasq sent). Worth one more run there; anything
 * else, under KVM or twice, is a failure.
 */
export function isEmulatedTextPokeOops(console: string): boolean {
  return /\bOops: int3\b/.test(console);
}
