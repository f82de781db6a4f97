/**
 * Smoke test of the netns lab (test/lab): it comes up, real resolvers in a pod resolve through
 * the kube-proxy-style DNS ClusterIP, the fault knobs bite and undo, and teardown leaves nothing.
 * Needs root and the lab's tools; a missing tool fails the suite with what to install.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerCgroupSegments } from '../lab/cgroup-layout.js';
import { cgroup2Mount, findCgroup2Mount } from '../lab/cgroup2.js';
import { parseDigAnswers, parseGaiOutput, parseGetentAhosts } from '../lab/clients.js';
import { renderResolvConf } from '../lab/dns-config.js';
import { exec } from '../lab/exec.js';
import { createLab, LAB_NET, withLab, type DnsPacket, type Lab, type Pod } from '../lab/index.js';
import { renderServiceRules } from '../lab/kube-proxy.js';
import { parseTcpdumpLine } from '../lab/tcpdump-dns.js';

const DNS_VIP = LAB_NET.dnsService4;

describe('lab parsers', () => {
  it.each([
    [
      '1718000000.123456 IP 10.244.0.4.50328 > 10.96.0.10.53: 19166+ A? web.team-a.svc.cluster.local. (46)',
      {
        src: '10.244.0.4',
        srcPort: 50328,
        dst: '10.96.0.10',
        id: 19166,
        isResponse: false,
        qtype: 'A',
        qname: 'web.team-a.svc.cluster.local.',
      },
    ],
    [
      '1718000000.124001 IP 10.96.0.10.53 > 10.244.0.4.50328: 19166* 1/0/0 A 10.96.0.20 (62)',
      {
        src: '10.96.0.10',
        dstPort: 50328,
        id: 19166,
        isResponse: true,
        rcode: 'NOERROR',
        answers: ['A 10.96.0.20'],
      },
    ],
    [
      '1718000000.125 IP 10.96.0.10.53 > 10.244.0.4.50328: 39643 NXDomain* 0/0/0 (46)',
      { id: 39643, isResponse: true, rcode: 'NXDOMAIN', answers: [] },
    ],
    [
      '1718000000.126 IP 10.96.0.10.53 > 10.244.0.4.3: 7 ServFail- 0/0/0 (29)',
      { id: 7, isResponse: true, rcode: 'SERVFAIL' },
    ],
    [
      '1718000000.127 IP6 fd00:10:244::4.41234 > fd00:10:96::a.53: Flags [P.], seq 1:53, ack 1, win 502, length 52 2+ [1au] AAAA? example.com. (50)',
      {
        family: 6,
        proto: 'tcp',
        src: 'fd00:10:244::4',
        dst: 'fd00:10:96::a',
        dstPort: 53,
        id: 2,
        isResponse: false,
        qtype: 'AAAA',
        qname: 'example.com.',
      },
    ],
    [
      '1718000000.128 IP 10.96.0.10.53 > 10.244.0.4.1: 9 2/0/0 A 198.51.100.7, AAAA 2001:db8::7 (73)',
      { answers: ['A 198.51.100.7', 'AAAA 2001:db8::7'] },
    ],
  ])('parses tcpdump line %#', (line, want) => {
    expect(parseTcpdumpLine(line)).toMatchObject(want);
  });

  it.each([
    '1718000000.1 IP 10.244.0.4 > 10.244.0.1: ICMP echo request, id 1, seq 1, length 64',
    'tcpdump: listening on vp2',
    '',
  ])('ignores non-DNS line %j', (line) => expect(parseTcpdumpLine(line)).toBeUndefined());

  it.each([
    [
      '10.96.0.20      STREAM web.team-a.svc.cluster.local\n10.96.0.20      DGRAM  \n10.96.0.20      RAW    \n',
      ['10.96.0.20'],
    ],
    [
      '198.51.100.7    STREAM api.example.org\n2001:db8::7     STREAM \n',
      ['198.51.100.7', '2001:db8::7'],
    ],
    ['', []],
  ])('parses getent ahosts output %#', (out, want) => expect(parseGetentAhosts(out)).toEqual(want));

  it.each([
    ['A 198.51.100.7\nAAAA 2001:db8::7\n', ['198.51.100.7', '2001:db8::7']],
    ['getaddrinfo: -3 Try again\n', []],
  ])('parses gai client output %#', (out, want) => expect(parseGaiOutput(out)).toEqual(want));

  it('parses dig answers', () => {
    expect(
      parseDigAnswers('web.team-a.svc.cluster.local.\t0 IN A\t10.96.0.20\n;; SERVER: x\n'),
    ).toEqual(['10.96.0.20']);
  });

  it.each([
    [
      { qos: 'burstable', driver: 'systemd', runtime: 'containerd' },
      'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_ab.slice/cri-containerd-c1.scope',
    ],
    [
      { qos: 'besteffort', driver: 'systemd', runtime: 'crio' },
      'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_ab.slice/crio-c1.scope',
    ],
    [
      { qos: 'guaranteed', driver: 'systemd', runtime: 'docker' },
      'kubepods.slice/kubepods-pod1234_ab.slice/docker-c1.scope',
    ],
    [
      { qos: 'burstable', driver: 'cgroupfs', runtime: 'containerd' },
      'kubepods/burstable/pod1234-ab/c1',
    ],
    [{ qos: 'guaranteed', driver: 'cgroupfs', runtime: 'crio' }, 'kubepods/pod1234-ab/crio-c1'],
  ] as const)('lays out container cgroup %j', (o, want) => {
    expect(containerCgroupSegments({ podUid: '1234-ab', containerId: 'c1', ...o }).join('/')).toBe(
      want,
    );
  });

  it('finds the cgroup2 mount in mountinfo', () => {
    const mi = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(findCgroup2Mount(mi)).toBe('/sys/fs/cgroup/unified');
    expect(findCgroup2Mount(mi.split('\n')[0]!)).toBeUndefined();
  });

  it('renders the kubelet resolv.conf and kube-proxy DNAT chains', () => {
    expect(
      renderResolvConf({ nameservers: [DNS_VIP], namespace: 'team-a', options: ['timeout:2'] }),
    ).toBe(
      `nameserver ${DNS_VIP}\nsearch team-a.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2\n`,
    );
    const rules = renderServiceRules([
      {
        name: 'dns',
        stem: 'DNS',
        clusterIp: DNS_VIP,
        port: 53,
        protocols: ['udp'],
        endpoints: [
          { ip: '10.244.0.2', port: 53 },
          { ip: '10.244.0.3', port: 53 },
        ],
      },
    ]);
    expect(rules).toContain(
      '-m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-DNS0-UDP',
    );
    expect(rules).toContain(
      '-A KUBE-SEP-DNS1-UDP -p udp -m udp -j DNAT --to-destination 10.244.0.3:53',
    );
  });
});

interface HostState {
  netns: string[];
  cgroups: string[];
  bpffs: string[];
  etcNetns: string[];
  bpfCgroupTree: string[];
  root: string[];
}

/** Everything of one lab run visible on the host, by run id. */
async function hostState(lab: Lab): Promise<HostState> {
  const ls = (dir: string): Promise<string[]> => readdir(dir).catch(() => []);
  const mine = (names: string[]): string[] => names.filter((n) => n.includes(lab.names.labName));
  const netns = (await exec(['ip', 'netns', 'list'])).stdout.split('\n');
  const cgTree = (await exec(['bpftool', 'cgroup', 'tree', lab.cgroup2])).stdout.split('\n');
  return {
    netns: mine(netns),
    cgroups: mine(await ls(lab.cgroup2)),
    bpffs: mine(await ls('/sys/fs/bpf')),
    etcNetns: mine(await ls('/etc/netns')),
    bpfCgroupTree: mine(cgTree),
    root: existsSync(lab.root) ? [lab.root] : [],
  };
}

/** state and start time (field 22) of /proc/<pid>/stat; undefined once the pid is gone. */
const procStat = (pid: number): { state: string; start: string } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, start: f[19]! };
  } catch {
    return undefined;
  }
};

/**
 * Alive = the same process (same start time, so not a reused pid) and not a zombie waiting
 * for its parent (the test runner) to reap it.
 */
const stillRunning =
  (before: Map<number, string>) =>
  (pid: number): boolean => {
    const now = procStat(pid);
    return now !== undefined && now.state !== 'Z' && now.start === before.get(pid);
  };

describe('lab smoke', () => {
  let lab: Lab;
  let pod: Pod;

  beforeAll(async () => {
    lab = await createLab({ pods: [{ namespace: 'team-a', name: 'client' }] });
    pod = lab.pods[0]!;
    console.log(`lab ${lab.runId} up in ${lab.timings.setupMs?.toFixed(0)} ms`);
  });

  afterAll(async () => {
    await lab?.destroy(); // idempotent: the teardown test already ran it unless it failed earlier
  });

  it('comes up with the kubelet layout, resolv.conf and log tree', async () => {
    expect(pod.cgroupDir.startsWith(`${lab.kubepodsDir}/kubepods-burstable.slice/`)).toBe(true);
    expect(pod.cgroupDir).toMatch(
      new RegExp(
        `/kubepods-burstable-pod${pod.uid.replace(/-/g, '_')}\\.slice/cri-containerd-[0-9a-f]{64}\\.scope$`,
      ),
    );
    expect(pod.cgroupId).toBeGreaterThan(0n);
    expect(await readFile(pod.resolvConfPath, 'utf8')).toBe(
      `nameserver ${DNS_VIP}\nsearch team-a.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
    );
    expect(existsSync(`${lab.varLogPods}/team-a_client_${pod.uid}/app/0.log`)).toBe(true);
    // the pod's process really runs in the pod's cgroup and netns, with the pod's resolv.conf
    const r = await pod.exec([
      'sh',
      '-c',
      'cat /proc/self/cgroup; ip -o -4 addr show dev eth0; cat /etc/resolv.conf',
    ]);
    expect(r.stdout).toContain(`0::${pod.cgroupDir.slice(lab.cgroup2.length)}\n`);
    expect(r.stdout).toContain(`inet ${pod.ipv4}/24`);
    expect(r.stdout).toContain(`nameserver ${DNS_VIP}`);
    // nothing of the lab appears in the root netns
    expect((await exec(['ip', '-o', 'link'])).stdout).not.toMatch(/\b(vp\d+|cbr0)\b/);
  });

  it('glibc resolves a cluster service through the DNS ClusterIP', async () => {
    const cap = await lab.captureDns(pod);
    const r = await pod.getent('web');
    const packets = await cap.stop();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.addresses).toEqual(['10.96.0.20']);
    const queries = packets.filter((p) => !p.isResponse);
    expect(queries.map((q) => `${q.qtype} ${q.qname} ${q.dst}:${q.dstPort}`).sort()).toEqual([
      `A web.team-a.svc.cluster.local. ${DNS_VIP}:53`,
      `AAAA web.team-a.svc.cluster.local. ${DNS_VIP}:53`,
    ]);
    // answers come back from the ClusterIP: conntrack un-DNATs them
    expect(packets.filter((p) => p.isResponse).map((p) => p.src)).toEqual([DNS_VIP, DNS_VIP]);
  });

  it('glibc walks the search list for an external name (ndots:5)', async () => {
    const cap = await lab.captureDns(pod);
    const r = await pod.getent('example.com');
    const packets = await cap.stop();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.addresses).toEqual(['192.0.2.80']);

    const answer = (qname: string, qtype: string): DnsPacket | undefined =>
      packets.find((p) => p.isResponse && p.qname === qname && p.qtype === qtype);
    const candidates = [
      'example.com.team-a.svc.cluster.local.',
      'example.com.svc.cluster.local.',
      'example.com.cluster.local.',
    ];
    for (const name of candidates) {
      for (const qtype of ['A', 'AAAA']) {
        expect(
          packets.some(
            (p) => !p.isResponse && p.qname === name && p.qtype === qtype && p.dst === DNS_VIP,
          ),
          `${qtype} ${name} sent`,
        ).toBe(true);
        expect(answer(name, qtype)?.rcode, `${qtype} ${name} answer`).toBe('NXDOMAIN');
      }
    }
    expect(answer('example.com.', 'A')).toMatchObject({
      rcode: 'NOERROR',
      answers: ['A 192.0.2.80'],
    });
    expect(answer('example.com.', 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    // in search-list order: the bare name is tried last
    const firstSent = [...candidates, 'example.com.'].map(
      (n) => packets.find((p) => !p.isResponse && p.qname === n)!.time,
    );
    expect([...firstSent].sort((a, b) => a - b)).toEqual(firstSent);
  });

  it('musl, python and dig +tcp resolve too', async () => {
    const m = await pod.musl('api.example.org');
    expect(m.exitCode, m.stderr).toBe(0);
    expect(m.addresses.sort()).toEqual(['198.51.100.7', '2001:db8::7']);
    expect((await pod.musl('db.prod')).addresses).toEqual(['10.96.0.30']);

    const py = await pod.python('api.example.org');
    expect(py.exitCode, py.stderr).toBe(0);
    expect(py.addresses.sort()).toEqual(['198.51.100.7', '2001:db8::7']);

    const d = await pod.dig('kube-dns.kube-system.svc.cluster.local', { tcp: true });
    expect(d.exitCode, d.stderr).toBe(0);
    expect(d.status).toBe('NOERROR');
    expect(d.addresses).toEqual([DNS_VIP]);
    expect(d.stdout).toContain(`SERVER: ${DNS_VIP}#53(${DNS_VIP}) (TCP)`);
    const nx = await pod.dig('nothere.example.net', { tcp: true });
    expect(nx.status).toBe('NXDOMAIN');
  });

  it('spreads queries over both replicas', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      for (const a of (
        await pod.dig('whoami.default.svc.cluster.local', { options: ['+time=2', '+tries=1'] })
      ).addresses)
        seen.add(a);
    }
    expect([...seen].sort()).toEqual(['10.9.9.1', '10.9.9.2']);
  });

  it('one dropped AAAA query stalls glibc for one 5 s timeout; undo restores fast lookups', async () => {
    const undo = await lab.dropQueries({ qtype: 'AAAA', count: 1, fromPod: pod });
    const cap = await lab.captureDns(pod);
    const slow = await pod.getent('web');
    const packets = await cap.stop();
    await undo();
    expect(slow.exitCode, slow.stderr).toBe(0);
    expect(slow.addresses).toEqual(['10.96.0.20']);
    expect(slow.durationMs).toBeGreaterThanOrEqual(4500);
    expect(slow.durationMs).toBeLessThan(7000);
    // the client sent the AAAA query twice; only the retry was answered
    const aaaa = packets.filter(
      (p) => p.qtype === 'AAAA' && p.qname === 'web.team-a.svc.cluster.local.',
    );
    expect(aaaa.map((p) => (p.isResponse ? 'R' : 'Q'))).toEqual(['Q', 'Q', 'R']);

    const fast = await pod.getent('web');
    expect(fast.exitCode).toBe(0);
    expect(fast.durationMs).toBeLessThan(1000);
    expect((await lab.nodeNsenter(['iptables', '-S', 'FORWARD'])).stdout).not.toContain('DROP');
  });

  it('with every AAAA dropped musl gives up after its 5 s timeout', async () => {
    const undo = await lab.dropQueries({ qtype: 'AAAA' });
    const r = await pod.musl('web');
    await undo();
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('getaddrinfo: -3'); // EAI_AGAIN although the A answer arrived
    expect(r.durationMs).toBeGreaterThanOrEqual(4500);
    expect((await pod.musl('web')).addresses).toEqual(['10.96.0.20']);
  });

  it('slow upstream and stopped replica knobs bite and undo', async () => {
    const undoDelay = await lab.setUpstreamDelay(800);
    const slow = await pod.dig('example.com', { options: ['+time=3', '+tries=1'] });
    await undoDelay();
    expect(slow.addresses).toEqual(['192.0.2.80']);
    expect(slow.durationMs).toBeGreaterThanOrEqual(800);
    expect((await pod.dig('example.com')).durationMs).toBeLessThan(500);

    const undoStop = await lab.stopReplica(0);
    // the stopped replica's endpoint stays in the chains: about half the queries fail
    const results = [];
    for (let i = 0; i < 16; i++)
      results.push(
        (
          await pod.dig('kubernetes.default.svc.cluster.local', {
            options: ['+time=1', '+tries=1'],
          })
        ).status,
      );
    await undoStop();
    expect(results).toContain('NOERROR');
    expect(results).toContain(undefined);
    const after = [];
    for (let i = 0; i < 6; i++)
      after.push(
        (
          await pod.dig('kubernetes.default.svc.cluster.local', {
            options: ['+time=1', '+tries=1'],
          })
        ).status,
      );
    expect(after.every((s) => s === 'NOERROR')).toBe(true);
  });

  it('teardown leaves nothing behind', async () => {
    const bg = await pod.spawn(['sleep', '600']);
    await lab.dropQueries({ qtype: 'A', probability: 0.1 }); // loads and pins the fault programs
    const pids = await lab.pids();
    const starts = new Map(pids.map((p) => [p, procStat(p)?.start ?? '']));
    expect(pids).toContain(bg.pid);
    expect(pids.length).toBeGreaterThanOrEqual(4); // 2 dnsmasq, upstream, sleep
    const before = await hostState(lab);
    expect(before.netns.length).toBe(4);
    expect(before.cgroups).toEqual([lab.names.labName]);
    expect(before.bpffs).toEqual([lab.names.labName]);
    expect(before.etcNetns.length).toBe(3);

    const removed = await lab.destroy();
    console.log(
      `lab ${lab.runId} torn down in ${lab.timings.teardownMs?.toFixed(0)} ms (${removed.length} items)`,
    );
    expect(await hostState(lab)).toEqual({
      netns: [],
      cgroups: [],
      bpffs: [],
      etcNetns: [],
      bpfCgroupTree: [],
      root: [],
    });
    expect(pids.filter(stillRunning(starts))).toEqual([]);
  });
});

describe('lab smoke (dual-stack)', () => {
  it('resolves over the IPv6 DNS ClusterIP, drops over ip6tables, and cleans up', async () => {
    let labName = '';
    await withLab({ ipv6: true }, async (lab) => {
      labName = lab.names.labName;
      const pod = await lab.addPod({ namespace: 'default', name: 'v6client', nameserver: 'ipv6' });
      const alpine = await lab.addPod({
        namespace: 'team-b',
        name: 'alpine',
        nameserver: 'both',
        qos: 'guaranteed',
        cgroupDriver: 'cgroupfs',
        runtime: 'crio',
        dnsOptions: ['timeout:2'],
      });
      expect(alpine.cgroupDir).toBe(
        `${lab.cgroupDir}/kubepods/pod${alpine.uid}/crio-${alpine.containerId}`,
      );
      expect(await readFile(alpine.resolvConfPath, 'utf8')).toBe(
        `nameserver ${LAB_NET.dnsService6}\nnameserver ${DNS_VIP}\n` +
          'search team-b.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2\n',
      );

      const cap = await lab.captureDns(pod);
      const r = await pod.getent('dual');
      const packets = await cap.stop();
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.addresses.sort()).toEqual(['10.96.0.40', 'fd00:10:96::28']);
      expect(r.durationMs).toBeLessThan(500); // no DAD stall on the first IPv6 packets
      expect(
        packets
          .filter((p) => !p.isResponse)
          .map((p) => `${p.family} ${p.dst} ${p.qtype}`)
          .sort(),
      ).toEqual([`6 ${LAB_NET.dnsService6} A`, `6 ${LAB_NET.dnsService6} AAAA`]);
      expect((await alpine.musl('api.example.org')).addresses.sort()).toEqual([
        '198.51.100.7',
        '2001:db8::7',
      ]);
      const d = await pod.dig('kube-dns.kube-system.svc.cluster.local', {
        type: 'AAAA',
        tcp: true,
      });
      expect(d.addresses).toEqual([LAB_NET.dnsService6]);

      const undo = await lab.dropQueries({ qtype: 'AAAA', count: 1, fromPod: pod });
      const slow = await pod.getent('dual');
      await undo();
      expect(slow.addresses.sort()).toEqual(['10.96.0.40', 'fd00:10:96::28']);
      expect(slow.durationMs).toBeGreaterThanOrEqual(4500);
    });
    const left = [
      (await exec(['ip', 'netns', 'list'])).stdout,
      ...(await readdir(await cgroup2Mount())),
      ...(await readdir('/sys/fs/bpf')),
      ...(await readdir('/etc/netns').catch(() => [])),
    ];
    expect(left.filter((n) => n.includes(labName))).toEqual([]);
  });
});
