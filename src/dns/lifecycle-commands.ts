// A lifecycle plan as bpftool batch lines. bpftool stops at the first failing line, so the
// order matters: names first (harmless), then each retired row's new sum directly followed
// by the deletes of the rows folded into it (a group is done or untouched: a failing sum
// write, e.g. a full map, stops before its deletes), then names no row uses any more.
import { mapDeleteArgs, mapUpdateArgs } from '../bpf/bpftool.js';
import type { LifecyclePlan } from './lifecycle.js';
import { encodeCgroupName, encodeStatsKey, encodeStatsValue } from './stats-encode.js';

function u64le(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

export function planCommands(plan: LifecyclePlan, maps: Record<string, string>): string[][] {
  const names = maps.dns_cgroup_names;
  const stats = maps.dns_stats;
  if (!names || !stats) throw new Error('dns_cgroup_names and dns_stats must be pinned');
  return [
    ...plan.nameWrites.map(([id, n]) => mapUpdateArgs(names, u64le(id), encodeCgroupName(n))),
    ...plan.retire.flatMap((g) => [
      mapUpdateArgs(stats, encodeStatsKey(g.key), encodeStatsValue(g.totals)),
      ...g.deletes.map((k) => mapDeleteArgs(stats, encodeStatsKey(k))),
    ]),
    ...plan.nameDeletes.map((id) => mapDeleteArgs(names, u64le(id))),
  ];
}
