// Pure parsers for bpftool 7.x output, tested against fixtures recorded from bpftool 7.5
// (test/fixtures/bpftool/). bpftool's text and JSON are not a stable interface: every shape
// the exporter relies on is parsed here and nowhere else.
import { parseJsonBigInt, type JsonObject, type JsonValue } from './json-bigint.js';

export type { JsonObject, JsonValue } from './json-bigint.js';

// ---------------------------------------------------------------- version

export interface BpftoolVersion {
  version: string; // "7.5.0"
  libbpf: string; // "1.5"
  features: Record<string, boolean>;
}

/** `bpftool -j version` */
export function parseVersion(stdout: string): BpftoolVersion {
  const o = expectObject(parseJsonBigInt(stdout), 'bpftool -j version');
  const features: Record<string, boolean> = {};
  if (isObject(o.features)) {
    for (const [k, v] of Object.entries(o.features)) features[k] = v === true;
  }
  return {
    version: expectString(o.version, 'version'),
    libbpf: typeof o.libbpf_version === 'string' ? o.libbpf_version : 'unknown',
    features,
  };
}

export const INSTALL_HINT = 'on Debian 12: apt-get install -t bookworm-backports bpftool';

/** The one-line complaint about a bpftool older than `min`, or undefined when it is new enough. */
export function tooOldMessage(version: string, min: string, needFor: string): string | undefined {
  if (compareVersions(version, min) >= 0) return undefined;
  return `bpftool ${version} is too old: need ≥ ${min.replace(/(\.0)+$/, '')} for ${needFor}; ${INSTALL_HINT}`;
}

/** Compares dotted numeric versions ("7.10.0" > "7.2"); missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

// ---------------------------------------------------------------- prog / map / link / cgroup show

/** One program as `bpftool -j prog show` prints it (fields beyond these pass through). */
export interface ProgInfo extends JsonObject {
  id: number;
  type: string; // "cgroup_skb", "sched_cls", ...
  name: string; // truncated by the kernel to 15 characters
  tag: string;
  map_ids: number[];
}

/** Present only while kernel.bpf_stats_enabled=1 (or after BPF_ENABLE_STATS). */
export interface ProgRunStats {
  run_time_ns: number | bigint;
  run_cnt: number | bigint;
}

export interface MapInfo extends JsonObject {
  id: number;
  type: string; // "hash", "lru_hash", "percpu_array", ...
  name: string;
  bytes_key: number;
  bytes_value: number; // per CPU for per-CPU maps
  max_entries: number;
}

export interface LinkInfo extends JsonObject {
  id: number;
  type: string;
}

export interface CgroupAttachment extends JsonObject {
  id: number;
  attach_type: string; // "cgroup_inet_egress" (bpftool 7.x spells the libbpf name)
  attach_flags: string; // "multi", "override" or ""
  name: string;
}

/** `bpftool -j prog show [pinned P | id N]`: an object for one program, an array for all. */
export function parseProgShow(stdout: string): ProgInfo[] {
  return showList(stdout, 'prog show').map((o, i) => {
    const where = `prog show entry ${i}`;
    expectNumber(o.id, `${where}.id`);
    expectString(o.type, `${where}.type`);
    if (typeof o.name !== 'string') o.name = ''; // programs without BTF may have no name
    if (!Array.isArray(o.map_ids)) o.map_ids = [];
    return o as ProgInfo;
  });
}

/** run_time_ns/run_cnt of a program, or undefined when bpf_stats were off. */
export function progRunStats(p: ProgInfo): ProgRunStats | undefined {
  const t = p.run_time_ns;
  const c = p.run_cnt;
  const isCount = (v: unknown): v is number | bigint =>
    typeof v === 'number' || typeof v === 'bigint';
  return isCount(t) && isCount(c) ? { run_time_ns: t, run_cnt: c } : undefined;
}

/** `bpftool -j map show [pinned P]` */
export function parseMapShow(stdout: string): MapInfo[] {
  return showList(stdout, 'map show').map((o, i) => {
    const where = `map show entry ${i}`;
    expectNumber(o.id, `${where}.id`);
    expectString(o.type, `${where}.type`);
    expectNumber(o.bytes_key, `${where}.bytes_key`);
    expectNumber(o.bytes_value, `${where}.bytes_value`);
    expectNumber(o.max_entries, `${where}.max_entries`);
    if (typeof o.name !== 'string') o.name = '';
    return o as MapInfo;
  });
}

/** `bpftool -j link show [pinned P]` */
export function parseLinkShow(stdout: string): LinkInfo[] {
  return showList(stdout, 'link show').map((o, i) => {
    expectNumber(o.id, `link show entry ${i}.id`);
    expectString(o.type, `link show entry ${i}.type`);
    return o as LinkInfo;
  });
}

/** `bpftool -j cgroup show CG`: prints nothing at all (not "[]") when nothing is attached. */
export function parseCgroupShow(stdout: string): CgroupAttachment[] {
  if (stdout.trim() === '') return [];
  return showList(stdout, 'cgroup show').map((o, i) => {
    const where = `cgroup show entry ${i}`;
    expectNumber(o.id, `${where}.id`);
    expectString(o.attach_type, `${where}.attach_type`);
    if (typeof o.attach_flags !== 'string') o.attach_flags = '';
    if (typeof o.name !== 'string') o.name = '';
    return o as CgroupAttachment;
  });
}

/** bpftool 7.x prints "cgroup_inet_egress", older ones "egress": compare on the short form. */
export function shortAttachType(attachType: string): string {
  return attachType.replace(/^cgroup_inet_/, '');
}

// ---------------------------------------------------------------- map dump

export interface PerCpuValue {
  cpu: number;
  value: JsonValue;
}

/**
 * One entry of a BTF-formatted dump. key is null for the data sections (.bss/.data/.rodata),
 * which bpftool prints as {"value": {".bss": [...]}}. Per-CPU maps have values, not value.
 */
export type MapEntry =
  | { key: JsonValue; value: JsonValue; values?: undefined }
  | { key: JsonValue; value?: undefined; values: PerCpuValue[] };

export interface SummedMapEntry {
  key: JsonValue;
  value: JsonValue;
}

/**
 * Plain `bpftool map dump` of a map with BTF: only the formatted view, and it is JSON
 * (~4x faster to produce and ~6x smaller than -j). Maps without BTF print hex text instead.
 */
export function parseMapDumpPlain(stdout: string, what = 'map dump'): MapEntry[] {
  const text = stdout.trimStart();
  if (!text.startsWith('[')) {
    throw new Error(
      `${what}: output is not BTF-formatted JSON (the map has no key/value BTF?); use mapDumpBytes. ` +
        `Output starts with ${JSON.stringify(text.slice(0, 60))}`,
    );
  }
  const rows = parseJsonBigInt(text);
  if (!Array.isArray(rows)) throw new Error(`${what}: expected a JSON array`);
  return rows.map((r, i) => toMapEntry(r, `${what} entry ${i}`));
}

function toMapEntry(r: JsonValue, where: string): MapEntry {
  const o = expectObject(r, where);
  const key = o.key ?? null;
  if (Array.isArray(o.values)) {
    const values = o.values.map((v, cpuIndex) => {
      const pv = expectObject(v, `${where}.values[${cpuIndex}]`);
      return {
        cpu: expectNumber(pv.cpu, `${where}.values[${cpuIndex}].cpu`),
        value: pv.value ?? null,
      };
    });
    return { key, values };
  }
  if (!('value' in o)) throw new Error(`${where}: has neither "value" nor "values"`);
  return { key, value: o.value ?? null };
}

/**
 * Plain `bpftool map dump` of a map without key/value BTF: hex text, per entry
 *   key:\n01 00 ...\nvalue:\n00 01 ...      (or "key: 01 00  value: 02 00" when small)
 *   key:\n00 00 00 00\nvalue (CPU 00): ...    (per-CPU maps, one line per possible CPU)
 * and a "Found N elements" trailer. An entry deleted between bpftool's get-next-key and its
 * lookup prints "value: <no entry>" (or another error text) and is left out: it is gone.
 * About 2.3x less text than -j, and Buffer's hex decoder does the bytes.
 */
export function parseMapDumpHex(stdout: string, what = 'map dump'): RawMapEntry[] {
  // One pass over the text, bytes straight into a scratch buffer: a regex and a join per line
  // cost ~70 ms for 1k dns_stats rows (2.6 MB of text), this ~5 ms.
  const out: RawMapEntry[] = [];
  const len = stdout.length;
  let scratch = Buffer.allocUnsafe(4096);
  let n = 0;
  let entry: RawMapEntry | undefined;
  let target: 'key' | 'value' | number | undefined;
  let broken = false;
  let found = false;
  const flush = () => {
    if (entry && target !== undefined && !broken) {
      const bytes = Buffer.from(scratch.subarray(0, n));
      if (target === 'key') entry.key = bytes;
      else if (target === 'value') entry.value = bytes;
      else (entry.values ??= []).push({ cpu: target, value: bytes });
    }
    n = 0;
  };
  const finishEntry = () => {
    flush();
    if (entry && !broken && (entry.value !== undefined || entry.values !== undefined))
      out.push(entry);
    entry = undefined;
    broken = false;
  };
  /** After "value" at i: ":" or " (CPU NN):"; returns the index after the colon. */
  const valueMarker = (i: number): number => {
    if (stdout.charCodeAt(i) === 58) {
      target = 'value';
      return i + 1;
    }
    const close = stdout.indexOf('):', i);
    const cpu = /^ \(CPU (\d+)$/.exec(stdout.slice(i, close));
    if (close < 0 || !cpu)
      throw new Error(`${what}: cannot read ${JSON.stringify(stdout.slice(i - 5, i + 20))}`);
    target = Number(cpu[1]);
    return close + 2;
  };
  let i = 0;
  while (i < len) {
    if (stdout.charCodeAt(i) === 10) {
      i++;
      continue;
    }
    if (stdout.startsWith('key:', i)) {
      finishEntry();
      entry = { key: Buffer.alloc(0) };
      target = 'key';
      i += 4;
    } else if (stdout.startsWith('value', i)) {
      flush();
      i = valueMarker(i + 5);
    } else if (stdout.startsWith('Found ', i)) {
      finishEntry();
      found = true;
      target = undefined;
      const eol = stdout.indexOf('\n', i);
      i = eol < 0 ? len : eol;
      continue;
    } else if (target === undefined) {
      const eol = stdout.indexOf('\n', i);
      throw new Error(
        `${what}: unexpected line ${JSON.stringify(stdout.slice(i, eol < 0 ? len : eol).slice(0, 80))}`,
      );
    }
    // The rest of the line: hex bytes, or "value: …" after a small map's key, or an error text.
    while (i < len) {
      const c = stdout.charCodeAt(i);
      if (c === 10) break;
      if (c === 32) {
        i++;
        continue;
      }
      if (c === 118 && stdout.startsWith('value', i)) {
        flush();
        i = valueMarker(i + 5);
        continue;
      }
      const hi = hexDigit(c);
      const lo = hexDigit(stdout.charCodeAt(i + 1));
      const after = stdout.charCodeAt(i + 2);
      if (hi < 0 || lo < 0 || !(after === 32 || after === 10 || Number.isNaN(after))) {
        broken = true; // "<no entry>" or another error text: the entry is gone
        const eol = stdout.indexOf('\n', i);
        i = eol < 0 ? len : eol;
        break;
      }
      if (n === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger);
        scratch = bigger;
      }
      scratch[n++] = hi * 16 + lo;
      i += 2;
    }
  }
  finishEntry();
  if (!found)
    throw new Error(
      `${what}: no "Found N elements" line (output cut short?); starts with ${JSON.stringify(stdout.slice(0, 60))}`,
    );
  return out;
}

/** Plain-mode output of several dumps (one batch) -> one text per dump, "Found N" line kept. */
export function splitPlainDumps(stdout: string): string[] {
  const out: string[] = [];
  const re = /^Found \d+ elements?$/gm;
  let from = 0;
  for (let m = re.exec(stdout); m; m = re.exec(stdout)) {
    const end = m.index + m[0].length;
    out.push(stdout.slice(from, end));
    from = end + 1;
  }
  return out;
}

/** The false failure bpftool 7.5's batch reports after map commands (see mapDumpMany). */
export function isStaleBatchErrno(errorText: string): boolean {
  return /^(Error: )?reading batch file failed: Bad file descriptor\s*$/.test(errorText.trim());
}

/** One entry of a map dump as raw bytes: a value, or one value per CPU. */
export interface RawMapEntry {
  key: Buffer;
  value?: Buffer;
  values?: { cpu: number; value: Buffer }[];
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Sums per-CPU values into one value per key: numbers add (bigint once any side is a bigint
 * or the sum leaves the safe range), arrays element-wise, objects field by field. Entries of
 * maps that are not per-CPU pass through unchanged.
 */
export function sumPerCpu(entries: readonly MapEntry[]): SummedMapEntry[] {
  return entries.map((e) => {
    if (e.values === undefined) return { key: e.key, value: e.value };
    if (e.values.length === 0) return { key: e.key, value: null };
    let acc = e.values[0]!.value;
    for (const v of e.values.slice(1)) acc = addValues(acc, v.value);
    return { key: e.key, value: acc };
  });
}

function addValues(a: JsonValue, b: JsonValue): JsonValue {
  if (isNumeric(a) && isNumeric(b)) {
    if (typeof a === 'number' && typeof b === 'number') {
      const s = a + b;
      if (Number.isSafeInteger(s) || !Number.isInteger(a) || !Number.isInteger(b)) return s;
    }
    return BigInt(a) + BigInt(b);
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.map((x, i) => addValues(x, b[i]!));
  }
  if (isObject(a) && isObject(b)) {
    const out: JsonObject = {};
    for (const k of Object.keys(a)) out[k] = k in b ? addValues(a[k]!, b[k]!) : a[k]!;
    return out;
  }
  // Strings (char arrays) and other leaves do not add: keep CPU 0's.
  return a;
}

function isNumeric(v: JsonValue): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

// ---------------------------------------------------------------- prog run, loadall, batch

export interface ProgRunResult {
  retval: number;
  /** ns; the average over `repeat` runs when repeat > 1 */
  duration: number;
}

/**
 * `bpftool -j prog run ...` prints {"retval":N,"duration":N}. (Plain mode prints
 * "Return value: N, duration: Mns", or "duration (average): Mns" with repeat > 1.)
 */
export function parseProgRun(stdout: string): ProgRunResult {
  return progRunFromJson(parseJsonBigInt(stdout), 'prog run');
}

function progRunFromJson(v: JsonValue, where: string): ProgRunResult {
  const o = expectObject(v, where);
  return {
    retval: expectNumber(o.retval, `${where}.retval`),
    duration: expectNumber(o.duration, `${where}.duration`),
  };
}

/**
 * autoattach cannot attach some program types (cgroup_skb) and also falls back when an
 * attach fails: in both cases it pins the program and only says so on stderr, with exit 0.
 */
export function parseAutoattachFallbacks(stderr: string): string[] {
  const out: string[] = [];
  for (const m of stderr.matchAll(
    /^Program (\S+) does not support autoattach, falling back to pinning$/gm,
  )) {
    out.push(m[1]!);
  }
  return out;
}

export interface BatchCommandResult {
  command: string[];
  /** null for commands that print nothing (map update) or that failed with a usage error */
  output: JsonValue;
}

/**
 * `bpftool -j batch file F`: [{"command":[argv...],"output":...}, ...]. bpftool stops at
 * the first failing command: its entry is the last one, with output {"error": "..."} (or
 * null for a usage error), and the exit code is 255. Commands after it do not run; the
 * ones before it have taken effect.
 */
export function parseBatch(stdout: string): BatchCommandResult[] {
  const trimmed = stdout.trim();
  if (trimmed === '') return [];
  const rows = parseJsonBigInt(trimmed);
  if (isObject(rows) && typeof rows.error === 'string') return []; // failed before any command
  if (!Array.isArray(rows)) throw new Error('batch: expected a JSON array');
  return rows.map((r, i) => {
    const o = expectObject(r, `batch entry ${i}`);
    const command = Array.isArray(o.command) ? o.command.map(String) : [];
    return { command, output: o.output ?? null };
  });
}

/** The "error" text of a -j result ({"error": "..."}), if it is one. */
export function jsonErrorText(v: JsonValue | undefined): string | undefined {
  return isObject(v) && typeof v.error === 'string' ? v.error : undefined;
}

/** Reads a prog run result out of a batch entry. */
export function batchProgRun(r: BatchCommandResult, index: number): ProgRunResult {
  return progRunFromJson(r.output, `batch entry ${index} (${r.command.slice(0, 2).join(' ')})`);
}

export const BATCH_MAX_LINE = 65_535; // bpftool's BATCH_LINE_LEN_MAX is 65536 with the NUL
export const BATCH_MAX_ARGS = 4_095; // BATCH_ARG_NB_MAX 4096, one slot for the NULL

/**
 * Formats one batch line the way bpftool's batch reader splits it: words separated by
 * blanks, a word may be wrapped in '...' or "..." (no escapes), and '#' starts a comment
 * anywhere on the line, even inside quotes.
 */
export function formatBatchLine(args: readonly string[]): string {
  if (args.length === 0) throw new Error('batch: empty command');
  if (args.length > BATCH_MAX_ARGS) {
    throw new Error(`batch: ${args.length} arguments, bpftool accepts at most ${BATCH_MAX_ARGS}`);
  }
  const line = args
    .map((a) => {
      if (/[#\n\r\0\\]/.test(a)) {
        throw new Error(`batch: argument ${JSON.stringify(a)} has '#', '\\' or a line break`);
      }
      if (a !== '' && !/[\s'"]/.test(a)) return a;
      if (!a.includes('"')) return `"${a}"`;
      if (!a.includes("'")) return `'${a}'`;
      throw new Error(`batch: argument ${JSON.stringify(a)} has both kinds of quotes`);
    })
    .join(' ');
  if (line.length > BATCH_MAX_LINE) {
    throw new Error(
      `batch: line of ${line.length} characters, bpftool reads at most ${BATCH_MAX_LINE}`,
    );
  }
  return line;
}

// ---------------------------------------------------------------- BTF: maps an object defines

/** A map as declared in an object's .maps section (what libbpf will create). */
export interface MapSpec {
  name: string;
  /** bpftool's type name ("lru_hash"), or "type N" for types this table does not know */
  type?: string;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
}

/** enum bpf_map_type, spelled as `bpftool map show` spells it. */
const MAP_TYPE_NAMES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array',
  'stack_trace', 'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps',
  'hash_of_maps', 'devmap', 'sockmap', 'cpumap', 'xskmap', 'sockhash', 'cgroup_storage',
  'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack', 'sk_storage',
  'devmap_hash', 'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter',
  'user_ringbuf', 'cgrp_storage', 'arena',
]; // prettier-ignore

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  type_id?: number;
  size?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset?: number }[];
  vars?: { type_id: number }[];
}

/**
 * The maps of an object's .maps section, from `bpftool btf dump file OBJ -j`. Only these are
 * comparable before load: the sizes of .bss/.data/.rodata are fixed up by libbpf at load.
 */
export function parseBtfMapSpecs(stdout: string): MapSpec[] {
  const btf = new BtfIndex(stdout);
  const maps = btf.all().find((t) => t.kind === 'DATASEC' && t.name === '.maps');
  if (!maps) return [];
  return (maps.vars ?? []).map((v) => {
    const variable = btf.get(v.type_id);
    const name = variable.name ?? '';
    const def = btf.resolve(variable.type_id ?? 0);
    const spec: MapSpec = { name };
    for (const m of def.members ?? []) {
      // __uint(field, N) is "int (*field)[N]"; __type(field, T) is "T *field".
      const ptr = btf.resolve(m.type_id);
      const target = ptr.kind === 'PTR' ? btf.resolve(ptr.type_id ?? 0) : undefined;
      const uintValue = target?.kind === 'ARRAY' ? target.nr_elems : undefined;
      switch (m.name) {
        case 'type':
          if (uintValue !== undefined) spec.type = MAP_TYPE_NAMES[uintValue] ?? `type ${uintValue}`;
          break;
        case 'max_entries':
          spec.maxEntries = uintValue;
          break;
        case 'key_size':
          spec.keySize = uintValue;
          break;
        case 'value_size':
          spec.valueSize = uintValue;
          break;
        case 'key':
          if (ptr.kind === 'PTR') spec.keySize = btf.sizeOf(ptr.type_id ?? 0, `${name}.key`);
          break;
        case 'value':
          if (ptr.kind === 'PTR') spec.valueSize = btf.sizeOf(ptr.type_id ?? 0, `${name}.value`);
          break;
      }
    }
    return spec;
  });
}

/** Byte size and member offsets of a named struct, from `bpftool btf dump ... -j`. */
export function parseBtfStruct(
  stdout: string,
  structName: string,
): { size: number; members: Record<string, { offset: number; size: number }> } | undefined {
  const btf = new BtfIndex(stdout);
  const s = btf.all().find((t) => t.kind === 'STRUCT' && t.name === structName);
  if (!s) return undefined;
  const members: Record<string, { offset: number; size: number }> = {};
  for (const m of s.members ?? []) {
    members[m.name] = {
      offset: (m.bits_offset ?? 0) / 8,
      size: btf.sizeOf(m.type_id, `${structName}.${m.name}`),
    };
  }
  return { size: s.size ?? 0, members };
}

class BtfIndex {
  private readonly byId = new Map<number, BtfType>();

  constructor(stdout: string) {
    const doc = expectObject(parseJsonBigInt(stdout), 'btf dump');
    if (!Array.isArray(doc.types)) throw new Error('btf dump: no "types" array');
    for (const t of doc.types as unknown as BtfType[]) this.byId.set(t.id, t);
  }

  all(): BtfType[] {
    return [...this.byId.values()];
  }

  get(id: number): BtfType {
    const t = this.byId.get(id);
    if (!t) throw new Error(`btf dump: no type with id ${id}`);
    return t;
  }

  /** Skips typedefs and qualifiers. */
  resolve(id: number): BtfType {
    let t = this.get(id);
    for (let hops = 0; hops < 32; hops++) {
      if (!['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) return t;
      t = this.get(t.type_id ?? 0);
    }
    throw new Error(`btf dump: type chain from id ${id} too long`);
  }

  sizeOf(id: number, what: string): number {
    const t = this.resolve(id);
    if (t.kind === 'ARRAY') return (t.nr_elems ?? 0) * this.sizeOf(t.type_id ?? 0, what);
    if (t.kind === 'PTR') return 8;
    if (typeof t.size === 'number') return t.size;
    throw new Error(`btf dump: cannot size ${what} (BTF kind ${t.kind})`);
  }
}

// ---------------------------------------------------------------- errors

/** A short, actionable hint for a failed bpftool command, from its arguments and stderr. */
export function hintFor(args: readonly string[], errorText: string): string | undefined {
  const cmd = args
    .filter((a) => !a.startsWith('-'))
    .slice(0, 2)
    .join(' ');
  if (/File exists/.test(errorText)) {
    return 'something is already pinned at the target path (left by an earlier run?): remove the pins or reuse the maps';
  }
  if (/parent dir .* doesn't exist/.test(errorText)) {
    return 'bpftool does not create parent directories: create them first';
  }
  if (/unable to find map/.test(errorText)) {
    return 'the object has no map of that name (data sections are named like dns.bss and pinned as dns_bss)';
  }
  if (/failed to open .*No such file or directory/.test(errorText)) {
    return 'the file does not exist';
  }
  if (/incorrect object type: link/.test(errorText)) {
    return 'the pin is a BPF link (autoattach pins links), not a program: use link show';
  }
  if (/incorrect object type: prog/.test(errorText) && cmd === 'link show') {
    return 'the pin is a program, not a link';
  }
  if (/bpf obj get .*No such file or directory/.test(errorText)) {
    return 'nothing is pinned at that path';
  }
  if (/bpf obj get .*Operation not permitted/.test(errorText)) {
    return 'bpffs refuses names containing "." and needs CAP_BPF/CAP_SYS_ADMIN';
  }
  if (/can't open cgroup/.test(errorText)) {
    return 'the path must be a directory of the cgroup2 hierarchy (e.g. under /sys/fs/cgroup/unified on a hybrid host)';
  }
  if (cmd === 'cgroup attach' && /failed to attach program/.test(errorText)) {
    return 'the program may already be attached to this cgroup (attaching the same program twice fails even with multi)';
  }
  if (cmd === 'cgroup detach' && /failed to detach program/.test(errorText)) {
    return 'the program is not attached to this cgroup with this attach type';
  }
  if (cmd === 'prog run' && /Invalid argument/.test(errorText)) {
    return 'data_in does not suit the program type (skb programs need at least a 14-byte Ethernet header and at most ~3.7 KiB)';
  }
  if (/Operation not permitted|Permission denied/.test(errorText)) {
    return 'bpftool needs root (CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON, or CAP_SYS_ADMIN)';
  }
  if (/failed to (open|load) object file|failed to load object/.test(errorText)) {
    return 'see the libbpf/verifier lines above the error';
  }
  return undefined;
}

// ---------------------------------------------------------------- helpers

function showList(stdout: string, what: string): JsonObject[] {
  const v = parseJsonBigInt(stdout);
  const error = jsonErrorText(v);
  if (error !== undefined) throw new Error(`${what}: ${error}`);
  const list = Array.isArray(v) ? v : [v];
  return list.map((o, i) => expectObject(o, `${what} entry ${i}`));
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectObject(v: JsonValue | undefined, where: string): JsonObject {
  if (!isObject(v)) throw new Error(`${where}: expected a JSON object, got ${describe(v)}`);
  return v;
}

function expectNumber(v: JsonValue | undefined, where: string): number {
  if (typeof v !== 'number') throw new Error(`${where}: expected a number, got ${describe(v)}`);
  return v;
}

function expectString(v: JsonValue | undefined, where: string): string {
  if (typeof v !== 'string') throw new Error(`${where}: expected a string, got ${describe(v)}`);
  return v;
}

function describe(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'bigint') return `${v}n`;
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
