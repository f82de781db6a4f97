// What one read of the kernel maps produced: the exporter serves scrapes from the latest
// snapshot, so a scrape never waits for bpftool.
import type { ProcessStats } from './process-stats.js';
import type { DnsAggregate } from './dns/aggregate.js';
import type { DropAggregate } from './drops/aggregate.js';
import type { ConntrackReading } from './conntrack/index.js';
import type { CapabilityCheck } from './capabilities.js';
import type { ExemplarKind, LookupExemplar } from './drilldown/views.js';

export interface MapOccupancy {
  map: string;
  entries: number;
  maxEntries: number;
}

export interface Snapshot {
  dns: DnsAggregate;
  /** dns_health counters by name (bpf/dns.h enum health_counter), summed over CPUs. */
  health: Record<string, number>;
  maps: MapOccupancy[];
  readDurationSeconds: number;
  readTimestampSeconds: number;
  podSeriesOverflow: number;
  /** Absent when no drop program is attached (mode none). */
  drops?: { agg: DropAggregate; health: Record<string, number> };
}

/** How drops are attributed (bpf/drops.bpf.c, bpf/conntrack_fexit.bpf.c), chosen at load. */
export type DropAttributionMode = 'fexit' | 'tracepoint' | 'none';

export interface ExporterState {
  snapshot: Snapshot | undefined;
  attached: boolean;
  dropMode: DropAttributionMode | undefined;
  /** Drill-down event stream: events lost in the perf ring before bpftool read them. */
  eventStats: () => { perfLost: number } | undefined;
  /**
   * Recent slow or timed-out lookups of a namespace and qtype, newest first: exemplars of
   * the latency histogram and of the timeouts counter.
   */
  exemplars: (namespace: string, qtype: string, kind: ExemplarKind) => LookupExemplar[];
  /** Identity sources and their state (kube-api: connected/connecting/degraded/disabled). */
  identitySources: () => { source: string; state: string }[];
  /** The node's conntrack statistics at the last read (undefined before the first). */
  conntrack: ConntrackReading | undefined;
  /** The start-up capability check (undefined where /proc could not be read). */
  capabilities: CapabilityCheck[] | undefined;
  bpftoolFailures: Map<string, number>;
  /** The exporter's own process (CPU, memory), read at each scrape; absent in tests of families. */
  processStats?: () => ProcessStats;
  build: { version: string; node: string; kernel: string; bpftool: string };
}
