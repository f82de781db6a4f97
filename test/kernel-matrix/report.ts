// What a guest reports (JSON on its /dev/ttyS1) and the one-line summary per kernel. Pure.

export interface StepRecord {
  name: string;
  ok: boolean;
  seconds: number;
  error?: string;
}

/** One dns_stats row, counters summed over causes. */
export interface RowSummary {
  queries: number;
  retransmits: number;
  /** per enum stall_cause when the object splits them (unanswered, netfilter_drop, ...) */
  retransmitsByCause?: number[];
  timeouts: number;
  timeoutsByCause?: number[];
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, other */
  responses: number[];
  latencyCount: number;
  latencySumNs: number;
}

export type Side = Partial<Record<'A' | 'AAAA' | 'other', RowSummary>>;

export interface DnsObservation {
  /** "program:attach_type" on the probe's cgroup after start() */
  attached: string[];
  client: Side;
  server: Side;
  health: Record<string, number>;
  /** what the probe's own client saw: answers by name/qtype */
  answers: Record<string, string>;
  /** nft counter of the AAAA drop rule */
  nftDropped: number;
  /** dns_sweep_timeouts runs and the keys they were given */
  sweepKeys: number;
  /** loader.stop() left no program on the cgroup */
  detachedAfterStop: boolean;
}

/** One packet_drops row (bpf/drops.h struct packet_drop_key -> packets). */
export interface DropRow {
  podAddr: string;
  proto: number;
  portClass: number;
  qtype: number;
  reason: number;
  direction: number;
  packets: number;
}

/** The conntrack insert race (ct-race.c), deltas over its run. */
export interface RaceObservation {
  /** packet_drops rows that moved during the race, packets = the change */
  rowsMoved: DropRow[];
  iterations: number;
  /** sendto() failures: the kernel dropped the SYN (NF_DROP from the confirm) */
  sendErrors: number;
  /** /proc/net/stat/nf_conntrack insert_failed */
  insertFailed: number;
  /** drop_health DROP_HEALTH_CONFIRM_DROPS: what fexit/__nf_conntrack_confirm saw */
  confirmDrops: number;
  /** packet_drops rows with reason conntrack_insert_failed */
  insertFailedRows: number;
  /** packet_drops rows with reason netfilter_drop: must not move (no double count) */
  netfilterRows: number;
}

export interface DropObservation {
  mode: string;
  fallbacks: string[];
  /** drop programs attached, by name */
  links: string[];
  /** the verifier log tail of each object behind a fallback */
  diagnosis: string[];
  rows: DropRow[];
  /** drop_health (enum drop_health_counter), summed over CPUs */
  health: number[];
  race?: RaceObservation;
}

export interface GuestReport {
  /** matrix id (km_kernel) */
  kernel: string;
  /** uname -r */
  release: string;
  steps: StepRecord[];
  dns?: DnsObservation;
  drops?: DropObservation;
  /** bpf_stats run_cnt per loaded program (kernel-truncated names) */
  runCounts: Record<string, number>;
  /** set when the guest could not run the probe at all */
  fatal?: string;
}

export interface Verdict {
  kernel: string;
  release: string;
  pass: boolean;
  failures: string[];
  /** the counts worth a glance in the summary line */
  facts: Record<string, string | number>;
}

/** Reads the guest's report port output (JSON, possibly preceded by noise). */
export function parseReport(text: string, kernel: string): GuestReport {
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (!line) {
    return { kernel, release: '?', steps: [], runCounts: {}, fatal: 'the guest wrote no report' };
  }
  try {
    const r = JSON.parse(line) as Partial<GuestReport>;
    return {
      kernel: r.kernel ?? kernel,
      release: r.release ?? '?',
      steps: r.steps ?? [],
      runCounts: r.runCounts ?? {},
      ...(r.dns ? { dns: r.dns } : {}),
      ...(r.drops ? { drops: r.drops } : {}),
      ...(r.fatal ? { fatal: r.fatal } : {}),
    };
  } catch (err) {
    return {
      kernel,
      release: '?',
      steps: [],
      runCounts: {},
      fatal: `unreadable report (${(err as Error).message}): ${line.slice(0, 200)}`,
    };
  }
}

/** `KM-RESULT kernel=6.1 release=6.1.0-56-amd64 PASS k=v ...` or `... FAIL reasons="a; b"` */
export function resultLine(v: Verdict): string {
  const facts = Object.entries(v.facts).map(([k, x]) => `${k}=${x}`);
  const tail = v.pass ? [] : [`reasons=${JSON.stringify(v.failures.join('; '))}`];
  return [
    'KM-RESULT',
    `kernel=${v.kernel}`,
    `release=${v.release}`,
    v.pass ? 'PASS' : 'FAIL',
    ...facts,
    ...tail,
  ].join(' ');
}

/**
 * A dns_stats value as bpftool prints it, summarised. Tolerates retransmits/timeouts as one
 * counter (older objects) or as one counter per stall cause.
 */
export function summarizeRow(value: unknown): RowSummary {
  const v = (value ?? {}) as Record<string, unknown>;
  const num = (x: unknown): number =>
    typeof x === 'number' || typeof x === 'bigint' ? Number(x) : NaN;
  const list = (x: unknown): number[] => (Array.isArray(x) ? x.map(num) : [num(x)]);
  const retransmits = list(v.retransmits);
  const timeouts = list(v.timeouts);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    queries: num(v.queries),
    retransmits: sum(retransmits),
    ...(Array.isArray(v.retransmits) ? { retransmitsByCause: retransmits } : {}),
    timeouts: sum(timeouts),
    ...(Array.isArray(v.timeouts) ? { timeoutsByCause: timeouts } : {}),
    responses: list(v.responses),
    latencyCount: num(v.latency_count),
    latencySumNs: num(v.latency_sum_ns),
  };
}

/** A packet_drops entry as bpftool prints it (BTF-formatted). */
export function dropRowFromDump(key: unknown, value: unknown): DropRow {
  const k = (key ?? {}) as Record<string, unknown>;
  const num = (x: unknown) => (typeof x === 'number' || typeof x === 'bigint' ? Number(x) : NaN);
  const addr = Array.isArray(k.pod_addr) ? k.pod_addr.map(num) : [];
  return {
    podAddr: formatAddr(addr),
    proto: num(k.proto),
    portClass: num(k.port_class),
    qtype: num(k.qtype),
    reason: num(k.reason),
    direction: num(k.direction),
    packets: num(value),
  };
}

/** 16 bytes, IPv4-mapped (::ffff:a.b.c.d) shown as a.b.c.d. */
export function formatAddr(b: number[]): string {
  if (b.length !== 16) return `?${b.join('.')}`;
  const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return b.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}
