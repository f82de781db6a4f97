// The kernel-matrix lane: prepare each Debian kernel, boot it under qemu with the guest
// probe, and judge its report against expectations.ts. At most `jobs` kernels are worked on
// at once; each worker prepares its kernel and then boots it, so downloads overlap boots.
import { build } from 'esbuild';
import { execa } from 'execa';
import { access, appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXPECTATIONS, evaluate } from './expectations.js';
import { kernelSpec, type KernelId } from './kernels.js';
import { missingPrerequisites, prepareKernel, type PreparedKernel } from './prepare.js';
import { chooseAccel, isEmulatedTextPokeOops, type Accel } from './qemu.js';
import { parseReport, resultLine, type GuestReport, type Verdict } from './report.js';
import { runVm, type VmRun } from './vm.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const REPO_ROOT = join(HERE, '..', '..');
export const DEFAULT_CACHE_DIR = join(REPO_ROOT, '.cache', 'kernel-matrix');

/** Loaded in the guest before the probe; nft's own request_module() loads the rest. */
const GUEST_MODULES = ['nf_conntrack', 'nf_tables'];

export interface LaneOptions {
  kernels: readonly KernelId[];
  cacheDir?: string;
  /** kernels prepared/booted at once (TCG: one host core per guest) */
  jobs?: number;
  /** per VM */
  timeoutSeconds?: number;
  memory?: string;
  /** auto | kvm | tcg */
  accel?: string;
  /** re-resolve the kernel packages with apt-get update after this long */
  resolveMaxAgeMs?: number;
  log?: (line: string) => void;
}

export interface KernelOutcome {
  id: KernelId;
  verdict: Verdict;
  report: GuestReport | undefined;
  prepared: PreparedKernel | undefined;
  vm: VmRun | undefined;
  consoleLog: string;
  line: string;
}

export interface LaneResult {
  accel: Accel;
  seconds: number;
  outcomes: KernelOutcome[];
  pass: boolean;
}

export async function runLane(options: LaneOptions): Promise<LaneResult> {
  const started = performance.now();
  const cacheDir = options.cacheDir ?? DEFAULT_CACHE_DIR;
  const log = options.log ?? ((l: string) => console.log(l));
  const logDir = join(cacheDir, 'logs');
  await mkdir(logDir, { recursive: true });

  const busybox = '/bin/busybox';
  const missing = await missingPrerequisites(busybox);
  if (missing.length > 0) throw new Error(`kernel matrix: ${missing.join('; ')}`);

  const probe = await bundleProbe(join(cacheDir, 'probe'));
  const ctRace = await buildCtRace(join(cacheDir, 'bin'));
  const accel = chooseAccel(
    options.accel ?? process.env.KM_ACCEL,
    await readFile('/proc/cpuinfo', 'utf8'),
    await access('/dev/kvm').then(
      () => true,
      () => false,
    ),
  );
  log(`kernel matrix: accel ${accel}, kernels ${options.kernels.join(' ')}, cache ${cacheDir}`);

  const queue = [...options.kernels];
  const outcomes: KernelOutcome[] = [];
  const worker = async () => {
    for (let id = queue.shift(); id; id = queue.shift()) {
      const ctx: KernelRunContext = {
        cacheDir,
        logDir,
        probe,
        ctRace,
        accel,
        busybox,
        timeoutSeconds: options.timeoutSeconds ?? 300,
        memory: options.memory ?? '1G',
        resolveMaxAgeMs: options.resolveMaxAgeMs ?? 24 * 3600_000,
        log,
      };
      let outcome = await runKernel(id, ctx);
      const consoleText = await readFile(outcome.consoleLog, 'utf8').catch(() => '');
      if (!outcome.verdict.pass && accel === 'tcg' && isEmulatedTextPokeOops(consoleText)) {
        // Once, and said in the result line: a second crash fails the kernel as any other.
        const first = outcome.consoleLog.replace(/\.log$/, '.first-run.log');
        await rename(outcome.consoleLog, first);
        log(`[${id}] guest kernel oops (int3) while patching kernel text under TCG: running again`);
        outcome = await runKernel(id, ctx);
        outcome.line += ` retried="guest oops int3 under TCG, first run's console: ${first}"`;
      }
      outcomes.push(outcome);
      log(outcome.line);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.jobs ?? 2) }, worker));
  outcomes.sort((a, b) => options.kernels.indexOf(a.id) - options.kernels.indexOf(b.id));
  const seconds = (performance.now() - started) / 1000;
  await writeFile(
    join(logDir, 'summary.txt'),
    [...outcomes.map((o) => o.line), `total ${seconds.toFixed(1)} s, accel ${accel}`].join('\n') +
      '\n',
  );
  return { accel, seconds, outcomes, pass: outcomes.every((o) => o.verdict.pass) };
}

interface KernelRunContext {
  cacheDir: string;
  logDir: string;
  probe: string;
  ctRace: string;
  accel: Accel;
  busybox: string;
  timeoutSeconds: number;
  memory: string;
  resolveMaxAgeMs: number;
  log: (line: string) => void;
}

async function runKernel(id: KernelId, ctx: KernelRunContext): Promise<KernelOutcome> {
  const prepareLog = join(ctx.logDir, `${id}.prepare.log`);
  const consoleLog = join(ctx.logDir, `${id}.console.log`);
  await writeFile(prepareLog, '');
  const plog = (l: string) => {
    void appendFile(prepareLog, `${l}\n`);
    ctx.log(`[${id}] ${l}`);
  };
  let prepared: PreparedKernel | undefined;
  try {
    prepared = await prepareKernel(kernelSpec(id), {
      cacheDir: ctx.cacheDir,
      resolveMaxAgeMs: ctx.resolveMaxAgeMs,
      busybox: ctx.busybox,
      log: plog,
    });
    plog(
      `${prepared.abi} (${prepared.version}) ${prepared.built ? 'built' : 'cached'} in ${prepared.seconds.toFixed(1)} s`,
    );
  } catch (err) {
    return failed(id, `prepare: ${(err as Error).message}`, undefined, consoleLog);
  }

  const vm = await runVm(
    {
      accel: ctx.accel,
      memory: ctx.memory,
      cpus: EXPECTATIONS[id].cpus,
      image: prepared.image,
      initrd: prepared.initrd,
      reportPath: join(ctx.logDir, `${id}.report.json`),
      params: {
        km_init: join(HERE, 'guest-init.sh'),
        km_modules_root: prepared.modulesRoot,
        km_modules: GUEST_MODULES.join(','),
        km_probe: ctx.probe,
        km_repo: REPO_ROOT,
        km_kernel: id,
        km_ct_race: ctx.ctRace,
        ...(process.env.KM_DNS_OBJ ? { km_dns_obj: process.env.KM_DNS_OBJ } : {}),
      },
    },
    { timeoutSeconds: ctx.timeoutSeconds, consoleLog, script: join(ctx.logDir, `${id}.qemu.sh`) },
  );
  const report = parseReport(vm.report, id);
  if (vm.timedOut)
    report.fatal = `${report.fatal ? `${report.fatal}; ` : ''}VM timed out after ${ctx.timeoutSeconds} s`;
  const verdict = evaluate(report);
  verdict.facts.vm = `${vm.seconds.toFixed(1)}s`;
  verdict.facts.prepare = `${prepared.seconds.toFixed(1)}s`;
  if (!verdict.pass) verdict.facts.log = consoleLog;
  return { id, verdict, report, prepared, vm, consoleLog, line: resultLine(verdict) };
}

function failed(
  id: KernelId,
  why: string,
  vm: VmRun | undefined,
  consoleLog: string,
): KernelOutcome {
  const verdict: Verdict = { kernel: id, release: '?', pass: false, failures: [why], facts: {} };
  return {
    id,
    verdict,
    report: undefined,
    prepared: undefined,
    vm,
    consoleLog,
    line: resultLine(verdict),
  };
}

/** The conntrack race client, built for the host (the guest runs the host's userland). */
async function buildCtRace(outDir: string): Promise<string> {
  const out = join(outDir, 'ct-race');
  await mkdir(outDir, { recursive: true });
  const src = join(HERE, 'ct-race.c');
  const r = await execa('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', out, src], {
    reject: false,
  });
  if (r.failed) throw new Error(`gcc ${src} failed: ${String(r.stderr).trim()}`, { cause: r });
  return out;
}

/**
 * One self-contained ESM file: node + tsx needs 11-13 s to start the probe under TCG, the
 * bundle 2 s (it reads one file over 9p instead of hundreds and compiles nothing).
 */
async function bundleProbe(outDir: string): Promise<string> {
  const outfile = join(outDir, 'guest-probe.mjs');
  await build({
    entryPoints: [join(HERE, 'guest-probe.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    // bundled CommonJS dependencies call require()
    banner: {
      js: "import { createRequire as __kmRequire } from 'node:module'; const require = __kmRequire(import.meta.url);",
    },
  });
  return outfile;
}
