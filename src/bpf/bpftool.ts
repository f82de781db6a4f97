// The only module that runs bpftool (through execa). Every method throws a BpftoolError that
// names the command line, its exit code and stderr; the parsing lives in bpftool-output.ts.
import { execa } from 'execa';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import {
  batchProgRun,
  formatBatchLine,
  hintFor,
  INSTALL_HINT,
  jsonErrorText,
  parseAutoattachFallbacks,
  parseBatch,
  parseBtfMapSpecs,
  parseCgroupShow,
  parseLinkShow,
  parseMapDumpHex,
  splitPlainDumps,
  isStaleBatchErrno,
  parseMapDumpPlain,
  parseMapShow,
  parseProgRun,
  parseProgShow,
  parseVersion,
  sumPerCpu,
  tooOldMessage,
  type BatchCommandResult,
  type BpftoolVersion,
  type CgroupAttachment,
  type LinkInfo,
  type MapEntry,
  type MapInfo,
  type MapSpec,
  type ProgInfo,
  type ProgRunResult,
  type RawMapEntry,
  type SummedMapEntry,
} from './bpftool-output.js';
import { sweepStaleTempDirs, tempDirPrefix } from './temp-dirs.js';
import { decodeRawEntries } from './map-layouts.js';
import { parseJsonBigInt, type JsonValue } from './json-bigint.js';

/** The subset of a pino logger this module uses. */
export interface LoggerLike {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  child?(bindings: Record<string, unknown>): LoggerLike;
}

export interface BpftoolOptions {
  /** bpftool binary; default 'bpftool' (looked up on PATH) */
  binary?: string;
  /** per-call timeout, ms; default 30 s */
  timeoutMs?: number;
  /** parent logger; a child { component: 'bpftool' } is used */
  log?: LoggerLike;
  /** where dump output and data_in files go; default /dev/shm if writable, else os.tmpdir() */
  tmpDir?: string;
}

/** A pinned path, or a kernel object id. */
export type ObjectRef = string | { id: number };

interface RunResult {
  args: string[];
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  failed: boolean;
  cause?: unknown;
}

export class BpftoolError extends Error {
  override name = 'BpftoolError';
  /** the command line, shell-quoted */
  readonly command: string;
  readonly exitCode: number | undefined;
  readonly stderr: string;
  /** the error text bpftool gave: {"error"} of -j output, else stderr */
  readonly errorText: string;
  readonly hint: string | undefined;

  constructor(
    init: {
      command: string;
      exitCode: number | undefined;
      stderr: string;
      errorText: string;
      hint?: string | undefined;
      message?: string;
    },
    options?: { cause?: unknown },
  ) {
    super(init.message ?? BpftoolError.format(init), options);
    this.command = init.command;
    this.exitCode = init.exitCode;
    this.stderr = init.stderr;
    this.errorText = init.errorText;
    this.hint = init.hint;
  }

  /** The object named by the command (pin, id, cgroup, map key) does not exist. */
  get notFound(): boolean {
    return /No such file or directory|can't open cgroup/.test(this.errorText);
  }

  private static format(i: {
    command: string;
    exitCode: number | undefined;
    errorText: string;
    hint?: string | undefined;
  }): string {
    const lines = i.errorText.trim().split('\n');
    // Verifier logs run to thousands of lines; the tail holds the reason.
    const tail =
      lines.length > 15 ? [`… ${lines.length - 15} lines omitted …`, ...lines.slice(-15)] : lines;
    const text = tail.join('\n').trim() || '(no error output)';
    const exit = i.exitCode === undefined ? '' : ` (exit ${i.exitCode})`;
    return `${i.command} failed${exit}: ${text}${i.hint ? `\nhint: ${i.hint}` : ''}`;
  }
}

export class BpftoolBatchError extends BpftoolError {
  override name = 'BpftoolBatchError';

  constructor(
    base: BpftoolError,
    /** results of the commands that ran before the failing one (they took effect) */
    readonly completed: BatchCommandResult[],
    /** index of the failing command in the list given to batch() */
    readonly failedIndex: number,
    readonly failedLine: string,
  ) {
    super(
      {
        command: base.command,
        exitCode: base.exitCode,
        stderr: base.stderr,
        errorText: base.errorText,
        hint: base.hint,
        message:
          `${base.command}: command ${failedIndex + 1} of the batch failed ` +
          `(${completed.length} before it took effect, the rest did not run): ` +
          `bpftool ${failedLine}\n${base.message}`,
      },
      { cause: base },
    );
  }
}

export interface LoadAllOptions {
  /** pinmaps MAP_DIR: pin every map of the object there */
  mapPinDir?: string;
  /** autoattach: attach what bpftool can, pin the rest (cgroup_skb is always only pinned) */
  autoattach?: boolean;
  /** map name X pinned P: use the pinned map P instead of creating map X */
  reuseMaps?: Record<string, string>;
}

export interface LoadAllResult {
  /** programs autoattach could not attach and pinned instead (it exits 0 regardless) */
  autoattachFallbacks: string[];
}

export class Bpftool {
  readonly binary: string;
  private readonly timeoutMs: number;
  private readonly log: LoggerLike;
  private tmpDirPromise: Promise<string> | undefined;
  private readonly tmpDirOption: string | undefined;

  constructor(options: BpftoolOptions = {}) {
    this.binary = options.binary ?? 'bpftool';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const parent = options.log;
    this.log = parent?.child ? parent.child({ component: 'bpftool' }) : (parent ?? silentLogger);
    this.tmpDirOption = options.tmpDir;
  }

  // ---------------------------------------------------------------- version

  async version(): Promise<BpftoolVersion> {
    const r = await this.check(['-j', 'version']);
    return this.parse(r, parseVersion);
  }

  /** Throws a one-line, actionable error when bpftool is missing or older than `min`. */
  async requireVersion(min = '7.2.0', needFor = 'autoattach'): Promise<BpftoolVersion> {
    const v = await this.version();
    const tooOld = tooOldMessage(v.version, min, needFor);
    if (tooOld) {
      throw new BpftoolError({
        command: this.commandLine(['-j', 'version']),
        exitCode: 0,
        stderr: '',
        errorText: tooOld,
        message: tooOld,
      });
    }
    return v;
  }

  // ---------------------------------------------------------------- load

  /**
   * bpftool prog loadall. Creates the parent directories first (bpftool does not; with
   * autoattach the pin directory itself must exist too). Loading onto existing pins fails.
   */
  async loadAll(
    objPath: string,
    progPinDir: string,
    options: LoadAllOptions = {},
  ): Promise<LoadAllResult> {
    await mkdir(dirname(progPinDir), { recursive: true });
    if (options.autoattach) await mkdir(progPinDir, { recursive: true });
    if (options.mapPinDir) await mkdir(dirname(options.mapPinDir), { recursive: true });
    const args = ['prog', 'loadall', objPath, progPinDir];
    for (const [name, pin] of Object.entries(options.reuseMaps ?? {})) {
      args.push('map', 'name', name, 'pinned', pin);
    }
    if (options.mapPinDir) args.push('pinmaps', options.mapPinDir);
    if (options.autoattach) args.push('autoattach');
    const r = await this.check(args);
    const autoattachFallbacks = options.autoattach ? parseAutoattachFallbacks(r.stderr) : [];
    if (autoattachFallbacks.length > 0) {
      this.log.debug(
        { programs: autoattachFallbacks },
        'autoattach pinned programs it did not attach',
      );
    }
    return { autoattachFallbacks };
  }

  /** The maps an object declares in .maps, with sizes, read from its BTF (nothing is loaded). */
  async objectMapSpecs(objPath: string): Promise<MapSpec[]> {
    const r = await this.check(['-j', 'btf', 'dump', 'file', objPath]);
    return this.parse(r, parseBtfMapSpecs);
  }

  // ---------------------------------------------------------------- cgroups

  async cgroupAttach(
    cgroupDir: string,
    attachType: string,
    progPin: string,
    options: { multi?: boolean; override?: boolean } = { multi: true },
  ): Promise<void> {
    const args = ['cgroup', 'attach', cgroupDir, attachType, 'pinned', progPin];
    if (options.multi) args.push('multi');
    else if (options.override) args.push('override');
    await this.check(args);
  }

  /** Loads objPath's first program, an iterator over the pinned map, and pins its link at path. */
  async iterPin(objPath: string, path: string, mapPin: string): Promise<void> {
    await this.check(['iter', 'pin', objPath, path, 'map', 'pinned', mapPin]);
  }

  async cgroupDetach(cgroupDir: string, attachType: string, prog: ObjectRef): Promise<void> {
    await this.check(['cgroup', 'detach', cgroupDir, attachType, ...refArgs(prog)]);
  }

  /** Programs attached directly to cgroupDir (not inherited ones). */
  async cgroupShow(cgroupDir: string): Promise<CgroupAttachment[]> {
    const r = await this.check(['-j', 'cgroup', 'show', cgroupDir]);
    return this.parse(r, parseCgroupShow);
  }

  // ---------------------------------------------------------------- show

  progShow(): Promise<ProgInfo[]>;
  progShow(prog: ObjectRef): Promise<ProgInfo>;
  async progShow(prog?: ObjectRef): Promise<ProgInfo | ProgInfo[]> {
    const r = await this.check(['-j', 'prog', 'show', ...(prog ? refArgs(prog) : [])]);
    const list = this.parse(r, parseProgShow);
    return prog ? this.single(r, list) : list;
  }

  mapShow(): Promise<MapInfo[]>;
  mapShow(map: ObjectRef): Promise<MapInfo>;
  async mapShow(map?: ObjectRef): Promise<MapInfo | MapInfo[]> {
    const r = await this.check(['-j', 'map', 'show', ...(map ? refArgs(map) : [])]);
    const list = this.parse(r, parseMapShow);
    return map ? this.single(r, list) : list;
  }

  linkShow(): Promise<LinkInfo[]>;
  linkShow(link: ObjectRef): Promise<LinkInfo>;
  async linkShow(link?: ObjectRef): Promise<LinkInfo | LinkInfo[]> {
    // `link show pinned` can print the link and still exit 255 (6.12, 6.18): trust the output.
    const r = await this.run(['-j', 'link', 'show', ...(link ? refArgs(link) : [])]);
    const list = this.tryParse(r, parseLinkShow);
    if (!list) throw this.error(r);
    return link ? this.single(r, list) : list;
  }

  /**
   * Whether a pin is a BPF link (what autoattach pins for a program it did attach) rather
   * than a program (what it pins when it silently could not attach).
   */
  async isLinkPin(path: string): Promise<boolean> {
    const r = await this.run(['-j', 'link', 'show', 'pinned', path]);
    if (this.tryParse(r, parseLinkShow)) return true;
    const err = this.errorText(r);
    if (/incorrect object type/.test(err)) return false;
    throw this.error(r);
  }

  // ---------------------------------------------------------------- maps

  /**
   * Dumps a map in plain mode, decoded into the shape of bpftool's BTF-formatted view. Our
   * maps have no key/value BTF (fetching it needs CAP_SYS_ADMIN), so bpftool prints hex and
   * the layout comes from src/bpf/map-layouts.ts, by the map's name: the pin's basename. A
   * map pinned with BTF by an earlier version prints BTF-formatted JSON, which is taken as is.
   * stdout goes to a tmpfs file: plain mode writes one line per write(), which costs Node
   * ~8x more CPU through a pipe (1k dns_stats rows: 21 ms wall / 4 ms Node CPU via a file,
   * 34 ms / 31 ms via execa's pipe).
   */
  mapDump(pin: string): Promise<MapEntry[]>;
  mapDump(pin: string, options: { perCpu: 'sum' }): Promise<SummedMapEntry[]>;
  mapDump(pin: string, options: { perCpu: 'keep' }): Promise<MapEntry[]>;
  async mapDump(
    pin: string,
    options?: { perCpu: 'sum' | 'keep' },
  ): Promise<MapEntry[] | SummedMapEntry[]> {
    const r = await this.check(['map', 'dump', 'pinned', pin], { stdoutToFile: true });
    const entries = r.stdout.trimStart().startsWith('[')
      ? this.parse(r, (s) => parseMapDumpPlain(s, `map dump ${pin}`))
      : this.parse(r, (s) => decodeHexDump(s, pin));
    return options?.perCpu === 'sum' ? sumPerCpu(entries) : entries;
  }

  /**
   * Dumps several maps in one bpftool process (`bpftool batch file`, plain mode): one spawn
   * instead of one per map. Each dump ends with its "Found N elements" line, which splits the
   * output. bpftool 7.5 closes each dumped map's fd twice, and the stale EBADF makes the batch
   * end with "reading batch file failed: Bad file descriptor" and exit 255 after every command
   * ran: with all dumps complete, that is not a failure. A map pinned with BTF by an earlier
   * version prints JSON without that line: then each map is dumped on its own.
   */
  async mapDumpMany(pins: readonly string[]): Promise<MapEntry[][]> {
    if (pins.length <= 1) return Promise.all(pins.map((p) => this.mapDump(p)));
    const r = await this.withTempDir(async (dir) => {
      const file = join(dir, 'batch');
      await writeFile(
        file,
        pins.map((p) => formatBatchLine(['map', 'dump', 'pinned', p])).join('\n') + '\n',
      );
      return this.run(['batch', 'file', file], { stdoutToFile: true });
    });
    const dumps = splitPlainDumps(r.stdout);
    const complete = dumps.length === pins.length;
    if (r.failed && !(complete && isStaleBatchErrno(this.errorText(r)))) throw this.error(r);
    if (!complete) return Promise.all(pins.map((p) => this.mapDump(p)));
    return dumps.map((text, i) => this.parse(r, () => decodeHexDump(text, pins[i]!)));
  }

  /** Raw key/value bytes of every entry (plain-mode hex; maps without key/value BTF). */
  async mapDumpBytes(pin: string): Promise<RawMapEntry[]> {
    const r = await this.check(['map', 'dump', 'pinned', pin], { stdoutToFile: true });
    return this.parse(r, (s) => parseMapDumpHex(s, `map dump ${pin}`));
  }

  /** For per-CPU maps bpftool writes the one value given to every CPU. */
  async mapUpdate(
    pin: string,
    key: Uint8Array,
    value: Uint8Array,
    flag: 'any' | 'exist' | 'noexist' = 'any',
  ): Promise<void> {
    await this.check(mapUpdateArgs(pin, key, value, flag));
  }

  /** Returns false when the key was not in the map. */
  async mapDelete(pin: string, key: Uint8Array): Promise<boolean> {
    const r = await this.run(['-j', ...mapDeleteArgs(pin, key)]);
    if (!r.failed) return true;
    if (/^delete failed: No such file or directory/.test(this.errorText(r))) return false;
    throw this.error(r);
  }

  // ---------------------------------------------------------------- event pipe

  /**
   * Streams a pinned PERF_EVENT_ARRAY (`bpftool map event_pipe pinned PIN`) until stop().
   * Plain mode, not -j: with stdout on a pipe -j output is block-buffered (4 KiB), so at a
   * few events per second nothing would arrive for seconds; plain mode writes each event as
   * it comes (measured: docs/drilldown.md). Only one reader per map: a second event_pipe on
   * the same map silently takes the stream over.
   */
  eventPipe(
    pin: string,
    onRecord: (r: EventPipeRecord) => void,
    options: { sampleBytes?: number } = {},
  ): EventPipe {
    const args = ['map', 'event_pipe', 'pinned', pin];
    const command = this.commandLine(args);
    const child = execa(this.binary, args, {
      reject: false,
      stdin: 'ignore',
      buffer: { stdout: false, stderr: true },
      forceKillAfterDelay: 2_000,
      maxBuffer: { stderr: 64 * 1024 },
    });
    const parser = new EventPipeTextParser(onRecord, options.sampleBytes);
    let pending = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        parser.line(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    let stopping = false;
    const exited = child.then((r) => {
      if (pending) parser.line(pending);
      parser.end();
      const stderr = String(r.stderr ?? '');
      const notFound = r.code === 'ENOENT';
      return {
        command,
        exitCode: r.exitCode,
        stopped: stopping,
        errorText: notFound
          ? `bpftool not found: '${this.binary}' (${INSTALL_HINT})`
          : stderr.replace(/^Stopping\.\.\.\s*$/m, '').trim(),
      };
    });
    this.log.debug({ cmd: command, pid: child.pid }, 'bpftool event_pipe started');
    return {
      pid: child.pid,
      exited,
      stop: async () => {
        stopping = true;
        // SIGINT: bpftool stops polling and exits 0 ("Stopping...").
        child.kill('SIGINT');
        await exited;
      },
    };
  }

  // ---------------------------------------------------------------- run, batch

  /** BPF_PROG_TEST_RUN with dataIn; -j gives {retval, duration (average if repeat > 1)}. */
  async progRun(
    progPin: string,
    dataIn: Uint8Array,
    options: { repeat?: number } = {},
  ): Promise<ProgRunResult> {
    return this.withTempDir(async (dir) => {
      const file = join(dir, 'data_in');
      await writeFile(file, dataIn);
      const r = await this.check([
        '-j',
        'prog',
        'run',
        'pinned',
        progPin,
        ...progRunTail(file, options.repeat),
      ]);
      return this.parse(r, parseProgRun);
    });
  }

  /** Many test runs of one program in one bpftool process. */
  async progRunMany(
    progPin: string,
    inputs: readonly Uint8Array[],
    options: { repeat?: number } = {},
  ): Promise<ProgRunResult[]> {
    if (inputs.length === 0) return [];
    return this.withTempDir(async (dir) => {
      const commands = await Promise.all(
        inputs.map(async (data, i) => {
          const file = join(dir, `data_in_${i}`);
          await writeFile(file, data);
          return ['prog', 'run', 'pinned', progPin, ...progRunTail(file, options.repeat)];
        }),
      );
      const results = await this.batch(commands);
      return results.map((r, i) => batchProgRun(r, i));
    });
  }

  /**
   * Runs many commands in one bpftool process (`bpftool -j batch file F`). A command is a
   * line as bpftool reads it, or an argv array that is quoted here. bpftool stops at the
   * first failing command: that throws a BpftoolBatchError with the results of the commands
   * before it, which have taken effect; the commands after it did not run.
   */
  async batch(commands: readonly (string | readonly string[])[]): Promise<BatchCommandResult[]> {
    if (commands.length === 0) return [];
    const lines = commands.map((c) =>
      typeof c === 'string' ? checkBatchLine(c) : formatBatchLine(c),
    );
    return this.withTempDir(async (dir) => {
      const file = join(dir, 'batch');
      await writeFile(file, lines.join('\n') + '\n');
      const r = await this.run(['-j', 'batch', 'file', file], { stdoutToFile: true });
      const results = this.tryParse(r, parseBatch) ?? [];
      if (!r.failed) return results;
      const last = results.at(-1);
      const failedIndex = Math.max(0, results.length - 1);
      const base = this.error(r, last ? (jsonErrorText(last.output) ?? 'usage error') : undefined);
      throw new BpftoolBatchError(
        base,
        results.slice(0, -1),
        failedIndex,
        lines[failedIndex] ?? '',
      );
    });
  }

  // ---------------------------------------------------------------- plumbing

  private async run(args: string[], options: { stdoutToFile?: boolean } = {}): Promise<RunResult> {
    const started = performance.now();
    let result: RunResult;
    if (options.stdoutToFile) {
      result = await this.withTempDir(async (dir) => {
        const file = join(dir, 'stdout');
        const fh = await open(file, 'wx');
        try {
          const r = await this.exec(args, fh.fd);
          return { ...r, stdout: await readFile(file, 'utf8') };
        } finally {
          await fh.close();
        }
      });
    } else {
      result = await this.exec(args, 'pipe');
    }
    this.log.debug(
      {
        cmd: this.commandLine(args),
        exitCode: result.exitCode,
        ms: Math.round(performance.now() - started),
      },
      'bpftool',
    );
    return result;
  }

  private async exec(args: string[], stdout: number | 'pipe'): Promise<RunResult> {
    const r = await execa(this.binary, args, {
      reject: false,
      timeout: this.timeoutMs,
      stdin: 'ignore',
      // execa's types list fds 3..9 only; any open fd works (it is handed to spawn as is).
      stdout: stdout as 'pipe' | 3,
      maxBuffer: 256 * 1024 * 1024,
    });
    const out = { args, stderr: String(r.stderr ?? ''), exitCode: r.exitCode, failed: r.failed };
    const stdoutText = typeof r.stdout === 'string' ? r.stdout : '';
    if (r.failed && r.exitCode === undefined) {
      const why =
        r.code === 'ENOENT'
          ? `bpftool not found: '${this.binary}' is not on PATH or does not exist (need ≥ 7.2; ${INSTALL_HINT})`
          : r.timedOut
            ? `${this.commandLine(args)} timed out after ${this.timeoutMs} ms`
            : `${this.commandLine(args)} did not run: ${r.shortMessage ?? r.code ?? r.signal ?? 'unknown error'}`;
      throw new BpftoolError(
        {
          command: this.commandLine(args),
          exitCode: undefined,
          stderr: out.stderr,
          errorText: why,
          message: why,
        },
        { cause: r },
      );
    }
    return { ...out, stdout: stdoutText, cause: r.failed ? r : undefined };
  }

  private async check(
    args: string[],
    options: { stdoutToFile?: boolean } = {},
  ): Promise<RunResult> {
    const r = await this.run(args, options);
    if (r.failed) throw this.error(r);
    return r;
  }

  private parse<T>(r: RunResult, parser: (stdout: string) => T): T {
    try {
      return parser(r.stdout);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new BpftoolError(
        {
          command: this.commandLine(r.args),
          exitCode: r.exitCode,
          stderr: r.stderr,
          errorText: why,
          message: `${this.commandLine(r.args)}: cannot parse its output: ${why}`,
        },
        { cause },
      );
    }
  }

  private tryParse<T>(r: RunResult, parser: (stdout: string) => T): T | undefined {
    try {
      return parser(r.stdout);
    } catch {
      return undefined;
    }
  }

  private single<T>(r: RunResult, list: T[]): T {
    if (list.length !== 1) {
      throw new BpftoolError({
        command: this.commandLine(r.args),
        exitCode: r.exitCode,
        stderr: r.stderr,
        errorText: `expected one object, got ${list.length}`,
      });
    }
    return list[0]!;
  }

  private errorText(r: RunResult): string {
    let fromJson: string | undefined;
    try {
      fromJson = jsonErrorText(parseJsonBigInt(r.stdout.trim()));
    } catch {
      fromJson = undefined;
    }
    return fromJson ?? r.stderr.trim();
  }

  private error(r: RunResult, errorText = this.errorText(r)): BpftoolError {
    const hint = hintFor(r.args, `${errorText}\n${r.stderr}`);
    return new BpftoolError(
      {
        command: this.commandLine(r.args),
        exitCode: r.exitCode,
        stderr: r.stderr,
        errorText,
        hint,
      },
      { cause: r.cause },
    );
  }

  private commandLine(args: readonly string[]): string {
    return [this.binary, ...args].map(shellQuote).join(' ');
  }

  private async withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(await this.tmpDir(), tempDirPrefix()));
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private tmpDir(): Promise<string> {
    this.tmpDirPromise ??= (async () => {
      let root = this.tmpDirOption;
      if (!root) {
        try {
          await access('/dev/shm', fsConstants.W_OK);
          root = '/dev/shm';
        } catch {
          root = tmpdir();
        }
      }
      const swept = await sweepStaleTempDirs(root);
      if (swept.length > 0)
        this.log.debug(
          { root, swept },
          'removed scratch directories of bpftool calls of dead processes',
        );
      return root;
    })();
    return this.tmpDirPromise;
  }
}

/** One record of `bpftool map event_pipe`: a perf sample's raw bytes, or lost samples. */
export type EventPipeRecord =
  | { kind: 'sample'; cpu: number; index: number; data: Uint8Array }
  | { kind: 'lost'; count: number };

export interface EventPipe {
  readonly pid: number | undefined;
  /** Settles when bpftool exits, by stop() or by itself (errorText: its stderr, or why). */
  readonly exited: Promise<{
    command: string;
    exitCode: number | undefined;
    stopped: boolean;
    errorText: string;
  }>;
  stop(): Promise<void>;
}

const EVENT_HEADER = /^== @\d+\.\d+ CPU: (\d+) index: (\d+) =+$/;
const EVENT_LOST = /^lost (\d+) events$/;
const HEX_LINE = /^[0-9a-f]{2}(?: {1,2}[0-9a-f]{2})*$/;

/**
 * Parses the plain output of `bpftool map event_pipe` line by line: a header
 * `== @<sec>.<nsec> CPU: <cpu> index: <index> =====`, then the raw sample as hex, 16 bytes a
 * line. A sample is complete at a line of fewer than 16 bytes, at sampleBytes bytes, or at
 * the next header; `lost <n> events` reports a perf ring overflow. Other lines are ignored.
 */
export class EventPipeTextParser {
  private cur: { cpu: number; index: number; bytes: number[] } | undefined;

  constructor(
    private readonly onRecord: (r: EventPipeRecord) => void,
    private readonly sampleBytes?: number,
  ) {}

  line(raw: string): void {
    const line = raw.trimEnd();
    const head = EVENT_HEADER.exec(line);
    if (head) {
      this.end();
      this.cur = { cpu: Number(head[1]), index: Number(head[2]), bytes: [] };
      return;
    }
    const lost = EVENT_LOST.exec(line);
    if (lost) {
      this.end();
      this.onRecord({ kind: 'lost', count: Number(lost[1]) });
      return;
    }
    if (!this.cur || !HEX_LINE.test(line)) return;
    const bytes = line.split(/ +/).map((h) => parseInt(h, 16));
    this.cur.bytes.push(...bytes);
    if (bytes.length < 16 || (this.sampleBytes && this.cur.bytes.length >= this.sampleBytes))
      this.end();
  }

  /** Emits a sample still being collected (end of stream). */
  end(): void {
    const c = this.cur;
    this.cur = undefined;
    if (c && c.bytes.length > 0)
      this.onRecord({ kind: 'sample', cpu: c.cpu, index: c.index, data: Uint8Array.from(c.bytes) });
  }
}

export function mapUpdateArgs(
  pin: string,
  key: Uint8Array,
  value: Uint8Array,
  flag: 'any' | 'exist' | 'noexist' = 'any',
): string[] {
  return [
    'map',
    'update',
    'pinned',
    pin,
    'key',
    'hex',
    ...hexBytes(key),
    'value',
    'hex',
    ...hexBytes(value),
    flag,
  ];
}

export function mapDeleteArgs(pin: string, key: Uint8Array): string[] {
  return ['map', 'delete', 'pinned', pin, 'key', 'hex', ...hexBytes(key)];
}

function progRunTail(dataInFile: string, repeat: number | undefined): string[] {
  return ['data_in', dataInFile, ...(repeat && repeat > 1 ? ['repeat', String(repeat)] : [])];
}

function refArgs(ref: ObjectRef): string[] {
  return typeof ref === 'string' ? ['pinned', ref] : ['id', String(ref.id)];
}

function hexBytes(b: Uint8Array): string[] {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0'));
}

function checkBatchLine(line: string): string {
  if (/[\n\r]/.test(line)) throw new Error(`batch: line ${JSON.stringify(line)} has a line break`);
  return line;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const silentLogger: LoggerLike = {
  debug() {},
  info() {},
  warn() {},
};

export { INSTALL_HINT };
export type { JsonValue };

/** A plain-mode hex dump of the map pinned at pin, decoded with that map's layout. */
function decodeHexDump(text: string, pin: string): MapEntry[] {
  const what = `map dump ${pin}`;
  return decodeRawEntries(parseMapDumpHex(text, what), basename(pin), what);
}
