import { randomBytes, randomUUID } from 'node:crypto';
import { access, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  cgroup2Mount,
  cgroupId,
  cgroupProcs,
  cgroupTreeDepthFirst,
  removeCgroupDir,
} from './cgroup2.js';
import {
  containerCgroupSegments,
  kubepodsDirName,
  type CgroupDriver,
  type ContainerRuntime,
} from './cgroup-layout.js';
import { startDnsCapture, type DnsCapture } from './capture.js';
import {
  defaultHostPaths,
  findLabRuns,
  OWNER_FILE,
  processStartTime,
  removeLabRun,
  type LabHostPaths,
} from './cleanup.js';
import { ensureMuslClient, LAB_DIR, REPO_ROOT } from './clients.js';
import {
  DEFAULT_UPSTREAM_RECORDS,
  defaultClusterRecords,
  renderReplicaConfig,
  renderResolvConf,
  type ClusterRecord,
  type UpstreamRecord,
} from './dns-config.js';
import {
  exec,
  inCgroupAndNetns,
  run,
  sleep,
  startBackground,
  waitForOutput,
  type BackgroundProcess,
  type ExecResult,
} from './exec.js';
import { renderServiceRules } from './kube-proxy.js';
import { BRIDGE_NAME, hostVethName, labNames, newRunId, type LabNames } from './names.js';
import { Pod, type PodOptions } from './pod.js';
import { preflight, which } from './preflight.js';

/** Addresses of the lab "cluster" (the same in every lab: each lab has its own netns). */
/** Pod subnet of one lab: 10.244.<n>.0/24 and fd00:10:244:<n>::/64, n from the run id. */
export interface LabPodNet {
  prefix4: string;
  gateway4: string;
  prefix6: string;
  gateway6: string;
}

/**
 * Each lab gets its own pod subnet: drops are attributed by pod address across every netns of
 * the host, so two labs running at once must not share addresses.
 */
export function podNetOf(runId: string): LabPodNet {
  const n = parseInt(runId.slice(0, 2), 16) % 250;
  return {
    prefix4: `10.244.${n}`,
    gateway4: `10.244.${n}.1`,
    prefix6: `fd00:10:244:${n.toString(16)}:`,
    gateway6: `fd00:10:244:${n.toString(16)}::1`,
  };
}

export const LAB_NET = {
  serviceCidr4: '10.96.0.0/12',
  serviceCidr6: 'fd00:10:96::/112',
  dnsService4: '10.96.0.10',
  dnsService6: 'fd00:10:96::a',
} as const;

export interface LabOptions {
  /** Dual-stack: pods, replicas and the node get IPv6 too, plus an IPv6 DNS ClusterIP. */
  ipv6?: boolean;
  /** DNS replicas (coredns-0..n-1 in kube-system). Default 2. */
  replicas?: number;
  /** Records the replicas serve; default defaultClusterRecords(). */
  records?: ClusterRecord[];
  extraRecords?: ClusterRecord[];
  /** Names the upstream answers; default example.com (A) and api.example.org (A+AAAA). */
  upstreamRecords?: Record<string, UpstreamRecord>;
  /** Default cgroup layout for pods ('systemd') and runtime ('containerd'); pods may override. */
  cgroupDriver?: CgroupDriver;
  runtime?: ContainerRuntime;
  /** dnsmasq log-queries into <labroot>/logs/coredns-<i>.log. Default true. */
  logQueries?: boolean;
  /** Client pods to create with the lab. */
  pods?: PodOptions[];
}

export type Undo = () => Promise<void>;

export interface DropQueriesOptions {
  qtype: 'A' | 'AAAA';
  /** Drop this fraction (0, 1] of matching queries. Default 1 (all). */
  probability?: number;
  /**
   * Drop only the first `count` matching queries, then let them pass: one lost packet per
   * lookup, like a conntrack insert race. glibc then stalls exactly one 5 s timeout.
   */
  count?: number;
  /** Only queries from this pod (its IPv4 and, in a dual-stack lab, IPv6 address). */
  fromPod?: Pod;
}

interface Replica {
  pod: Pod;
  configFile: string;
  process?: BackgroundProcess;
}

/** Set-up and teardown durations, for reports. */
export interface LabTimings {
  setupMs?: number;
  teardownMs?: number;
}

export class Lab {
  readonly runId: string;
  readonly names: LabNames;
  /** cgroup2 mount point (here /sys/fs/cgroup/unified). */
  readonly cgroup2: string;
  /** The lab parent cgroup (stands in for the node's cgroup root): attach BPF programs here. */
  readonly cgroupDir: string;
  /** `<cgroupDir>/kubepods.slice` (or `kubepods` with the cgroupfs driver). */
  readonly kubepodsDir: string;
  /** Processes that are not pods (upstream DNS, tcpdump) live under here, like a node's system.slice. */
  readonly systemSliceDir: string;
  readonly bpffsDir: string;
  /** Temp dir holding the kubelet-like var/log tree, configs and logs. */
  readonly root: string;
  readonly varLogPods: string;
  readonly varLogContainers: string;
  readonly logDir: string;
  readonly nodeNetns: string;
  readonly bridge = BRIDGE_NAME;
  readonly ipv6: boolean;
  /** This lab's pod subnet (podNetOf). */
  readonly net: LabPodNet;
  readonly dnsService: { ipv4: string; ipv6?: string };
  readonly replicas: Pod[] = [];
  readonly pods: Pod[] = [];
  readonly timings: LabTimings = {};

  private readonly opts: LabOptions;
  private readonly driver: CgroupDriver;
  private readonly runtime: ContainerRuntime;
  private readonly records: ClusterRecord[];
  private readonly replicaState: Replica[] = [];
  private readonly background = new Set<BackgroundProcess>();
  private readonly hostPaths: LabHostPaths;
  private readonly delayFile: string;
  private nextIndex = 0;
  private captures = 0;
  private muslClient = '';
  private python = 'python3';
  private faultProgs?: Promise<void>;
  private destroyed?: Promise<string[]>;

  private constructor(opts: LabOptions, cgroup2: string) {
    this.opts = opts;
    this.runId = newRunId();
    this.names = labNames(this.runId);
    this.net = podNetOf(this.runId);
    this.cgroup2 = cgroup2;
    this.cgroupDir = join(cgroup2, this.names.labName);
    this.driver = opts.cgroupDriver ?? 'systemd';
    this.runtime = opts.runtime ?? 'containerd';
    this.kubepodsDir = join(this.cgroupDir, kubepodsDirName(this.driver));
    this.systemSliceDir = join(this.cgroupDir, 'system.slice');
    this.bpffsDir = this.names.bpffsDir;
    this.root = this.names.rootDir;
    this.varLogPods = join(this.root, 'var/log/pods');
    this.varLogContainers = join(this.root, 'var/log/containers');
    this.logDir = join(this.root, 'logs');
    this.delayFile = join(this.root, 'upstream/delay-ms');
    this.nodeNetns = this.names.nodeNetns;
    this.ipv6 = opts.ipv6 ?? false;
    this.dnsService = this.ipv6
      ? { ipv4: LAB_NET.dnsService4, ipv6: LAB_NET.dnsService6 }
      : { ipv4: LAB_NET.dnsService4 };
    this.records = [
      ...(opts.records ?? defaultClusterRecords(this.dnsService)),
      ...(opts.extraRecords ?? []),
    ];
    this.hostPaths = defaultHostPaths(cgroup2);
  }

  /** Checks prerequisites, builds the whole lab, and tears it down again if any step fails. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    const start = performance.now();
    await preflight();
    const lab = new Lab(opts, await cgroup2Mount());
    try {
      await lab.setUp();
    } catch (err) {
      await lab.destroy().catch((cleanupErr: unknown) => {
        throw new AggregateError([err, cleanupErr], `lab set-up failed and so did its cleanup`);
      });
      throw err;
    }
    lab.timings.setupMs = performance.now() - start;
    return lab;
  }

  private async setUp(): Promise<void> {
    // The owner file first: from here on the cleanup CLI can tell this live lab from a crashed one.
    await mkdir(this.root, { mode: 0o755 }); // not recursive: a run-id clash must fail here
    await writeFile(
      join(this.root, OWNER_FILE),
      JSON.stringify({ pid: process.pid, startTime: await processStartTime(process.pid) }),
    );
    await Promise.all([
      mkdir(this.logDir, { recursive: true }),
      mkdir(dirname(this.delayFile), { recursive: true }),
      mkdir(this.varLogContainers, { recursive: true }),
      mkdir(this.bpffsDir, { recursive: true }),
      mkdir(this.kubepodsDir, { recursive: true }),
      mkdir(join(this.systemSliceDir, 'upstream-dns.service'), { recursive: true }),
    ]);
    const musl = ensureMuslClient().then((p) => (this.muslClient = p));
    this.python =
      (await access('/usr/bin/python3').then(
        () => '/usr/bin/python3',
        () => undefined,
      )) ??
      (await which('python3')) ??
      'python3';

    await this.setUpNode();
    const upstream = this.startUpstream();
    const replicas = Array.from({ length: this.opts.replicas ?? 2 }, (_, i) => this.addReplica(i));
    await Promise.all([upstream, ...replicas, musl]);
    await this.setUpServices();
    for (const p of this.opts.pods ?? []) await this.addPod(p);
    await Promise.all(this.replicaState.map((r) => this.waitReplicaReady(r)));
  }

  private async setUpNode(): Promise<void> {
    const n = this.nodeNetns;
    await run(['ip', 'netns', 'add', n]);
    if (this.ipv6) await this.disableDad(n);
    const cmds = [
      'link set lo up',
      `link add ${BRIDGE_NAME} type bridge`,
      `addr add ${this.net.gateway4}/24 dev ${BRIDGE_NAME}`,
      ...(this.ipv6 ? [`addr add ${this.net.gateway6}/64 dev ${BRIDGE_NAME} nodad`] : []),
      `link set ${BRIDGE_NAME} up`,
      // Node-local clients reach ClusterIPs like on a node with a default route; OUTPUT DNATs them.
      `route add ${LAB_NET.serviceCidr4} dev ${BRIDGE_NAME}`,
      ...(this.ipv6 ? [`route add ${LAB_NET.serviceCidr6} dev ${BRIDGE_NAME}`] : []),
    ];
    await run(['ip', '-n', n, '-batch', '-'], { input: cmds.join('\n') + '\n' });
    const sysctls = [
      'net.ipv4.ip_forward=1',
      // per-netns; makes bridged pod-to-pod traffic pass iptables, as with the bridge CNI
      'net.bridge.bridge-nf-call-iptables=1',
      ...(this.ipv6
        ? ['net.ipv6.conf.all.forwarding=1', 'net.bridge.bridge-nf-call-ip6tables=1']
        : []),
    ];
    await run(['ip', 'netns', 'exec', n, 'sysctl', '-qw', ...sysctls]);
  }

  /**
   * No duplicate address detection for interfaces created later in this netns: while the
   * bridge's link-local address is tentative (~1 s) the node cannot send neighbour
   * solicitations, so the first IPv6 query after set-up would stall for a second.
   */
  private async disableDad(netns: string): Promise<void> {
    await run([
      'ip',
      'netns',
      'exec',
      netns,
      'sysctl',
      '-qw',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
    ]);
  }

  private async setUpServices(): Promise<void> {
    const endpoints = (family: 4 | 6): { ip: string; port: number }[] =>
      this.replicas.map((p) => ({ ip: family === 4 ? p.ipv4 : p.ipv6!, port: 53 }));
    const svc = {
      name: 'kube-system/kube-dns:dns',
      stem: 'DNS',
      port: 53,
      protocols: ['udp', 'tcp'] as ('udp' | 'tcp')[],
    };
    await run(['ip', 'netns', 'exec', this.nodeNetns, 'iptables-restore', '--noflush'], {
      input: renderServiceRules([
        { ...svc, clusterIp: LAB_NET.dnsService4, endpoints: endpoints(4) },
      ]),
    });
    if (this.ipv6) {
      await run(['ip', 'netns', 'exec', this.nodeNetns, 'ip6tables-restore', '--noflush'], {
        input: renderServiceRules([
          { ...svc, clusterIp: LAB_NET.dnsService6, endpoints: endpoints(6) },
        ]),
      });
    }
  }

  private async startUpstream(): Promise<void> {
    const config = join(this.root, 'upstream/config.json');
    await writeFile(this.delayFile, '0\n');
    await writeFile(
      config,
      JSON.stringify({
        listen: [this.net.gateway4, ...(this.ipv6 ? [this.net.gateway6] : [])],
        port: 53,
        records: this.opts.upstreamRecords ?? DEFAULT_UPSTREAM_RECORDS,
        delayFile: this.delayFile,
      }),
    );
    const tsx = pathToFileURL(
      join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/loader.mjs'),
    ).href;
    const p = startBackground(
      inCgroupAndNetns(join(this.systemSliceDir, 'upstream-dns.service'), this.nodeNetns, [
        process.execPath,
        '--import',
        tsx,
        join(LAB_DIR, 'upstream-dns.ts'),
        config,
      ]),
      { logFile: join(this.logDir, 'upstream-dns.log'), pipeStdout: true, cwd: REPO_ROOT },
    );
    this.background.add(p);
    await waitForOutput(
      p.child.stdout!,
      'ready',
      'upstream DNS (test/lab/upstream-dns.ts)',
      15_000,
      p.exited,
    );
    p.child.stdout!.resume();
  }

  private async addReplica(i: number): Promise<void> {
    const pod = await this.createPod(
      { namespace: 'kube-system', name: `coredns-${i}`, containerName: 'coredns' },
      // dnsPolicy Default, as CoreDNS has: the node's resolver
      `nameserver ${this.net.gateway4}\n`,
    );
    this.replicas[i] = pod; // replicas are created in parallel: keep index order
    const configFile = join(this.root, `coredns-${i}.conf`);
    await writeFile(
      configFile,
      renderReplicaConfig({
        replica: i,
        listen: [pod.ipv4, ...(pod.ipv6 ? [pod.ipv6] : [])],
        upstream: this.net.gateway4,
        records: this.records,
        logQueries: this.opts.logQueries ?? true,
      }),
    );
    const r: Replica = { pod, configFile };
    this.replicaState[i] = r;
    this.startReplica(r);
  }

  private startReplica(r: Replica): void {
    const name = r.pod.name;
    r.process = startBackground(
      r.pod.wrap([
        'dnsmasq',
        '--keep-in-foreground',
        `--conf-file=${r.configFile}`,
        `--pid-file=${join(this.root, `${name}.pid`)}`,
        '--log-facility=-',
      ]),
      { logFile: join(this.logDir, `${name}.log`) },
    );
    this.background.add(r.process);
  }

  /** Polls the replica directly (not through the ClusterIP) until it answers. */
  private async waitReplicaReady(r: Replica, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: ExecResult | undefined;
    while (Date.now() < deadline) {
      last = await exec([
        'ip',
        'netns',
        'exec',
        this.nodeNetns,
        'dig',
        `@${r.pod.ipv4}`,
        '+time=1',
        '+tries=1',
        '+short',
        'kubernetes.default.svc.cluster.local',
      ]);
      if (last.exitCode === 0 && last.stdout.trim()) return;
      await sleep(20);
    }
    const log = await readFile(join(this.logDir, `${r.pod.name}.log`), 'utf8').catch(() => '');
    throw new Error(
      `DNS replica ${r.pod.name} (${r.pod.ipv4}) not answering after ${timeoutMs} ms: ${last?.stdout}${last?.stderr}\n${log.slice(-1000)}`,
    );
  }

  /** Creates a pod: netns + veth on the bridge, cgroup in the kubelet layout, resolv.conf, log dir. */
  async addPod(o: PodOptions): Promise<Pod> {
    const ns = o.nameserver ?? 'ipv4';
    if (ns !== 'ipv4' && !this.ipv6)
      throw new Error(`pod ${o.namespace}/${o.name}: nameserver ${ns} needs a lab with ipv6: true`);
    const nameservers = [
      ...(ns !== 'ipv4' ? [LAB_NET.dnsService6] : []),
      ...(ns !== 'ipv6' ? [LAB_NET.dnsService4] : []),
    ];
    const pod = await this.createPod(
      o,
      o.resolvConf ??
        renderResolvConf({ nameservers, namespace: o.namespace, options: o.dnsOptions }),
    );
    this.pods.push(pod);
    return pod;
  }

  private async createPod(o: PodOptions, resolvConf: string): Promise<Pod> {
    const index = this.nextIndex++;
    if (index > 250) throw new Error('lab: at most 251 pods fit in the /24');
    const host = index + 2;
    const uid = o.uid ?? randomUUID();
    const containerId = randomBytes(32).toString('hex');
    const containerName = o.containerName ?? 'app';
    const qos = o.qos ?? 'burstable';
    const cgroupDriver = o.cgroupDriver ?? this.driver;
    const runtime = o.runtime ?? this.runtime;
    const netns = this.names.podNetns(index, o.name);
    const hostVeth = hostVethName(index);
    const ipv4 = `${this.net.prefix4}.${host}`;
    const ipv6 = this.ipv6 ? `${this.net.prefix6}:${host.toString(16)}` : undefined;
    const cgroupDir = join(
      this.cgroupDir,
      ...containerCgroupSegments({ podUid: uid, containerId, qos, driver: cgroupDriver, runtime }),
    );
    const logDir = join(this.varLogPods, `${o.namespace}_${o.name}_${uid}`);
    const resolvConfPath = join(this.hostPaths.etcNetns, netns, 'resolv.conf');

    await run(['ip', 'netns', 'add', netns]);
    if (this.ipv6) await this.disableDad(netns);
    // The veth is created inside the node netns and its peer moved straight into the pod,
    // so no interface ever appears in the root netns.
    await run(['ip', '-n', this.nodeNetns, '-batch', '-'], {
      input: `link add ${hostVeth} type veth peer name eth0 netns ${netns}\nlink set ${hostVeth} master ${BRIDGE_NAME} up\n`,
    });
    const podCmds = [
      'link set lo up',
      `addr add ${ipv4}/24 dev eth0`,
      ...(ipv6 ? [`addr add ${ipv6}/64 dev eth0 nodad`] : []),
      'link set eth0 up',
      `route add default via ${this.net.gateway4}`,
      ...(ipv6 ? [`route add default via ${this.net.gateway6}`] : []),
    ];
    await run(['ip', '-n', netns, '-batch', '-'], { input: podCmds.join('\n') + '\n' });
    await mkdir(cgroupDir, { recursive: true });
    await mkdir(dirname(resolvConfPath), { recursive: true });
    await writeFile(resolvConfPath, resolvConf);
    // kubelet-like log tree: /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and the
    // /var/log/containers/<pod>_<ns>_<container>-<id>.log symlink to it.
    const logFile = join(logDir, containerName, '0.log');
    await mkdir(dirname(logFile), { recursive: true });
    await writeFile(
      logFile,
      `${new Date().toISOString()} stdout F lab pod ${o.namespace}/${o.name} started\n`,
    );
    await symlink(
      logFile,
      join(this.varLogContainers, `${o.name}_${o.namespace}_${containerName}-${containerId}.log`),
    );

    return new Pod(
      {
        index,
        namespace: o.namespace,
        name: o.name,
        uid,
        containerName,
        containerId,
        qos,
        cgroupDriver,
        runtime,
        netns,
        hostVeth,
        ipv4,
        ipv6,
        cgroupDir,
        cgroupId: await cgroupId(cgroupDir),
        logDir,
        resolvConfPath,
      },
      {
        // getters: replicas are created while the musl client is still being built
        muslClient: () => this.muslClient,
        python: () => this.python,
        logDir: this.logDir,
        track: (p) => this.background.add(p),
      },
    );
  }

  /**
   * Deletes a pod the way the kubelet does: its processes are killed (by PID), its container
   * and pod cgroups removed, its netns (and with it the veth) and resolv.conf deleted, and its
   * /var/log/pods directory and /var/log/containers link removed.
   */
  async deletePod(pod: Pod): Promise<void> {
    for (const pid of await cgroupProcs(pod.cgroupDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await removeCgroupDir(pod.cgroupDir);
    await removeCgroupDir(dirname(pod.cgroupDir)); // the pod-level cgroup
    await run(['ip', 'netns', 'del', pod.netns]);
    await rm(dirname(pod.resolvConfPath), { recursive: true, force: true });
    await rm(pod.logDir, { recursive: true, force: true });
    await rm(
      join(
        this.varLogContainers,
        `${pod.name}_${pod.namespace}_${pod.containerName}-${pod.containerId}.log`,
      ),
      { force: true },
    );
    this.pods.splice(this.pods.indexOf(pod), 1);
  }

  /** PIDs of every process in the lab's cgroups (pods, replicas, upstream, captures). */
  async pids(): Promise<number[]> {
    const out: number[] = [];
    for (const d of await cgroupTreeDepthFirst(this.cgroupDir)) out.push(...(await cgroupProcs(d)));
    return out;
  }

  /** Runs argv in the node netns through `ip netns exec` (no /sys/fs/bpf in there). */
  nodeExec(argv: readonly string[]): Promise<ExecResult> {
    return exec(['ip', 'netns', 'exec', this.nodeNetns, ...argv]);
  }

  /** Runs argv in the node netns through nsenter: /sys/fs/bpf stays visible (pinned objects). */
  nodeNsenter(argv: readonly string[]): Promise<ExecResult> {
    return exec(['nsenter', `--net=/run/netns/${this.nodeNetns}`, ...argv]);
  }

  /** Records the pod's DNS packets on its host-side veth; stop() returns the parsed packets. */
  async captureDns(pod: Pod): Promise<DnsCapture> {
    const dir = join(this.systemSliceDir, 'lab-capture.scope');
    await mkdir(dir, { recursive: true });
    const { capture, process } = await startDnsCapture({
      nodeNetns: this.nodeNetns,
      iface: pod.hostVeth,
      cgroupDir: dir,
      file: join(this.root, `capture-${pod.hostVeth}-${++this.captures}.pcap`),
      logDir: this.logDir,
    });
    this.background.add(process);
    return capture;
  }

  private loadFaultPrograms(): Promise<void> {
    this.faultProgs ??= (async () => {
      await mkdir(join(this.bpffsDir, 'lab'), { recursive: true });
      await run([
        'bpftool',
        'prog',
        'loadall',
        join(LAB_DIR, 'bpf/dist/qtype_match.bpf.o'),
        join(this.bpffsDir, 'lab/progs'),
      ]);
    })();
    return this.faultProgs;
  }

  /**
   * Drops DNS queries of one QTYPE (UDP, first question) in the node's FORWARD chain, i.e.
   * after the ClusterIP DNAT, before the replica: the client times out and retries, the
   * replica never sees the query. glibc with every AAAA dropped stalls 15 s per search-list
   * candidate (parallel, then single-request, then single-request-reopen); use `count` for
   * exactly one stall.
   */
  async dropQueries(o: DropQueriesOptions): Promise<Undo> {
    const p = o.probability ?? 1;
    if (!(p > 0 && p <= 1)) throw new Error(`dropQueries: probability ${p} is not in (0, 1]`);
    if (o.count !== undefined && !(Number.isInteger(o.count) && o.count > 0 && o.count <= 100)) {
      throw new Error(`dropQueries: count ${o.count} is not an integer in 1..100`);
    }
    if (o.count !== undefined && o.probability !== undefined)
      throw new Error('dropQueries: give count or probability, not both');
    await this.loadFaultPrograms();
    const pin = join(this.bpffsDir, 'lab/progs', o.qtype === 'A' ? 'qtype_a' : 'qtype_aaaa');
    const rule = (src?: string): string[] => [
      'FORWARD',
      '-p',
      'udp',
      '-m',
      'udp',
      '--dport',
      '53',
      ...(src ? ['-s', src] : []),
      // nsenter, not ip netns exec: the pinned program must be reachable under /sys/fs/bpf
      '-m',
      'bpf',
      '--object-pinned',
      pin,
      ...(p < 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', String(p)] : []),
      // nth with a huge period matches only the 1st packet that reaches it: one drop per rule
      ...(o.count
        ? ['-m', 'statistic', '--mode', 'nth', '--every', '2000000000', '--packet', '0']
        : []),
      '-m',
      'comment',
      '--comment',
      `dnsrace-lab drop ${o.qtype} ${o.count ? `first ${o.count}` : p}`,
      '-j',
      'DROP',
    ];
    const applied: string[][] = [];
    const families: [string, string | undefined][] = [['iptables', o.fromPod?.ipv4]];
    if (this.ipv6) families.push(['ip6tables', o.fromPod?.ipv6]);
    try {
      for (const [tool, src] of families) {
        if (o.fromPod && !src) continue;
        const spec = rule(src);
        const [chain, ...rest] = spec;
        for (let i = 0; i < (o.count ?? 1); i++) {
          const r = await this.nodeNsenter([tool, '-I', chain!, '1', ...rest]);
          if (r.exitCode !== 0) throw new Error(`${tool} -I ${spec.join(' ')}: ${r.stderr.trim()}`);
          applied.push([tool, ...spec]);
        }
      }
    } catch (err) {
      await this.deleteRules(applied);
      throw err;
    }
    let undone = false;
    return async () => {
      if (undone || this.destroyed) return;
      undone = true;
      await this.deleteRules(applied);
    };
  }

  private async deleteRules(rules: string[][]): Promise<void> {
    for (const [tool, ...spec] of rules) {
      const r = await this.nodeNsenter([tool!, '-D', ...spec]);
      if (r.exitCode !== 0) throw new Error(`${tool} -D ${spec.join(' ')}: ${r.stderr.trim()}`);
    }
  }

  /** Kills DNS replica i (its endpoint stays in the ClusterIP chains, as before kube-proxy notices). */
  async stopReplica(i: number): Promise<Undo> {
    const r = this.replicaState[i];
    if (!r) throw new Error(`stopReplica: no replica ${i} (have ${this.replicaState.length})`);
    await r.process?.stop('SIGTERM');
    r.process = undefined;
    let undone = false;
    return async () => {
      if (undone || this.destroyed) return;
      undone = true;
      this.startReplica(r);
      await this.waitReplicaReady(r);
    };
  }

  /** Delays every upstream answer by `ms` (the "slow upstream" fault). Undo restores the previous delay. */
  async setUpstreamDelay(ms: number): Promise<Undo> {
    if (!(ms >= 0)) throw new Error(`setUpstreamDelay: ${ms} is not a delay in ms`);
    const previous = (await readFile(this.delayFile, 'utf8')).trim();
    await writeFile(this.delayFile, `${Math.round(ms)}\n`);
    let undone = false;
    return async () => {
      if (undone || this.destroyed) return;
      undone = true;
      await writeFile(this.delayFile, `${previous}\n`);
    };
  }

  /**
   * Removes everything the lab made: stops its processes (captures get SIGINT so they finish
   * their file), then kills whatever is left in its cgroups or netns by PID, detaches BPF
   * programs still attached to its cgroups, removes cgroups, netns, /etc/netns entries, pins,
   * and the lab root. Idempotent. Returns one line per removed thing.
   */
  destroy(): Promise<string[]> {
    this.destroyed ??= (async () => {
      const start = performance.now();
      await Promise.all(
        [...this.background].map((p) =>
          p.stop(p.child.spawnargs.includes('tcpdump') ? 'SIGINT' : 'SIGTERM', 1000),
        ),
      );
      const runs = (await findLabRuns(this.hostPaths)).filter((r) => r.runId === this.runId);
      const removed: string[] = [];
      for (const r of runs) removed.push(...(await removeLabRun(r, this.hostPaths)));
      this.timings.teardownMs = performance.now() - start;
      return removed;
    })();
    return this.destroyed;
  }
}

export const createLab = (opts?: LabOptions): Promise<Lab> => Lab.create(opts);

/** Creates a lab, runs fn, and always destroys the lab (also when fn throws). */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.create(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}
