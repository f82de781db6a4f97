// A hostNetwork pod in a lab: its own container cgroup in the kubelet layout and a kubelet
// log directory (so the exporter names it), but the node's network namespace, so it needs
// no netns, veth or address. The soak creates hundreds of these once the lab's /24 of
// netns pods is used up (Lab.addPod gives out at most 251 addresses per lab, never reused).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { containerCgroupSegments, type Lab } from '../lab/index.js';
import { cgroupProcs, removeCgroupDir } from '../lab/cgroup2.js';
import { exec, type ExecResult } from '../lab/exec.js';

export class HostNetPod {
  private constructor(
    readonly namespace: string,
    readonly name: string,
    readonly cgroupDir: string,
    readonly logDir: string,
    private readonly nodeNetns: string,
  ) {}

  static async create(lab: Lab, namespace: string, name: string): Promise<HostNetPod> {
    const uid = randomUUID();
    const cgroupDir = join(
      lab.cgroupDir,
      ...containerCgroupSegments({
        podUid: uid,
        containerId: randomBytes(32).toString('hex'),
        qos: 'besteffort',
        driver: 'systemd',
        runtime: 'containerd',
      }),
    );
    const logDir = join(lab.varLogPods, `${namespace}_${name}_${uid}`);
    // kubelet's order: the pod's log directory exists before its containers' cgroups.
    await mkdir(join(logDir, 'app'), { recursive: true });
    await writeFile(join(logDir, 'app', '0.log'), `hostNetwork pod ${namespace}/${name}\n`);
    await mkdir(cgroupDir, { recursive: true });
    return new HostNetPod(namespace, name, cgroupDir, logDir, lab.nodeNetns);
  }

  /**
   * Runs argv in the pod's cgroup and the node's netns. nsenter, not `ip netns exec`: no
   * /etc/netns resolv.conf applies, so DNS clients must name their server.
   */
  exec(argv: readonly string[], timeoutMs = 30_000): Promise<ExecResult> {
    return exec(
      [
        'sh',
        '-c',
        'echo $$ > "$1/cgroup.procs" || exit 125; ns=$2; shift 2; exec nsenter --net="/run/netns/$ns" "$@"',
        'sh',
        this.cgroupDir,
        this.nodeNetns,
        ...argv,
      ],
      { timeoutMs },
    );
  }

  /** Like the kubelet: kill what runs in it (by PID), remove the cgroups and the log dir. */
  async delete(): Promise<void> {
    for (const pid of await cgroupProcs(this.cgroupDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await removeCgroupDir(this.cgroupDir);
    await removeCgroupDir(dirname(this.cgroupDir));
    await rm(this.logDir, { recursive: true, force: true });
  }
}
