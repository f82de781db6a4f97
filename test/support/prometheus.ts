// A real Prometheus for end-to-end tests: its own temp data dir and config, a free port on
// 127.0.0.1, stopped by PID with SIGTERM and its directory removed, also on failure.
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

export interface ScrapeJob {
  job: string;
  /** host:port */
  target: string;
  metricsPath?: string;
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** --enable-feature values; native-histograms by default. */
  features?: string[];
  scrapeInterval?: string;
  binary?: string;
  /** Rule files (absolute paths) to load; evaluated every `evaluationInterval` (default 1s). */
  ruleFiles?: string[];
  evaluationInterval?: string;
}

/** An alert as /api/v1/alerts reports it: pending until its `for` has passed, then firing. */
export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

/** One element of an instant vector: a float sample or, for native histograms, a histogram. */
export interface VectorSample {
  metric: Record<string, string>;
  value?: [number, string];
  histogram?: [number, NativeHistogramValue];
}

export interface NativeHistogramValue {
  count: string;
  sum: string;
  /** [boundary rule, lower, upper, count]; rule 0..3 = open/closed ends. */
  buckets?: [number, string, string, string][];
}

export interface ExemplarSeries {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function configYaml(o: PrometheusOptions): string {
  const interval = o.scrapeInterval ?? '1s';
  const jobs = o.jobs.map((j) =>
    [
      `  - job_name: ${JSON.stringify(j.job)}`,
      `    scrape_interval: ${interval}`,
      `    scrape_timeout: ${interval}`,
      `    metrics_path: ${JSON.stringify(j.metricsPath ?? '/metrics')}`,
      `    static_configs:`,
      `      - targets: [${JSON.stringify(j.target)}]`,
    ].join('\n'),
  );
  const rules = o.ruleFiles?.length
    ? [`rule_files:`, ...o.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)]
    : [];
  return [
    `global:`,
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${o.evaluationInterval ?? '1s'}`,
    ...rules,
    `scrape_configs:`,
    ...jobs,
    '',
  ].join('\n');
}

export class Prometheus {
  private output = '';

  private constructor(
    private readonly child: ResultPromise,
    private readonly dataDir: string,
    readonly url: string,
  ) {
    child.all?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  get logs(): string {
    return this.output;
  }

  /**
   * Starts Prometheus and waits until /-/ready answers 200. Throws (after stopping it and
   * removing its directory) with its log when it does not come up.
   */
  static async start(o: PrometheusOptions, timeoutMs = 30_000): Promise<Prometheus> {
    const bin = o.binary ?? PROMETHEUS_BIN;
    if (!existsSync(bin))
      throw new Error(
        `${bin} not found: install Prometheus >= 2.42 (Debian: apt-get install prometheus)`,
      );
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'dnsrace-prometheus-'));
    const config = path.join(dataDir, 'prometheus.yml');
    await writeFile(config, configYaml(o));
    const port = await freePort();
    const child = execa(
      bin,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(dataDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--enable-feature=${(o.features ?? ['native-histograms']).join(',')}`,
        '--log.level=info',
      ],
      { reject: false, all: true, cleanup: true },
    );
    const p = new Prometheus(child, dataDir, `http://127.0.0.1:${port}`);
    try {
      await p.waitReady(timeoutMs);
      return p;
    } catch (err) {
      await p.stop();
      throw err;
    }
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.child.exitCode !== null) break;
      try {
        if ((await fetch(`${this.url}/-/ready`)).status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `Prometheus at ${this.url} not ready within ${timeoutMs} ms (exit code ${this.child.exitCode}); log:\n${this.output}`,
    );
  }

  private async api<T>(endpoint: string, params: Record<string, string>): Promise<T> {
    const r = await fetch(`${this.url}/api/v1/${endpoint}?${new URLSearchParams(params)}`);
    const body = (await r.json()) as ApiAnswer<T>;
    if (body.status !== 'success')
      throw new Error(
        `Prometheus ${endpoint} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`,
      );
    return body.data;
  }

  /** An instant query; throws on a PromQL error or a non-vector result. */
  async query(expr: string, time?: number): Promise<VectorSample[]> {
    const data = await this.api<{ resultType: string; result: VectorSample[] }>('query', {
      query: expr,
      ...(time !== undefined && { time: String(time) }),
    });
    if (data.resultType !== 'vector')
      throw new Error(`query ${expr} returned a ${data.resultType}, not a vector`);
    return data.result;
  }

  /** The single float value of a query, or undefined when it returns nothing. */
  async scalar(expr: string, time?: number): Promise<number | undefined> {
    const r = await this.query(expr, time);
    if (r.length > 1) throw new Error(`query ${expr} returned ${r.length} series, expected 1`);
    const v = r[0]?.value?.[1];
    return v === undefined ? undefined : Number(v);
  }

  async exemplars(
    expr: string,
    startSeconds: number,
    endSeconds: number,
  ): Promise<ExemplarSeries[]> {
    return this.api<ExemplarSeries[]>('query_exemplars', {
      query: expr,
      start: String(startSeconds),
      end: String(endSeconds),
    });
  }

  /** Alerts now pending or firing. */
  async alerts(): Promise<ActiveAlert[]> {
    return (await this.api<{ alerts: ActiveAlert[] }>('alerts', {})).alerts;
  }

  /** Rule groups as loaded, with each rule's health and last error. */
  async ruleHealth(): Promise<{ name: string; health: string; lastError?: string }[]> {
    const data = await this.api<{
      groups: { rules: { name: string; health: string; lastError?: string }[] }[];
    }>('rules', {});
    return data.groups.flatMap((g) =>
      g.rules.map((r) => ({ name: r.name, health: r.health, lastError: r.lastError })),
    );
  }

  /** Scrape health of every target, as `up` and lastError per job. */
  async targets(): Promise<{ job: string; health: string; lastError: string }[]> {
    const data = await this.api<{
      activeTargets: { labels: Record<string, string>; health: string; lastError: string }[];
    }>('targets', {});
    return data.activeTargets.map((t) => ({
      job: t.labels.job ?? '',
      health: t.health,
      lastError: t.lastError,
    }));
  }

  /** Polls `check` (every 250 ms) until it returns a value other than undefined. */
  async until<T>(
    what: string,
    check: () => Promise<T | undefined>,
    timeoutMs = 30_000,
  ): Promise<T> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Prometheus: ${what} not seen within ${timeoutMs} ms; log:\n${this.output}`, {
      cause: last,
    });
  }

  /** SIGTERM by PID, SIGKILL after 10 s, then the data directory goes. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.pid !== undefined) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.child;
      clearTimeout(killer);
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
