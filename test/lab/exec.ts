import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** null when the process was killed by a signal (e.g. the timeout). */
  exitCode: number | null;
  durationMs: number;
  timedOut: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  cwd?: string;
}

/** Runs a command to completion; never throws for a non-zero exit (the caller judges). */
export async function exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('exec: empty argv');
  const start = performance.now();
  const r = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    input: opts.input,
    cwd: opts.cwd,
    stripFinalNewline: false,
  });
  const durationMs = performance.now() - start;
  if (r.failed && r.exitCode === undefined && !r.timedOut && !r.signal) {
    // spawn itself failed (ENOENT, EACCES): that is a broken lab, not a result.
    throw new Error(`cannot run ${argv.join(' ')}: ${r.message}`, { cause: r.cause });
  }
  return {
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    exitCode: r.exitCode ?? null,
    durationMs,
    timedOut: r.timedOut,
  };
}

/** Runs a set-up command and throws, naming the command and its stderr, when it fails. */
export async function run(argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const r = await exec(argv, opts);
  if (r.exitCode !== 0) {
    throw new Error(
      `${argv.join(' ')} failed (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return r.stdout;
}

/**
 * argv prefix that moves the process into a cgroup2 dir and then into a netns. The cgroup
 * write must come first: `ip netns exec` remounts /sys, after which the cgroup2 mount is gone.
 */
export function inCgroupAndNetns(
  cgroupDir: string,
  netns: string,
  argv: readonly string[],
): string[] {
  return [
    'sh',
    '-c',
    'echo $$ > "$1/cgroup.procs" || exit 125; shift; exec "$@"',
    'sh',
    cgroupDir,
    'ip',
    'netns',
    'exec',
    netns,
    ...argv,
  ];
}

export interface BackgroundProcess {
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal`, waits up to `graceMs`, then SIGKILL. Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/**
 * Starts a long-running process. stdout/stderr go to `logFile` (appended) unless
 * `pipeStdout` asks for stdout as a pipe (to wait for a readiness line).
 */
export function startBackground(
  argv: readonly string[],
  opts: { logFile: string; pipeStdout?: boolean; pipeStderr?: boolean; cwd?: string },
): BackgroundProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('startBackground: empty argv');
  const fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: opts.cwd,
      stdio: ['ignore', opts.pipeStdout ? 'pipe' : fd, opts.pipeStderr ? 'pipe' : fd],
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')}`);
  const pid = child.pid;
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, sig) => {
      done = true;
      resolve(code ?? sig ?? 'unknown');
    });
    child.once('error', (err) => {
      done = true;
      resolve(`error: ${err.message}`);
    });
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 2000): Promise<void> => {
    if (done) return;
    try {
      process.kill(pid, signal);
    } catch {
      return; // already gone
    }
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([exited, timer])) === 'timeout' && !done) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone between the check and the kill */
      }
      await exited;
    }
  };
  return { pid, child, exited, stop };
}

/** Waits until `line` (a substring) appears on a stream, or rejects after `timeoutMs`. */
export function waitForOutput(
  stream: NodeJS.ReadableStream,
  needle: string,
  what: string,
  timeoutMs = 10_000,
  exited?: Promise<unknown>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () =>
        finish(
          new Error(`${what}: no "${needle}" within ${timeoutMs} ms; output: ${seen.slice(-500)}`),
        ),
      timeoutMs,
    );
    const onData = (chunk: Buffer | string): void => {
      seen += chunk.toString();
      if (seen.includes(needle)) finish();
    };
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      if (err) reject(err);
      else resolve();
    };
    stream.on('data', onData);
    void exited?.then((code) =>
      finish(new Error(`${what} exited (${String(code)}) before "${needle}": ${seen.slice(-500)}`)),
    );
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
