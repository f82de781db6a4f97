import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePodLogDirName } from './pod-log-dirs.js';
import { ExpiringSet, RefreshGate } from './refresh-gate.js';
import type { PodInfo, PodInfoSource } from './types.js';

export interface PodLogDirectoryOptions {
  /** kubelet's pod log root. Default '/var/log/pods'. */
  readonly root?: string;
  /** A miss triggers at most one re-read per this interval. Default 1 s. */
  readonly minRefreshIntervalMs?: number;
  /**
   * After a re-read misses a UID, further misses of it trigger no re-read for this long. Short by
   * default (5 s): the pod cgroup appears moments before kubelet makes the log directory, and
   * the entry only suppresses re-reads, it never hides a UID a later read finds.
   */
  readonly negativeTtlMs?: number;
  /** How long a pod whose directory was removed keeps its name (late map reads). Default 10 min. */
  readonly retainRemovedMs?: number;
  /** Monotonic clock in ms. Default performance.now. */
  readonly now?: () => number;
  /** Told about failed background re-reads (lookups never throw). */
  readonly onRefreshError?: (err: unknown) => void;
}

export interface PodLogDirectoryStats {
  readonly pods: number;
  readonly removedRetained: number;
  readonly ignoredNames: number;
  readonly reads: number;
  readonly lastError: unknown;
}

interface Known {
  readonly info: PodInfo;
  readonly removedAt?: number;
}

/** Pod UID → namespace/name from the kubelet's /var/log/pods directory names. */
export class PodLogDirectory implements PodInfoSource {
  readonly name = 'var-log-pods';
  readonly #root: string;
  readonly #retainRemovedMs: number;
  readonly #now: () => number;
  readonly #gate: RefreshGate;
  readonly #missed: ExpiringSet<string>;
  #pods = new Map<string, Known>();
  #ignoredNames = 0;

  constructor(opts: PodLogDirectoryOptions = {}) {
    this.#root = opts.root ?? '/var/log/pods';
    this.#retainRemovedMs = opts.retainRemovedMs ?? 600_000;
    this.#now = opts.now ?? (() => performance.now());
    this.#missed = new ExpiringSet(opts.negativeTtlMs ?? 5_000);
    this.#gate = new RefreshGate(() => this.#read(), {
      minIntervalMs: opts.minRefreshIntervalMs ?? 1_000,
      now: this.#now,
      ...(opts.onRefreshError === undefined ? {} : { onError: opts.onRefreshError }),
    });
  }

  lookupByUid(uid: string): PodInfo | undefined {
    const hit = this.#pods.get(uid)?.info;
    if (hit === undefined) void this.#handleMiss(uid);
    return hit;
  }

  async lookupByUidFresh(uid: string): Promise<PodInfo | undefined> {
    return this.#pods.get(uid)?.info ?? (await this.#handleMiss(uid));
  }

  /** Re-reads now, ignoring the rate limit (startup, periodic refresh). Rejects on failure. */
  async refresh(): Promise<void> {
    await this.#gate.refreshNow();
  }

  /** Re-reads every intervalMs in the background (errors go to onRefreshError); returns the stop function. */
  startPeriodicRefresh(intervalMs: number): () => void {
    return this.#gate.every(intervalMs);
  }

  stats(): PodLogDirectoryStats {
    let removed = 0;
    for (const known of this.#pods.values()) if (known.removedAt !== undefined) removed++;
    return {
      pods: this.#pods.size,
      removedRetained: removed,
      ignoredNames: this.#ignoredNames,
      reads: this.#gate.runs,
      lastError: this.#gate.lastError,
    };
  }

  async #handleMiss(uid: string): Promise<PodInfo | undefined> {
    const missAt = this.#now();
    if (this.#missed.has(uid, missAt)) return undefined;
    const readStartedAt = await this.#gate.request();
    const hit = this.#pods.get(uid)?.info;
    if (hit === undefined && readStartedAt !== undefined && readStartedAt >= missAt)
      this.#missed.add(uid, missAt);
    return hit;
  }

  async #read(): Promise<void> {
    let names: string[];
    try {
      const entries = await readdir(this.#root, { withFileTypes: true });
      names = entries.filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (err) {
      throw new Error(`cannot read pod log directory ${this.#root}`, { cause: err });
    }
    const next = new Map<string, Known>();
    let ignored = 0;
    for (const dirName of names) {
      const parsed = parsePodLogDirName(dirName);
      if (parsed === null) {
        ignored++;
        continue;
      }
      const containers = await this.#containerNames(join(this.#root, dirName));
      next.set(parsed.uid, {
        info: { uid: parsed.uid, namespace: parsed.namespace, name: parsed.pod, containers },
      });
      this.#missed.delete(parsed.uid);
    }
    const now = this.#now();
    for (const [uid, known] of this.#pods) {
      if (next.has(uid)) continue;
      const removedAt = known.removedAt ?? now;
      if (now - removedAt < this.#retainRemovedMs) next.set(uid, { info: known.info, removedAt });
    }
    this.#missed.prune(now);
    this.#pods = next;
    this.#ignoredNames = ignored;
  }

  /** Container subdirectories; a pod removed while we read simply has none. */
  async #containerNames(podDir: string): Promise<string[]> {
    try {
      const entries = await readdir(podDir, { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw new Error(`cannot list containers of pod log directory ${podDir}`, { cause: err });
    }
  }
}
