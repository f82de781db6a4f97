// The exporter's lifecycle: check bpftool, index cgroups and pods, load and attach the
// programs, read the maps on a timer, serve HTTP; on stop, detach and keep the maps.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname, release } from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { Bpftool } from './bpf/bpftool.js';
import { DnsProgramLoader } from './bpf/loader.js';
import type { MapInfo } from './bpf/bpftool-output.js';
import { chooseCgroupRoot } from './cgroup-root.js';
import { MapReader } from './bpf/map-reader.js';
import { checkOwnCapabilities, type CapabilityCheck } from './capabilities.js';
import { PACKAGE_ROOT, type Config } from './config.js';
import { PodSeriesBudget } from './dns/pod-budget.js';
import { readDnsSnapshot, ReadStepError } from './dns/reader.js';
import { AddressBook } from './drops/address-book.js';
import { availabilityLogLine, ConntrackReader } from './conntrack/index.js';
import { buildFamilies } from './exposition/families.js';
import { createApp, listen } from './http/server.js';
import { readCgroup2Mount } from './identity/index.js';
import { setUpIdentity } from './identity/setup.js';
import { CgroupLifecycle } from './dns/lifecycle.js';
import { sightingOf } from './dns/sighting.js';
import { planCommands } from './dns/lifecycle-commands.js';
import { decodeCgroupNames } from './dns/stats-encode.js';
import type { ExporterState } from './snapshot.js';
import { OverflowWatch, PendingShareWatch, ReadFailureLog, UnnamedWatch } from './read-health.js';
import { stopStaleEventReaders } from './stale-readers.js';
import { readProcessStats } from './process-stats.js';
import type { QtypeLabel } from './metrics/names.js';

/** Exemplars per (namespace, qtype) histogram: enough to find a pod, few enough to stay cheap. */
const EXEMPLARS_PER_SERIES = 4;
import { createDrilldownApp, Drilldown } from './drilldown/index.js';
import { identityLabels } from './identity/labels.js';
import { decodeDnsStats } from './dns/stats-row.js';

function packageVersion(): string {
  const p = path.join(PACKAGE_ROOT, 'package.json');
  return existsSync(p)
    ? (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version
    : 'unknown';
}

export class Exporter {
  readonly state: ExporterState;
  private server: Server | undefined;
  private loader: DnsProgramLoader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopIdentity: (() => void)[] = [];
  private reading: Promise<void> | undefined;
  private stopped = false;
  private readonly bpftool: Bpftool;
  /** The on-call drill-down (events, doctor, page); undefined until attached, or if it failed. */
  drilldown: Drilldown | undefined;
  /** The start-up capability check (src/capabilities.ts); undefined until it ran, or where /proc is unreadable. */
  capabilities: CapabilityCheck[] | undefined;
  private drilldownServer: Server | undefined;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.bpftool = new Bpftool({ binary: config.bpftool, timeoutMs: config.bpftoolTimeoutMs, log });
    this.state = {
      snapshot: undefined,
      attached: false,
      dropMode: undefined,
      identitySources: () => [],
      eventStats: () => this.drilldown?.reader.stats,
      processStats: readProcessStats,
      exemplars: (namespace, qtype, kind) =>
        this.drilldown?.recentLookups(namespace, qtype as QtypeLabel, kind, EXEMPLARS_PER_SERIES) ??
        [],
      conntrack: undefined,
      capabilities: undefined,
      bpftoolFailures: new Map(),
      build: {
        version: packageVersion(),
        node: config.nodeName || hostname(),
        kernel: release(),
        bpftool: '',
      },
    };
  }

  /** The port actually bound (useful with port 0 in tests). */
  get port(): number | undefined {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : undefined;
  }

  private starting: Promise<void> | undefined;

  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { config, log } = this;
    // HTTP first: /healthz answers and /readyz says what the exporter waits for.
    const app = createApp({
      families: () => buildFamilies(this.state),
      readiness: () => this.readiness(),
      log: log.child({ component: 'http' }),
    });
    this.server = await listen(app, config.listenHost, config.listenPort);
    log.info({ address: `${config.listenHost}:${this.port}` }, 'serving /metrics');
    // Before any bpftool call: a missing capability is named, with why, not left to an EPERM.
    this.capabilities = await checkOwnCapabilities(log.child({ component: 'capabilities' }));
    this.state.capabilities = this.capabilities;

    if (!existsSync(config.bpfObject))
      throw new Error(
        `BPF object ${config.bpfObject} not found: set --bpf-object, or rebuild with scripts/build-bpf.sh`,
      );
    const version = await this.bpftool.requireVersion('7.2.0');
    this.state.build.bpftool = version.version;

    const mount = await readCgroup2Mount();
    const cgroupRoot = config.cgroupRoot ?? chooseCgroupRoot(mount.mountPoint, isDirectory);
    if (!isDirectory(cgroupRoot))
      throw new Error(
        `--cgroup-root ${cgroupRoot} is not a directory: pass a cgroup2 directory that contains the pods`,
      );
    const rel = path.relative(mount.mountPoint, cgroupRoot);
    if (rel.startsWith('..'))
      throw new Error(
        `--cgroup-root ${cgroupRoot} is outside the cgroup2 mount ${mount.mountPoint}`,
      );

    const identity = await setUpIdentity({
      mount,
      subtree: `/${rel}`,
      podLogDir: config.podLogDir,
      kubeApi: config.kubeApi,
      kubeconfig: config.kubeconfig,
      nodeName: config.nodeName,
      log: log.child({ component: 'identity' }),
    });
    this.stopIdentity.push(() => void identity.stop());
    this.state.identitySources = identity.sourceStates;
    const { resolver, cgroups } = identity;

    this.loader = new DnsProgramLoader({
      bpftool: this.bpftool,
      objPath: config.bpfObject,
      cgroupDir: cgroupRoot,
      bpffsDir: config.bpffsDir,
      log,
    });
    if (this.stopped) return; // a signal arrived while indexing: attach nothing
    if (config.resetMaps) {
      log.warn(
        { bpffsDir: config.bpffsDir },
        '--reset-maps: dropping the pinned maps of the earlier run',
      );
      await this.loader.stop({ purge: true });
    }
    const loaded = await this.loader.start();
    this.state.attached = true;
    const drop = loaded.dropAttribution;
    this.state.dropMode = drop.mode;
    log.info(
      {
        cgroupRoot,
        bpffsDir: config.bpffsDir,
        reusedMaps: loaded.reusedMaps,
        dropAttribution: drop.mode,
      },
      'DNS programs attached',
    );
    // A lower drop-attribution mode is expected on kernels without fexit or drop reasons:
    // say once why, so that an operator can tell a kernel limit from a broken install.
    for (const why of drop.fallbacks)
      log.warn({ fallback: why }, `drop attribution: ${drop.mode} mode, because ${why}`);

    const pins = pickPins(loaded.maps, DNS_MAPS);
    const maps = new MapReader(this.bpftool, loaded.iterators);
    const dropPins =
      drop.mode === 'none' ? undefined : pickPins(loaded.maps, ['packet_drops', 'drop_health']);
    const maxEntries: Record<string, number> = {};
    for (const [name, pin] of Object.entries({ ...pins, ...dropPins })) {
      const info = (await this.bpftool.mapShow(pin)) as MapInfo;
      maxEntries[name] = info.max_entries;
    }
    const conntrack = new ConntrackReader({ statFile: config.conntrackStatFile });
    const ctLog = log.child({ component: 'conntrack' });
    const budget = new PodSeriesBudget(config.podSeriesLimit);
    const loader = this.loader;
    const addressBook = new AddressBook();
    const lifecycle = new CgroupLifecycle({
      graceMs: config.podSeriesGraceMs,
      now: () => performance.now(),
      byWorkload: config.workloadLabel,
    });
    lifecycle.load(
      decodeCgroupNames(
        await this.bpftool.mapDump(pickPins(loaded.maps, ['dns_cgroup_names']).dns_cgroup_names),
      ),
    );
    const readFailures = new ReadFailureLog({
      bpftoolTimeoutMs: config.bpftoolTimeoutMs,
      bpffsDir: config.bpffsDir,
    });
    const overflows = new OverflowWatch();
    const shares = new PendingShareWatch();
    const unnamed = new UnnamedWatch({
      now: () => performance.now(),
      readIntervalMs: config.readIntervalMs,
    });
    const say = (line: { level: 'info' | 'warn' | 'error'; msg: string; fields: object }) =>
      log[line.level](line.fields, line.msg);
    const readOnce = async () => {
      const reading = await conntrack.read();
      const line = availabilityLogLine(this.state.conntrack, reading);
      if (line) ctLog[line.level](line.fields, line.msg);
      this.state.conntrack = reading;
      try {
        this.state.snapshot = await readDnsSnapshot({
          dump: (pin) => maps.dump(pin),
          dumpMany: (pins) => maps.dumpMany(pins),
          sweep: (keys, deadlineNs) => loader.sweepTimeouts(keys, deadlineNs),
          pins,
          dropPins,
          addressBook,
          maxEntries,
          lifecycle,
          sight: (id) => sightingOf(resolver.resolve(id), cgroups.lookup(id)),
          writePlan: (plan) =>
            this.bpftool.batch(planCommands(plan, loaded.maps)).then(() => undefined),
          onWriteFailure: (err) => {
            this.countFailure('lifecycle_write');
            log.error(
              { err },
              'writing pod names and retired rows to the pinned maps failed; retrying at the next read',
            );
          },
          byWorkload: config.workloadLabel,
          budget,
          deadlineNs: BigInt(config.timeoutDeadlineMs) * 1_000_000n,
          monotonicNs: () => process.hrtime.bigint(),
          wallSeconds: () => Date.now() / 1000,
        });
        const recovered = readFailures.succeeded();
        if (recovered) say(recovered);
        overflows.update(this.state.snapshot).forEach(say);
        const shareLine = shares.update(this.state.snapshot);
        if (shareLine) say(shareLine);
        const unnamedLine = unnamed.update(this.state.snapshot);
        if (unnamedLine) say(unnamedLine);
      } catch (err) {
        const op = err instanceof ReadStepError ? err.operation : 'read';
        this.countFailure(op);
        say(readFailures.failed(err, op));
      }
    };
    await readOnce();
    const stale = await stopStaleEventReaders(config.bpffsDir).catch((err: unknown) => {
      log.warn({ err }, 'cannot look for event readers left by an earlier run');
      return [];
    });
    if (stale.length > 0)
      log.warn(
        { pids: stale },
        `stopped ${stale.length} bpftool event reader(s) left behind by an earlier run that did not stop cleanly (killed?); nothing else to do`,
      );
    await this.startDrilldown({
      maps: loaded.maps,
      cgroupRoot,
      nameOf: (id) => identityLabels(resolver.resolve(id)),
      statsRows: async () => decodeDnsStats(await maps.dump(pins.dns_stats)),
    });
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.reading = readOnce().finally(loop);
      }, config.readIntervalMs);
    };
    loop();
  }

  /**
   * Starts the drill-down and its listener. A failure is logged, not fatal: the metrics do
   * not depend on it (an old BPF object, or --drilldown-listen-address in use).
   */
  private async startDrilldown(
    o: Pick<
      ConstructorParameters<typeof Drilldown>[0],
      'maps' | 'cgroupRoot' | 'nameOf' | 'statsRows'
    >,
  ): Promise<void> {
    const { config, log } = this;
    try {
      const drilldown = new Drilldown({
        ...o,
        bpftool: this.bpftool,
        snapshot: () => this.state.snapshot,
        slowThresholdMs: config.slowLookupThresholdMs,
        token: config.drilldownToken,
        log: log.child({ component: 'drilldown' }),
      });
      await drilldown.start();
      this.drilldown = drilldown;
      this.drilldownServer = await listen(
        createDrilldownApp(drilldown.deps()),
        config.drilldownHost,
        config.drilldownPort,
      );
      const a = this.drilldownServer.address();
      log.info(
        {
          drilldownAddress: `${config.drilldownHost}:${typeof a === 'object' && a ? a.port : config.drilldownPort}`,
          token: config.drilldownToken !== undefined,
        },
        'serving the drill-down page and API',
      );
    } catch (err) {
      log.error(
        { err },
        'the drill-down is not available (see --drilldown-listen-address); metrics are served as usual',
      );
    }
  }

  private countFailure(op: string): void {
    this.state.bpftoolFailures.set(op, (this.state.bpftoolFailures.get(op) ?? 0) + 1);
  }

  readiness(): { ready: boolean; reason: string } {
    if (!this.state.attached)
      return { ready: false, reason: 'not ready: BPF programs not attached yet' };
    if (!this.state.snapshot)
      return { ready: false, reason: 'not ready: kernel maps not read yet' };
    return { ready: true, reason: 'ready' };
  }

  /** Detaches the programs (maps stay pinned unless --purge-on-exit) and closes the server. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.starting?.catch(() => undefined); // never detach halfway through an attach
    clearTimeout(this.timer);
    await this.reading?.catch(() => undefined);
    for (const stop of this.stopIdentity) stop();
    await this.drilldown
      ?.stop()
      .catch((err: unknown) =>
        this.log.warn({ err }, 'stopping the drill-down event reader failed'),
      );
    const dd = this.drilldownServer;
    if (dd) {
      const closed = new Promise<void>((resolve) => dd.close(() => resolve()));
      dd.closeAllConnections();
      await closed;
    }
    try {
      if (this.loader) await this.loader.stop({ purge: this.config.purgeOnExit });
      this.state.attached = false;
    } finally {
      const server = this.server;
      if (server) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections(); // keep-alive scrapers would hold close() open
        await closed;
      }
    }
  }
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const DNS_MAPS = [
  'dns_pending',
  'dns_retry_index',
  'dns_stats',
  'dns_health',
  'dns_client_addrs',
] as const;

function pickPins<K extends string>(
  maps: Record<string, string>,
  need: readonly K[],
): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const name of need) {
    const pin = maps[name];
    if (!pin)
      throw new Error(`the BPF objects have no map ${name}: is --bpf-object a dnsrace dns.bpf.o?`);
    out[name] = pin;
  }
  return out;
}
