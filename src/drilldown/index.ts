// The on-call drill-down: kernel events of slow and failed lookups, kept per pod, a resolver
// doctor, and a JSON API plus a page on their own listener. The exporter builds a Drilldown
// once the programs are attached, starts it, and serves createDrilldownApp(...) on
// --drilldown-listen-address.
import express from 'express';
import type { Bpftool, LoggerLike } from '../bpf/bpftool.js';
import type { DnsStatsRow } from '../dns/stats-row.js';
import type { QtypeLabel } from '../metrics/names.js';
import type { Snapshot } from '../snapshot.js';
import type { EventConfig, EventKind } from './event.js';
import { EventReader } from './event-reader.js';
import type { Clocks } from './lookup.js';
import { PodProbe } from './pod-probe.js';
import { EventRings, DEFAULT_RING_LIMITS, type RingLimits } from './rings.js';
import { drilldownRouter, type DrilldownDeps } from './router.js';
import {
  exemplarIndex,
  type ExemplarIndex,
  type ExemplarKind,
  type LookupExemplar,
  type NameOf,
} from './views.js';

export { POD_PAGE_PATTERN, podPagePath, type ExemplarKind, type LookupExemplar } from './views.js';
export type { DrilldownDeps } from './router.js';

/** The kernel maps the drill-down reads (pin names under <bpffs>/maps/). */
export const DRILLDOWN_MAPS = ['dns_events', 'dns_event_config'] as const;

/** enum health_counter: HEALTH_EVENTS_SENT, then _RATE_LIMITED and _OUTPUT_FAILED (bpf/dns.h). */
export const HEALTH_EVENTS_SENT = 11;

export const DEFAULT_EVENT_KINDS: readonly EventKind[] = [
  'slow',
  'failed',
  'timeout',
  'retransmit',
  'nxdomain',
];

export interface DrilldownOptions {
  bpftool: Bpftool;
  /** Map name -> pin (LoadedPrograms.maps); needs DRILLDOWN_MAPS. */
  maps: Record<string, string>;
  /** The cgroup2 directory the programs attach to (absolute): where pods' processes are found. */
  cgroupRoot: string;
  nameOf: NameOf;
  snapshot: () => Snapshot | undefined;
  /** Every dns_stats row (for a pod's per-qtype split); omitted: snapshot totals only. */
  statsRows?: () => Promise<DnsStatsRow[]>;
  /** --slow-lookup-threshold */
  slowThresholdMs: number;
  /** Events per second and burst per cgroup (kernel token bucket). Default 20 and 40. */
  ratePerSecond?: number;
  burst?: number;
  token?: string | undefined;
  log: LoggerLike;
  limits?: RingLimits;
  clocks?: Clocks;
  procRoot?: string;
}

export class Drilldown {
  readonly rings: EventRings;
  readonly reader: EventReader;
  private readonly probe: PodProbe;
  readonly eventConfig: EventConfig;
  private exemplars: { seq: number; limit: number; atMs: number; index: ExemplarIndex } | undefined;

  constructor(private readonly o: DrilldownOptions) {
    for (const m of DRILLDOWN_MAPS)
      if (!o.maps[m])
        throw new Error(
          `the BPF object has no map ${m}: rebuild bpf/dist/dns.bpf.o (scripts/build-bpf.sh)`,
        );
    this.rings = new EventRings(o.limits ?? DEFAULT_RING_LIMITS);
    this.eventConfig = {
      slowNs: BigInt(Math.round(o.slowThresholdMs * 1e6)),
      ratePerSecond: o.ratePerSecond ?? 20,
      burst: o.burst ?? 40,
      kinds: DEFAULT_EVENT_KINDS,
      serverJoin: true,
    };
    this.reader = new EventReader({
      bpftool: o.bpftool,
      eventsPin: o.maps.dns_events!,
      configPin: o.maps.dns_event_config!,
      config: this.eventConfig,
      rings: this.rings,
      clocks: o.clocks ?? { monotonicNs: () => process.hrtime.bigint(), unixMs: () => Date.now() },
      log: o.log,
    });
    this.probe = new PodProbe({
      cgroupRoot: o.cgroupRoot,
      nameOf: o.nameOf,
      ...(o.procRoot ? { procRoot: o.procRoot } : {}),
    });
  }

  start(): Promise<void> {
    return this.reader.start();
  }

  stop(): Promise<void> {
    return this.reader.stop();
  }

  /**
   * Recent lookups of a namespace and qtype, newest first, at most `limit`: slow ones
   * (at or above --slow-lookup-threshold) or timed-out ones, for exemplars.
   */
  recentLookups(
    namespace: string,
    qtype: QtypeLabel,
    kind: ExemplarKind,
    limit = 10,
  ): LookupExemplar[] {
    // A scrape asks once per series: index the rings once, again after a new lookup, after
    // another limit, or a second later (names of cgroups get resolved meanwhile).
    const now = performance.now();
    const c = this.exemplars;
    if (!c || c.seq !== this.rings.lastSeq || c.limit !== limit || now - c.atMs > 1000)
      this.exemplars = {
        seq: this.rings.lastSeq,
        limit,
        atMs: now,
        index: exemplarIndex(this.rings, this.o.nameOf, limit),
      };
    return this.exemplars!.index.get(namespace, qtype, kind);
  }

  /**
   * Self-health of the event path: the reader's counts and the kernel's (dns_health slots
   * HEALTH_EVENTS_*). Proposed metrics: dnsrace_bpf_events_total and
   * dnsrace_bpf_events_dropped_total{reason="rate_limit|output_failed|perf_lost"}.
   */
  async health(): Promise<Record<string, unknown>> {
    const s = this.reader.stats;
    let kernel: Record<string, number> | string;
    try {
      const pin = this.o.maps.dns_health;
      if (!pin) throw new Error('no dns_health map');
      const rows = await this.o.bpftool.mapDump(pin, { perCpu: 'sum' });
      const at = (i: number) => Number(rows.find((r) => Number(r.key) === i)?.value ?? 0);
      kernel = {
        sent: at(HEALTH_EVENTS_SENT),
        rateLimited: at(HEALTH_EVENTS_SENT + 1),
        outputFailed: at(HEALTH_EVENTS_SENT + 2),
      };
    } catch (err) {
      kernel = `dns_health unreadable: ${err instanceof Error ? err.message : String(err)}`;
    }
    return {
      reader: { ...s },
      kernel,
      rings: { cgroups: this.rings.size, evictedCgroups: this.rings.evictedCgroups },
      config: {
        slowThresholdSeconds: Number(this.eventConfig.slowNs) / 1e9,
        ratePerSecond: this.eventConfig.ratePerSecond,
        burst: this.eventConfig.burst,
      },
    };
  }

  deps(): DrilldownDeps {
    return {
      snapshot: this.o.snapshot,
      rings: this.rings,
      nameOf: this.o.nameOf,
      probe: (ref) => this.probe.probe(ref.namespace, ref.pod),
      ...(this.o.statsRows ? { statsRows: this.o.statsRows } : {}),
      health: () => this.health(),
      token: this.o.token,
      slowThresholdSeconds: Number(this.eventConfig.slowNs) / 1e9,
      log: this.o.log,
    };
  }
}

/** Mounts the drill-down API and page on an express app. */
export function mountDrilldown(app: express.Express, deps: DrilldownDeps): express.Express {
  app.use(drilldownRouter(deps));
  return app;
}

/** An express app with the drill-down only: serve it on --drilldown-listen-address. */
export function createDrilldownApp(deps: DrilldownDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  return mountDrilldown(app, deps);
}
