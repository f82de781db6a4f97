// Loads bpf/dist/dns.bpf.o, pins it under bpffs and attaches its cgroup_skb programs.
// Maps are pinned and reused across restarts, so counters continue; programs are replaced.
//
// Layout under bpffsDir (bpffs refuses names containing '.'):
//   progs/<program>   program pins, replaced on every start
//   maps/<map>        map pins, kept until stop({ purge: true })
//   maps_staging/     pinmaps target during a load, emptied into maps/ right after
import { readdir, rename, rm, mkdir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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

const BPF_FS_MAGIC = 0xcafe4a11;
const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface DnsProgramLoaderOptions {
  bpftool: Bpftool;
  /** bpf/dist/dns.bpf.o */
  objPath: string;
  /** cgroup2 directory the programs attach to (the pods' common ancestor) */
  cgroupDir: string;
  bpffsDir?: string;
  log?: LoggerLike;
  attachments?: readonly CgroupProgram[];
}

export interface LoadedPrograms {
  /** map name -> pinned path, for every map of the object */
  maps: Record<string, string>;
  /** program name -> pinned path */
  programs: Record<string, string>;
  /** maps that were pinned by an earlier run and kept their contents */
  reusedMaps: string[];
}

export interface SweepResult {
  /** dns_sweep_timeouts runs (one per SWEEP_MAX_KEYS keys), all in one bpftool process */
  runs: number;
  retvals: number[];
}

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

export class DnsProgramLoader {
  readonly bpffsDir: string;
  readonly progDir: string;
  readonly mapDir: string;
  private readonly stagingDir: string;
  private readonly bpftool: Bpftool;
  private readonly objPath: string;
  private readonly cgroupDir: string;
  private readonly attachments: readonly CgroupProgram[];
  private readonly log: LoggerLike;

  constructor(options: DnsProgramLoaderOptions) {
    this.bpftool = options.bpftool;
    this.objPath = options.objPath;
    this.cgroupDir = options.cgroupDir;
    this.bpffsDir = options.bpffsDir ?? DEFAULT_BPFFS_DIR;
    this.attachments = options.attachments ?? DNS_ATTACHMENTS;
    this.progDir = join(this.bpffsDir, 'progs');
    this.mapDir = join(this.bpffsDir, 'maps');
    this.stagingDir = join(this.bpffsDir, 'maps_staging');
    const parent = options.log;
    this.log = parent?.child ? parent.child({ component: 'bpf-loader' }) : (parent ?? silentLogger);
  }

  /**
   * Loads and attaches, reusing map pins of an earlier run (refusing them when their layout
   * differs), replacing its program pins and detaching its programs from the cgroup, so that
   * a restart after a crash attaches each program exactly once.
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

    const specs = await this.bpftool.objectMapSpecs(this.objPath);
    const reuse = await this.reusableMaps(specs);
    await rm(this.progDir, { recursive: true, force: true });
    await rm(this.stagingDir, { recursive: true, force: true });

    // Reuse and pinmaps cannot share a directory (pinmaps fails with EEXIST on the reused
    // maps' pins), so new maps are pinned into a staging dir and moved over.
    await this.bpftool.loadAll(this.objPath, this.progDir, {
      mapPinDir: this.stagingDir,
      reuseMaps: Object.fromEntries(reuse.map((name) => [name, join(this.mapDir, name)])),
    });
    const maps = await this.adoptStagedMaps(new Set(reuse));
    const programs = Object.fromEntries(
      (await readdir(this.progDir)).map((name) => [name, join(this.progDir, name)]),
    );

    const missing = this.attachments.filter((a) => !programs[a.program]).map((a) => a.program);
    if (missing.length > 0) {
      await rm(this.progDir, { recursive: true, force: true });
      throw new Error(
        `${this.objPath} has no program ${missing.join(', ')} (has ${Object.keys(programs).sort().join(', ')})`,
      );
    }
    try {
      // Load first, then swap: the window with no program attached is two bpftool runs.
      await this.detachOurs();
      for (const a of this.attachments) {
        await this.bpftool.cgroupAttach(this.cgroupDir, a.attachType, programs[a.program]!, {
          multi: true,
        });
      }
    } catch (err) {
      await this.detachOurs().catch((e: unknown) =>
        this.log.warn({ err: e }, 'rollback: detach failed'),
      );
      await rm(this.progDir, { recursive: true, force: true });
      throw err;
    }
    this.log.info(
      {
        bpffsDir: this.bpffsDir,
        cgroupDir: this.cgroupDir,
        reusedMaps: reuse,
        programs: Object.keys(programs),
      },
      'BPF programs loaded and attached',
    );
    return { maps, programs, reusedMaps: reuse };
  }

  /**
   * Detaches the programs and removes their pins; keeps the map pins (counters survive a
   * restart) unless purge. Idempotent: what is already gone is skipped.
   */
  async stop(options: { purge?: boolean } = {}): Promise<void> {
    if (await exists(this.cgroupDir)) await this.detachOurs();
    await rm(this.progDir, { recursive: true, force: true });
    await rm(this.stagingDir, { recursive: true, force: true });
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
    await rm(this.stagingDir, { recursive: true, force: true });
    return maps;
  }

  /** Detaches every program with one of our names from the cgroup, by id. */
  private async detachOurs(): Promise<void> {
    const ours = new Map(this.attachments.map((a) => [a.program, a.attachType]));
    let attached;
    try {
      attached = await this.bpftool.cgroupShow(this.cgroupDir);
    } catch (err) {
      if (err instanceof BpftoolError && err.notFound) return;
      throw err;
    }
    for (const a of attached) {
      if (ours.get(a.name) !== shortAttachType(a.attach_type)) continue;
      try {
        await this.bpftool.cgroupDetach(this.cgroupDir, a.attach_type, { id: a.id });
        this.log.debug({ id: a.id, name: a.name, attachType: a.attach_type }, 'detached');
      } catch (err) {
        // Gone between show and detach (another stop raced us): that is the goal anyway.
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
