// Pod identity from the Kubernetes API: list, then watch, this node's pods, and answer
// UID → pod and IP → pod from the resulting cache.
//
// Why not @kubernetes/client-node: importing it costs ~68 MB of RSS (the exporter runs on every
// node, with a budget of 120 MB), and its ListWatch/makeInformer (1.4.0, dist/cache.js) stops for
// good after any error other than 410 (no retry, no backoff), lists in one request (no
// limit/continue), does not ask for bookmarks, keys objects by namespace/name rather than UID,
// ignores ERROR events other than 410, and has no way to bound a hung request. Two plain requests
// (kube-client.ts: a list page, a streaming watch) are all this needs; the loop below does the
// bookkeeping itself, following client-go's reflector where it matters:
// - first list with resourceVersion "0" (served from the API server's watch cache), later lists
//   at the last seen resourceVersion, and a consistent list ("") only after such a list got 410;
// - watch from the list's resourceVersion with allowWatchBookmarks, advancing it on every event;
// - 410 Gone (HTTP status or ERROR event) means the resourceVersion was compacted: re-list;
// - any other end of the watch: reconnect from the last resourceVersion, after a capped,
//   jittered exponential backoff unless the watch had stayed up for a while.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from 'node:http';
import { Backoff, type BackoffOptions } from './kube-backoff.js';
import { createKubeAgent, kubeGetJson, kubeWatch } from './kube-client.js';
import type { KubeApiConfig } from './kube-config.js';
import { kubePodFromApi, type ApiPod, type KubePod } from './kube-pod.js';
import { KubeApiError } from './kube-request.js';
import { KubePodStore, type DeletedPod } from './kube-pod-store.js';
import type { PodInfo, PodInfoSource } from './types.js';

/** The subset of a pino logger this source uses. */
export interface IdentityLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * disabled: not configured (or stopped); connecting: first list pending; connected: the cache
 * follows the API; degraded: the API cannot be reached or refused us, the cache may be stale and
 * pods it has not seen are named by the next source.
 */
export type KubeApiState = 'disabled' | 'connecting' | 'connected' | 'degraded';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface KubeApiHealth {
  readonly state: KubeApiState;
  /** Why the state is degraded or disabled. */
  readonly reason?: string;
  /** Successful lists after the first one (after 410 Gone or a failed list). */
  readonly relists: number;
  /** Watch requests after the first one. */
  readonly watchRestarts: number;
  readonly events: Readonly<Record<WatchEventType, number>>;
  /** Pod objects that lacked a uid, namespace or name. */
  readonly malformedPods: number;
  /** Watch stream lines that were no event (not JSON, no type): skipped. */
  readonly malformedLines: number;
  readonly pods: number;
  readonly deletedRetained: number;
  /** Clock time of the last list or watch event, undefined before the first list. */
  readonly lastSyncAt?: number;
  readonly resourceVersion: string;
}

export interface KubeApiPodSourceOptions {
  /** Server, TLS and credentials (chooseKubeConnection). */
  readonly kubeConfig: KubeApiConfig;
  /** Only pods with spec.nodeName equal to this are listed and watched. */
  readonly nodeName: string;
  readonly log: IdentityLogger;
  /** Where the connection settings came from, for logs (see chooseKubeConnection). */
  readonly origin?: string;
  /** Name of the source that takes over when the API is unreachable, for logs. */
  readonly fallback?: string;
  /** How long a deleted pod keeps resolving. Default 10 min. */
  readonly retainDeletedMs?: number;
  /** Reconnect delays. Default 500 ms doubling to 30 s, equal jitter. */
  readonly backoff?: BackoffOptions;
  /** A watch that stayed up this long resets the backoff, and its clean end reconnects at once. */
  readonly healthyWatchMs?: number;
  /** List page size (limit/continue). Default 500. */
  readonly pageSize?: number;
  /** Server-side watch timeout; each watch draws from [t, 2t) like client-go. Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** Bound on one list page and on getting a watch's response headers. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /**
   * A watch that delivers nothing (not even a bookmark, which API servers send about once a
   * minute) for this long is presumed dead (a silent network partition) and replaced. Default 3 min.
   */
  readonly watchIdleTimeoutMs?: number;
  /** lookupByUidFresh waits at most this long for the first list. Default 2 s. */
  readonly initialSyncWaitMs?: number;
  /** Monotonic clock in ms. Default performance.now. */
  readonly now?: () => number;
  /** Uniform in [0, 1), for jitter. Default Math.random. */
  readonly random?: () => number;
}

type WatchEnd =
  | { readonly kind: 'closed' }
  | { readonly kind: 'gone' }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'error'; readonly reason: string; readonly err?: unknown };

const PODS_PATH = '/api/v1/pods';

/** A PodList page as JSON: the fields the list reads. */
interface ApiPodList {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items?: readonly ApiPod[];
}

export class KubeApiPodSource implements PodInfoSource {
  readonly name = 'kube-api';
  readonly #nodeName: string;
  readonly #fieldSelector: string;
  readonly #log: IdentityLogger;
  readonly #origin: string;
  readonly #fallback: string;
  readonly #config: KubeApiConfig;
  readonly #agent: Agent;
  readonly #store: KubePodStore;
  readonly #backoff: Backoff;
  readonly #healthyWatchMs: number;
  readonly #pageSize: number;
  readonly #watchTimeoutSeconds: number;
  readonly #requestTimeoutMs: number;
  readonly #watchIdleTimeoutMs: number;
  readonly #initialSyncWaitMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #abortWatch: (() => void) | undefined;
  #state: KubeApiState = 'disabled';
  #reason: string | undefined = 'not started';
  #everConnected = false;
  #syncWaiters: Array<(synced: boolean) => void> = [];
  #lastSyncRv = '';
  #rvUnavailable = false;
  #lastSyncAt: number | undefined;
  #lists = 0;
  #watches = 0;
  #malformed = 0;
  #malformedLines = 0;
  readonly #events: Record<WatchEventType, number> = {
    ADDED: 0,
    MODIFIED: 0,
    DELETED: 0,
    BOOKMARK: 0,
    ERROR: 0,
  };

  constructor(opts: KubeApiPodSourceOptions) {
    if (opts.nodeName === '') throw new Error('KubeApiPodSource needs a node name (NODE_NAME)');
    this.#nodeName = opts.nodeName;
    this.#fieldSelector = `spec.nodeName=${opts.nodeName}`;
    this.#log = opts.log;
    this.#origin = opts.origin ?? 'kubeconfig';
    this.#fallback = opts.fallback ?? 'the next identity source';
    this.#config = opts.kubeConfig;
    this.#agent = createKubeAgent(opts.kubeConfig);
    this.#now = opts.now ?? (() => performance.now());
    this.#random = opts.random ?? Math.random;
    this.#store = new KubePodStore({
      retainDeletedMs: opts.retainDeletedMs ?? 600_000,
      now: this.#now,
    });
    this.#backoff = new Backoff(
      opts.backoff ?? { initialMs: 500, maxMs: 30_000, random: this.#random },
    );
    this.#healthyWatchMs = opts.healthyWatchMs ?? 10_000;
    this.#pageSize = opts.pageSize ?? 500;
    this.#watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#watchIdleTimeoutMs = opts.watchIdleTimeoutMs ?? 180_000;
    this.#initialSyncWaitMs = opts.initialSyncWaitMs ?? 2_000;
  }

  /** Starts listing and watching in the background; returns at once. Idempotent. */
  start(): void {
    if (this.#running !== undefined || this.#stop.signal.aborted) return;
    this.#setState('connecting', undefined);
    this.#log.info(
      { origin: this.#origin, node: this.#nodeName },
      'connecting to the Kubernetes API for pod identity',
    );
    this.#running = this.#run().catch((err: unknown) => {
      // #run handles its own errors; reaching this is a bug, and identity must not die of it.
      this.#setState('degraded', `pod watch loop crashed: ${describeError(err)}`);
      this.#log.warn({ err }, 'Kubernetes API pod watch loop crashed');
    });
  }

  /** Ends the watch, cancels requests and timers, and waits for the loop to finish. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#abortWatch?.();
    await this.#running;
    this.#agent.destroy();
    this.#setState('disabled', 'stopped');
  }

  /**
   * Resolves true once the first list is in the cache, false if the API failed first or timeoutMs
   * passed. Startup can await it before the first read of the kernel maps.
   */
  async whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.#lastSyncAt !== undefined) return true;
    if (this.#state !== 'connecting') return false;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), timeoutMs);
      const settle = (synced: boolean) => {
        clearTimeout(timer);
        this.#syncWaiters = this.#syncWaiters.filter((w) => w !== settle);
        resolve(synced);
      };
      this.#syncWaiters.push(settle);
    });
  }

  lookupByUid(uid: string): PodInfo | undefined {
    return this.#store.byUid(uid);
  }

  /** A miss waits only while the first list is pending: afterwards the watch keeps the cache current. */
  async lookupByUidFresh(uid: string): Promise<PodInfo | undefined> {
    const hit = this.#store.byUid(uid);
    if (hit !== undefined || this.#state !== 'connecting') return hit;
    await this.whenSynced(this.#initialSyncWaitMs);
    return this.#store.byUid(uid);
  }

  /**
   * The pod that owns a pod IP (canonical text, see canonicalIp), for attributing drops by
   * address. Undefined for node IPs: hostNetwork pods share them, so they name no single pod.
   */
  lookupByIp(ip: string): PodInfo | undefined {
    return this.#store.byIp(ip);
  }

  /** The node's own addresses, as pod statuses report them (status.hostIPs). */
  isNodeIp(ip: string): boolean {
    return this.#store.isNodeIp(ip);
  }

  /**
   * Pods deleted within the retention window (oldest first), with the time the deletion was seen
   * on this source's clock, so the exporter can retire their series a grace period later.
   */
  deletedPods(): DeletedPod[] {
    return this.#store.deleted();
  }

  health(): KubeApiHealth {
    const stats = this.#store.stats();
    return {
      state: this.#state,
      ...(this.#reason === undefined ? {} : { reason: this.#reason }),
      relists: Math.max(0, this.#lists - 1),
      watchRestarts: Math.max(0, this.#watches - 1),
      events: { ...this.#events },
      malformedPods: this.#malformed,
      malformedLines: this.#malformedLines,
      pods: stats.pods,
      deletedRetained: stats.deletedRetained,
      ...(this.#lastSyncAt === undefined ? {} : { lastSyncAt: this.#lastSyncAt }),
      resourceVersion: this.#lastSyncRv,
    };
  }

  async #run(): Promise<void> {
    let needList = true;
    while (!this.#stop.signal.aborted) {
      if (needList) {
        // client-go's relistResourceVersion: "0" at first, then the last version seen, and a
        // consistent read only when listing at that version was refused as too old.
        const rv = this.#rvUnavailable ? '' : this.#lastSyncRv || '0';
        try {
          await this.#list(rv);
          needList = false;
        } catch (err) {
          if (this.#stop.signal.aborted) break;
          const gone = isGone(err);
          if (gone) this.#rvUnavailable = true;
          const delay = gone && rv !== '' ? 0 : this.#backoff.next();
          this.#degrade(`listing pods failed: ${describeError(err)}`, err, delay);
          await this.#pause(delay);
          continue;
        }
      }
      const startedAt = this.#now();
      const end = await this.#watchOnce();
      if (end.kind === 'stopped' || this.#stop.signal.aborted) break;
      const healthy = this.#now() - startedAt >= this.#healthyWatchMs;
      if (healthy) this.#backoff.reset();
      // A long-lived watch that ended without an error (server-side timeout, or 410) is routine.
      const delay = healthy && end.kind !== 'error' ? 0 : this.#backoff.next();
      if (end.kind === 'gone') {
        needList = true;
        this.#log.info(
          { resourceVersion: this.#lastSyncRv },
          'watch resourceVersion expired (410 Gone); re-listing pods',
        );
      } else if (end.kind === 'error') {
        this.#degrade(`watching pods failed: ${end.reason}`, end.err, delay);
      } else {
        this.#log.debug({ resourceVersion: this.#lastSyncRv, delay }, 'pod watch closed; resuming');
      }
      await this.#pause(delay);
    }
  }

  async #list(rv: string): Promise<void> {
    const pods: KubePod[] = [];
    let cont: string | undefined;
    let version: string;
    do {
      const page = asPodList(
        await kubeGetJson(
          this.#config,
          PODS_PATH,
          {
            fieldSelector: this.#fieldSelector,
            limit: this.#pageSize,
            // The API server refuses resourceVersion together with continue: the token pins it.
            ...(cont !== undefined ? { continue: cont } : rv === '' ? {} : { resourceVersion: rv }),
          },
          {
            agent: this.#agent,
            // Bounds the whole page, headers and body, and lets stop() cancel it.
            signal: AbortSignal.any([
              this.#stop.signal,
              AbortSignal.timeout(this.#requestTimeoutMs),
            ]),
          },
        ),
      );
      for (const raw of page.items ?? []) {
        const pod = kubePodFromApi(raw ?? {});
        if (pod === null) this.#malformed++;
        else pods.push(pod);
      }
      cont = page.metadata?.continue || undefined;
      version = page.metadata?.resourceVersion ?? '';
    } while (cont !== undefined);
    const { added, deleted } = this.#store.replaceAll(pods);
    this.#lists++;
    this.#lastSyncRv = version;
    this.#rvUnavailable = false;
    this.#lastSyncAt = this.#now();
    this.#log.debug(
      { pods: pods.length, added, deleted, resourceVersion: version, relist: this.#lists > 1 },
      'listed pods',
    );
    // The exporter's own DaemonSet pod runs on this node, so an empty first list means the
    // field selector names no node: most likely NODE_NAME is the hostname, not the node name.
    if (this.#lists === 1 && pods.length === 0)
      this.#log.warn(
        { node: this.#nodeName },
        'the Kubernetes API lists no pods on this node: check that NODE_NAME is the node name (downward API spec.nodeName)',
      );
    this.#setConnected();
  }

  #watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      // Runs only from timers, stop() and kubeWatch's callbacks: never before abortRequest is set.
      const finish = (end: WatchEnd) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#abortWatch = undefined;
        abortRequest();
        resolve(end);
      };
      const arm = (ms: number, what: string) => {
        clearTimeout(timer);
        timer = setTimeout(() => finish({ kind: 'error', reason: `${what} after ${ms} ms` }), ms);
        timer.unref();
      };
      this.#abortWatch = () => finish({ kind: 'stopped' });
      arm(this.#requestTimeoutMs, 'no response to the watch request');
      this.#watches++;

      const timeoutSeconds = Math.floor(this.#watchTimeoutSeconds * (1 + this.#random()));
      const abortRequest = kubeWatch(
        this.#config,
        PODS_PATH,
        {
          watch: true,
          allowWatchBookmarks: true,
          fieldSelector: this.#fieldSelector,
          resourceVersion: this.#lastSyncRv,
          timeoutSeconds,
        },
        {
          onOpen: () => {
            if (settled) return;
            arm(this.#watchIdleTimeoutMs, 'no watch event or bookmark');
            this.#setConnected();
          },
          onEvent: ({ type, object }) => {
            if (settled) return;
            arm(this.#watchIdleTimeoutMs, 'no watch event or bookmark');
            const end = this.#handleEvent(type, object);
            if (end !== undefined) finish(end);
          },
          onMalformed: (reason) => {
            this.#malformedLines++;
            this.#log.debug({ reason }, 'skipped a watch line that is no event');
          },
          onEnd: (err) => {
            if (err === undefined) finish({ kind: 'closed' });
            else if (isGone(err)) finish({ kind: 'gone' });
            else finish({ kind: 'error', reason: describeError(err), err });
          },
        },
        this.#agent,
      );
    });
  }

  /** Applies one watch event; returns how the watch ends if the event ends it. */
  #handleEvent(type: string, obj: unknown): WatchEnd | undefined {
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        this.#events[type]++;
        const pod = kubePodFromApi((obj ?? {}) as ApiPod);
        if (pod === null) this.#malformed++;
        else if (type === 'DELETED') this.#store.markDeleted(pod.info.uid, pod);
        else this.#store.upsert(pod);
        this.#noteVersion(obj);
        return undefined;
      }
      case 'BOOKMARK':
        this.#events.BOOKMARK++;
        this.#noteVersion(obj);
        return undefined;
      case 'ERROR': {
        this.#events.ERROR++;
        const status = (obj ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
        if (status.code === 410) return { kind: 'gone' };
        return {
          kind: 'error',
          reason: `ERROR event ${String(status.code)} ${String(status.reason)}: ${String(status.message)}`,
        };
      }
      default:
        return undefined; // unknown event types are the server's business, not ours
    }
  }

  #noteVersion(obj: unknown): void {
    const rv = (obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
      ?.resourceVersion;
    if (typeof rv === 'string' && rv !== '') this.#lastSyncRv = rv;
    this.#lastSyncAt = this.#now();
  }

  async #pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    await sleep(ms, undefined, { signal: this.#stop.signal }).catch(() => undefined);
  }

  #setConnected(): void {
    if (this.#state === 'connected') return;
    const recovered = this.#everConnected;
    this.#everConnected = true;
    this.#setState('connected', undefined);
    const pods = this.#store.stats().pods;
    if (recovered)
      this.#log.info(
        { origin: this.#origin, node: this.#nodeName, pods },
        'Kubernetes API reachable again; pod identity from the API',
      );
    else
      this.#log.info(
        { origin: this.#origin, node: this.#nodeName, pods },
        'pod identity from the Kubernetes API',
      );
  }

  #degrade(reason: string, err: unknown, retryInMs: number): void {
    const was = this.#state;
    this.#setState('degraded', reason);
    const fields = { err, reason, retryInMs, cachedPods: this.#store.stats().pods };
    if (was !== 'degraded')
      this.#log.warn(
        fields,
        `Kubernetes API unavailable; ${this.#fallback} names the pods the API has not reported`,
      );
    else this.#log.debug(fields, 'Kubernetes API still unavailable');
  }

  #setState(state: KubeApiState, reason: string | undefined): void {
    this.#state = state;
    this.#reason = reason;
    if (state === 'connecting') return;
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const settle of waiters) settle(this.#lastSyncAt !== undefined);
  }
}

function isGone(err: unknown): boolean {
  return err instanceof KubeApiError && err.statusCode === 410;
}

/** The list answer, checked for the shape the loop relies on. */
function asPodList(body: unknown): ApiPodList {
  const items = (body as { items?: unknown } | null)?.items;
  if (typeof body !== 'object' || body === null || (items !== undefined && !Array.isArray(items)))
    throw new Error('the answer to the pod list is not a PodList');
  return body as ApiPodList;
}

/** One line that names the failure: HTTP status and the Status reason, or the socket error. */
export function describeError(err: unknown): string {
  if (err instanceof KubeApiError) return `${err.message}${rbacHint(err.statusCode)}`;
  if (err instanceof Error) {
    if (err.name === 'AbortError' || err.name === 'TimeoutError') return 'request timed out';
    return firstLine(err.message);
  }
  return firstLine(String(err));
}

function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return nl < 0 ? text : text.slice(0, nl);
}

function rbacHint(code: number): string {
  return code === 401 || code === 403 ? ' (the service account needs list and watch on pods)' : '';
}
