// Delays between reconnect attempts to the Kubernetes API: exponential, capped, with jitter so
// that the exporters of a whole cluster (one per node) do not reconnect in lockstep after an API
// server restart. Pure: the random source is injected.

export interface BackoffOptions {
  /** Delay before the first retry (before jitter). */
  readonly initialMs: number;
  /** Cap on the delay (before jitter). */
  readonly maxMs: number;
  /** Growth per attempt. Default 2. */
  readonly factor?: number;
  /**
   * Share of each delay that is random: the delay is drawn from [d·(1−jitter), d]. Default 0.5
   * ("equal jitter"): never less than half the nominal delay, so the cap still means something.
   */
  readonly jitter?: number;
  /** Uniform in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #step = 0;
  #retries = 0;

  constructor(opts: BackoffOptions) {
    if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs))
      throw new Error(
        `backoff needs 0 < initialMs <= maxMs, got initialMs=${opts.initialMs} maxMs=${opts.maxMs}`,
      );
    this.#initialMs = opts.initialMs;
    this.#maxMs = opts.maxMs;
    this.#factor = opts.factor ?? 2;
    this.#jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
    this.#random = opts.random ?? Math.random;
  }

  /** Retries since the last reset. */
  get retries(): number {
    return this.#retries;
  }

  /** The delay before the next retry; each call counts one attempt. */
  next(): number {
    const nominal = Math.min(this.#maxMs, this.#initialMs * this.#factor ** this.#step);
    // Stop growing once capped: factor ** step must not overflow to Infinity.
    if (nominal < this.#maxMs) this.#step++;
    this.#retries++;
    return Math.round(nominal * (1 - this.#jitter) + nominal * this.#jitter * this.#random());
  }

  /** After a connection that stayed up: the next failure starts from initialMs again. */
  reset(): void {
    this.#step = 0;
    this.#retries = 0;
  }
}
