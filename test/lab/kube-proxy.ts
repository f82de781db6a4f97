/**
 * kube-proxy (iptables mode) style ClusterIP rules, rendered as iptables-restore input for
 * the nat table of the node netns. Endpoint i of n is chosen with probability 1/(n-i), as
 * kube-proxy does, so each of n endpoints gets 1/n of new connections.
 */
export interface ClusterIpService {
  /** `kube-system/kube-dns:dns`, used in comments only. */
  name: string;
  /** Chain name stem, ≤ 12 chars: KUBE-SVC-<stem>-UDP / KUBE-SEP-<stem><i>-UDP. */
  stem: string;
  clusterIp: string;
  port: number;
  protocols: ('udp' | 'tcp')[];
  endpoints: { ip: string; port: number }[];
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function renderServiceRules(services: ClusterIpService[]): string {
  const chains = ['KUBE-SERVICES'];
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  ];
  for (const svc of services) {
    const plen = svc.clusterIp.includes(':') ? 128 : 32;
    for (const proto of svc.protocols) {
      const P = proto.toUpperCase();
      const svcChain = `KUBE-SVC-${svc.stem}-${P}`;
      chains.push(svcChain);
      rules.push(
        `-A KUBE-SERVICES -d ${svc.clusterIp}/${plen} -p ${proto} -m ${proto} --dport ${svc.port} ` +
          `-m comment --comment "${svc.name} cluster IP" -j ${svcChain}`,
      );
      const n = svc.endpoints.length;
      svc.endpoints.forEach((ep, i) => {
        const sepChain = `KUBE-SEP-${svc.stem}${i}-${P}`;
        chains.push(sepChain);
        const pick =
          i < n - 1 ? `-m statistic --mode random --probability ${(1 / (n - i)).toFixed(11)} ` : '';
        rules.push(
          `-A ${svcChain} -m comment --comment "${svc.name} -> ${hostPort(ep.ip, ep.port)}" ${pick}-j ${sepChain}`,
        );
        rules.push(
          `-A ${sepChain} -p ${proto} -m ${proto} -j DNAT --to-destination ${hostPort(ep.ip, ep.port)}`,
        );
      });
    }
  }
  return ['*nat', ...chains.map((c) => `:${c} - [0:0]`), ...rules, 'COMMIT', ''].join('\n');
}
