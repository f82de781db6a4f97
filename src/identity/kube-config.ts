// Whether and how to reach the Kubernetes API for pod identity: an explicit kubeconfig file, or
// the in-cluster service account, or neither (then /var/log/pods alone names pods).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** auto: use the API when a kubeconfig or service account is there; on: require it; off: never. */
export type KubeApiMode = 'auto' | 'on' | 'off';

export interface KubeConnectionRequest {
  readonly mode: KubeApiMode;
  /** --kubeconfig (or $KUBECONFIG, resolved by the config module): wins over in-cluster. */
  readonly kubeconfigPath?: string;
  /** This node's name ($NODE_NAME from the downward API): the watch is limited to its pods. */
  readonly nodeName?: string;
  /** Environment holding KUBERNETES_SERVICE_HOST/PORT. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Prefix of /var/run/secrets/kubernetes.io/serviceaccount (tests). Default ''. client-node
   * reads the in-cluster host and port from process.env itself, whatever env says.
   */
  readonly rootPrefix?: string;
}

export type KubeConnection =
  | {
      readonly kind: 'enabled';
      readonly kubeConfig: KubeConfig;
      readonly nodeName: string;
      /** For logs: 'in-cluster service account' or 'kubeconfig <path>'. */
      readonly origin: string;
    }
  | { readonly kind: 'disabled'; readonly reason: string };

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Decides from flags and environment. Throws, naming what to change, when --kube-api=on cannot be
 * honoured or an explicit kubeconfig cannot be loaded; in auto mode a missing prerequisite only
 * disables the source (the reason says which).
 */
export function chooseKubeConnection(req: KubeConnectionRequest): KubeConnection {
  if (req.mode === 'off') return { kind: 'disabled', reason: 'disabled by --kube-api=off' };
  const unavailable = (reason: string): KubeConnection => {
    if (req.mode === 'on') throw new Error(`--kube-api=on: ${reason}`);
    return { kind: 'disabled', reason };
  };
  const nodeName = req.nodeName?.trim();
  if (!nodeName)
    return unavailable(
      'the node name is not set: set NODE_NAME from the downward API (fieldRef spec.nodeName)',
    );

  if (req.kubeconfigPath !== undefined && req.kubeconfigPath !== '') {
    const kubeConfig = new KubeConfig();
    try {
      kubeConfig.loadFromFile(req.kubeconfigPath);
    } catch (err) {
      throw new Error(`cannot load kubeconfig ${req.kubeconfigPath}`, { cause: err });
    }
    if (kubeConfig.getCurrentCluster() === null)
      throw new Error(
        `kubeconfig ${req.kubeconfigPath} names no current cluster: set current-context`,
      );
    return { kind: 'enabled', kubeConfig, nodeName, origin: `kubeconfig ${req.kubeconfigPath}` };
  }

  const env = req.env ?? process.env;
  const prefix = req.rootPrefix ?? '';
  const tokenFile = join(prefix + SERVICE_ACCOUNT_DIR, 'token');
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT)
    return unavailable(
      'not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset) and no --kubeconfig given',
    );
  if (!existsSync(tokenFile))
    return unavailable(
      `no service account token at ${tokenFile}: set automountServiceAccountToken: true on the pod`,
    );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromCluster(prefix);
  return { kind: 'enabled', kubeConfig, nodeName, origin: 'in-cluster service account' };
}
