// The conntrack insert race in the lab: builds clients/ctrace.c and runs it in a pod, and finds
// a process in the node netns so that /proc/<pid>/net/stat/nf_conntrack shows the node's stats.
import { buildWhenStale } from './build-when-stale.js';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { LAB_CACHE_DIR, LAB_DIR } from './clients.js';
import { run } from './exec.js';
import type { Lab } from './lab.js';
import type { Pod } from './pod.js';
import { which } from './preflight.js';

export type RaceMode = 'race' | 'mmsg';

export interface RaceOptions {
  iterations?: number;
  /** 'race': A and AAAA from two CPUs at once; 'mmsg': one sendmmsg, as glibc does. Default 'race'. */
  mode?: RaceMode;
  /** How long each iteration waits for both answers. Default 200 ms. */
  answerTimeoutMs?: number;
  /** Default the lab's DNS ClusterIP 10.96.0.10. */
  server?: string;
  /** Default web.default.svc.cluster.local (answered by the replicas). */
  qname?: string;
}

export interface RaceResult {
  iterations: number;
  mode: RaceMode;
  /** Iterations where both answers came back. */
  ok: number;
  lostA: number;
  lostAAAA: number;
  sendErrors: number;
  durationMs: number;
}

/** Path of the ctrace client; (re)built with gcc when missing or older than ctrace.c. */
export async function ensureCtraceClient(cacheDir = LAB_CACHE_DIR): Promise<string> {
  const src = join(LAB_DIR, 'clients/ctrace.c');
  return buildWhenStale(src, join(cacheDir, 'ctrace'), async (tmp) => {
    if (!(await which('gcc'))) {
      throw new Error(
        'building test/lab/clients/ctrace.c needs gcc: apt-get install -y gcc libc6-dev',
      );
    }
    await run(['gcc', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, src]);
  });
}

/** Parses ctrace's one result line (`iterations=1000 mode=race ok=998 lost_a=0 ...`). Pure. */
export function parseCtraceOutput(stdout: string): Omit<RaceResult, 'durationMs'> {
  const line = stdout.split('\n').find((l) => l.startsWith('iterations='));
  if (!line) throw new Error(`ctrace printed no result line: ${stdout.trim().slice(0, 300)}`);
  const kv = new Map(
    line
      .trim()
      .split(/\s+/)
      .map((t) => t.split('=', 2) as [string, string]),
  );
  const num = (k: string): number => {
    const v = Number(kv.get(k));
    if (!Number.isInteger(v)) throw new Error(`ctrace result line has no integer ${k}: ${line}`);
    return v;
  };
  const mode = kv.get('mode');
  if (mode !== 'race' && mode !== 'mmsg')
    throw new Error(`ctrace result line has mode ${mode}: ${line}`);
  return {
    iterations: num('iterations'),
    mode,
    ok: num('ok'),
    lostA: num('lost_a'),
    lostAAAA: num('lost_aaaa'),
    sendErrors: num('send_errors'),
  };
}

/** Runs ctrace inside the pod (its cgroup and netns) and returns its counts. */
export async function runConntrackRace(pod: Pod, o: RaceOptions = {}): Promise<RaceResult> {
  const mode = o.mode ?? 'race';
  if (mode === 'race' && cpus().length < 2) {
    throw new Error(
      `the conntrack race needs 2 CPUs (one per sending thread); this machine has ${cpus().length}`,
    );
  }
  const iterations = o.iterations ?? 1000;
  const answerTimeoutMs = o.answerTimeoutMs ?? 200;
  const bin = await ensureCtraceClient();
  const argv = [bin, '-n', String(iterations), '-m', mode, '-t', String(answerTimeoutMs)];
  if (o.server) argv.push('-s', o.server);
  if (o.qname) argv.push('-q', o.qname);
  // Worst case every iteration waits out its answer timeout; leave room on top of that.
  const r = await pod.exec(argv, { timeoutMs: iterations * answerTimeoutMs + 30_000 });
  if (r.exitCode !== 0) {
    throw new Error(
      `ctrace in pod ${pod.namespace}/${pod.name} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
    );
  }
  return { ...parseCtraceOutput(r.stdout), durationMs: r.durationMs };
}

/**
 * A PID whose netns is the lab's node netns (the upstream DNS stand-in lives there), so that
 * /proc/<pid>/net/... shows the node's view without entering the netns.
 */
export async function nodeNetnsPid(lab: Lab): Promise<number> {
  const out = await run(['ip', 'netns', 'pids', lab.nodeNetns]);
  const pid = out
    .split('\n')
    .map((l) => Number(l.trim()))
    .find((p) => Number.isInteger(p) && p > 0);
  if (pid === undefined) throw new Error(`no process runs in netns ${lab.nodeNetns}`);
  return pid;
}
