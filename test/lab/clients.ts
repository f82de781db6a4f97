import { buildWhenStale } from './build-when-stale.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './exec.js';

export const LAB_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = join(LAB_DIR, '../..');
/** Build outputs live here, outside git (.gitignore has /.cache/). */
export const LAB_CACHE_DIR = join(REPO_ROOT, '.cache/lab');

/** Path of the static musl getaddrinfo client; (re)built when missing or older than gai.c. */
export async function ensureMuslClient(cacheDir = LAB_CACHE_DIR): Promise<string> {
  const src = join(LAB_DIR, 'clients/gai.c');
  return buildWhenStale(src, join(cacheDir, 'gai-musl'), async (tmp) => {
    await run(['musl-gcc', '-static', '-O2', '-Wall', '-Werror', '-o', tmp, src]);
  });
}

/** python3 getaddrinfo client with the same output contract as gai.c. */
export const PYTHON_GAI = [
  'import socket, sys',
  'try:',
  '    res = socket.getaddrinfo(sys.argv[1], None, type=socket.SOCK_STREAM)',
  'except socket.gaierror as e:',
  '    print(f"getaddrinfo: {e.errno} {e.strerror}", file=sys.stderr)',
  '    sys.exit(2)',
  'for fam, _, _, _, sa in res:',
  '    print(("A" if fam == socket.AF_INET else "AAAA"), sa[0])',
].join('\n');

/** Addresses from gai.c / PYTHON_GAI output ("A 1.2.3.4" lines), in resolver order. */
export function parseGaiOutput(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^(?:A|AAAA) (\S+)$/.exec(l.trim())?.[1])
    .filter((a): a is string => a !== undefined);
}

/** Distinct addresses from `getent ahosts` output ("10.96.0.20      STREAM web..."), in order. */
export function parseGetentAhosts(stdout: string): string[] {
  const addrs = stdout
    .split('\n')
    .map((l) => /^(\S+)\s+(?:STREAM|DGRAM|RAW)\b/.exec(l)?.[1])
    .filter((a): a is string => a !== undefined);
  return [...new Set(addrs)];
}

/** Addresses of A/AAAA records in dig's ANSWER section (full output, not +short). */
export function parseDigAnswers(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => /^\S+\s+\d+\s+IN\s+(?:A|AAAA)\s+(\S+)$/.exec(l.trim())?.[1])
    .filter((a): a is string => a !== undefined);
}

/** The rcode from dig's header line (`status: NXDOMAIN`), undefined when dig got no answer. */
export function parseDigStatus(stdout: string): string | undefined {
  return /status: ([A-Z]+)/.exec(stdout)?.[1];
}
