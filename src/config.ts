// Configuration is resolved here and only here: flags, then environment, then named defaults.
// Bad input fails fast with a message that says what to change.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The directory holding package.json: src/ under tsx, dist/src/ when compiled. */
function findPackageRoot(from: string): string {
  for (let dir = from; dir !== path.dirname(dir); dir = path.dirname(dir))
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  return from;
}

export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

export interface Config {
  listenHost: string;
  listenPort: number;
  /** cgroup2 directory the programs attach to; undefined = auto (kubepods cgroup, else cgroup2 root). */
  cgroupRoot: string | undefined;
  bpffsDir: string;
  bpfObject: string;
  bpftool: string;
  bpftoolTimeoutMs: number;
  readIntervalMs: number;
  timeoutDeadlineMs: number;
  podLogDir: string;
  podSeriesLimit: number;
  nodeName: string;
  purgeOnExit: boolean;
  resetMaps: boolean;
  conntrackStatFile: string;
  kubeApi: 'auto' | 'on' | 'off';
  kubeconfig: string | undefined;
  workloadLabel: boolean;
  podSeriesGraceMs: number;
  logLevel: string;
  /** The drill-down API and page (query names): their own listener, loopback by default. */
  drilldownHost: string;
  drilldownPort: number;
  /** Bearer token the drill-down API requires; undefined: none. */
  drilldownToken: string | undefined;
  /** An answer this slow (first send to answer) becomes a drill-down event. */
  slowLookupThresholdMs: number;
}

type Kind = 'string' | 'duration' | 'int' | 'bool' | 'address' | 'kube-api';

interface Option {
  key: keyof Config | 'listen' | 'drilldownListen';
  flag: string;
  env: string;
  kind: Kind;
  default: string | undefined;
  help: string;
}

export const OPTIONS: readonly Option[] = [
  {
    key: 'listen',
    flag: '--listen-address',
    env: 'DNSRACE_LISTEN_ADDRESS',
    kind: 'address',
    default: '0.0.0.0:9853',
    help: 'HOST:PORT for /metrics, /healthz and /readyz',
  },
  {
    key: 'cgroupRoot',
    flag: '--cgroup-root',
    env: 'DNSRACE_CGROUP_ROOT',
    kind: 'string',
    default: undefined,
    help: "cgroup2 directory to attach to (default: the node's kubepods cgroup, else the cgroup2 root)",
  },
  {
    key: 'bpffsDir',
    flag: '--bpffs-dir',
    env: 'DNSRACE_BPFFS_DIR',
    kind: 'string',
    default: '/sys/fs/bpf/dnsrace',
    help: 'bpffs directory for pinned programs and maps (maps survive restarts)',
  },
  {
    key: 'bpfObject',
    flag: '--bpf-object',
    env: 'DNSRACE_BPF_OBJECT',
    kind: 'string',
    default: path.join(PACKAGE_ROOT, 'bpf', 'dist', 'dns.bpf.o'),
    help: 'prebuilt DNS BPF object',
  },
  {
    key: 'bpftool',
    flag: '--bpftool',
    env: 'DNSRACE_BPFTOOL',
    kind: 'string',
    default: 'bpftool',
    help: 'bpftool binary (>= 7.2)',
  },
  {
    key: 'bpftoolTimeoutMs',
    flag: '--bpftool-timeout',
    env: 'DNSRACE_BPFTOOL_TIMEOUT',
    kind: 'duration',
    default: '10s',
    help: 'time limit for one bpftool call',
  },
  {
    key: 'readIntervalMs',
    flag: '--read-interval',
    env: 'DNSRACE_READ_INTERVAL',
    kind: 'duration',
    default: '5s',
    help: 'how often the kernel maps are read and pending queries swept; scrapes are served from the last read',
  },
  {
    key: 'timeoutDeadlineMs',
    flag: '--timeout-deadline',
    env: 'DNSRACE_TIMEOUT_DEADLINE',
    kind: 'duration',
    default: '5s',
    help: "a query unanswered this long after its last send counts as a timeout (glibc's and musl's resolvers give up after 5 s)",
  },
  {
    key: 'podLogDir',
    flag: '--pod-log-dir',
    env: 'DNSRACE_POD_LOG_DIR',
    kind: 'string',
    default: '/var/log/pods',
    help: "kubelet's pod log directory, used to name pods from their UID",
  },
  {
    key: 'podSeriesLimit',
    flag: '--pod-series-limit',
    env: 'DNSRACE_POD_SERIES_LIMIT',
    kind: 'int',
    default: '250',
    help: 'most pods with their own dnsrace_dns_pod_* series; the rest are summed into pod="_other"',
  },
  {
    key: 'nodeName',
    flag: '--node-name',
    env: 'NODE_NAME',
    kind: 'string',
    default: '',
    help: 'node name for dnsrace_build_info (default: hostname)',
  },
  {
    key: 'purgeOnExit',
    flag: '--purge-on-exit',
    env: 'DNSRACE_PURGE_ON_EXIT',
    kind: 'bool',
    default: 'false',
    help: 'remove the pinned maps on exit (counters restart from zero next time)',
  },
  {
    key: 'kubeApi',
    flag: '--kube-api',
    env: 'DNSRACE_KUBE_API',
    kind: 'kube-api',
    default: 'auto',
    help: 'name pods from the Kubernetes API: auto (in a cluster or with a kubeconfig), on (fail without it), off',
  },
  {
    key: 'kubeconfig',
    flag: '--kubeconfig',
    env: 'KUBECONFIG',
    kind: 'string',
    default: undefined,
    help: 'kubeconfig for the Kubernetes API (default: the in-cluster service account)',
  },
  {
    key: 'workloadLabel',
    flag: '--workload-label',
    env: 'DNSRACE_WORKLOAD_LABEL',
    kind: 'bool',
    default: 'false',
    help: 'add a workload label ("deployment/web") to the per-namespace families (more series)',
  },
  {
    key: 'podSeriesGraceMs',
    flag: '--pod-series-grace',
    env: 'DNSRACE_POD_SERIES_GRACE',
    kind: 'duration',
    default: '5m',
    help: "how long a deleted pod's series stay before its counts are folded into its namespace",
  },
  {
    key: 'conntrackStatFile',
    flag: '--conntrack-stat-file',
    env: 'DNSRACE_CONNTRACK_STAT_FILE',
    kind: 'string',
    default: '/proc/net/stat/nf_conntrack',
    help: "conntrack statistics of the node's network namespace (run the exporter with the host network)",
  },
  {
    key: 'resetMaps',
    flag: '--reset-maps',
    env: 'DNSRACE_RESET_MAPS',
    kind: 'bool',
    default: 'false',
    help: 'drop the pinned maps of an earlier run before loading (after an upgrade that changed their layout); counters restart from zero',
  },
  {
    key: 'drilldownListen',
    flag: '--drilldown-listen-address',
    env: 'DNSRACE_DRILLDOWN_LISTEN_ADDRESS',
    kind: 'address',
    default: '127.0.0.1:9854',
    help: 'HOST:PORT for the drill-down page and API (they show query names: keep it on loopback or set a token)',
  },
  {
    key: 'drilldownToken',
    flag: '--drilldown-token',
    env: 'DNSRACE_DRILLDOWN_TOKEN',
    kind: 'string',
    default: undefined,
    help: 'bearer token the drill-down API requires (prefer the environment variable: flags show in ps)',
  },
  {
    key: 'slowLookupThresholdMs',
    flag: '--slow-lookup-threshold',
    env: 'DNSRACE_SLOW_LOOKUP_THRESHOLD',
    kind: 'duration',
    default: '1s',
    help: 'a lookup this slow (first send to answer) is kept, with its name, for the drill-down',
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'DNSRACE_LOG_LEVEL',
    kind: 'string',
    default: 'info',
    help: 'pino level: trace, debug, info, warn, error',
  },
];

export class ConfigError extends Error {}

export type ParseResult = { help: true } | { help: false; config: Config };

/** Parses "250ms", "5s", "2m", "1h" into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function convert(opt: Option, raw: string, from: string): unknown {
  const bad = (want: string) =>
    new ConfigError(`${from}: '${raw}' is not ${want} (${opt.flag} / ${opt.env}: ${opt.help})`);
  switch (opt.kind) {
    case 'string':
      if (raw === '' && opt.key !== 'nodeName') throw bad('a non-empty value');
      return raw;
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined || ms <= 0) throw bad('a positive duration like 500ms, 5s or 1m');
      return ms;
    }
    case 'int': {
      if (!/^\d+$/.test(raw) || Number(raw) < 1) throw bad('a positive whole number');
      return Number(raw);
    }
    case 'kube-api':
      if (raw === 'auto' || raw === 'on' || raw === 'off') return raw;
      throw bad('auto, on or off');
    case 'bool':
      if (['true', '1', 'yes'].includes(raw)) return true;
      if (['false', '0', 'no'].includes(raw)) return false;
      throw bad('true or false');
    case 'address': {
      const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw);
      const port = m ? Number(m[3]) : NaN;
      if (!m || port > 65535)
        throw bad('HOST:PORT like 0.0.0.0:9853 or [::1]:9853 (port 0: any free port)');
      return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
    }
  }
}

export function helpText(): string {
  const lines = [
    'Usage: dnsrace [options]',
    '',
    'eBPF exporter for DNS latency, timeouts and retransmits per namespace and pod.',
    'Every option can also be set by the environment variable shown; flags win.',
    '',
  ];
  for (const o of OPTIONS) {
    const argName = { address: 'host:port', 'kube-api': 'auto|on|off' } as Record<string, string>;
    const arg = o.kind === 'bool' ? '' : ` <${argName[o.kind] ?? o.kind}>`;
    lines.push(`  ${o.flag}${arg}`);
    lines.push(`      ${o.help}`);
    lines.push(
      `      env ${o.env}; default: ${o.default === undefined ? 'auto' : o.default || '(empty)'}`,
    );
  }
  lines.push('  --help', '      print this help and exit');
  return lines.join('\n');
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  const fromFlags = new Map<Option, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return { help: true };
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const opt = OPTIONS.find((o) => o.flag === name);
    if (!opt) throw new ConfigError(`unknown option '${name}' (see --help)`);
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (value === undefined) {
      if (opt.kind === 'bool') value = 'true';
      else {
        value = argv[++i];
        if (value === undefined) throw new ConfigError(`${opt.flag} needs a value (see --help)`);
      }
    }
    fromFlags.set(opt, value);
  }
  const out: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    const flag = fromFlags.get(opt);
    const envValue = env[opt.env];
    let value: unknown;
    if (flag !== undefined) value = convert(opt, flag, opt.flag);
    else if (envValue !== undefined && envValue !== '') value = convert(opt, envValue, opt.env);
    else if (opt.default !== undefined) value = convert(opt, opt.default, `default of ${opt.flag}`);
    if (opt.key === 'listen' || opt.key === 'drilldownListen') {
      const { host, port } = value as { host: string; port: number };
      out[`${opt.key === 'listen' ? 'listen' : 'drilldown'}Host`] = host;
      out[`${opt.key === 'listen' ? 'listen' : 'drilldown'}Port`] = port;
    } else out[opt.key] = value;
  }
  const config = out as unknown as Config;
  if (config.timeoutDeadlineMs < 1000)
    throw new ConfigError(
      `--timeout-deadline ${config.timeoutDeadlineMs}ms is shorter than any resolver waits: use at least 1s`,
    );
  return { help: false, config };
}
