// Reads the node's conntrack statistics at scrape time. procfs first (one small file read);
// where the kernel has no /proc/net/stat/nf_conntrack, ctnetlink through conntrack-tools'
// `conntrack -S` and `-C` (a few ms per read here, docs/conntrack.md); where neither works,
// a ConntrackUnavailable that says why and what to do. read() never throws, so one broken
// source cannot break a scrape.
import { execa } from 'execa';
import { access, readFile } from 'node:fs/promises';
import { parseConntrackCount, parseConntrackS } from './conntrack-tool.js';
import { parseProcStat } from './proc-stat.js';
import type { ConntrackReading, ConntrackSample, ConntrackUnavailable } from './sample.js';

export interface ConntrackReaderOptions {
  /**
   * The stat file of the netns to watch. Default /proc/net/stat/nf_conntrack (the reader's own
   * netns; the exporter runs in the node's). For another netns: /proc/<pid>/net/stat/nf_conntrack
   * of any process in it.
   */
  statFile?: string;
  /**
   * nf_conntrack_max, first readable wins. /proc/sys/net/netfilter/nf_conntrack_max exists in
   * every netns (read-only outside init_net) but is hidden in netns owned by a non-initial
   * user namespace; /proc/sys/net/nf_conntrack_max is the init_net copy. Both show the one
   * global limit, which each netns's table is held to separately.
   */
  maxFiles?: readonly string[];
  /** Present whenever nf_conntrack is loaded or built in (it has module parameters). */
  moduleDir?: string;
  /**
   * argv prefix of conntrack-tools for the netlink fallback, e.g.
   * ['nsenter', '--net=/run/netns/x', 'conntrack'] for another netns. null turns it off.
   * Default ['conntrack'].
   */
  conntrackCommand?: readonly string[] | null;
  /** Per run of the conntrack command. Default 2000 ms. */
  timeoutMs?: number;
}

export const DEFAULT_STAT_FILE = '/proc/net/stat/nf_conntrack';
export const DEFAULT_MAX_FILES = [
  '/proc/sys/net/netfilter/nf_conntrack_max',
  '/proc/sys/net/nf_conntrack_max',
] as const;
export const DEFAULT_MODULE_DIR = '/sys/module/nf_conntrack';

const INSTALL_HINT =
  'install conntrack-tools in the exporter image (Debian/Ubuntu: apt-get install conntrack; ' +
  'Alpine: apk add conntrack-tools) or run a kernel built with CONFIG_NF_CONNTRACK_PROCFS=y';

const isErrno = (err: unknown, code: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;

function unavailable(
  reason: ConntrackUnavailable['reason'],
  message: string,
  cause?: unknown,
): ConntrackUnavailable {
  return cause === undefined
    ? { source: 'none', reason, message }
    : { source: 'none', reason, message, cause };
}

export class ConntrackReader {
  readonly statFile: string;
  private readonly maxFiles: readonly string[];
  private readonly moduleDir: string;
  private readonly command: readonly string[] | null;
  private readonly timeoutMs: number;

  constructor(opts: ConntrackReaderOptions = {}) {
    this.statFile = opts.statFile ?? DEFAULT_STAT_FILE;
    this.maxFiles = opts.maxFiles ?? DEFAULT_MAX_FILES;
    this.moduleDir = opts.moduleDir ?? DEFAULT_MODULE_DIR;
    this.command = opts.conntrackCommand === undefined ? ['conntrack'] : opts.conntrackCommand;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  async read(): Promise<ConntrackReading> {
    let text: string;
    try {
      text = await readFile(this.statFile, 'utf8');
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) {
        return unavailable('failed', `cannot read ${this.statFile}: ${String(err)}`, err);
      }
      return this.readWithoutProcfs();
    }
    try {
      return { source: 'procfs', ...parseProcStat(text), ...(await this.readMax()) };
    } catch (err) {
      return unavailable(
        'failed',
        `cannot parse ${this.statFile} (${(err as Error).message}); please report its content`,
        err,
      );
    }
  }

  private async readWithoutProcfs(): Promise<ConntrackReading> {
    const loaded = await access(this.moduleDir).then(
      () => true,
      () => false,
    );
    if (!loaded) {
      return unavailable(
        'not-loaded',
        `nf_conntrack is not loaded (no ${this.moduleDir}): this node tracks no connections, so ` +
          'there are no conntrack drops to count; nothing to do unless kube-proxy runs in ' +
          'iptables or ipvs mode here',
      );
    }
    const noProcfs = `${this.statFile} does not exist (kernel without CONFIG_NF_CONNTRACK_PROCFS?)`;
    if (!this.command) {
      return unavailable('no-source', `${noProcfs} and the conntrack fallback is off`);
    }
    const [file, ...prefix] = this.command;
    const run = (flag: string) =>
      execa(file!, [...prefix, flag], { reject: false, timeout: this.timeoutMs, stdin: 'ignore' });
    const [s, c] = await Promise.all([run('-S'), run('-C')]);
    const cmdline = [...this.command, '-S'].join(' ');
    if (s.failed) {
      if (s.code === 'ENOENT') {
        return unavailable(
          'no-source',
          `${noProcfs} and ${file} is not installed: ${INSTALL_HINT}`,
          s,
        );
      }
      const why = s.timedOut
        ? `timed out after ${this.timeoutMs} ms`
        : `exit ${s.exitCode ?? s.signal ?? s.code}: ${String(s.stderr).trim()}`;
      const hint = /not permitted/i.test(String(s.stderr))
        ? '; ctnetlink statistics need CAP_NET_ADMIN'
        : '';
      return unavailable('failed', `${noProcfs}; ${cmdline} failed (${why})${hint}`, s);
    }
    try {
      const stats = parseConntrackS(String(s.stdout));
      // -C failing alone costs only the entries gauge.
      let entries = stats.entries;
      if (!c.failed) {
        try {
          entries = parseConntrackCount(String(c.stdout));
        } catch {
          /* keep what -S had (nothing, with ctnetlink) */
        }
      }
      const sample: ConntrackSample = { source: 'netlink', ...stats, ...(await this.readMax()) };
      return entries === undefined ? sample : { ...sample, entries };
    } catch (err) {
      return unavailable('failed', `${cmdline}: ${(err as Error).message}`, err);
    }
  }

  private async readMax(): Promise<{ max?: number }> {
    for (const f of this.maxFiles) {
      const text = await readFile(f, 'utf8').catch(() => undefined);
      if (text !== undefined && /^\d+$/.test(text.trim())) return { max: Number(text.trim()) };
    }
    return {};
  }
}
