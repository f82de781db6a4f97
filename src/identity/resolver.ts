import type {
  CgroupEntry,
  CgroupSource,
  Identity,
  IdentityResolver,
  KubepodsCgroup,
  PodInfo,
  PodInfoSource,
  WorkloadRef,
} from './types.js';

export interface CgroupIdentityResolverOptions {
  /** cgroup id → cgroup directory (CgroupIndex). */
  readonly cgroups: CgroupSource;
  /**
   * Pod UID → names, in priority order: the first source that knows a UID names it, and the
   * workload comes from the first source that has one. A Kubernetes API source goes first once it
   * exists; PodLogDirectory stays as the fallback that needs no API access.
   */
  readonly podSources: readonly PodInfoSource[];
}

/** Combines cgroup id → pod UID (from cgroup paths) with pod UID → names (from the sources). */
export class CgroupIdentityResolver implements IdentityResolver {
  readonly #cgroups: CgroupSource;
  readonly #sources: readonly PodInfoSource[];

  constructor(opts: CgroupIdentityResolverOptions) {
    this.#cgroups = opts.cgroups;
    this.#sources = opts.podSources;
  }

  resolve(cgroupId: bigint): Identity {
    const entry = this.#cgroups.lookup(cgroupId);
    if (entry === undefined) return { kind: 'unknown', reason: 'cgroup-not-found' };
    if (entry.pod === null) return { kind: 'host', cgroupPath: entry.path };
    const hits: Array<{ source: string; info: PodInfo }> = [];
    for (const source of this.#sources) {
      const info = source.lookupByUid(entry.pod.podUid);
      if (info === undefined) continue;
      hits.push({ source: source.name, info });
      if (info.workload !== undefined) break; // nothing further to learn from lower priorities
    }
    return identityOf(entry, entry.pod, hits);
  }

  async resolveFresh(cgroupId: bigint): Promise<Identity> {
    const entry = await this.#cgroups.lookupFresh(cgroupId);
    if (entry === undefined) return { kind: 'unknown', reason: 'cgroup-not-found' };
    if (entry.pod === null) return { kind: 'host', cgroupPath: entry.path };
    const uid = entry.pod.podUid;
    const answers = await Promise.all(this.#sources.map(async (s) => s.lookupByUidFresh(uid)));
    const hits: Array<{ source: string; info: PodInfo }> = [];
    answers.forEach((info, i) => {
      const source = this.#sources[i];
      if (info !== undefined && source !== undefined) hits.push({ source: source.name, info });
    });
    return identityOf(entry, entry.pod, hits);
  }
}

/** hits are in source priority order. */
function identityOf(
  entry: CgroupEntry,
  pod: KubepodsCgroup,
  hits: ReadonlyArray<{ source: string; info: PodInfo }>,
): Identity {
  const first = hits[0];
  if (first === undefined) {
    return {
      kind: 'unknown',
      reason: 'pod-not-named',
      podUid: pod.podUid,
      qos: pod.qos,
      cgroupPath: entry.path,
      ...(pod.container === undefined ? {} : { container: pod.container }),
    };
  }
  const workload: WorkloadRef | undefined = hits.find((h) => h.info.workload !== undefined)?.info
    .workload;
  return {
    kind: 'pod',
    namespace: first.info.namespace,
    pod: first.info.name,
    podUid: pod.podUid,
    qos: pod.qos,
    source: first.source,
    ...(pod.container === undefined ? {} : { container: pod.container }),
    ...(workload === undefined ? {} : { workload }),
  };
}
