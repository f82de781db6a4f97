// Scrapes a URL at a fixed interval in the background and records how long each answer took,
// so that a test can say the exporter kept answering through a load phase.
import { performance } from 'node:perf_hooks';

export interface ScrapeTiming {
  /** ms since the probe started */
  atMs: number;
  /** time to the whole body (ms) */
  ms: number;
  status: number | 'error';
  bytes: number;
  error?: string;
}

export interface ScrapeProbe {
  stop(): Promise<ScrapeTiming[]>;
}

/** One scrape at a time, `intervalMs` apart; a scrape taking longer than `timeoutMs` is an error. */
export function startScrapeProbe(url: string, intervalMs = 500, timeoutMs = 30_000): ScrapeProbe {
  const out: ScrapeTiming[] = [];
  const t0 = performance.now();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const start = performance.now();
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        const body = await r.arrayBuffer();
        out.push({
          atMs: start - t0,
          ms: performance.now() - start,
          status: r.status,
          bytes: body.byteLength,
        });
      } catch (err) {
        out.push({
          atMs: start - t0,
          ms: performance.now() - start,
          status: 'error',
          bytes: 0,
          error: err instanceof Error ? err.message : String(err),
        });
      }
      const wait = intervalMs - (performance.now() - start);
      if (wait > 0 && !stopped) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return out;
    },
  };
}
