// Turns a Debian kernel package into what qemu boots: the uncompressed vmlinux, the module
// tree with a modules.dep, and a tiny initramfs that mounts the host's / over virtio-9p.
// Nothing is installed on the host; everything lives under the cache dir and is rebuilt
// from Debian's packages when missing.
//
// Cache layout:
//   apt/<family>/          private apt state (sources, lists) of one kernel's suites
//   resolved/<id>.json     the ABI that linux-image-amd64 named at the last apt update
//   kernels/<abi>/         root/ (dpkg-deb -x), vmlinux or vmlinuz, initrd.img, ready.json
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bzImagePayload, type PayloadFormat } from './bzimage.js';
import { hasInterpreter } from './elf.js';
import {
  abiFromDepends,
  debVersion,
  mirrorsFromIndexTargets,
  sourcesFile,
  type KernelSpec,
  type Mirrors,
} from './kernels.js';

/** Modules the initramfs loads to mount the host root (some are built in on some kernels). */
const INITRAMFS_MODULES = ['virtio_pci', '9pnet_virtio', '9p'];
const INITRAMFS_INIT = new URL('./initramfs-init.sh', import.meta.url);
const DECOMPRESS: Record<PayloadFormat, string[]> = {
  zstd: ['zstd', '-dcq'],
  xz: ['xz', '-dc'],
  gzip: ['gzip', '-dc'],
};

export interface PreparedKernel {
  id: string;
  abi: string;
  /** Debian package version */
  version: string;
  dir: string;
  /** uncompressed vmlinux (PVH entry), or the bzImage when it could not be extracted */
  image: string;
  initrd: string;
  /** extracted package root: modprobe -d <modulesRoot> */
  modulesRoot: string;
  /** false when everything came from the cache */
  built: boolean;
  seconds: number;
}

export interface PrepareOptions {
  cacheDir: string;
  /** re-run apt-get update when the last resolution is older than this */
  resolveMaxAgeMs: number;
  busybox: string;
  log: (line: string) => void;
}

interface ReadyFile {
  id: string;
  abi: string;
  version: string;
  image: string;
}

interface Resolved {
  abi: string;
  at: number;
}

export async function prepareKernel(
  spec: KernelSpec,
  opts: PrepareOptions,
): Promise<PreparedKernel> {
  const started = performance.now();
  const abi = await resolveAbi(spec, opts);
  const dir = join(opts.cacheDir, 'kernels', abi);
  let ready = await readJson<ReadyFile>(join(dir, 'ready.json'));
  const built = !ready;
  if (!ready) {
    ready = await buildKernel(spec, abi, dir, opts);
    await pruneOtherAbis(spec, abi, opts);
  }
  return {
    id: spec.id,
    abi,
    version: ready.version,
    dir,
    image: join(dir, ready.image),
    initrd: join(dir, 'initrd.img'),
    modulesRoot: join(dir, 'root'),
    built,
    seconds: (performance.now() - started) / 1000,
  };
}

// ---------------------------------------------------------------- apt

function aptDir(spec: KernelSpec, cacheDir: string): string {
  return join(cacheDir, 'apt', spec.family);
}

/** -o options that point apt at the private state: host sources, lists and status unused. */
function aptOptions(dir: string): string[] {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::State', join(dir, 'state')),
    ...o('Dir::State::status', '/dev/null'),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('Dir::Etc::SourceList', '/dev/null'),
    ...o('Dir::Etc::SourceParts', join(dir, 'sources.list.d')),
    ...o('Dir::Etc::Preferences', '/dev/null'),
    ...o('Dir::Etc::PreferencesParts', join(dir, 'preferences.d')),
    ...o('APT::Architecture', 'amd64'),
    // downloads land in our cache dir, which the _apt user may not be able to write
    ...o('APT::Sandbox::User', 'root'),
  ];
}

let mirrorsPromise: Promise<Mirrors> | undefined;
/** The host's own Debian mirrors (KM_DEBIAN_MIRROR / KM_DEBIAN_SECURITY_MIRROR override). */
function hostMirrors(): Promise<Mirrors> {
  mirrorsPromise ??= execa('apt-get', ['indextargets', '--format', '$(REPO_URI) $(RELEASE)'], {
    reject: false,
  }).then((r) => {
    const m = mirrorsFromIndexTargets(String(r.stdout ?? ''));
    return {
      main: process.env.KM_DEBIAN_MIRROR ?? m.main,
      security: process.env.KM_DEBIAN_SECURITY_MIRROR ?? m.security,
    };
  });
  return mirrorsPromise;
}

async function resolveAbi(spec: KernelSpec, opts: PrepareOptions): Promise<string> {
  const file = join(opts.cacheDir, 'resolved', `${spec.id}.json`);
  const last = await readJson<Resolved>(file);
  if (last && Date.now() - last.at < opts.resolveMaxAgeMs) return last.abi;

  const dir = aptDir(spec, opts.cacheDir);
  const mirrors = await hostMirrors();
  for (const d of [
    'state/lists/partial',
    'cache/archives/partial',
    'sources.list.d',
    'preferences.d',
  ]) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await writeFile(join(dir, 'sources.list.d', 'kernel.sources'), sourcesFile(spec, mirrors));
  try {
    await run(opts, 'apt-get', ['-q', ...aptOptions(dir), 'update']);
  } catch (err) {
    // Offline with a kernel already prepared: keep testing the one we have.
    if (last && existsSync(join(opts.cacheDir, 'kernels', last.abi, 'ready.json'))) {
      opts.log(`apt-get update failed, using the cached ${last.abi}: ${(err as Error).message}`);
      return last.abi;
    }
    throw new Error(`kernel ${spec.id}: apt-get update of ${spec.family} failed`, { cause: err });
  }
  const depends = await run(opts, 'apt-cache', [
    ...aptOptions(dir),
    'depends',
    'linux-image-amd64',
  ]);
  const abi = abiFromDepends(depends, spec.id as KernelSpec['id']);
  await mkdir(join(opts.cacheDir, 'resolved'), { recursive: true });
  await writeFile(file, JSON.stringify({ abi, at: Date.now() } satisfies Resolved) + '\n');
  opts.log(`${spec.family}: linux-image-amd64 -> linux-image-${abi}`);
  return abi;
}

// ---------------------------------------------------------------- build

async function buildKernel(
  spec: KernelSpec,
  abi: string,
  dir: string,
  opts: PrepareOptions,
): Promise<ReadyFile> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const debDir = join(dir, 'deb');
  await mkdir(debDir);
  await timed(opts, 'apt-get download', () =>
    run(
      opts,
      'apt-get',
      ['-q', ...aptOptions(aptDir(spec, opts.cacheDir)), 'download', `linux-image-${abi}`],
      {
        cwd: debDir,
      },
    ),
  );
  const debs = (await readdir(debDir)).filter((f) => f.endsWith('.deb'));
  const deb = debs[0];
  const version = deb && debVersion(deb, abi);
  if (!deb || !version)
    throw new Error(`apt-get download linux-image-${abi} left no .deb in ${debDir}`);

  const root = join(dir, 'root');
  await timed(opts, 'dpkg-deb -x', () => run(opts, 'dpkg-deb', ['-x', join(debDir, deb), root]));
  // The package is rebuildable from the mirror; the extracted tree is all the lane needs.
  await rm(debDir, { recursive: true, force: true });

  const vmlinuz = join(root, 'boot', `vmlinuz-${abi}`);
  let image = 'vmlinux';
  try {
    await timed(opts, 'extract vmlinux', () => extractVmlinux(vmlinuz, join(dir, 'vmlinux')));
  } catch (err) {
    // The bzImage boots too, only slower (its decompressor runs under TCG).
    opts.log(`cannot extract vmlinux, booting the bzImage: ${(err as Error).message}`);
    image = `root/boot/vmlinuz-${abi}`;
  }
  // Debian ships no modules.dep; modprobe (host side for the initramfs, guest side for
  // nf_conntrack and friends) needs it.
  await timed(opts, 'depmod', () => run(opts, 'depmod', ['-b', root, abi]));
  await timed(opts, 'initramfs', () => buildInitramfs(root, abi, join(dir, 'initrd.img'), opts));

  const ready: ReadyFile = { id: spec.id, abi, version, image };
  await writeFile(join(dir, 'ready.json'), JSON.stringify(ready, null, 2) + '\n');
  return ready;
}

/**
 * Keeps one ABI per kernel id: a new Debian upload replaces the old tree. Only trees of this
 * id (ABIs start with it): another kernel may be building its own tree right now.
 */
async function pruneOtherAbis(spec: KernelSpec, keep: string, opts: PrepareOptions) {
  const kernels = join(opts.cacheDir, 'kernels');
  for (const name of await readdir(kernels)) {
    if (name === keep || !name.startsWith(`${spec.id}.`)) continue;
    opts.log(`removing the old kernel tree ${name}`);
    await rm(join(kernels, name), { recursive: true, force: true });
  }
}

export async function extractVmlinux(vmlinuz: string, out: string): Promise<void> {
  const image = await readFile(vmlinuz);
  const payload = bzImagePayload(image, vmlinuz);
  const [cmd, ...args] = DECOMPRESS[payload.format];
  const r = await execa(cmd!, args, {
    input: image.subarray(payload.start, payload.end),
    stdout: { file: out },
    reject: false,
  });
  if (r.failed) {
    throw new Error(`${cmd} ${args.join(' ')} of ${vmlinuz} failed: ${String(r.stderr).trim()}`, {
      cause: r,
    });
  }
  const size = (await stat(out)).size;
  const fh = await open(out, 'r');
  const head = Buffer.alloc(4);
  await fh.read(head, 0, 4, 0);
  await fh.close();
  if (size !== payload.uncompressedSize || head.toString('latin1') !== '\x7fELF') {
    await rm(out, { force: true });
    throw new Error(
      `${vmlinuz}: decompressed ${size} bytes (header says ${payload.uncompressedSize}), ` +
        `magic ${head.toString('hex')}: not the vmlinux ELF`,
    );
  }
}

/** "insmod /x/9pnet.ko.xz" lines of `modprobe --show-depends`, in load order, deduplicated. */
export function insmodPaths(showDepends: string): string[] {
  const out: string[] = [];
  for (const m of showDepends.matchAll(/^insmod (\S+)/gm)) {
    if (!out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

async function buildInitramfs(root: string, abi: string, out: string, opts: PrepareOptions) {
  const tmp = `${out}.d`;
  await rm(tmp, { recursive: true, force: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'm']) {
    await mkdir(join(tmp, d), { recursive: true });
  }
  await writeFile(join(tmp, 'bin', 'busybox'), await readFile(opts.busybox), { mode: 0o755 });
  await writeFile(join(tmp, 'init'), await readFile(INITRAMFS_INIT), { mode: 0o755 });
  const deps = await run(opts, 'modprobe', [
    '-d',
    root,
    '-S',
    abi,
    '--show-depends',
    '-a',
    ...INITRAMFS_MODULES,
  ]);
  // busybox insmod cannot be trusted with .ko.xz/.ko.zst: decompress here.
  const order: string[] = [];
  for (const path of insmodPaths(deps)) {
    const name = path
      .split('/')
      .at(-1)!
      .replace(/\.(xz|zst)$/, '');
    const [cmd, args] = path.endsWith('.xz')
      ? ['xz', ['-dc', path]]
      : path.endsWith('.zst')
        ? ['zstd', ['-dcq', path]]
        : ['cat', [path]];
    await execa(cmd as string, args as string[], { stdout: { file: join(tmp, 'm', name) } });
    order.push(name);
  }
  await writeFile(join(tmp, 'm', 'order'), order.join('\n') + '\n');
  await run(opts, 'sh', ['-c', 'find . | cpio -o -H newc --quiet | gzip -1 > "$0"', out], {
    cwd: tmp,
  });
  await rm(tmp, { recursive: true, force: true });
}

// ---------------------------------------------------------------- prerequisites

/** What the lane needs beyond the rest of the suite's packages. */
export const DEBIAN_PACKAGES = [
  'qemu-system-x86',
  'busybox-static',
  'kmod',
  'cpio',
  'xz-utils',
  'zstd',
];

/** Commands the lane runs on the host (and, through the 9p root, in the guests). */
const COMMANDS: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'apt-get': 'apt',
  'dpkg-deb': 'dpkg',
  depmod: 'kmod',
  modprobe: 'kmod',
  cpio: 'cpio',
  xz: 'xz-utils',
  zstd: 'zstd',
  gzip: 'gzip',
  timeout: 'coreutils',
  dnsmasq: 'dnsmasq-base',
  nft: 'nftables',
  ip: 'iproute2',
  bpftool: 'bpftool',
  gcc: 'gcc',
};

/** Problems that stop the lane, each naming what to install; [] when all is there. */
export async function missingPrerequisites(busybox: string): Promise<string[]> {
  const problems: string[] = [];
  const missing = new Set<string>();
  for (const [cmd, pkg] of Object.entries(COMMANDS)) {
    const r = await execa('sh', ['-c', 'command -v "$0"', cmd], { reject: false });
    if (r.exitCode !== 0) missing.add(pkg);
  }
  if (!existsSync(busybox)) {
    missing.add('busybox-static');
  } else {
    const head = await readFile(busybox);
    if (hasInterpreter(head, busybox)) missing.add('busybox-static');
  }
  if (!existsSync('/usr/share/keyrings/debian-archive-keyring.gpg'))
    missing.add('debian-archive-keyring');
  if (missing.size > 0) {
    problems.push(
      `missing Debian packages ${[...missing].join(', ')}: ` +
        `apt-get install --no-install-recommends ${[...missing].join(' ')} ` +
        `(the lane needs ${DEBIAN_PACKAGES.join(' ')} dnsmasq-base nftables iproute2 gcc libc6-dev, and bpftool >= 7.2)`,
    );
  }
  return problems;
}

// ---------------------------------------------------------------- plumbing

async function run(
  opts: PrepareOptions,
  cmd: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<string> {
  const r = await execa(cmd, args, { reject: false, cwd: options.cwd, stdin: 'ignore' });
  const line = [cmd, ...args].join(' ');
  if (r.failed) {
    const why = r.exitCode === undefined ? r.shortMessage : `exit ${r.exitCode}`;
    throw new Error(`${line} failed (${why}): ${String(r.stderr).trim().slice(-2000)}`, {
      cause: r,
    });
  }
  const stderr = String(r.stderr).trim();
  if (stderr) opts.log(`${cmd}: ${stderr.split('\n').slice(-3).join(' | ')}`);
  return String(r.stdout);
}

async function timed<T>(opts: PrepareOptions, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const v = await fn();
  opts.log(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return v;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
