// What each kernel must do: the loader's promise (docs: /work/notes/loader-api.md, src/bpf/
// loader.ts), as a table, and the check of a guest's report against it. Pure.
import type { DropMode } from '../../src/bpf/loader.js';
import { CAUSE_LABELS, DROP_REASON_LABELS } from '../../src/metrics/names.js';
import type { KernelId } from './kernels.js';
import type { DropRow, GuestReport, RowSummary, Verdict } from './report.js';

type CauseLabel = (typeof CAUSE_LABELS)[number];
type ReasonLabel = (typeof DROP_REASON_LABELS)[number];

export interface KernelExpectation {
  /** why this kernel behaves as it does, for the reader of a failure */
  why: string;
  dropMode: DropMode;
  /** drop programs linked in that mode */
  links: string[];
  /** what the first fallback says, when fexit is not used */
  fexitFallback?: RegExp;
  /** reason class drops.bpf.o gives the nft drop of the AAAA query */
  aaaaDropReason: ReasonLabel;
  /** stall cause dns.bpf.o joins to that query's retransmit and timeout */
  aaaaCause: CauseLabel;
  /** vCPUs of the guest: the conntrack insert race needs two */
  cpus: number;
}

export const EXPECTATIONS: Record<KernelId, KernelExpectation> = {
  '6.12': {
    why: 'module BTF (fexit on nf_conntrack), skb drop reasons (5.17+)',
    dropMode: 'fexit',
    links: ['ct_confirm_exit', 'drops_kfree_skb'],
    aaaaDropReason: 'netfilter_drop',
    aaaaCause: 'netfilter_drop',
    cpus: 2,
  },
  '6.1': {
    why: 'module BTF (fexit on nf_conntrack), skb drop reasons (5.17+)',
    dropMode: 'fexit',
    links: ['ct_confirm_exit', 'drops_kfree_skb'],
    aaaaDropReason: 'netfilter_drop',
    aaaaCause: 'netfilter_drop',
    cpus: 2,
  },
  '5.10': {
    why:
      'vmlinux BTF only (no CONFIG_DEBUG_INFO_BTF_MODULES: no fexit on nf_conntrack), ' +
      'no skb drop reason: DNS drops count as "other", no netfilter join',
    dropMode: 'tracepoint',
    links: ['drops_kfree_skb'],
    fexitFallback: /^fexit: .*failed to find kernel BTF type ID of '__nf_conntrack_confirm'/,
    aaaaDropReason: 'other',
    aaaaCause: 'unanswered',
    cpus: 1,
  },
};

/** The probe's traffic (guest-probe.ts), and what dns.bpf.o must have counted from it. */
export const TRAFFIC = {
  /** client, A: a.km.test (NOERROR) and nx.km.test (NXDOMAIN) */
  clientA: { queries: 2, noerror: 1, nxdomain: 1 },
  /** client, AAAA drop.km.test: sent twice on one socket, both dropped by nft before dnsmasq */
  clientAAAA: { queries: 1, retransmits: 1, timeouts: 1, dropped: 2 },
} as const;

const PROTO_UDP = 17;
const PORT_DNS = 1;
const QTYPE_AAAA = 1; // enum qtype_class

export function evaluate(report: GuestReport): Verdict {
  const failures: string[] = [];
  const facts: Record<string, string | number> = {};
  const want = (cond: boolean, what: string) => {
    if (!cond) failures.push(what);
  };
  const exp = EXPECTATIONS[report.kernel as KernelId];
  if (!exp) failures.push(`no expectation for kernel '${report.kernel}'`);
  if (report.fatal) failures.push(`guest: ${report.fatal}`);
  for (const s of report.steps) if (!s.ok) failures.push(`step ${s.name}: ${s.error ?? 'failed'}`);
  if (!report.dns && !report.fatal) failures.push('no DNS observations in the report');
  if (!report.drops && !report.fatal) failures.push('no drop observations in the report');
  if (report.drops) facts.mode = report.drops.mode;

  const causeIx = exp ? CAUSE_LABELS.indexOf(exp.aaaaCause) : -1;
  const dns = report.dns;
  if (dns) {
    for (const a of ['dns_egress:cgroup_inet_egress', 'dns_ingress:cgroup_inet_ingress']) {
      want(
        dns.attached.includes(a),
        `${a} not attached (attached: ${dns.attached.join(', ') || 'none'})`,
      );
    }
    const { A: cA, AAAA: c6 } = dns.client;
    const sA = dns.server.A;
    facts.clientA = rowFact(cA);
    facts.serverA = rowFact(sA);
    facts.clientAAAA = rowFact(c6);
    const answered = {
      responses: [TRAFFIC.clientA.noerror, TRAFFIC.clientA.nxdomain, 0, 0, 0],
      latencyCount: TRAFFIC.clientA.queries,
      retransmits: 0,
      timeouts: 0,
    };
    checkRow(failures, 'client A', cA, { queries: TRAFFIC.clientA.queries, ...answered });
    checkRow(failures, 'server A', sA, { queries: TRAFFIC.clientA.queries, ...answered });
    checkRow(failures, 'client AAAA', c6, {
      queries: TRAFFIC.clientAAAA.queries,
      retransmits: TRAFFIC.clientAAAA.retransmits,
      timeouts: TRAFFIC.clientAAAA.timeouts,
      responses: [0, 0, 0, 0, 0],
      latencyCount: 0,
    });
    if (c6 && exp) {
      const by = (xs: number[] | undefined) => (xs ? (xs[causeIx] ?? 0) : NaN);
      want(
        by(c6.retransmitsByCause) === TRAFFIC.clientAAAA.retransmits,
        `client AAAA retransmits by cause ${JSON.stringify(c6.retransmitsByCause)}: ` +
          `want ${TRAFFIC.clientAAAA.retransmits} as ${exp.aaaaCause}`,
      );
      want(
        by(c6.timeoutsByCause) === TRAFFIC.clientAAAA.timeouts,
        `client AAAA timeouts by cause ${JSON.stringify(c6.timeoutsByCause)}: ` +
          `want ${TRAFFIC.clientAAAA.timeouts} as ${exp.aaaaCause}`,
      );
    }
    want(
      !dns.server.AAAA?.queries,
      `server AAAA saw ${dns.server.AAAA?.queries} queries: nft did not drop them before dnsmasq`,
    );
    want(
      dns.nftDropped === TRAFFIC.clientAAAA.dropped,
      `nft drop rule counted ${dns.nftDropped} packets, want ${TRAFFIC.clientAAAA.dropped}`,
    );
    want(!dns.health.pending_full, `dns_health pending_full ${dns.health.pending_full}`);
    want(!dns.health.unmatched_answers, `unmatched answers ${dns.health.unmatched_answers}`);
    want((dns.health.sweep_runs ?? 0) >= 1, 'dns_sweep_timeouts never ran (sweep_runs 0)');
    want(dns.detachedAfterStop, 'programs still attached after loader.stop()');
    for (const p of ['dns_egress', 'dns_ingress']) {
      const n = report.runCounts[p];
      want((n ?? 0) > 0, `${p} never ran (bpf_stats run_cnt ${n ?? 'missing'})`);
    }
  }

  const drops = report.drops;
  if (drops && exp) {
    want(drops.mode === exp.dropMode, `drop attribution mode ${drops.mode}, want ${exp.dropMode}`);
    want(
      sameSet(drops.links, exp.links),
      `drop links [${drops.links.join(', ')}], want [${exp.links.join(', ')}]`,
    );
    if (exp.fexitFallback) {
      want(
        exp.fexitFallback.test(drops.fallbacks[0] ?? ''),
        `fexit fallback ${JSON.stringify(drops.fallbacks[0] ?? 'none')} does not match ${exp.fexitFallback}`,
      );
    } else {
      want(drops.fallbacks.length === 0, `unexpected fallbacks: ${drops.fallbacks.join(' | ')}`);
    }
    for (const p of exp.links) {
      const n = report.runCounts[p];
      want((n ?? 0) > 0, `${p} never ran (bpf_stats run_cnt ${n ?? 'missing'})`);
    }
    const aaaa = drops.rows.filter(
      (r) => r.proto === PROTO_UDP && r.portClass === PORT_DNS && r.qtype === QTYPE_AAAA,
    );
    const reasonIx = DROP_REASON_LABELS.indexOf(exp.aaaaDropReason);
    const counted = sum(aaaa.filter((r) => r.reason === reasonIx));
    facts.aaaaDrops = `${counted}x${exp.aaaaDropReason}`;
    want(
      counted === TRAFFIC.clientAAAA.dropped,
      `packet_drops counted ${counted} dropped AAAA queries as ${exp.aaaaDropReason}, ` +
        `want ${TRAFFIC.clientAAAA.dropped} (rows: ${JSON.stringify(aaaa)})`,
    );
    want(
      sum(aaaa) === counted,
      `packet_drops has AAAA drops with other reasons: ${JSON.stringify(aaaa)}`,
    );
    if (exp.dropMode === 'fexit') {
      const race = drops.race;
      if (!race) {
        failures.push('the conntrack insert race did not run');
      } else {
        facts.insertFailed = `${race.insertFailed}/${race.iterations}`;
        // The kernel's own counters are the truth; zero clashes is bad luck, not a failure.
        // Every refused SYN is one drop the programs saw, either an insert failure (fexit) or
        // another netfilter drop of the race (6.1 also drops some in nf_conntrack_in): none is
        // counted twice, none is missed.
        want(
          race.sendErrors === race.insertFailedRows + race.netfilterRows,
          `race: ${race.sendErrors} SYNs refused, but ${race.insertFailedRows} insert failures ` +
            `+ ${race.netfilterRows} netfilter drops counted`,
        );
        want(
          race.confirmDrops === race.insertFailed,
          `race: fexit saw ${race.confirmDrops} confirm drops, kernel insert_failed ${race.insertFailed}`,
        );
        want(
          race.insertFailedRows === race.insertFailed,
          `race: packet_drops counted ${race.insertFailedRows} conntrack_insert_failed drops, ` +
            `kernel insert_failed ${race.insertFailed}`,
        );
      }
    }
  }
  if (dns?.client.A && dns.client.A.latencyCount > 0) {
    const ms = dns.client.A.latencySumNs / dns.client.A.latencyCount / 1e6;
    facts.latencyA = `${ms.toFixed(2)}ms`;
  }
  return {
    kernel: report.kernel,
    release: report.release,
    pass: failures.length === 0,
    failures,
    facts,
  };
}

interface RowWant {
  queries: number;
  retransmits: number;
  timeouts: number;
  responses: number[];
  latencyCount: number;
}

function checkRow(failures: string[], what: string, row: RowSummary | undefined, w: RowWant) {
  if (!row) {
    failures.push(`${what}: no dns_stats row`);
    return;
  }
  const diffs: string[] = [];
  const eq = (name: string, got: number, want: number) => {
    if (got !== want) diffs.push(`${name} ${got} (want ${want})`);
  };
  eq('queries', row.queries, w.queries);
  eq('retransmits', row.retransmits, w.retransmits);
  eq('timeouts', row.timeouts, w.timeouts);
  eq('latency_count', row.latencyCount, w.latencyCount);
  w.responses.forEach((n, i) => eq(`responses[${i}]`, row.responses[i] ?? 0, n));
  if (w.latencyCount > 0 && !(row.latencySumNs > 0)) diffs.push('latency_sum_ns 0');
  if (diffs.length > 0) failures.push(`${what}: ${diffs.join(', ')}`);
}

function rowFact(r: RowSummary | undefined): string {
  if (!r) return 'none';
  const answers = r.responses.reduce((a, b) => a + b, 0);
  return `q${r.queries}/r${answers}/rtx${r.retransmits}/to${r.timeouts}`;
}

const sum = (rows: DropRow[]) => rows.reduce((a, r) => a + r.packets, 0);
const sameSet = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join();
