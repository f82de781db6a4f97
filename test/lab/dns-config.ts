/** Pure renderers for the lab's DNS configuration files. */

export const CLUSTER_DOMAIN = 'cluster.local';

/** A name the cluster DNS replicas answer authoritatively. */
export interface ClusterRecord {
  /** Fully qualified, without trailing dot: `web.team-a.svc.cluster.local`. */
  fqdn: string;
  ipv4?: string[];
  ipv6?: string[];
  /** Only this replica (index) serves the record; lets a test tell replicas apart. */
  replica?: number;
}

/** A name the upstream stand-in answers; every other name gets NXDOMAIN. */
export interface UpstreamRecord {
  a?: string[];
  aaaa?: string[];
}

export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

export function defaultClusterRecords(dns: { ipv4: string; ipv6?: string }): ClusterRecord[] {
  const v6 = (a: string): string[] | undefined => (dns.ipv6 ? [a] : undefined);
  return [
    { fqdn: serviceFqdn('kubernetes', 'default'), ipv4: ['10.96.0.1'], ipv6: v6('fd00:10:96::1') },
    {
      fqdn: serviceFqdn('kube-dns', 'kube-system'),
      ipv4: [dns.ipv4],
      ipv6: dns.ipv6 ? [dns.ipv6] : undefined,
    },
    { fqdn: serviceFqdn('web', 'team-a'), ipv4: ['10.96.0.20'] },
    { fqdn: serviceFqdn('web', 'default'), ipv4: ['10.96.0.21'] },
    { fqdn: serviceFqdn('db', 'prod'), ipv4: ['10.96.0.30'] },
    { fqdn: serviceFqdn('dual', 'default'), ipv4: ['10.96.0.40'], ipv6: ['fd00:10:96::28'] },
    { fqdn: serviceFqdn('whoami', 'default'), ipv4: ['10.9.9.1'], replica: 0 },
    { fqdn: serviceFqdn('whoami', 'default'), ipv4: ['10.9.9.2'], replica: 1 },
  ];
}

export const DEFAULT_UPSTREAM_RECORDS: Record<string, UpstreamRecord> = {
  'example.com': { a: ['192.0.2.80'] },
  'api.example.org': { a: ['198.51.100.7'], aaaa: ['2001:db8::7'] },
};

export interface ResolvConfSpec {
  nameservers: string[];
  namespace?: string;
  /** Extra `options` beyond ndots:5, e.g. `single-request-reopen`, `timeout:1`. */
  options?: string[];
  /** Replaces the kubelet search list (ClusterFirst policy) when given. */
  search?: string[];
}

/** resolv.conf as the kubelet writes it for dnsPolicy ClusterFirst. */
export function renderResolvConf(spec: ResolvConfSpec): string {
  const search =
    spec.search ??
    (spec.namespace
      ? [`${spec.namespace}.svc.${CLUSTER_DOMAIN}`, `svc.${CLUSTER_DOMAIN}`, CLUSTER_DOMAIN]
      : []);
  const lines = spec.nameservers.map((n) => `nameserver ${n}`);
  if (search.length) lines.push(`search ${search.join(' ')}`);
  lines.push(`options ${['ndots:5', ...(spec.options ?? [])].join(' ')}`);
  return lines.join('\n') + '\n';
}

export interface ReplicaConfigSpec {
  replica: number;
  listen: string[];
  upstream: string;
  records: ClusterRecord[];
  logQueries: boolean;
  extraLines?: string[];
}

/** dnsmasq config of one CoreDNS stand-in: authoritative for cluster.local, no cache. */
export function renderReplicaConfig(spec: ReplicaConfigSpec): string {
  const lines = [
    'no-resolv',
    'no-hosts',
    'bind-interfaces',
    ...spec.listen.map((a) => `listen-address=${a}`),
    'port=53',
    // Unknown *.cluster.local names get NXDOMAIN here instead of being forwarded.
    `local=/${CLUSTER_DOMAIN}/`,
    `server=${spec.upstream}`,
    // No cache: every query reaches the upstream, so upstream faults show every time.
    'cache-size=0',
  ];
  for (const r of spec.records) {
    if (r.replica !== undefined && r.replica !== spec.replica) continue;
    const addrs = [...(r.ipv4 ?? []), ...(r.ipv6 ?? [])];
    if (addrs.length) lines.push(`host-record=${r.fqdn},${addrs.join(',')}`);
  }
  if (spec.logQueries) lines.push('log-queries');
  lines.push(...(spec.extraLines ?? []));
  return lines.join('\n') + '\n';
}
