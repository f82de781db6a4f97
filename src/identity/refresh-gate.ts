// Guards an expensive refresh (a cgroup tree walk, a /var/log/pods read) against storms: callers
// that miss share the refresh in flight, and a new one starts at most once per minIntervalMs.

export interface RefreshGateOptions {
  /** Minimum time between the starts of two rate-limited refreshes. */
  readonly minIntervalMs: number;
  /** Monotonic clock in milliseconds. */
  readonly now: () => number;
  /** Told about every failed refresh (request() itself never rejects). */
  readonly onError?: (err: unknown) => void;
}

export class RefreshGate {
  readonly #run: () => Promise<void>;
  readonly #opts: RefreshGateOptions;
  #inFlight: { readonly startedAt: number; readonly done: Promise<void> } | undefined;
  #lastStartedAt: number | undefined;
  #runs = 0;
  #lastError: unknown;

  constructor(run: () => Promise<void>, opts: RefreshGateOptions) {
    this.#run = run;
    this.#opts = opts;
  }

  /** Refreshes started so far (rate-limited or not). */
  get runs(): number {
    return this.#runs;
  }

  /** Error of the last finished refresh, undefined after a success. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Joins the refresh in flight, or starts one unless the last one started less than
   * minIntervalMs ago. Resolves to the start time of the refresh that completed, or undefined
   * when none ran (rate-limited) or it failed. Callers compare that start time with the time of
   * their miss: only a refresh that started after the miss proves the key absent.
   */
  async request(): Promise<number | undefined> {
    const running = this.#inFlight;
    if (running !== undefined) return settleToStart(running);
    const now = this.#opts.now();
    if (this.#lastStartedAt !== undefined && now - this.#lastStartedAt < this.#opts.minIntervalMs) {
      return undefined;
    }
    return settleToStart(this.#start(now));
  }

  /** Refreshes now, ignoring the rate limit (first load, periodic timer); rejects on failure. */
  async refreshNow(): Promise<void> {
    const running = this.#inFlight;
    // The one in flight may have read the state before the caller's reason to refresh.
    if (running !== undefined) await running.done.catch(() => undefined);
    await this.#start(this.#opts.now()).done;
  }

  /**
   * Refreshes every intervalMs in the background (failures are reported through onError, as
   * for any run); returns the function that stops it. The timer does not hold the process.
   */
  every(intervalMs: number): () => void {
    const timer = setInterval(() => {
      this.refreshNow().catch(() => undefined);
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  #start(startedAt: number): { readonly startedAt: number; readonly done: Promise<void> } {
    this.#lastStartedAt = startedAt;
    this.#runs++;
    const done = (async () => this.#run())().then(
      () => {
        this.#lastError = undefined;
      },
      (err: unknown) => {
        this.#lastError = err;
        this.#opts.onError?.(err);
        throw err;
      },
    );
    const flight = { startedAt, done };
    this.#inFlight = flight;
    done
      .catch(() => undefined)
      .finally(() => {
        if (this.#inFlight === flight) this.#inFlight = undefined;
      });
    return flight;
  }
}

async function settleToStart(flight: { readonly startedAt: number; readonly done: Promise<void> }) {
  return flight.done.then(
    () => flight.startedAt,
    () => undefined,
  );
}

/**
 * Keys recently proven absent, each until its own expiry. Used to stop unknown ids from
 * triggering refreshes, never to answer "absent": entries expire, so a key that shows up later
 * is found by the next refresh. Bounded so that a flood of bogus keys cannot grow it forever.
 */
export class ExpiringSet<K> {
  readonly #expiry = new Map<K, number>();
  readonly #ttlMs: number;
  readonly #maxSize: number;

  constructor(ttlMs: number, maxSize = 65_536) {
    this.#ttlMs = ttlMs;
    this.#maxSize = maxSize;
  }

  get size(): number {
    return this.#expiry.size;
  }

  has(key: K, now: number): boolean {
    const until = this.#expiry.get(key);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#expiry.delete(key);
    return false;
  }

  add(key: K, now: number): void {
    this.#expiry.delete(key); // re-insert so that Map order stays oldest-first
    if (this.#expiry.size >= this.#maxSize) this.prune(now);
    if (this.#expiry.size >= this.#maxSize) {
      const oldest = this.#expiry.keys().next();
      if (oldest.done !== true) this.#expiry.delete(oldest.value);
    }
    this.#expiry.set(key, now + this.#ttlMs);
  }

  delete(key: K): void {
    this.#expiry.delete(key);
  }

  prune(now: number): void {
    for (const [key, until] of this.#expiry) if (now >= until) this.#expiry.delete(key);
  }
}
