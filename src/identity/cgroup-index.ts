import { posix } from 'node:path';
import { parseKubepodsCgroupPath } from './cgroup-path.js';
import { walkDirectoryInodes } from './cgroup-walk.js';
import { ExpiringSet, RefreshGate } from './refresh-gate.js';
import type { CgroupEntry, CgroupSource } from './types.js';

export interface CgroupIndexOptions {
  /** Where cgroup2 is mounted: '/sys/fs/cgroup' (pure v2 host), '/sys/fs/cgroup/unified' (here). */
  readonly mountPoint: string;
  /** Subtree to index, relative to the mount (the BPF attach root). Default '/': everything. */
  readonly subtree?: string;
  /**
   * Hierarchy path shown at mountPoint (the "root" field of mountinfo), '/' unless the mount is
   * a bind of a sub-cgroup. Prepended to every path so that pod segments above it are not lost.
   */
  readonly hierarchyRoot?: string;
  /** Levels below the subtree to walk. Default 8: kind-in-docker + crun nesting reach 7. */
  readonly maxDepth?: number;
  /** A miss triggers at most one rescan per this interval. Default 1 s. */
  readonly minRescanIntervalMs?: number;
  /** After a rescan misses an id, its misses trigger no rescan for this long. Default 10 s. */
  readonly negativeTtlMs?: number;
  /**
   * How long a cgroup that disappeared keeps resolving: BPF maps keyed by its id are read at
   * scrape time, after the pod is gone. Default 10 min.
   */
  readonly retainRemovedMs?: number;
  /** Monotonic clock in ms. Default performance.now. */
  readonly now?: () => number;
  /** Told about failed background rescans (lookups never throw). */
  readonly onRefreshError?: (err: unknown) => void;
  /** Test hook passed to the walker. */
  readonly beforeVisit?: (absPath: string) => void | Promise<void>;
}

export interface CgroupIndexStats {
  readonly entries: number;
  readonly removedRetained: number;
  readonly negativeEntries: number;
  readonly scans: number;
  readonly lastScanDurationMs: number | undefined;
  readonly lastUnreadable: readonly string[];
  readonly lastError: unknown;
}

/**
 * cgroup id → cgroup2 directory (and the pod that owns it), built by walking the tree. Lookups
 * read the cache; a miss triggers a rate-limited rescan, and an id that a rescan still misses is
 * remembered for a while so that unknown ids cannot cause a rescan storm.
 */
export class CgroupIndex implements CgroupSource {
  readonly #walkRoot: string;
  readonly #pathPrefix: string;
  readonly #maxDepth: number;
  readonly #retainRemovedMs: number;
  readonly #now: () => number;
  readonly #onRefreshError: ((err: unknown) => void) | undefined;
  readonly #beforeVisit: CgroupIndexOptions['beforeVisit'];
  readonly #gate: RefreshGate;
  readonly #missed: ExpiringSet<bigint>;
  #entries = new Map<bigint, CgroupEntry>();
  #lastScanDurationMs: number | undefined;
  #lastUnreadable: readonly string[] = [];

  constructor(opts: CgroupIndexOptions) {
    const subtree = posix.normalize(`/${opts.subtree ?? '/'}`);
    this.#walkRoot = posix.join(opts.mountPoint, subtree);
    this.#pathPrefix = posix.join(opts.hierarchyRoot ?? '/', subtree);
    this.#maxDepth = opts.maxDepth ?? 8;
    this.#retainRemovedMs = opts.retainRemovedMs ?? 600_000;
    this.#now = opts.now ?? (() => performance.now());
    this.#onRefreshError = opts.onRefreshError;
    this.#beforeVisit = opts.beforeVisit;
    this.#missed = new ExpiringSet(opts.negativeTtlMs ?? 10_000);
    this.#gate = new RefreshGate(() => this.#scan(), {
      minIntervalMs: opts.minRescanIntervalMs ?? 1_000,
      now: this.#now,
      ...(opts.onRefreshError === undefined ? {} : { onError: opts.onRefreshError }),
    });
  }

  /** Cached answer; a miss schedules a rate-limited background rescan. */
  lookup(id: bigint): CgroupEntry | undefined {
    const hit = this.#entries.get(id);
    if (hit === undefined) void this.#handleMiss(id);
    return hit;
  }

  /** Like lookup, but a miss waits for the rescan it triggers (if the rate limit allows one). */
  async lookupFresh(id: bigint): Promise<CgroupEntry | undefined> {
    return this.#entries.get(id) ?? (await this.#handleMiss(id));
  }

  /** Rescans now, ignoring the rate limit (startup, periodic refresh). Rejects on failure. */
  async refresh(): Promise<void> {
    await this.#gate.refreshNow();
  }

  /** Rescans every intervalMs in the background (errors go to onRefreshError); returns the stop function. */
  startPeriodicRefresh(intervalMs: number): () => void {
    return this.#gate.every(intervalMs);
  }

  stats(): CgroupIndexStats {
    let removed = 0;
    for (const entry of this.#entries.values()) if (entry.removedAt !== undefined) removed++;
    return {
      entries: this.#entries.size,
      removedRetained: removed,
      negativeEntries: this.#missed.size,
      scans: this.#gate.runs,
      lastScanDurationMs: this.#lastScanDurationMs,
      lastUnreadable: this.#lastUnreadable,
      lastError: this.#gate.lastError,
    };
  }

  async #handleMiss(id: bigint): Promise<CgroupEntry | undefined> {
    const missAt = this.#now();
    if (this.#missed.has(id, missAt)) return undefined;
    const scanStartedAt = await this.#gate.request();
    const hit = this.#entries.get(id);
    // Only a scan that started after the miss proves the id absent; an older one may have read
    // the tree before the cgroup was made, and a rate-limited miss proves nothing.
    if (hit === undefined && scanStartedAt !== undefined && scanStartedAt >= missAt)
      this.#missed.add(id, missAt);
    return hit;
  }

  async #scan(): Promise<void> {
    const started = this.#now();
    const { inodes, unreadable } = await walkDirectoryInodes(this.#walkRoot, {
      maxDepth: this.#maxDepth,
      ...(this.#beforeVisit === undefined ? {} : { beforeVisit: this.#beforeVisit }),
    });
    const now = this.#now();
    const next = new Map<bigint, CgroupEntry>();
    for (const [id, rel] of inodes) {
      const previous = this.#entries.get(id);
      const path = posix.join(this.#pathPrefix, rel);
      // Same id and path: the same cgroup (ids are not reused while it exists), keep the parse.
      if (previous !== undefined && previous.path === path && previous.removedAt === undefined) {
        next.set(id, previous);
      } else {
        next.set(id, { id, path, pod: parseKubepodsCgroupPath(path) });
      }
      this.#missed.delete(id);
    }
    for (const [id, entry] of this.#entries) {
      if (next.has(id)) continue;
      const removedAt = entry.removedAt ?? now;
      if (now - removedAt < this.#retainRemovedMs) next.set(id, { ...entry, removedAt });
    }
    this.#missed.prune(now);
    this.#entries = next;
    // Said once per change, not on every scan: a rescan can run every second.
    if (unreadable.length > 0 && unreadable.join('\n') !== this.#lastUnreadable.join('\n')) {
      this.#onRefreshError?.(
        new Error(
          `cgroup scan of ${this.#walkRoot} skipped unreadable directories: ${unreadable.join(', ')}`,
        ),
      );
    }
    this.#lastUnreadable = unreadable;
    this.#lastScanDurationMs = now - started;
  }
}
