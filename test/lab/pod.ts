import { join } from 'node:path';
import type { CgroupDriver, ContainerRuntime, QosClass } from './cgroup-layout.js';
import { cgroupProcs } from './cgroup2.js';
import {
  exec,
  inCgroupAndNetns,
  sleep,
  startBackground,
  type BackgroundProcess,
  type ExecOptions,
  type ExecResult,
} from './exec.js';
import {
  parseDigAnswers,
  parseDigStatus,
  parseGaiOutput,
  parseGetentAhosts,
  PYTHON_GAI,
} from './clients.js';

export interface PodOptions {
  namespace: string;
  name: string;
  /** Default: a random UUID. */
  uid?: string;
  /** Default 'app'. */
  containerName?: string;
  /** Default 'burstable'. */
  qos?: QosClass;
  /** Default: the lab's (systemd). */
  cgroupDriver?: CgroupDriver;
  /** Default: the lab's (containerd). */
  runtime?: ContainerRuntime;
  /** Which DNS ClusterIP(s) resolv.conf names; 'ipv6' and 'both' need a lab with ipv6. Default 'ipv4'. */
  nameserver?: 'ipv4' | 'ipv6' | 'both';
  /** Extra resolv.conf options after ndots:5, e.g. ['single-request-reopen', 'timeout:1']. */
  dnsOptions?: string[];
  /** Replaces the generated resolv.conf entirely. */
  resolvConf?: string;
}

export interface ClientResult extends ExecResult {
  /** Addresses the client printed, in its order (empty on failure). */
  addresses: string[];
}

export interface DigOptions {
  type?: string;
  tcp?: boolean;
  /** Default: the nameserver from the pod's resolv.conf. */
  server?: string;
  /** Extra dig arguments, e.g. ['+time=1', '+tries=1', '+search']. */
  options?: string[];
  timeoutMs?: number;
}

/** What a pod needs from its lab to run clients. */
export interface PodRuntime {
  muslClient: () => string;
  python: () => string;
  logDir: string;
  track(p: BackgroundProcess): void;
}

export interface PodInfo {
  index: number;
  namespace: string;
  name: string;
  uid: string;
  containerName: string;
  containerId: string;
  qos: QosClass;
  cgroupDriver: CgroupDriver;
  runtime: ContainerRuntime;
  netns: string;
  /** Host-side veth, inside the node netns. The pod side is always eth0. */
  hostVeth: string;
  ipv4: string;
  ipv6?: string;
  /** The container's cgroup2 dir (absolute); processes started through the pod run here. */
  cgroupDir: string;
  /** bpf_skb_cgroup_id() of the pod's sockets: the inode of cgroupDir. */
  cgroupId: bigint;
  /** <labroot>/var/log/pods/<ns>_<pod>_<uid> */
  logDir: string;
  /** /etc/netns/<netns>/resolv.conf, bind-mounted over /etc/resolv.conf by `ip netns exec`. */
  resolvConfPath: string;
}

export class Pod implements PodInfo {
  readonly index!: number;
  readonly namespace!: string;
  readonly name!: string;
  readonly uid!: string;
  readonly containerName!: string;
  readonly containerId!: string;
  readonly qos!: QosClass;
  readonly cgroupDriver!: CgroupDriver;
  readonly runtime!: ContainerRuntime;
  readonly netns!: string;
  readonly hostVeth!: string;
  readonly ipv4!: string;
  readonly ipv6?: string;
  readonly cgroupDir!: string;
  readonly cgroupId!: bigint;
  readonly logDir!: string;
  readonly resolvConfPath!: string;

  constructor(
    info: PodInfo,
    private readonly rt: PodRuntime,
  ) {
    Object.assign(this, info);
  }

  /** argv wrapped so that it runs in this pod's cgroup and netns (with its resolv.conf). */
  wrap(argv: readonly string[]): string[] {
    return inCgroupAndNetns(this.cgroupDir, this.netns, argv);
  }

  /** Runs argv inside the pod and waits for it; duration includes the ~ms of sh + ip netns exec. */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return exec(this.wrap(argv), opts);
  }

  /**
   * Starts argv in the background inside the pod; output goes to <labroot>/logs/. Resolves
   * once the process has joined the pod's cgroup (it enters the netns a moment later).
   */
  async spawn(
    argv: readonly string[],
    opts: { logFile?: string } = {},
  ): Promise<BackgroundProcess> {
    const p = startBackground(this.wrap(argv), {
      logFile:
        opts.logFile ?? join(this.rt.logDir, `${this.namespace}_${this.name}-${Date.now()}.log`),
    });
    this.rt.track(p);
    const deadline = Date.now() + 5000;
    while (!(await cgroupProcs(this.cgroupDir)).includes(p.pid)) {
      if (Date.now() > deadline) {
        await p.stop('SIGKILL');
        throw new Error(
          `pod ${this.namespace}/${this.name}: ${argv.join(' ')} did not join ${this.cgroupDir}`,
        );
      }
      await sleep(5);
    }
    return p;
  }

  /** glibc: `getent ahosts NAME` (getaddrinfo with AI_ADDRCONFIG, A+AAAA in parallel). */
  async getent(name: string, opts?: ExecOptions): Promise<ClientResult> {
    const r = await this.exec(['getent', 'ahosts', name], opts);
    return { ...r, addresses: parseGetentAhosts(r.stdout) };
  }

  /** python3 socket.getaddrinfo (glibc underneath, without AI_ADDRCONFIG). */
  async python(name: string, opts?: ExecOptions): Promise<ClientResult> {
    const r = await this.exec([this.rt.python(), '-c', PYTHON_GAI, name], opts);
    return { ...r, addresses: parseGaiOutput(r.stdout) };
  }

  /** musl 1.2 getaddrinfo (static client, like an Alpine image). */
  async musl(
    name: string,
    family: 'unspec' | 'inet' | 'inet6' = 'unspec',
    opts?: ExecOptions,
  ): Promise<ClientResult> {
    const r = await this.exec([this.rt.muslClient(), name, family], opts);
    return { ...r, addresses: parseGaiOutput(r.stdout) };
  }

  /** dig NAME [TYPE] [+tcp] [@server]: no search list unless options has +search. */
  async dig(name: string, o: DigOptions = {}): Promise<ClientResult & { status?: string }> {
    const argv = [
      'dig',
      ...(o.server ? [`@${o.server}`] : []),
      name,
      o.type ?? 'A',
      ...(o.tcp ? ['+tcp'] : []),
      ...(o.options ?? []),
    ];
    const r = await this.exec(argv, { timeoutMs: o.timeoutMs });
    return { ...r, addresses: parseDigAnswers(r.stdout), status: parseDigStatus(r.stdout) };
  }
}
