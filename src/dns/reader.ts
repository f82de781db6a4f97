// One read of the kernel maps: sweep unanswered queries into timeouts, then dump the
// counters and name every row's cgroup. The exporter runs this on a timer and serves
// scrapes from the result.
import type { MapEntry, SummedMapEntry } from '../bpf/bpftool-output.js';
import type { PendingKey } from '../bpf/sweep-request.js';
import { healthFromPerCpu } from '../bpf/dns-health.js';
import type { MapOccupancy, Snapshot } from '../snapshot.js';
import { aggregateDnsStats, type PodName } from './aggregate.js';
import { expiredPendingKeys } from './pending.js';
import type { PodSeriesBudget } from './pod-budget.js';
import { decodeDnsStats } from './stats-row.js';

/** The maps one read touches, by pinned path. */
export interface DnsMapPins {
  dns_pending: string;
  dns_retry_index: string;
  dns_stats: string;
  dns_health: string;
}

export interface DnsReaderDeps {
  dump: (pin: string) => Promise<MapEntry[]>;
  dumpPerCpuSummed: (pin: string) => Promise<SummedMapEntry[]>;
  sweep: (keys: PendingKey[], deadlineNs: bigint) => Promise<unknown>;
  pins: DnsMapPins;
  maxEntries: Record<keyof DnsMapPins, number>;
  nameOf: (cgroupId: bigint) => PodName;
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

function healthOf(entries: readonly SummedMapEntry[]): Record<string, number> {
  const byIndex = new Map<number, number>();
  for (const e of entries) byIndex.set(Number(e.key), Number(e.value));
  return healthFromPerCpu(byIndex);
}

export async function readDnsSnapshot(deps: DnsReaderDeps): Promise<Snapshot> {
  const started = performance.now();
  const { pins } = deps;
  const pending = await step('pending_dump', () => deps.dump(pins.dns_pending));
  const expired = expiredPendingKeys(pending, deps.monotonicNs(), deps.deadlineNs);
  if (expired.length > 0) await step('timeout_sweep', () => deps.sweep(expired, deps.deadlineNs));
  const [stats, retryIndex, health] = await Promise.all([
    step('stats_dump', () => deps.dump(pins.dns_stats)),
    step('retry_index_dump', () => deps.dump(pins.dns_retry_index)),
    step('health_dump', () => deps.dumpPerCpuSummed(pins.dns_health)),
  ]);
  const rows = decodeDnsStats(stats);
  const maps: MapOccupancy[] = [
    {
      map: 'dns_pending',
      entries: pending.length - expired.length,
      maxEntries: deps.maxEntries.dns_pending,
    },
    {
      map: 'dns_retry_index',
      entries: retryIndex.length,
      maxEntries: deps.maxEntries.dns_retry_index,
    },
    { map: 'dns_stats', entries: rows.length, maxEntries: deps.maxEntries.dns_stats },
  ];
  return {
    dns: aggregateDnsStats(rows, deps.nameOf, deps.budget),
    health: healthOf(health),
    maps,
    readDurationSeconds: (performance.now() - started) / 1000,
    readTimestampSeconds: deps.wallSeconds(),
    podSeriesOverflow: deps.budget.overflowCount,
  };
}
