// Recent lookups per cgroup, bounded twice: the last `perCgroup` events of each cgroup, and
// at most `maxCgroups` cgroups (the one quiet longest is forgotten first). Plus per-cgroup
// tallies the doctor reads (socket shapes, first-retry delays). Memory only: query names
// never leave this process except through the drill-down API.
import type { EventKind } from './event.js';
import type { Lookup } from './lookup.js';

export interface CgroupTally {
  byKind: Record<EventKind, number>;
  /** Client UDP sends by socket shape (glibc connects its socket, musl does not). */
  connected: number;
  unconnected: number;
  /** Seconds from first send to the first re-send (musl 2.5 s, glibc 5 s), newest last. */
  firstRetryDelays: number[];
  lastUnixSeconds: number;
}

export interface CgroupRing {
  cgroupId: bigint;
  /** Oldest first. */
  lookups: Lookup[];
  tally: CgroupTally;
}

export interface RingLimits {
  perCgroup: number;
  maxCgroups: number;
}

export const DEFAULT_RING_LIMITS: RingLimits = { perCgroup: 50, maxCgroups: 1024 };
const RETRY_DELAYS_KEPT = 16;

function emptyTally(): CgroupTally {
  return {
    byKind: { slow: 0, failed: 0, timeout: 0, retransmit: 0, nxdomain: 0 },
    connected: 0,
    unconnected: 0,
    firstRetryDelays: [],
    lastUnixSeconds: 0,
  };
}

export class EventRings {
  private readonly rings = new Map<bigint, CgroupRing>();
  private seq = 0;
  evictedCgroups = 0;

  constructor(private readonly limits: RingLimits = DEFAULT_RING_LIMITS) {}

  nextSeq(): number {
    return ++this.seq;
  }

  /** The sequence number of the newest lookup: changes whenever one is added. */
  get lastSeq(): number {
    return this.seq;
  }

  add(l: Lookup): void {
    let ring = this.rings.get(l.cgroupId);
    if (ring)
      this.rings.delete(l.cgroupId); // re-insert: Map order is least recently active first
    else ring = { cgroupId: l.cgroupId, lookups: [], tally: emptyTally() };
    this.rings.set(l.cgroupId, ring);
    while (this.rings.size > this.limits.maxCgroups) {
      const oldest = this.rings.keys().next().value as bigint;
      this.rings.delete(oldest);
      this.evictedCgroups++;
    }
    ring.lookups.push(l);
    if (ring.lookups.length > this.limits.perCgroup) ring.lookups.shift();
    const t = ring.tally;
    t.byKind[l.kind]++;
    t.lastUnixSeconds = Math.max(t.lastUnixSeconds, l.atUnixSeconds);
    if (l.role === 'client' && l.socket === 'connected') t.connected++;
    if (l.role === 'client' && l.socket === 'unconnected') t.unconnected++;
    if (l.kind === 'retransmit' && l.retransmits === 1) {
      t.firstRetryDelays.push(l.latencySeconds);
      if (t.firstRetryDelays.length > RETRY_DELAYS_KEPT) t.firstRetryDelays.shift();
    }
  }

  get(cgroupId: bigint): CgroupRing | undefined {
    return this.rings.get(cgroupId);
  }

  all(): IterableIterator<CgroupRing> {
    return this.rings.values();
  }

  get size(): number {
    return this.rings.size;
  }
}
