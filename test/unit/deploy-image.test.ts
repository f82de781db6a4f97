// deploy/image/Dockerfile, checked without a container engine: the Dockerfile linter of the
// VS Code Docker extension (dockerfile-utils), the final stage's base, entrypoint and pinned
// tools, and a staged copy of what the final stage COPYs (the real tsc output, the repo's
// files) started with --help, which loads the protobuf schema at import.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Copy, DockerfileParser, JSONInstruction, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { ROOT } from './deploy-kustomize.js';

const DOCKERFILE = path.join(ROOT, 'deploy', 'image', 'Dockerfile');
const text = readFileSync(DOCKERFILE, 'utf8');
const dockerfile = DockerfileParser.parse(text);
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  engines: { node: string };
};

/** Global ARG defaults (before the first FROM) and each stage's instructions. */
function stages() {
  const globals = new Map<string, string>();
  const out: { name: string | undefined; image: string; instructions: Instruction[] }[] = [];
  for (const i of dockerfile.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      const args = i.getArguments().map((a) => a.getValue());
      const image = args[0]!.replace(/\$\{(\w+)\}/g, (_, n: string) => globals.get(n) ?? '');
      out.push({ name: args[2], image, instructions: [] });
    } else if (out.length === 0 && i.getKeyword() === 'ARG') {
      const [k, v] = i.getArguments()[0]!.getValue().split('=');
      globals.set(k!, v ?? '');
    } else out.at(-1)?.instructions.push(i);
  }
  return out;
}

const all = stages();
const final = all.at(-1)!;
const argsOf = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const finalArg = (name: string) =>
  final.instructions
    .filter((i) => i.getKeyword() === 'ARG')
    .map((i) => argsOf(i)[0]!.split('='))
    .find(([k]) => k === name)?.[1];
const workdir = argsOf(final.instructions.find((i) => i.getKeyword() === 'WORKDIR')!)[0]!;

interface CopyStep {
  from: string | undefined;
  sources: string[];
  dest: string;
}
const copies: CopyStep[] = final.instructions
  .filter((i): i is Copy => i instanceof Copy)
  .map((i) => {
    const args = argsOf(i);
    const from = i.getFromFlag()?.getValue() ?? undefined;
    return { from, sources: args.slice(0, -1), dest: path.posix.join(workdir, args.at(-1)!) };
  });

/** ENTRYPOINT's argv in JSON (exec) form; undefined in shell form. */
function entrypointArgv(): string[] | undefined {
  const e = final.instructions.find((i) => i.getKeyword() === 'ENTRYPOINT');
  if (!(e instanceof JSONInstruction)) return undefined;
  const argv = e.getJSONStrings().map((a) => a.getJSONValue());
  return argv.length > 0 ? argv : undefined;
}

/** Files the exporter reads relative to PACKAGE_ROOT (path.join(PACKAGE_ROOT, 'a', 'b')). */
function packageRootPaths(): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(
          /path\.join\(\s*PACKAGE_ROOT\s*,([^)]*)\)/g,
        ))
          found.add([...m[1]!.matchAll(/'([^']+)'/g)].map((s) => s[1]).join('/'));
    }
  };
  walk(path.join(ROOT, 'src'));
  return [...found].sort();
}

describe('Dockerfile', () => {
  it('passes the Dockerfile linter', () => {
    const problems = validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('the linter would catch a broken instruction (the check can fail)', () => {
    expect(validate(`${text}\nEXPOSE notaport\nCOPY onlyone\n`).length).toBeGreaterThanOrEqual(2);
  });

  it('builds in stages, the final one on Node 20 on Debian bookworm', () => {
    expect(all.map((s) => s.name)).toEqual(['build', 'prod-deps', undefined]);
    for (const s of all) expect(s.image).toMatch(/^node:20(\.\d+)*-bookworm(-slim)?$/);
    expect(pkg.engines.node).toMatch(/>=20\./);
  });

  it('installs production dependencies only into the final image', () => {
    const run = (stage: string) =>
      all
        .find((s) => s.name === stage)!
        .instructions.filter((i) => i.getKeyword() === 'RUN')
        .map((i) => argsOf(i).join(' '))
        .join('\n');
    expect(run('prod-deps')).toMatch(/npm ci --omit=dev/);
    expect(copies.find((c) => c.dest === `${workdir}/node_modules`)?.from).toBe('prod-deps');
  });

  it("starts the exporter as PID 1 in exec form, at package.json's bin", () => {
    const entrypoints = final.instructions.filter((i) => i.getKeyword() === 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    const argv = entrypointArgv();
    expect(argv, 'JSON (exec) form: no shell to swallow SIGTERM').toBeDefined();
    expect(argv![0]).toBe('node');
    expect(argv!.at(-1)).toBe(path.posix.join(workdir, pkg.bin.dnsrace!));
    expect(final.instructions.map((i) => i.getKeyword())).not.toContain('CMD');
    expect(final.instructions.map((i) => i.getKeyword())).not.toContain('USER'); // uid 0: see the DaemonSet
  });

  it('pins a bpftool from bookworm-backports at least as new as the exporter requires', () => {
    const pinned = finalArg('BPFTOOL_VERSION');
    const m = /^(\d+)\.(\d+)\.(\d+)\+.*~bpo12\+\d+$/.exec(pinned ?? '');
    expect(m, `BPFTOOL_VERSION=${pinned}`).not.toBeNull();
    const required = /requireVersion\('(\d+)\.(\d+)\.(\d+)'\)/.exec(
      readFileSync(path.join(ROOT, 'src', 'exporter.ts'), 'utf8'),
    );
    expect(required).not.toBeNull();
    const num = (a: RegExpExecArray) => Number(a[1]) * 1e6 + Number(a[2]) * 1e3 + Number(a[3]);
    expect(num(m!)).toBeGreaterThanOrEqual(num(required!));
    const install = final.instructions
      .filter((i) => i.getKeyword() === 'RUN')
      .map((i) => argsOf(i).join(' '))
      .join('\n');
    expect(install).toContain('Suites: bookworm-backports');
    expect(install).toContain('"bpftool=${BPFTOOL_VERSION}"');
    expect(install).toContain('"conntrack=${CONNTRACK_VERSION}"');
    expect(finalArg('CONNTRACK_VERSION')).toMatch(/^\d+:\d+\.\d+\.\d+/);
  });

  it('copies every file the exporter reads relative to its package root', () => {
    const needed = packageRootPaths();
    expect(needed).toEqual(
      expect.arrayContaining([
        'bpf/dist/dns.bpf.o',
        'package.json',
        'src/exposition/proto/metrics.proto',
      ]),
    );
    for (const p of needed) {
      const inImage = path.posix.join(workdir, p);
      expect(
        copies.some((c) => inImage === c.dest || inImage.startsWith(c.dest.replace(/\/?$/, '/'))),
        `${p} is copied into ${workdir}`,
      ).toBe(true);
    }
  });

  it('sends the build context every file a COPY takes (Dockerfile.dockerignore)', () => {
    const allow = readFileSync(`${DOCKERFILE}.dockerignore`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1));
    const contextSources = all.flatMap((s) =>
      s.instructions
        .filter((i) => i instanceof Copy && !i.getFromFlag())
        .flatMap((i) => argsOf(i).slice(0, -1)),
    );
    for (const src of contextSources) {
      expect(existsSync(path.join(ROOT, src)), `${src} exists`).toBe(true);
      expect(
        allow.some(
          (a) =>
            a === src || // the file itself
            (a.endsWith('/') && src.startsWith(a)) || // a directory above it
            a.startsWith(src.endsWith('/') ? src : `${src}/`), // files under the directory copied
        ),
        `${src} is let through`,
      ).toBe(true);
    }
  });
});

describe('the final stage, staged from its COPY instructions', () => {
  let scratch: string;
  let app: string;

  /** Runs the entrypoint with the image's /app mapped to the staged copy. */
  const entrypoint = (args: string[]) => {
    const argv = entrypointArgv()!.map((a) =>
      a.startsWith(`${workdir}/`) ? path.join(app, a.slice(workdir.length + 1)) : a,
    );
    return spawnSync(argv[0]!, [...argv.slice(1), ...args], { encoding: 'utf8', timeout: 30_000 });
  };

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'dnsrace-image-'));
    app = path.join(scratch, 'app');
    const buildOut = path.join(scratch, 'build');
    // The build stage's compile, with the build stage's config (only its outDir moved).
    execFileSync(
      path.join(ROOT, 'node_modules', '.bin', 'tsc'),
      [
        '-p',
        path.join(ROOT, 'deploy', 'image', 'tsconfig.build.json'),
        '--outDir',
        path.join(buildOut, 'dist'),
      ],
      { cwd: ROOT, stdio: 'pipe' },
    );
    const stageRoot: Record<string, string> = { build: buildOut, 'prod-deps': ROOT };
    const stageWorkdir: Record<string, string> = { build: '/src', 'prod-deps': '/app' };
    for (const c of copies) {
      const dest = path.join(app, path.posix.relative(workdir, c.dest));
      for (const src of c.sources) {
        if (c.from === 'prod-deps') {
          // npm ci --omit=dev needs the registry: the repository's node_modules stands in.
          mkdirSync(path.dirname(dest), { recursive: true });
          symlinkSync(path.join(ROOT, 'node_modules'), dest);
          continue;
        }
        const from = c.from
          ? path.join(stageRoot[c.from]!, path.posix.relative(stageWorkdir[c.from]!, src))
          : path.join(ROOT, src);
        const isDir = statSync(from).isDirectory();
        const target = isDir || !c.dest.endsWith('/') ? dest : path.join(dest, path.basename(src));
        mkdirSync(isDir ? target : path.dirname(target), { recursive: true });
        cpSync(from, target, { recursive: true });
      }
    }
  }, 120_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('holds every file the exporter reads relative to its package root', () => {
    for (const p of packageRootPaths()) expect(existsSync(path.join(app, p)), p).toBe(true);
    expect(existsSync(path.join(app, 'bpf', 'dist', 'drops.bpf.o'))).toBe(true);
    expect(existsSync(path.join(app, 'bpf', 'dist', 'conntrack_fexit.bpf.o'))).toBe(true);
  });

  it('starts: --help loads the protobuf schema and names the BPF object inside the image', () => {
    const r = entrypoint(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`default: ${path.join(app, 'bpf', 'dist', 'dns.bpf.o')}`);
  });

  it('would not start without the protobuf schema (the check above can fail)', () => {
    const proto = path.join(app, 'src', 'exposition', 'proto', 'metrics.proto');
    const aside = `${proto}.aside`;
    cpSync(proto, aside);
    rmSync(proto);
    try {
      const r = entrypoint(['--help']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('cannot load the protobuf exposition schema');
    } finally {
      cpSync(aside, proto);
    }
  });
});
