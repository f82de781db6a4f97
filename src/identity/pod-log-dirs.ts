// Names of kubelet's per-pod log directories, /var/log/pods/<namespace>_<pod>_<uid>/
// (kubernetes/kubernetes pkg/kubelet/kuberuntime/helpers.go, BuildPodLogsDirectory joins the three
// with logPathDelimiter "_"). Namespace names are RFC 1123 labels and pod names RFC 1123
// subdomains (apimachinery validation), so neither contains '_' and the split is unambiguous.
// Kubelets before 1.14 used /var/log/pods/<uid>/ (parsePodUIDFromLogsDirectory still accepts it);
// such a name carries no namespace or pod name, so it yields nothing here. Each pod directory
// holds one subdirectory per container, named after the container.

export interface PodLogDirName {
  readonly namespace: string;
  readonly pod: string;
  readonly uid: string;
}

const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
// Dashed UUID from the API server, or the 32-hex MD5 the kubelet gives static pods.
const POD_UID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/;

/**
 * Splits a pod log directory name. Returns null for anything the kubelet would not have written,
 * so that stray directories never turn into label values.
 */
export function parsePodLogDirName(name: string): PodLogDirName | null {
  const parts = name.split('_');
  if (parts.length !== 3) return null;
  const [namespace = '', pod = '', uid = ''] = parts;
  if (!DNS1123_LABEL.test(namespace) || !DNS1123_SUBDOMAIN.test(pod) || !POD_UID.test(uid))
    return null;
  return { namespace, pod, uid };
}
