// The Kubernetes API source's cache of this node's pods: UID → pod, IP → pod, and the pods
// deleted lately. Pure apart from the injected clock; the list+watch loop feeds it.
import type { KubePod } from './kube-pod.js';
import type { PodInfo } from './types.js';

export interface KubePodStoreOptions {
  /** How long a deleted pod keeps resolving (late map reads, series retirement). */
  readonly retainDeletedMs: number;
  /** Monotonic clock in ms. */
  readonly now: () => number;
}

/** A pod the API deleted (or a re-list no longer showed), still resolvable for a while. */
export interface DeletedPod {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** Other UIDs of the pod: a mirror pod's static pod UID, which its cgroup path carries. */
  readonly aliasUids: readonly string[];
  /** When the deletion was seen, on the store's clock. */
  readonly deletedAt: number;
}

interface Entry {
  pod: KubePod;
  deletedAt: number | undefined;
  /** IP → store sequence number at which this pod first reported the IP. */
  claims: Map<string, number>;
}

export class KubePodStore {
  readonly #retainDeletedMs: number;
  readonly #now: () => number;
  readonly #byUid = new Map<string, Entry>();
  /** Static pod UID → mirror pod UID. */
  readonly #alias = new Map<string, string>();
  readonly #byIp = new Map<string, Set<string>>();
  /** Node IPs with reference counts: every pod on the node reports them as status.hostIPs. */
  readonly #nodeIps = new Map<string, number>();
  #seq = 0;

  constructor(opts: KubePodStoreOptions) {
    this.#retainDeletedMs = opts.retainDeletedMs;
    this.#now = opts.now;
  }

  /** ADDED or MODIFIED; also brings back a pod marked deleted by mistake. */
  upsert(pod: KubePod): void {
    this.prune();
    const uid = pod.info.uid;
    const old = this.#byUid.get(uid);
    if (old !== undefined) this.#unindex(uid, old);
    const claims = new Map<string, number>();
    if (!pod.info.hostNetwork)
      for (const ip of pod.info.ips ?? []) claims.set(ip, old?.claims.get(ip) ?? ++this.#seq);
    const entry: Entry = { pod, deletedAt: undefined, claims };
    this.#byUid.set(uid, entry);
    this.#index(uid, entry);
  }

  /** DELETED: the pod keeps resolving for retainDeletedMs. last is its final state, if known. */
  markDeleted(uid: string, last?: KubePod): void {
    const deletedAt = this.#byUid.get(uid)?.deletedAt ?? this.#now();
    if (last !== undefined) this.upsert(last);
    const entry = this.#byUid.get(uid);
    if (entry !== undefined) entry.deletedAt = deletedAt;
  }

  /** A full re-list: pods it lacks were deleted while we were not watching. */
  replaceAll(pods: readonly KubePod[]): { added: number; deleted: number } {
    const listed = new Set<string>();
    let added = 0;
    for (const pod of pods) {
      if (!this.#byUid.has(pod.info.uid)) added++;
      this.upsert(pod);
      listed.add(pod.info.uid);
    }
    let deleted = 0;
    for (const [uid, entry] of this.#byUid) {
      if (listed.has(uid) || entry.deletedAt !== undefined) continue;
      this.markDeleted(uid);
      deleted++;
    }
    return { added, deleted };
  }

  /** Live pods, and deleted ones within retainDeletedMs; static pods also by their kubelet UID. */
  byUid(uid: string): PodInfo | undefined {
    const entry = this.#byUid.get(uid) ?? this.#byUid.get(this.#alias.get(uid) ?? '');
    return entry !== undefined && this.#retained(entry) ? entry.pod.info : undefined;
  }

  /**
   * The pod that has this IP. A running pod beats a finished or deleted one, and among equals the
   * latest to report the IP wins (IPs are reused, and the API may tell of the new owner before
   * the old one's end). Node IPs name no pod: every hostNetwork pod shares them.
   */
  byIp(ip: string): PodInfo | undefined {
    if (this.#nodeIps.has(ip)) return undefined;
    let best: { entry: Entry; live: boolean; seq: number } | undefined;
    for (const uid of this.#byIp.get(ip) ?? []) {
      const entry = this.#byUid.get(uid);
      if (entry === undefined || !this.#retained(entry)) continue;
      const live = entry.deletedAt === undefined && !entry.pod.terminal;
      const seq = entry.claims.get(ip) ?? 0;
      if (best === undefined || (live && !best.live) || (live === best.live && seq > best.seq))
        best = { entry, live, seq };
    }
    return best?.entry.pod.info;
  }

  isNodeIp(ip: string): boolean {
    return this.#nodeIps.has(ip);
  }

  /**
   * Pods deleted within retainDeletedMs whose namespace/name no live pod has taken over (a
   * StatefulSet pod comes back under its old name with a new UID: its series must stay).
   */
  deleted(): DeletedPod[] {
    this.prune();
    const liveNames = new Set<string>();
    for (const { pod, deletedAt } of this.#byUid.values())
      if (deletedAt === undefined) liveNames.add(`${pod.info.namespace}/${pod.info.name}`);
    const out: DeletedPod[] = [];
    for (const { pod, deletedAt } of this.#byUid.values()) {
      if (deletedAt === undefined || liveNames.has(`${pod.info.namespace}/${pod.info.name}`))
        continue;
      out.push({
        uid: pod.info.uid,
        namespace: pod.info.namespace,
        name: pod.info.name,
        aliasUids: pod.aliasUids,
        deletedAt,
      });
    }
    return out.sort((a, b) => a.deletedAt - b.deletedAt);
  }

  /** Forgets deleted pods older than retainDeletedMs. */
  prune(): void {
    for (const [uid, entry] of this.#byUid) {
      if (this.#retained(entry)) continue;
      this.#unindex(uid, entry);
      this.#byUid.delete(uid);
    }
  }

  stats(): { pods: number; deletedRetained: number; nodeIps: number } {
    let deleted = 0;
    for (const entry of this.#byUid.values()) if (entry.deletedAt !== undefined) deleted++;
    return {
      pods: this.#byUid.size - deleted,
      deletedRetained: deleted,
      nodeIps: this.#nodeIps.size,
    };
  }

  #retained(entry: Entry): boolean {
    return entry.deletedAt === undefined || this.#now() - entry.deletedAt < this.#retainDeletedMs;
  }

  #index(uid: string, entry: Entry): void {
    for (const alias of entry.pod.aliasUids) this.#alias.set(alias, uid);
    for (const ip of entry.claims.keys()) {
      let owners = this.#byIp.get(ip);
      if (owners === undefined) this.#byIp.set(ip, (owners = new Set()));
      owners.add(uid);
    }
    for (const ip of nodeIpsOf(entry.pod)) this.#nodeIps.set(ip, (this.#nodeIps.get(ip) ?? 0) + 1);
  }

  #unindex(uid: string, entry: Entry): void {
    for (const alias of entry.pod.aliasUids)
      if (this.#alias.get(alias) === uid) this.#alias.delete(alias);
    for (const ip of entry.claims.keys()) {
      const owners = this.#byIp.get(ip);
      owners?.delete(uid);
      if (owners?.size === 0) this.#byIp.delete(ip);
    }
    for (const ip of nodeIpsOf(entry.pod)) {
      const n = (this.#nodeIps.get(ip) ?? 0) - 1;
      if (n > 0) this.#nodeIps.set(ip, n);
      else this.#nodeIps.delete(ip);
    }
  }
}

/** A hostNetwork pod's own IPs are the node's too (kubelet copies hostIPs into podIPs). */
function nodeIpsOf(pod: KubePod): string[] {
  const ips = new Set(pod.hostIps);
  if (pod.info.hostNetwork) for (const ip of pod.info.ips ?? []) ips.add(ip);
  return [...ips];
}
