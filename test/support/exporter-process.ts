// Runs the real exporter (src/main.ts under tsx) as a child process for end-to-end tests.
import { execa, type ResultPromise } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePromText, type PromSample } from './prom-text.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ExporterOptions {
  cgroupRoot: string;
  bpffsDir: string;
  podLogDir: string;
  readInterval?: string;
  timeoutDeadline?: string;
  extraArgs?: string[];
  /** Runs the exporter through this command (e.g. setpriv with fewer capabilities). */
  commandPrefix?: string[];
  /** The compiled exporter (dist/src/main.js) instead of src/main.ts under tsx. */
  compiledMain?: string;
  /** Extra environment (e.g. a PATH without a tool), on top of the test's own. */
  env?: Record<string, string>;
}

export class ExporterProcess {
  private child: ResultPromise | undefined;
  private output = '';
  port = 0;

  constructor(private readonly options: ExporterOptions) {}

  get logs(): string {
    return this.output;
  }

  async start(timeoutMs = 30_000): Promise<void> {
    const o = this.options;
    const args = [
      ...(o.compiledMain
        ? [o.compiledMain]
        : ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts')]),
      '--listen-address',
      '127.0.0.1:0',
      '--cgroup-root',
      o.cgroupRoot,
      '--bpffs-dir',
      o.bpffsDir,
      '--pod-log-dir',
      o.podLogDir,
      '--read-interval',
      o.readInterval ?? '500ms',
      '--timeout-deadline',
      o.timeoutDeadline ?? '5s',
      '--log-level',
      'debug',
      ...(o.extraArgs ?? []),
    ];
    const argv = [...(o.commandPrefix ?? []), 'node', ...args];
    const child = execa(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      reject: false,
      all: true,
      env: { NODE_NAME: 'lab-node', ...o.env },
    });
    this.child = child;
    child.all?.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(this.output);
      if (m) this.port = Number(m[1]);
      if (this.port && (await this.ready())) return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `exporter did not become ready within ${timeoutMs} ms; output:\n${this.output}`,
    );
  }

  async ready(): Promise<boolean> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.port}/readyz`);
      return r.status === 200;
    } catch {
      return false;
    }
  }

  async scrape(): Promise<PromSample[]> {
    const r = await fetch(`http://127.0.0.1:${this.port}/metrics`);
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    return parsePromText(await r.text());
  }

  /** Waits for at least one more map read, so the next scrape includes what just happened. */
  async freshScrape(): Promise<PromSample[]> {
    const ts = (s: PromSample[]) =>
      s.find((x) => x.name === 'dnsrace_map_read_last_success_timestamp_seconds')?.value ?? 0;
    const before = ts(await this.scrape());
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const s = await this.scrape();
      if (ts(s) > before) return s;
    }
    throw new Error('no fresh map read within 10 s');
  }

  /** Scrapes (after one fresh map read) until pred holds or timeoutMs passes; returns the last scrape. */
  async until(pred: (s: PromSample[]) => boolean, timeoutMs: number): Promise<PromSample[]> {
    const end = Date.now() + timeoutMs;
    let s = await this.freshScrape();
    while (!pred(s) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 250));
      s = await this.scrape();
    }
    return s;
  }

  /** SIGTERM and wait: the exporter detaches its programs and exits 0. */
  async stop(): Promise<number | undefined> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? undefined;
    this.child.kill('SIGTERM');
    const r = await this.child;
    return r.exitCode;
  }

  /** SIGKILL: nothing is cleaned up, like a crash. */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await this.child;
  }
}
