// Picks the pending queries whose last send is older than the deadline, for the kernel's
// timeout sweep. The kernel re-checks age with its own clock and counts each timeout once;
// this pre-filter only keeps the sweep's input small. Pure.
import type { MapEntry } from '../bpf/bpftool-output.js';
import { pendingKeyFromDump, type PendingKey } from '../bpf/sweep-request.js';

function lastSendNs(value: unknown): bigint | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = (value as Record<string, unknown>).last_ts_ns;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return undefined;
}

/** nowNs must be CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns (process.hrtime.bigint()). */
export function expiredPendingKeys(
  entries: readonly MapEntry[],
  nowNs: bigint,
  deadlineNs: bigint,
): PendingKey[] {
  const out: PendingKey[] = [];
  for (const e of entries) {
    const last = lastSendNs(e.value);
    if (last !== undefined && nowNs - last > deadlineNs) out.push(pendingKeyFromDump(e.key));
  }
  return out;
}
