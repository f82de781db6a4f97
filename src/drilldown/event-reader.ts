// Reads the kernel's drill-down events: writes dns_event_config (turning them on), streams
// dns_events through `bpftool map event_pipe` (restarted with backoff if it dies), decodes
// each sample and keeps it in the rings. On stop, turns the events off again.
import type { EventPipe, EventPipeRecord, LoggerLike } from '../bpf/bpftool.js';
import { DNS_EVENT_SIZE, decodeDnsEvent, encodeEventConfig, type EventConfig } from './event.js';
import { toLookup, type Clocks } from './lookup.js';
import type { EventRings } from './rings.js';

export interface EventPipeSource {
  eventPipe(
    pin: string,
    onRecord: (r: EventPipeRecord) => void,
    options?: { sampleBytes?: number },
  ): EventPipe;
  mapUpdate(pin: string, key: Uint8Array, value: Uint8Array): Promise<void>;
}

export interface EventReaderOptions {
  bpftool: EventPipeSource;
  /** Pinned dns_events and dns_event_config. */
  eventsPin: string;
  configPin: string;
  config: EventConfig;
  rings: EventRings;
  clocks: Clocks;
  log: LoggerLike;
  /** First restart delay after bpftool exits by itself; doubles up to 30 s. Default 1 s. */
  restartDelayMs?: number;
}

export interface EventReaderStats {
  /** Events decoded and kept. */
  received: number;
  /** Samples the perf ring lost (bpftool's "lost N events"): the reader fell behind. */
  perfLost: number;
  /** Samples that did not decode (an object and exporter of different versions). */
  decodeErrors: number;
  /** bpftool event_pipe restarts after it exited by itself. */
  restarts: number;
  running: boolean;
  lastError: string | null;
}

const MAX_RESTART_DELAY_MS = 30_000;
const KEY_ZERO = new Uint8Array(4);

export class EventReader {
  readonly stats: EventReaderStats = {
    received: 0,
    perfLost: 0,
    decodeErrors: 0,
    restarts: 0,
    running: false,
    lastError: null,
  };
  private pipe: EventPipe | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private delayMs: number;

  constructor(private readonly o: EventReaderOptions) {
    this.delayMs = o.restartDelayMs ?? 1000;
  }

  /** Starts reading, then turns the kernel's events on (so that none is sent unread). */
  async start(): Promise<void> {
    this.open();
    await this.o.bpftool.mapUpdate(this.o.configPin, KEY_ZERO, encodeEventConfig(this.o.config));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    try {
      const off = encodeEventConfig({ ...this.o.config, ratePerSecond: 0, kinds: [] });
      await this.o.bpftool.mapUpdate(this.o.configPin, KEY_ZERO, off);
    } catch (err) {
      this.o.log.warn({ err }, 'could not turn the drill-down events off');
    }
    await this.pipe?.stop();
    this.stats.running = false;
  }

  private open(): void {
    const pipe = this.o.bpftool.eventPipe(this.o.eventsPin, (r) => this.onRecord(r), {
      sampleBytes: DNS_EVENT_SIZE,
    });
    this.pipe = pipe;
    this.stats.running = true;
    void pipe.exited.then((r) => {
      this.stats.running = false;
      if (this.stopped || r.stopped) return;
      this.stats.lastError = `${r.command} exited (${r.exitCode ?? 'no exit code'}): ${r.errorText || 'no error output'}`;
      this.o.log.warn(
        { restartInMs: this.delayMs, err: this.stats.lastError },
        'the drill-down event reader stopped; restarting it',
      );
      this.timer = setTimeout(() => {
        if (this.stopped) return;
        this.stats.restarts++;
        this.open();
      }, this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, MAX_RESTART_DELAY_MS);
    });
  }

  private onRecord(r: EventPipeRecord): void {
    if (r.kind === 'lost') {
      this.stats.perfLost += r.count;
      return;
    }
    try {
      const raw = decodeDnsEvent(r.data);
      this.o.rings.add(toLookup(raw, this.o.rings.nextSeq(), this.o.clocks));
      this.stats.received++;
      this.delayMs = this.o.restartDelayMs ?? 1000; // a working reader earns a fast restart
    } catch (err) {
      this.stats.decodeErrors++;
      if (this.stats.decodeErrors === 1)
        this.o.log.warn(
          { err },
          'a drill-down event did not decode (bpf/dns.h and the exporter disagree?)',
        );
    }
  }
}
