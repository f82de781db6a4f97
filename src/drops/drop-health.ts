// Names of the drop_health per-CPU counters, in the order of enum drop_health_counter (bpf/drops.h).
export const DROP_HEALTH_COUNTERS = [
  'events',
  'unattributed',
  'parse_failed',
  'rows_full',
  'confirm_drops',
  'unattributed_netfilter',
] as const;

export function dropHealthFromPerCpu(values: ReadonlyMap<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  DROP_HEALTH_COUNTERS.forEach((name, i) => (out[name] = values.get(i) ?? 0));
  return out;
}
