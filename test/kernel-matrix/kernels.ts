// The kernels of the matrix: which Debian suites name each one, and the pure parsers that turn
// apt's output into a package to download. Which kernel does what is in expectations.ts.

export type KernelId = '5.10' | '6.1' | '6.12';

export interface AptSource {
  archive: 'main' | 'security';
  suites: string[];
}

export interface KernelSpec {
  id: KernelId;
  /** Debian release family, also the name of its private apt state directory */
  family: string;
  /** where linux-image-amd64 is looked up: its candidate names the kernel ABI */
  sources: AptSource[];
}

/**
 * Each kernel gets its own apt state with only its own suites, so that the candidate of
 * linux-image-amd64 is that suite's current kernel and the host's apt lists stay untouched.
 */
export const KERNELS: readonly KernelSpec[] = [
  {
    id: '6.12',
    family: 'bookworm-backports',
    sources: [{ archive: 'main', suites: ['bookworm-backports'] }],
  },
  {
    id: '6.1',
    family: 'bookworm',
    sources: [
      { archive: 'main', suites: ['bookworm', 'bookworm-updates'] },
      { archive: 'security', suites: ['bookworm-security'] },
    ],
  },
  {
    id: '5.10',
    family: 'bullseye',
    sources: [
      { archive: 'main', suites: ['bullseye', 'bullseye-updates'] },
      { archive: 'security', suites: ['bullseye-security'] },
    ],
  },
];

export function kernelSpec(id: string): KernelSpec {
  const k = KERNELS.find((s) => s.id === id);
  if (!k) throw new Error(`unknown kernel '${id}' (known: ${KERNELS.map((s) => s.id).join(', ')})`);
  return k;
}

export interface Mirrors {
  main: string;
  security: string;
}

export const DEFAULT_MIRRORS: Mirrors = {
  main: 'http://deb.debian.org/debian',
  security: 'http://deb.debian.org/debian-security',
};

/**
 * The host's Debian mirrors, from `apt-get indextargets --format '$(REPO_URI) $(RELEASE)'`:
 * the repository of a `*-security` release is the security archive, any other the main one.
 * Hosts that are not Debian (no such lines) get deb.debian.org.
 */
export function mirrorsFromIndexTargets(stdout: string): Mirrors {
  let main: string | undefined;
  let security: string | undefined;
  for (const line of stdout.split('\n')) {
    const [uri, release] = line.trim().split(/\s+/);
    if (!uri || !release || !/^https?:\/\//.test(uri)) continue;
    const base = uri.replace(/\/+$/, '');
    if (release.endsWith('-security')) security ??= base;
    else if (/\/debian$/.test(base)) main ??= base;
  }
  return { main: main ?? DEFAULT_MIRRORS.main, security: security ?? DEFAULT_MIRRORS.security };
}

/** deb822 sources for a kernel's private apt state. */
export function sourcesFile(spec: KernelSpec, mirrors: Mirrors): string {
  return spec.sources
    .map((s) =>
      [
        'Types: deb',
        `URIs: ${s.archive === 'main' ? mirrors.main : mirrors.security}`,
        `Suites: ${s.suites.join(' ')}`,
        'Components: main',
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

/**
 * The kernel ABI that `apt-cache depends linux-image-amd64` names ("Depends:
 * linux-image-6.1.0-56-amd64"), checked against the kernel it must be: a suite that moved on
 * to another kernel series needs a new row in the matrix, not a silent substitute.
 */
export function abiFromDepends(stdout: string, id: KernelId): string {
  const abis = [...stdout.matchAll(/^\s*\|?Depends: linux-image-(\S+-amd64)\s*$/gm)].map(
    (m) => m[1]!,
  );
  if (abis.length === 0) {
    throw new Error(
      `apt-cache depends linux-image-amd64 names no linux-image-*-amd64 package:\n${stdout.trim()}`,
    );
  }
  const abi = abis[0]!;
  if (!abi.startsWith(`${id}.`)) {
    throw new Error(
      `linux-image-amd64 for kernel ${id} now depends on linux-image-${abi}: ` +
        `that suite moved to another kernel series; update test/kernel-matrix/kernels.ts`,
    );
  }
  return abi;
}

/** "./debs/linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb" -> "6.1.192-2" */
export function debVersion(fileName: string, abi: string): string | undefined {
  const base = fileName.split('/').at(-1) ?? '';
  const prefix = `linux-image-${abi}_`;
  if (!base.startsWith(prefix) || !base.endsWith('_amd64.deb')) return undefined;
  return decodeURIComponent(base.slice(prefix.length, -'_amd64.deb'.length));
}
