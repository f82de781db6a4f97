// The resolver doctor: what a pod's resolver is (glibc or musl), how it is configured, what
// that costs (search-list amplification, stalls), and what to change. Pure: works on what
// pod-probe.ts read and what the kernel counted; every finding carries its numbers.
import type { CauseLabel } from '../metrics/names.js';
import type { LibcFromInterpreter } from './elf.js';
import type { Lookup } from './lookup.js';
import type { ResolvConf } from './resolv-conf.js';

export type Libc = 'glibc' | 'musl' | 'mixed' | 'unknown';
export type Severity = 'critical' | 'warning' | 'info';

export interface Finding {
  id:
    | 'dropped_queries'
    | 'search_amplification'
    | 'timeouts'
    | 'slow_server'
    | 'reopen_on_musl'
    | 'long_timeout'
    | 'no_resolv_conf';
  severity: Severity;
  title: string;
  detail: string;
  fixes: string[];
}

/** The pod's client-side counters (all qtypes), from dns_stats. */
export interface PodCounters {
  queries: number;
  noerror: number;
  nxdomain: number;
  servfail: number;
  retransmits: Record<CauseLabel, number>;
  timeouts: Record<CauseLabel, number>;
}

export interface DoctorInput {
  /** The pod's effective resolv.conf, read through a process of the pod, or why not. */
  resolv: { conf: ResolvConf; source: string } | { error: string };
  /** The ELF interpreter of that process (/proc/<pid>/exe). */
  interpreter?: { path: string | null; libc: LibcFromInterpreter; source: string };
  counters: PodCounters | undefined;
  /** Packets of the pod dropped by netfilter (dnsrace_netfilter_drops_total), by reason. */
  drops: { netfilter_drop: number; conntrack_insert_failed: number };
  /** Client UDP queries in the pod's events by socket shape, and first re-send delays. */
  shape: { connected: number; unconnected: number; firstRetryDelays: number[] };
  /** The pod's recent events, newest first. */
  recent: readonly Lookup[];
}

export interface SearchWalk {
  /** The name the application asked for. */
  name: string;
  /** The search-list candidates that were tried first and answered NXDOMAIN. */
  tried: string[];
}

export interface DoctorReport {
  resolvConf: {
    source: string;
    nameservers: string[];
    search: string[];
    ndots: number;
    timeout: number;
    attempts: number;
    options: string[];
  } | null;
  resolvConfError: string | null;
  libc: { verdict: Libc; evidence: string[] };
  amplification: {
    /** Queries sent per query answered NOERROR; null before any NOERROR answer. */
    factor: number | null;
    queries: number;
    noerror: number;
    nxdomain: number;
    walk: SearchWalk | null;
  };
  findings: Finding[];
}

const SEVERITY_ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function inferLibc(input: DoctorInput, conf: ResolvConf | undefined): DoctorReport['libc'] {
  const evidence: string[] = [];
  const { connected, unconnected, firstRetryDelays } = input.shape;
  const interp = input.interpreter;
  let traffic: 'glibc' | 'musl' | undefined;
  if (unconnected > connected) {
    traffic = 'musl';
    evidence.push(
      `${unconnected} of ${connected + unconnected} queries seen left an unconnected UDP socket: musl's shape (glibc connect()s its socket)`,
    );
  } else if (connected > unconnected) {
    traffic = 'glibc';
    evidence.push(
      `${connected} of ${connected + unconnected} queries seen left a connected UDP socket: glibc's shape (Go and c-ares connect too)`,
    );
  }
  const delay = median(firstRetryDelays);
  if (delay !== undefined) {
    const timeout = conf?.timeout ?? 5;
    const attempts = conf?.attempts ?? 2;
    const musl = timeout / attempts;
    const guess = Math.abs(delay - musl) < Math.abs(delay - timeout) ? 'musl' : 'glibc';
    evidence.push(
      `first re-send after ${round(delay, 1)} s: ${guess === 'musl' ? `musl re-sends after timeout/attempts = ${round(musl, 1)} s` : `glibc re-sends after timeout = ${timeout} s`}`,
    );
    traffic ??= guess;
  }
  if (interp) {
    if (interp.libc === 'static')
      evidence.push(`${interp.source} is statically linked: its interpreter tells nothing`);
    else evidence.push(`${interp.source} runs with ${interp.path ?? '?'} (${interp.libc})`);
  }
  const fromInterp =
    interp && (interp.libc === 'glibc' || interp.libc === 'musl') ? interp.libc : undefined;
  let verdict: Libc = 'unknown';
  if (traffic === 'musl') verdict = fromInterp === 'glibc' && unconnected === 0 ? 'mixed' : 'musl';
  else if (traffic === 'glibc') verdict = fromInterp === 'musl' ? 'mixed' : 'glibc';
  else if (fromInterp) verdict = fromInterp;
  if (verdict === 'mixed')
    evidence.push(
      'the main process and the lookups disagree: a sidecar or a second container resolves',
    );
  if (evidence.length === 0)
    evidence.push('no query with a socket shape seen yet, no process to inspect');
  return { verdict, evidence };
}

/** The search-list walk behind the pod's NXDOMAIN events that tried the most candidates. */
export function searchWalk(
  recent: readonly Lookup[],
  search: readonly string[],
): SearchWalk | null {
  const byName = new Map<string, Set<string>>();
  for (const l of recent) {
    if (l.rcode !== 'NXDOMAIN' || l.role !== 'client') continue;
    for (const s of search) {
      if (!l.name.endsWith(`.${s}`)) continue;
      const base = l.name.slice(0, -(s.length + 1));
      if (!base) continue;
      let set = byName.get(base);
      if (!set) byName.set(base, (set = new Set()));
      set.add(s);
      break;
    }
  }
  let best: SearchWalk | null = null;
  for (const [name, suffixes] of byName) {
    const tried = search.filter((s) => suffixes.has(s)).map((s) => `${name}.${s}`);
    if (!best || tried.length > best.tried.length) best = { name, tried };
  }
  return best;
}

export function runDoctor(input: DoctorInput): DoctorReport {
  const conf = 'conf' in input.resolv ? input.resolv.conf : undefined;
  const libc = inferLibc(input, conf);
  const c = input.counters;
  const findings: Finding[] = [];
  const walk = conf ? searchWalk(input.recent, conf.search) : null;
  const factor = c && c.noerror > 0 ? round(c.queries / c.noerror) : null;

  const dropCauses: CauseLabel[] = ['netfilter_drop', 'conntrack_insert_failed'];
  const dropped = input.drops.netfilter_drop + input.drops.conntrack_insert_failed;
  const stalledByDrop = c
    ? dropCauses.reduce((n, k) => n + c.timeouts[k] + c.retransmits[k], 0)
    : 0;
  if (dropped > 0 || stalledByDrop > 0) {
    const reason =
      input.drops.conntrack_insert_failed > 0
        ? 'conntrack insert failures'
        : 'netfilter (NETFILTER_DROP)';
    const fixes: string[] = [];
    if (libc.verdict === 'glibc')
      fixes.push(
        'Add `options single-request-reopen` (glibc only) through spec.dnsConfig.options: A and AAAA then leave from different sockets and cannot race for one conntrack entry.',
      );
    else if (libc.verdict === 'musl')
      fixes.push(
        'Do not add single-request-reopen: musl ignores it. Send the pod to a node-local cache instead (next fix).',
      );
    fixes.push(
      'Deploy NodeLocal DNSCache: pods query a link-local address on their node without DNAT, so the DNS ClusterIP conntrack races and their drops disappear.',
      "Find the node's netfilter rule or conntrack limit that drops DNS: `iptables-save | grep -n DROP`, `conntrack -S` (insert_failed, drop).",
    );
    findings.push({
      id: 'dropped_queries',
      severity: 'critical',
      title: `DNS queries dropped on this node by ${reason}`,
      detail:
        `${dropped} packet(s) of this pod dropped; ` +
        (c
          ? `${dropCauses.reduce((n, k) => n + c.retransmits[k], 0)} re-send(s) and ${dropCauses.reduce((n, k) => n + c.timeouts[k], 0)} timeout(s) followed. `
          : '') +
        `Each lost query stalls the lookup by the resolver's timeout (${conf?.timeout ?? 5} s${libc.verdict === 'musl' ? `, musl re-sends after ${round((conf?.timeout ?? 5) / (conf?.attempts ?? 2), 1)} s` : ''}).`,
      fixes,
    });
  }

  const unansweredTimeouts = c ? c.timeouts.unanswered : 0;
  const lost = input.recent.filter((l) => l.diagnosis === 'answer_lost').length;
  if (unansweredTimeouts > 0) {
    findings.push({
      id: 'timeouts',
      severity: 'critical',
      title: `${unansweredTimeouts} lookup(s) never answered, no drop seen on this node`,
      detail:
        lost > 0
          ? `${lost} of the recent ones were answered by a DNS server pod on this node, but the answer never reached the pod.`
          : 'The query left the node and no answer came back: a DNS server down, overloaded, or a drop beyond this node.',
      fixes: [
        'Check the DNS server pods (CoreDNS) for errors and restarts, and the path to them.',
        'NodeLocal DNSCache keeps answers on the node and retries upstream over TCP.',
      ],
    });
  }

  const slowServer = input.recent.filter((l) => l.diagnosis === 'slow_server');
  if (slowServer.length > 0) {
    const worst = slowServer.reduce((a, b) => (b.latencySeconds > a.latencySeconds ? b : a));
    findings.push({
      id: 'slow_server',
      severity: 'warning',
      title: 'The DNS server itself is slow',
      detail: `${slowServer.length} recent slow lookup(s) spent most of their time in a DNS server pod on this node; worst: ${worst.name} ${worst.qtype} took ${round(worst.latencySeconds, 3)} s, ${round(worst.serverSideSeconds ?? 0, 3)} s of it in the server.`,
      fixes: [
        "Check CoreDNS's upstream (forward plugin) and its cache hit rate.",
        'CoreDNS autopath and NodeLocal DNSCache cut the queries that reach the upstream.',
      ],
    });
  }

  if (
    c &&
    factor !== null &&
    factor >= 1.5 &&
    c.nxdomain > 0 &&
    (!conf || (conf.ndots > 1 && conf.search.length > 0))
  ) {
    const example = walk
      ? ` For example ${walk.name} was first tried as ${walk.tried.join(', ')}.`
      : '';
    findings.push({
      id: 'search_amplification',
      severity: factor >= 3 ? 'warning' : 'info',
      title: `Each answered query costs ×${factor} queries: the search list is walked${conf ? ` (ndots:${conf.ndots}, ${conf.search.length} search domains)` : ''}`,
      detail:
        `${c.queries} queries sent, ${c.noerror} answered NOERROR, ${c.nxdomain} NXDOMAIN. ` +
        `A name with fewer than ${conf?.ndots ?? 'ndots'} dots is tried with every search domain before it is tried as written.` +
        example,
      fixes: [
        `Write external names fully qualified, with a trailing dot (${walk ? `${walk.name}.` : 'api.example.org.'}): the resolver then sends one query per type.`,
        "Lower ndots for this pod: spec.dnsConfig.options: [{name: ndots, value: '2'}] (names with 2 dots or more are tried as written first).",
        'Cluster-wide: CoreDNS autopath answers the first search candidate with the final answer; NodeLocal DNSCache answers the NXDOMAINs on the node.',
      ],
    });
  }

  if (conf && libc.verdict === 'musl' && conf.flags.some((f) => f.startsWith('single-request'))) {
    findings.push({
      id: 'reopen_on_musl',
      severity: 'warning',
      title: `\`${conf.flags.find((f) => f.startsWith('single-request'))}\` has no effect: this pod resolves with musl`,
      detail: 'musl reads only ndots, timeout and attempts from options.',
      fixes: ['Remove it, and use NodeLocal DNSCache against conntrack races instead.'],
    });
  }

  if (conf && conf.timeout >= 5 && (stalledByDrop > 0 || unansweredTimeouts > 0)) {
    findings.push({
      id: 'long_timeout',
      severity: 'info',
      title: `A lost query costs ${conf.timeout} s (options timeout:${conf.timeout})`,
      detail: `With timeout:${conf.timeout} attempts:${conf.attempts} one lost packet stalls a lookup ${libc.verdict === 'musl' ? round(conf.timeout / conf.attempts, 1) : conf.timeout} s.`,
      fixes: [
        "Shorten the stall: spec.dnsConfig.options: [{name: timeout, value: '2'}, {name: attempts, value: '3'}].",
      ],
    });
  }

  if (!conf) {
    findings.push({
      id: 'no_resolv_conf',
      severity: 'info',
      title: "The pod's resolv.conf could not be read",
      detail: 'error' in input.resolv ? input.resolv.error : '',
      fixes: [
        'The exporter needs the host PID namespace and CAP_SYS_PTRACE to read /proc/<pid>/root.',
      ],
    });
  }

  findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  return {
    resolvConf: conf
      ? {
          source: 'source' in input.resolv ? input.resolv.source : '',
          nameservers: conf.nameservers,
          search: conf.search,
          ndots: conf.ndots,
          timeout: conf.timeout,
          attempts: conf.attempts,
          options: conf.options,
        }
      : null,
    resolvConfError: 'error' in input.resolv ? input.resolv.error : null,
    libc,
    amplification: {
      factor,
      queries: c?.queries ?? 0,
      noerror: c?.noerror ?? 0,
      nxdomain: c?.nxdomain ?? 0,
      walk,
    },
    findings,
  };
}
