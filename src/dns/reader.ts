// One read of the kernel maps: sweep unanswered queries into timeouts, then dump the
// counters and name every row's cgroup. The exporter runs this on a timer and serves
// scrapes from the result.
import { sumPerCpu, type MapEntry, type SummedMapEntry } from '../bpf/bpftool-output.js';
import type { PendingKey } from '../bpf/sweep-request.js';
import { healthFromPerCpu } from '../bpf/dns-health.js';
import type { MapOccupancy, Snapshot } from '../snapshot.js';
import { aggregateDnsStats, type PodName } from './aggregate.js';
import { expiredPendingKeys } from './pending.js';
import type { PodSeriesBudget } from './pod-budget.js';
import { decodeDnsStats } from './stats-row.js';
import {
  RETIRED_POD,
  type CgroupLifecycle,
  type LifecyclePlan,
  type Sighting,
} from './lifecycle.js';
import { aggregateDrops } from '../drops/aggregate.js';
import type { AddressBook } from '../drops/address-book.js';
import { decodeClientAddrs, decodePacketDrop } from '../drops/drop-rows.js';
import { dropHealthFromPerCpu } from '../drops/drop-health.js';

/** The maps one read touches, by pinned path. */
export interface DnsMapPins {
  dns_pending: string;
  dns_retry_index: string;
  dns_stats: string;
  dns_health: string;
  dns_client_addrs: string;
}

/** The drop programs' maps, when drop attribution is loaded. */
export interface DropMapPins {
  packet_drops: string;
  drop_health: string;
}

export interface DnsReaderDeps {
  dump: (pin: string) => Promise<MapEntry[]>;
  /** Several maps in one bpftool process, in the order given. */
  dumpMany: (pins: string[]) => Promise<MapEntry[][]>;
  sweep: (keys: PendingKey[], deadlineNs: bigint) => Promise<unknown>;
  pins: DnsMapPins;
  dropPins: DropMapPins | undefined;
  addressBook: AddressBook;
  maxEntries: Partial<Record<string, number>>;
  /** Names rows (also of cgroups that are gone) and retires the rows of deleted pods. */
  lifecycle: CgroupLifecycle;
  sight: (cgroupId: bigint) => Sighting;
  /** Writes a lifecycle plan (names, retired rows) to the pinned maps. */
  writePlan: (plan: LifecyclePlan) => Promise<void>;
  /** A plan could not be written: counted and logged; the rows stay and the next read retries. */
  onWriteFailure: (err: unknown) => void;
  /** --workload-label: the per-namespace families gain a workload label. */
  byWorkload: boolean;
  budget: PodSeriesBudget;
  deadlineNs: bigint;
  /** CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns. */
  monotonicNs: () => bigint;
  wallSeconds: () => number;
}

/** Names the step that failed, so that the caller can count bpftool failures by operation. */
export class ReadStepError extends Error {
  constructor(
    readonly operation: string,
    cause: unknown,
  ) {
    super(`${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

async function step<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new ReadStepError(operation, err);
  }
}

function byIndex(entries: readonly SummedMapEntry[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const e of entries) m.set(Number(e.key), Number(e.value));
  return m;
}

export async function readDnsSnapshot(deps: DnsReaderDeps): Promise<Snapshot> {
  const started = performance.now();
  const { pins } = deps;
  const pending = await step('pending_dump', () => deps.dump(pins.dns_pending));
  const expired = expiredPendingKeys(pending, deps.monotonicNs(), deps.deadlineNs);
  if (expired.length > 0) await step('timeout_sweep', () => deps.sweep(expired, deps.deadlineNs));
  const drop = deps.dropPins;
  // One bpftool process for the rest: a spawn costs more than a small map's dump.
  const [
    stats = [],
    retryIndex = [],
    healthPerCpu = [],
    clientAddrs = [],
    drops,
    dropHealthPerCpu,
  ] = await step('maps_dump', () =>
    deps.dumpMany([
      pins.dns_stats,
      pins.dns_retry_index,
      pins.dns_health,
      pins.dns_client_addrs,
      ...(drop ? [drop.packet_drops, drop.drop_health] : []),
    ]),
  );
  const health = sumPerCpu(healthPerCpu);
  const dropHealth = dropHealthPerCpu && sumPerCpu(dropHealthPerCpu);
  const dumped = decodeDnsStats(stats);
  const plan = deps.lifecycle.plan(dumped, deps.sight);
  let rows = dumped;
  if (plan.nameWrites.length + plan.nameDeletes.length + plan.retire.length > 0) {
    try {
      await deps.writePlan(plan);
      deps.lifecycle.committed(plan);
      rows = plan.rows;
      for (const p of plan.retiredPods) {
        deps.budget.release(p.namespace, p.pod);
        deps.addressBook.retire(p.namespace, p.pod, RETIRED_POD);
      }
    } catch (err) {
      deps.onWriteFailure(err);
    }
  }
  const nameOf = (id: bigint): PodName => {
    const n = plan.nameOf(id);
    const workload = n.workloadKind ? `${n.workloadKind.toLowerCase()}/${n.workload}` : '';
    return deps.byWorkload
      ? { namespace: n.namespace, pod: n.pod, workload }
      : { namespace: n.namespace, pod: n.pod };
  };
  const occupancy = (map: string, entries: number): MapOccupancy => ({
    map,
    entries,
    maxEntries: deps.maxEntries[map] ?? 0,
  });
  const maps: MapOccupancy[] = [
    occupancy('dns_pending', pending.length - expired.length),
    occupancy('dns_retry_index', retryIndex.length),
    occupancy('dns_stats', rows.length),
    occupancy('dns_client_addrs', clientAddrs.length),
  ];
  // Held rows (cgroups nobody names yet) count nowhere until labelled; nor do the drops of
  // their addresses, which are not learned under a label that may not last.
  const shown = rows.filter((r) => !plan.held.has(r.cgroupId));
  const addrs = decodeClientAddrs(clientAddrs);
  const heldAddrs = new Set<string>();
  for (const [addr, id] of addrs)
    if (plan.held.has(id)) {
      heldAddrs.add(addr);
      addrs.delete(addr);
    }
  deps.addressBook.learn(addrs, nameOf);
  if (drops) maps.push(occupancy('packet_drops', drops.length));
  const podOf = (addr: string) => deps.addressBook.podOf(addr);
  return {
    dns: aggregateDnsStats(shown, nameOf, deps.budget),
    health: healthFromPerCpu(byIndex(health)),
    drops:
      drops && dropHealth
        ? {
            agg: aggregateDrops(
              drops.map(decodePacketDrop).filter((d) => !heldAddrs.has(d.podAddr)),
              podOf,
              deps.budget,
            ),
            health: dropHealthFromPerCpu(byIndex(dropHealth)),
          }
        : undefined,
    maps,
    readDurationSeconds: (performance.now() - started) / 1000,
    readTimestampSeconds: deps.wallSeconds(),
    podSeriesOverflow: deps.budget.overflowCount,
  };
}
