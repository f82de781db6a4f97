// The exporter's own process, as Prometheus client libraries expose it (process_*, nodejs_*):
// where its memory goes (V8 heap, buffers outside it, the rest of the RSS) is what tells a
// leak from allocator slack. Read at scrape time; a few microseconds.
import { memoryUsage } from 'node:process';

export interface ProcessStats {
  cpuSeconds: number;
  residentBytes: number;
  startTimeSeconds: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory of JS objects held outside the V8 heap (Buffers, ArrayBuffers). */
  externalBytes: number;
}

const startTimeSeconds = Date.now() / 1000 - process.uptime();

export function readProcessStats(): ProcessStats {
  const cpu = process.cpuUsage();
  const mem = memoryUsage();
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    residentBytes: mem.rss,
    startTimeSeconds,
    heapUsedBytes: mem.heapUsed,
    heapTotalBytes: mem.heapTotal,
    externalBytes: mem.external,
  };
}
