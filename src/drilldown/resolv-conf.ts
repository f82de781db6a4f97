// resolv.conf as the pod's resolver reads it (resolv.conf(5); musl reads the same keywords).
// Pure.

export interface ResolvConf {
  nameservers: string[];
  /** The last `search` or `domain` line wins, as in glibc and musl. */
  search: string[];
  ndots: number;
  /** Seconds a resolver waits for an answer before it re-sends (glibc: per attempt). */
  timeout: number;
  attempts: number;
  /** Flag options as written: single-request-reopen, single-request, use-vc, edns0, rotate, ... */
  flags: string[];
  /** Every `options` token as written, for the page. */
  options: string[];
}

/** Defaults of glibc and musl alike. */
export const RESOLV_DEFAULTS = { ndots: 1, timeout: 5, attempts: 2 } as const;

function clampInt(text: string, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  return Math.min(Number(text), max);
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = {
    nameservers: [],
    search: [],
    ...RESOLV_DEFAULTS,
    flags: [],
    options: [],
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const [keyword, ...args] = line.split(/\s+/);
    switch (keyword) {
      case 'nameserver':
        if (args[0]) out.nameservers.push(args[0]);
        break;
      case 'search':
      case 'domain':
        out.search = keyword === 'domain' ? args.slice(0, 1) : args;
        break;
      case 'options':
        for (const opt of args) {
          out.options.push(opt);
          const [name, value = ''] = opt.split(':', 2);
          // glibc's limits: ndots 15, timeout 30, attempts 5.
          if (name === 'ndots') out.ndots = clampInt(value, 15) ?? out.ndots;
          else if (name === 'timeout') out.timeout = clampInt(value, 30) ?? out.timeout;
          else if (name === 'attempts') out.attempts = clampInt(value, 5) ?? out.attempts;
          else if (!opt.includes(':')) out.flags.push(opt);
        }
        break;
    }
  }
  return out;
}
