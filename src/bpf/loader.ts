// Loads bpf/dist/dns.bpf.o, pins it under bpffs and attaches its cgroup_skb programs; then the
// drop attribution: conntrack_fexit.bpf.o + drops.bpf.o ("fexit" mode), else drops.bpf.o alone
// ("tracepoint"), else nothing ("none": DNS pairing works without it).
// Maps are pinned and reused across restarts, so counters continue; programs are replaced.
//
// Layout under bpffsDir (bpffs refuses names containing '.'):
//   progs/<program>           DNS program pins, replaced on every start
//   links/<object>/<program>  link pins of the drop programs (removing a link pin detaches it)
//   maps/<map>                map pins of every object, kept until stop({ purge: true })
//   maps_staging/             pinmaps target during a load, emptied into maps/ right after
import { readdir, rename, rm, mkdir, statfs } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Bpftool, BpftoolError, type LoggerLike } from './bpftool.js';
import { shortAttachType, type MapInfo, type MapSpec } from './bpftool-output.js';
import { encodeSweepRequests, type PendingKey } from './sweep-request.js';

export interface CgroupProgram {
  program: string;
  attachType: 'ingress' | 'egress';
}

export const DNS_ATTACHMENTS: readonly CgroupProgram[] = [
  { program: 'dns_egress', attachType: 'egress' },
  { program: 'dns_ingress', attachType: 'ingress' },
];
export const DNS_SWEEP_PROGRAM = 'dns_sweep_timeouts';
export const DEFAULT_BPFFS_DIR = '/sys/fs/bpf/dnsrace';

/** The maps of the drop attribution (bpf/drops.h); dns.bpf.o creates and pins them all. */
export const DROP_MAPS = ['packet_drops', 'drop_health', 'dns_client_addrs', 'dropped_queries'];

/**
 * How drops are attributed:
 * - fexit: conntrack insert failures exactly (fexit on __nf_conntrack_confirm) and every other
 *   drop from the kfree_skb raw tracepoint;
 * - tracepoint: the raw tracepoint alone; an insert failure shows as a netfilter drop;
 * - none: no drop program could be attached; dns_stats counts every stall as unanswered.
 */
export type DropMode = 'fexit' | 'tracepoint' | 'none';

export interface DropAttribution {
  mode: DropMode;
  /** why each better mode was not used, in the order tried: "fexit: <bpftool error text>" */
  fallbacks: string[];
  /** link pins of the attached drop programs, by program name */
  links: Record<string, string>;
}

export interface DropObjects {
  /** bpf/dist/conntrack_fexit.bpf.o */
  fexit: string;
  /** bpf/dist/drops.bpf.o */
  drops: string;
}

/** The drop objects that sit beside dns.bpf.o in bpf/dist/. */
/** The maps read through a pinned iterator (bpf/iter_<map>.bpf.c) rather than bpftool dumps. */
export const ITERATED_MAPS = ['dns_stats', 'dns_pending'] as const;

export function iterObjectBeside(dnsObjPath: string, map: string): string {
  return join(dirname(dnsObjPath), `iter_${map}.bpf.o`);
}

export function dropObjectsBeside(dnsObjPath: string): DropObjects {
  const dir = dirname(dnsObjPath);
  return { fexit: join(dir, 'conntrack_fexit.bpf.o'), drops: join(dir, 'drops.bpf.o') };
}

/** 'auto': fexit, else tracepoint, else none. 'tracepoint': skip fexit. 'none': load no drop program. */
export type DropAttributionChoice = 'auto' | 'tracepoint' | 'none';

export interface DnsProgramLoaderOptions {
  bpftool: Bpftool;
  /** bpf/dist/dns.bpf.o */
  objPath: string;
  /** cgroup2 directory the programs attach to (the pods' common ancestor) */
  cgroupDir: string;
  bpffsDir?: string;
  log?: LoggerLike;
  attachments?: readonly CgroupProgram[];
  /** default: the objects beside objPath (dropObjectsBeside) */
  dropObjects?: DropObjects;
  /** default 'auto' */
  dropAttribution?: DropAttributionChoice;
}

export interface LoadedPrograms {
  /** map name -> pinned path, for every map of every loaded object */
  maps: Record<string, string>;
  /** DNS program name -> pinned path */
  programs: Record<string, string>;
  /** maps of dns.bpf.o that were pinned by an earlier run and kept their contents */
  reusedMaps: string[];
  dropAttribution: DropAttribution;
  /** map name -> pinned iterator (read as a file), for the maps whose iterator could load */
  iterators: Record<string, string>;
}

export interface SweepResult {
  /** dns_sweep_timeouts runs (one per SWEEP_MAX_KEYS keys), all in one bpftool process */
  runs: number;
  retvals: number[];
}

const BPF_FS_MAGIC = 0xcafe4a11;
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** A pinned map from an earlier run does not match the object's declaration of it. */
export class MapLayoutMismatchError extends Error {
  override name = 'MapLayoutMismatchError';
  constructor(
    readonly mismatches: string[],
    bpffsDir: string,
  ) {
    super(
      `pinned maps under ${bpffsDir}/maps were made by a different version of the BPF object: ` +
        `${mismatches.join('; ')}. Start once with --reset-maps to drop them (counters restart from zero).`,
    );
  }
}

interface LoadedObject {
  /** map name -> pin, for every map of the object */
  maps: Record<string, string>;
  /** program (or link) name -> pin */
  pins: Record<string, string>;
  reused: string[];
  /** programs bpftool autoattach pinned instead of attaching (it exits 0 regardless) */
  autoattachFallbacks: string[];
}

/**
 * Loads objects whose maps live in one pin directory: a map already pinned there (by an
 * earlier run, or by another object of ours) is reused if its layout matches, the others are
 * created and pinned.
 */
class PinnedObjects {
  readonly mapDir: string;
  private readonly stagingDir: string;

  constructor(
    private readonly bpftool: Bpftool,
    readonly bpffsDir: string,
    private readonly log: LoggerLike,
  ) {
    this.mapDir = join(bpffsDir, 'maps');
    this.stagingDir = join(bpffsDir, 'maps_staging');
  }

  /** Loads objPath, pinning its programs (links with autoattach) under pinDir, replaced. */
  async load(
    objPath: string,
    pinDir: string,
    options: { autoattach?: boolean } = {},
  ): Promise<LoadedObject> {
    const specs = await this.bpftool.objectMapSpecs(objPath);
    const reuse = await this.reusableMaps(specs);
    await rm(pinDir, { recursive: true, force: true });
    await rm(this.stagingDir, { recursive: true, force: true });
    // Reuse and pinmaps cannot share a directory (pinmaps fails with EEXIST on the reused
    // maps' pins), so new maps are pinned into a staging dir and moved over.
    try {
      const r = await this.bpftool.loadAll(objPath, pinDir, {
        mapPinDir: this.stagingDir,
        reuseMaps: Object.fromEntries(reuse.map((name) => [name, join(this.mapDir, name)])),
        autoattach: options.autoattach,
      });
      const maps = await this.adoptStagedMaps(new Set(reuse));
      const pins = Object.fromEntries(
        (await listDir(pinDir)).map((name) => [name, join(pinDir, name)]),
      );
      return { maps, pins, reused: reuse, autoattachFallbacks: r.autoattachFallbacks };
    } finally {
      await rm(this.stagingDir, { recursive: true, force: true });
    }
  }

  /** Names of the object's maps that are pinned already and match its declaration. */
  private async reusableMaps(specs: MapSpec[]): Promise<string[]> {
    const pinned = new Set(await listDir(this.mapDir));
    const reuse: string[] = [];
    const mismatches: string[] = [];
    for (const spec of specs) {
      if (!pinned.has(spec.name)) continue;
      const info = await this.bpftool.mapShow(join(this.mapDir, spec.name));
      const diff = layoutDifferences(spec, info);
      if (diff.length > 0) {
        mismatches.push(`${spec.name}: ${diff.join(', ')}`);
      } else {
        if (spec.maxEntries !== undefined && spec.maxEntries !== info.max_entries) {
          this.log.warn(
            { map: spec.name, pinned: info.max_entries, object: spec.maxEntries },
            'pinned map keeps its old max_entries until --reset-maps',
          );
        }
        reuse.push(spec.name);
      }
    }
    if (mismatches.length > 0) throw new MapLayoutMismatchError(mismatches, this.bpffsDir);
    return reuse;
  }

  /** Moves newly created map pins from staging into maps/ and returns every map's pin. */
  private async adoptStagedMaps(reused: Set<string>): Promise<Record<string, string>> {
    const maps: Record<string, string> = {};
    for (const name of await listDir(this.stagingDir)) {
      const target = join(this.mapDir, name);
      // Reused maps were pinned into staging a second time; data sections (.bss, .rodata)
      // are never reused (their layout is only known after load): their new pin replaces the old.
      if (!reused.has(name)) {
        await mkdir(this.mapDir, { recursive: true });
        await rename(join(this.stagingDir, name), target);
      }
      maps[name] = target;
    }
    return maps;
  }
}

/** One way of attributing drops, for selectDropMode. */
export interface DropModeAttempt {
  mode: Exclude<DropMode, 'none'>;
  /** Loads and attaches; resolves to the link pins, throws saying why it could not. */
  attach(): Promise<Record<string, string>>;
  /** Removes whatever attach() left (also after it failed halfway). */
  detach(): Promise<void>;
}

/**
 * Tries the attempts in order and keeps the first that attaches; each failure is undone and
 * its reason kept in fallbacks. No attempt left: mode 'none'. An error for which fatal()
 * holds is undone and thrown instead of falling back.
 */
export async function selectDropMode(
  attempts: readonly DropModeAttempt[],
  options: { fatal?: (err: unknown) => boolean } = {},
): Promise<DropAttribution> {
  const fallbacks: string[] = [];
  for (const a of attempts) {
    try {
      return { mode: a.mode, fallbacks, links: await a.attach() };
    } catch (err) {
      await a.detach();
      if (options.fatal?.(err)) throw err;
      fallbacks.push(`${a.mode}: ${failureText(err)}`);
    }
  }
  return { mode: 'none', fallbacks, links: {} };
}

/** The lines of a bpftool/libbpf failure that say why, without the verifier log, as one line. */
export function failureText(err: unknown): string {
  if (!(err instanceof BpftoolError)) return err instanceof Error ? err.message : String(err);
  const lines = err.errorText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(libbpf:|Error:)/.test(l));
  const kept = [...new Set(lines)].slice(-6);
  return kept.length > 0 ? kept.join('; ') : err.message.split('\n')[0]!;
}

export interface DropAttributionOptions {
  bpftool: Bpftool;
  /** the loader's bpffs dir: maps/ there holds (or receives) the shared maps */
  bpffsDir: string;
  objects: DropObjects;
  /** default 'auto' */
  choice?: Exclude<DropAttributionChoice, 'none'>;
  log?: LoggerLike;
}

/** Where the link pins of a drop object go: <bpffsDir>/links/<object name without .bpf.o>. */
export function dropPinDir(bpffsDir: string, objPath: string): string {
  return join(bpffsDir, 'links', basename(objPath).replace(/\.bpf\.o$|\.o$/, ''));
}

/**
 * Attaches the drop attribution: conntrack_fexit + drops ("fexit"), else drops alone
 * ("tracepoint"), else nothing ("none"). Callable on its own (the kernel matrix runs it per
 * kernel); the maps are shared through <bpffsDir>/maps with dns.bpf.o, created if missing.
 * Links pinned by an earlier run are removed (detached) first, so nothing is attached twice.
 * Throws only for what makes every mode impossible to judge: a pinned map of another layout.
 */
export async function attachDropAttribution(o: DropAttributionOptions): Promise<DropAttribution> {
  const log = o.log ?? silentLogger;
  const objects = new PinnedObjects(o.bpftool, o.bpffsDir, log);
  const linksDir = join(o.bpffsDir, 'links');
  await rm(linksDir, { recursive: true, force: true });

  const attachLinks = async (objPath: string): Promise<Record<string, string>> => {
    const dir = dropPinDir(o.bpffsDir, objPath);
    const loaded = await objects.load(objPath, dir, { autoattach: true });
    const programs: string[] = [];
    for (const [name, pin] of Object.entries(loaded.pins)) {
      if (!(await o.bpftool.isLinkPin(pin))) programs.push(name);
    }
    const unattached = [...new Set([...programs, ...loaded.autoattachFallbacks])];
    if (unattached.length > 0) {
      throw new Error(
        `bpftool autoattach pinned ${unattached.join(', ')} as a program, not a link: ` +
          'the attach failed (autoattach does not say why)',
      );
    }
    if (Object.keys(loaded.pins).length === 0) throw new Error('no program was pinned');
    return loaded.pins;
  };
  const attempt = (
    mode: DropModeAttempt['mode'],
    objPaths: readonly string[],
  ): DropModeAttempt => ({
    mode,
    attach: async () => {
      const links: Record<string, string> = {};
      for (const p of objPaths) {
        try {
          Object.assign(links, await attachLinks(p));
        } catch (err) {
          if (err instanceof MapLayoutMismatchError) throw err;
          throw new Error(`${basename(p)}: ${failureText(err)}`, { cause: err });
        }
      }
      return links;
    },
    detach: () => rm(linksDir, { recursive: true, force: true }),
  });

  const tracepoint = attempt('tracepoint', [o.objects.drops]);
  const result: DropAttribution = await selectDropMode(
    o.choice === 'tracepoint'
      ? [tracepoint]
      : [attempt('fexit', [o.objects.fexit, o.objects.drops]), tracepoint],
    // A pinned map of another layout is the operator's to resolve, whatever the mode.
    { fatal: (err) => err instanceof MapLayoutMismatchError },
  );
  if (o.choice === 'tracepoint') result.fallbacks.unshift('fexit: not tried (choice: tracepoint)');
  log.info(
    { mode: result.mode, fallbacks: result.fallbacks, links: Object.keys(result.links) },
    `drop attribution: ${result.mode}`,
  );
  return result;
}

export class DnsProgramLoader {
  readonly bpffsDir: string;
  readonly progDir: string;
  readonly mapDir: string;
  readonly linksDir: string;
  readonly itersDir: string;
  private readonly bpftool: Bpftool;
  private readonly objPath: string;
  private readonly cgroupDir: string;
  private readonly attachments: readonly CgroupProgram[];
  private readonly dropObjects: DropObjects;
  private readonly dropChoice: DropAttributionChoice;
  private readonly objects: PinnedObjects;
  private readonly log: LoggerLike;

  constructor(options: DnsProgramLoaderOptions) {
    this.bpftool = options.bpftool;
    this.objPath = options.objPath;
    this.cgroupDir = options.cgroupDir;
    this.bpffsDir = options.bpffsDir ?? DEFAULT_BPFFS_DIR;
    this.attachments = options.attachments ?? DNS_ATTACHMENTS;
    this.dropObjects = options.dropObjects ?? dropObjectsBeside(options.objPath);
    this.dropChoice = options.dropAttribution ?? 'auto';
    this.progDir = join(this.bpffsDir, 'progs');
    this.linksDir = join(this.bpffsDir, 'links');
    this.itersDir = join(this.bpffsDir, 'iters');
    const parent = options.log;
    this.log = parent?.child ? parent.child({ component: 'bpf-loader' }) : (parent ?? silentLogger);
    this.objects = new PinnedObjects(this.bpftool, this.bpffsDir, this.log);
    this.mapDir = this.objects.mapDir;
  }

  /**
   * Loads and attaches, reusing map pins of an earlier run (refusing them when their layout
   * differs), replacing its program pins and detaching its programs from the cgroup, so that
   * a restart after a crash attaches each program exactly once. Then attaches the drop
   * attribution in the best mode the kernel allows (a failure there is no error: see
   * dropAttribution.mode and .fallbacks).
   */
  async start(): Promise<LoadedPrograms> {
    if (/[.]/.test(this.bpffsDir.replace(/^\/sys\/fs\/bpf\/?/, ''))) {
      throw new Error(`bpffs dir ${this.bpffsDir}: bpffs refuses names containing '.'`);
    }
    await expectFilesystem(
      this.bpffsDir,
      BPF_FS_MAGIC,
      'a bpf filesystem',
      'mount -t bpf bpf /sys/fs/bpf',
    );
    await expectFilesystem(
      this.cgroupDir,
      CGROUP2_SUPER_MAGIC,
      'a cgroup2 directory',
      'pass a directory of the cgroup2 mount',
    );
    await mkdir(this.bpffsDir, { recursive: true });

    // Loaded beside the pins of an earlier run, which a crash leaves attached and counting.
    const staging = join(this.bpffsDir, 'progs_new');
    const dns = await this.objects.load(this.objPath, staging);
    const missing = this.attachments.filter((a) => !dns.pins[a.program]).map((a) => a.program);
    if (missing.length > 0) {
      await rm(staging, { recursive: true, force: true });
      throw new Error(
        `${this.objPath} has no program ${missing.join(', ')} (has ${Object.keys(dns.pins).sort().join(', ')})`,
      );
    }
    const programs = Object.fromEntries(
      Object.keys(dns.pins).map((name) => [name, join(this.progDir, name)]),
    );
    try {
      if (await this.keepIdenticalPrograms(dns.pins)) {
        // Swapping identical programs would only open a window with nothing attached.
        await rm(staging, { recursive: true, force: true });
        this.log.info(
          { cgroupDir: this.cgroupDir },
          'the programs of an earlier run are still pinned and identical: kept them attached',
        );
      } else {
        // Load first, then swap: the window with no program attached is two bpftool runs.
        await this.detachOurs();
        await rm(this.progDir, { recursive: true, force: true });
        await rename(staging, this.progDir);
        for (const a of this.attachments) {
          await this.bpftool.cgroupAttach(this.cgroupDir, a.attachType, programs[a.program]!, {
            multi: true,
          });
        }
      }
    } catch (err) {
      await this.detachOurs().catch((e: unknown) =>
        this.log.warn({ err: e }, 'rollback: detach failed'),
      );
      await rm(this.progDir, { recursive: true, force: true });
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    this.log.info(
      {
        bpffsDir: this.bpffsDir,
        cgroupDir: this.cgroupDir,
        reusedMaps: dns.reused,
        programs: Object.keys(programs),
      },
      'BPF programs loaded and attached',
    );

    let dropAttribution: DropAttribution;
    if (this.dropChoice === 'none') {
      await rm(this.linksDir, { recursive: true, force: true });
      dropAttribution = {
        mode: 'none',
        fallbacks: ['not tried (dropAttribution: none)'],
        links: {},
      };
    } else {
      dropAttribution = await attachDropAttribution({
        bpftool: this.bpftool,
        bpffsDir: this.bpffsDir,
        objects: this.dropObjects,
        choice: this.dropChoice,
        log: this.log,
      });
    }
    const maps = Object.fromEntries(
      (await listDir(this.mapDir)).map((name) => [name, join(this.mapDir, name)]),
    );
    const iterators = await this.pinIterators(maps);
    return { maps, programs, reusedMaps: dns.reused, dropAttribution, iterators };
  }

  /**
   * Pins a map-element iterator over each of ITERATED_MAPS (the file reads the map in ~1 % of
   * the time of a bpftool dump). Where one cannot load (kernel before 5.9, no CAP_PERFMON, an
   * object missing) that map is dumped with bpftool instead: logged, not an error.
   */
  private async pinIterators(maps: Record<string, string>): Promise<Record<string, string>> {
    await rm(this.itersDir, { recursive: true, force: true });
    await mkdir(this.itersDir, { recursive: true });
    const out: Record<string, string> = {};
    for (const map of ITERATED_MAPS) {
      const pin = join(this.itersDir, map);
      try {
        await this.bpftool.iterPin(iterObjectBeside(this.objPath, map), pin, maps[map]!);
        out[map] = pin;
      } catch (err) {
        this.log.warn(
          { err, map },
          `cannot pin an iterator over ${map}: it is read with bpftool map dump instead (slower; needs kernel >= 5.9 and CAP_PERFMON)`,
        );
      }
    }
    return out;
  }

  /**
   * Detaches the programs (the drop programs by removing their link pins) and removes their
   * pins; keeps the map pins (counters survive a restart) unless purge. Idempotent: what is
   * already gone is skipped.
   */
  async stop(options: { purge?: boolean } = {}): Promise<void> {
    await rm(this.linksDir, { recursive: true, force: true });
    await rm(this.itersDir, { recursive: true, force: true });
    if (await exists(this.cgroupDir)) await this.detachOurs();
    await rm(this.progDir, { recursive: true, force: true });
    await rm(join(this.bpffsDir, 'maps_staging'), { recursive: true, force: true });
    if (options.purge) await rm(this.bpffsDir, { recursive: true, force: true });
    this.log.info(
      { bpffsDir: this.bpffsDir, purge: Boolean(options.purge) },
      'BPF programs detached',
    );
  }

  /**
   * Counts the given pending queries as timed out if they are still pending and their last
   * send is more than deadlineNs old by the kernel's clock (sweep_request.deadline_ns is an
   * age): one program run per SWEEP_MAX_KEYS keys, all runs in one bpftool process.
   */
  async sweepTimeouts(keys: readonly PendingKey[], deadlineNs: bigint): Promise<SweepResult> {
    const inputs = encodeSweepRequests(keys, deadlineNs);
    const results = await this.bpftool.progRunMany(join(this.progDir, DNS_SWEEP_PROGRAM), inputs);
    return { runs: results.length, retvals: results.map((r) => r.retval) };
  }

  /**
   * Whether an earlier run left every program pinned with the same instructions (tag) and maps
   * as the ones just loaded; if so, makes sure each of its cgroup programs is attached, once.
   * Programs are read by pin. Where IDs can be listed (CAP_SYS_ADMIN) the attachment is
   * checked by ID; where they cannot (`cgroup show` lists nothing), a program is attached
   * again and a refusal taken as "attached already": the kernel refuses the same program
   * twice (EINVAL; bpftool prints only "failed to attach program").
   */
  private async keepIdenticalPrograms(fresh: Record<string, string>): Promise<boolean> {
    const old = await Promise.all(
      Object.entries(fresh).map(async ([name, pin]) => {
        const oldPin = join(this.progDir, name);
        if (!(await exists(oldPin))) return undefined;
        const [o, n] = await Promise.all([
          this.bpftool.progShow(oldPin),
          this.bpftool.progShow(pin),
        ]);
        const maps = (p: { map_ids?: number[] }) => [...(p.map_ids ?? [])].sort().join(',');
        return o.tag === n.tag && maps(o) === maps(n) ? { name, id: o.id } : undefined;
      }),
    );
    if (old.length === 0 || old.includes(undefined)) return false;
    const listed = await this.bpftool.cgroupShow(this.cgroupDir).catch(() => []);
    for (const a of this.attachments) {
      const id = old.find((p) => p?.name === a.program)!.id;
      const times = listed.filter((x) => x.id === id).length;
      if (times === 1) continue;
      try {
        await this.bpftool.cgroupAttach(
          this.cgroupDir,
          a.attachType,
          join(this.progDir, a.program),
          {
            multi: true,
          },
        );
        this.log.warn(
          { program: a.program, cgroupDir: this.cgroupDir },
          'an earlier run left its program pinned but not attached: attached it',
        );
      } catch (err) {
        const refused =
          err instanceof BpftoolError && /failed to attach program/.test(err.errorText);
        if (!refused || listed.length > 0) throw err;
      }
    }
    return true;
  }

  /** Detaches every program with one of our names from the cgroup, by id. */
  private async detachOurs(): Promise<void> {
    // By pinned path first: that needs no ID lookup, so it works where listing does not (5.10
    // with multi attachments) and without CAP_SYS_ADMIN, where `cgroup show` lists nothing.
    for (const a of this.attachments) {
      const pin = join(this.progDir, a.program);
      if (!(await exists(pin))) continue;
      await this.bpftool.cgroupDetach(this.cgroupDir, a.attachType, pin).catch((err: unknown) => {
        if (!(
          err instanceof BpftoolError &&
          (err.notFound || /failed to detach/.test(err.errorText))
        ))
          throw err;
      });
    }
    const ours = new Map(this.attachments.map((a) => [a.program, a.attachType]));
    let attached: { id: number; name: string; attachType: string }[];
    try {
      attached = (await this.bpftool.cgroupShow(this.cgroupDir)).map((a) => ({
        id: a.id,
        name: a.name,
        attachType: a.attach_type,
      }));
    } catch (err) {
      if (err instanceof BpftoolError && err.notFound) return;
      // 5.10 refuses BPF_PROG_QUERY once a program is attached with multi (EINVAL; the kernel
      // matrix saw it): try every loaded program of ours instead; detaching one that is not
      // attached to this cgroup fails harmlessly.
      this.log.warn(
        { err, cgroupDir: this.cgroupDir },
        'cannot list the programs attached to the cgroup; detaching every loaded program of ours',
      );
      const loaded = await this.bpftool.progShow();
      attached = (Array.isArray(loaded) ? loaded : [loaded]).flatMap((p) => {
        const type = ours.get(p.name);
        return type ? [{ id: p.id, name: p.name, attachType: type }] : [];
      });
    }
    for (const a of attached) {
      if (ours.get(a.name) !== shortAttachType(a.attachType)) continue;
      try {
        await this.bpftool.cgroupDetach(this.cgroupDir, a.attachType, { id: a.id });
        this.log.debug({ id: a.id, name: a.name, attachType: a.attachType }, 'detached');
      } catch (err) {
        // Gone between show and detach (another stop raced us), or not attached here.
        if (!(
          err instanceof BpftoolError &&
          (err.notFound || /failed to detach/.test(err.errorText))
        ))
          throw err;
      }
    }
  }
}

/** How a pinned map differs from the object's declaration, in words; [] when compatible. */
export function layoutDifferences(spec: MapSpec, info: MapInfo): string[] {
  const out: string[] = [];
  if (spec.type !== undefined && spec.type !== info.type)
    out.push(`type ${info.type} pinned vs ${spec.type} in the object`);
  if (spec.keySize !== undefined && spec.keySize !== info.bytes_key) {
    out.push(`key ${info.bytes_key} B pinned vs ${spec.keySize} B in the object`);
  }
  if (spec.valueSize !== undefined && spec.valueSize !== info.bytes_value) {
    out.push(`value ${info.bytes_value} B pinned vs ${spec.valueSize} B in the object`);
  }
  return out;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot list ${dir}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await statfs(path);
    return true;
  } catch {
    return false;
  }
}

/** Checks the filesystem of path, or of its closest existing ancestor. */
async function expectFilesystem(
  path: string,
  magic: number,
  what: string,
  fix: string,
): Promise<void> {
  let p = path;
  for (;;) {
    try {
      const s = await statfs(p);
      if (s.type !== magic) {
        throw new Error(
          `${path} is not on ${what} (filesystem type 0x${s.type.toString(16)} at ${p}): ${fix}`,
        );
      }
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || dirname(p) === p || magic === CGROUP2_SUPER_MAGIC) {
        if (code === 'ENOENT') throw new Error(`${path} does not exist: ${fix}`, { cause: err });
        throw err;
      }
      p = dirname(p);
    }
  }
}

const silentLogger: LoggerLike = { debug() {}, info() {}, warn() {} };
