// What one read of the kernel maps produced: the exporter serves scrapes from the latest
// snapshot, so a scrape never waits for bpftool.
import type { DnsAggregate } from './dns/aggregate.js';

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
}

export interface ExporterState {
  snapshot: Snapshot | undefined;
  attached: boolean;
  bpftoolFailures: Map<string, number>;
  build: { version: string; node: string; kernel: string; bpftool: string };
}
