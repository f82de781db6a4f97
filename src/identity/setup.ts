// Builds the identity sources the exporter uses, in priority order: the Kubernetes API (when
// configured and reachable), then kubelet's /var/log/pods, both behind one resolver over the
// cgroup index. Also reports which source is in use, for dnsrace_identity_source.
import type { Logger } from 'pino';
import { CgroupIndex } from './cgroup-index.js';
import { chooseKubeConnection, type KubeApiMode } from './kube-config.js';
import { KubeApiPodSource } from './kube-api-source.js';
import { PodLogDirectory } from './pod-log-directory.js';
import { CgroupIdentityResolver } from './resolver.js';
import type { Cgroup2Mount } from './mountinfo.js';

const REFRESH_MS = 30_000;
const INITIAL_SYNC_WAIT_MS = 2_000;

export interface IdentitySetup {
  resolver: CgroupIdentityResolver;
  cgroups: CgroupIndex;
  kube: KubeApiPodSource | undefined;
  /** source -> state, for dnsrace_identity_source{source,state}. */
  sourceStates: () => { source: string; state: string }[];
  stop: () => Promise<void>;
}

export interface IdentityOptions {
  mount: Cgroup2Mount;
  /** The attach root, relative to the cgroup2 mount ('/kubepods.slice'). */
  subtree: string;
  podLogDir: string;
  kubeApi: KubeApiMode;
  kubeconfig: string | undefined;
  /** $NODE_NAME as given: never the hostname (in a pod the hostname is the pod's name). */
  nodeName: string;
  log: Logger;
}

export async function setUpIdentity(o: IdentityOptions): Promise<IdentitySetup> {
  const log = o.log;
  const cgroups = new CgroupIndex({
    mountPoint: o.mount.mountPoint,
    hierarchyRoot: o.mount.root,
    subtree: o.subtree,
    onRefreshError: (err) =>
      log.warn({ err }, 'cgroup rescan failed; names come from the previous scan'),
  });
  let podLogDirOk = true;
  const pods = new PodLogDirectory({
    root: o.podLogDir,
    onRefreshError: (err) => {
      podLogDirOk = false;
      log.warn(
        { err, podLogDir: o.podLogDir },
        'cannot read the pod log directory; pods it would name stay _unknown',
      );
    },
  });
  await cgroups.refresh();
  await pods.refresh().then(
    () => (podLogDirOk = true),
    () => undefined, // reported through onRefreshError
  );
  const conn = chooseKubeConnection({
    mode: o.kubeApi,
    ...(o.kubeconfig ? { kubeconfigPath: o.kubeconfig } : {}),
    ...(o.nodeName ? { nodeName: o.nodeName } : {}),
  });
  let kube: KubeApiPodSource | undefined;
  if (conn.kind === 'enabled') {
    kube = new KubeApiPodSource({
      kubeConfig: conn.kubeConfig,
      nodeName: conn.nodeName,
      origin: conn.origin,
      fallback: o.podLogDir,
      log: log.child({ source: 'kube-api' }),
    });
    kube.start();
    // Name pods before the first map read when the API is quick; never wait long for a slow one.
    const synced = await kube.whenSynced(INITIAL_SYNC_WAIT_MS);
    if (!synced && kube.health().state === 'connecting')
      log.warn(
        { podLogDir: o.podLogDir, waitedMs: INITIAL_SYNC_WAIT_MS },
        `the Kubernetes API has not listed this node's pods yet; ${o.podLogDir} names them until it does ` +
          '(check the API server load and the route to it if this persists)',
      );
  } else log.info({ reason: conn.reason }, 'pod identity from the pod log directory only');
  const stops = [cgroups.startPeriodicRefresh(REFRESH_MS), pods.startPeriodicRefresh(REFRESH_MS)];
  const resolver = new CgroupIdentityResolver({
    cgroups,
    podSources: kube ? [kube, pods] : [pods],
  });
  return {
    resolver,
    cgroups,
    kube,
    sourceStates: () => [
      { source: 'kube-api', state: kube ? kube.health().state : 'disabled' },
      { source: 'pod-log-dir', state: podLogDirOk ? 'connected' : 'degraded' },
    ],
    stop: async () => {
      for (const s of stops) s();
      await kube?.stop();
    },
  };
}
