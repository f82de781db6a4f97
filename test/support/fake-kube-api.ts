// A fake Kubernetes API server for tests: a real API server cannot run here, so this local HTTP
// server speaks just enough of the protocol for pods that the exporter's own client
// (src/identity/kube-client.ts) runs unchanged against it:
// - GET /api/v1/pods lists as a PodList with metadata.resourceVersion, in pages with limit and
//   continue tokens that pin a snapshot (and refuses resourceVersion together with continue);
// - ...&watch=true streams newline-delimited JSON watch events with chunked transfer encoding,
//   replaying the history after the requested resourceVersion, with BOOKMARKs on request;
// - a resourceVersion older than the last compaction is refused with 410 Gone, on a list as an
//   HTTP status, on a watch as an ERROR event (like the API server) or as an HTTP status;
// - every request must carry the bearer token and fieldSelector spec.nodeName=<node>.
// Test controls add, change and delete pods, send bookmarks, compact, expire or drop watches,
// and fail requests; every request is recorded.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A pod object as JSON (the fields the exporter reads, and whatever a test adds). */
export interface FakePod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    uid: string;
    namespace: string;
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
    }>;
  };
  spec: { nodeName: string; hostNetwork?: boolean; containers: Array<{ name: string }> };
  status: {
    phase?: string;
    podIP?: string;
    podIPs?: Array<{ ip: string }>;
    hostIP?: string;
    hostIPs?: Array<{ ip: string }>;
  };
}

export interface MakePodOptions {
  uid: string;
  name: string;
  namespace?: string;
  node?: string;
  ips?: string[];
  hostIps?: string[];
  hostNetwork?: boolean;
  phase?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  owner?: { apiVersion: string; kind: string; name: string };
}

export function makePod(o: MakePodOptions): FakePod {
  const ips = o.ips ?? [];
  const hostIps = o.hostIps ?? ['192.0.2.10'];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      uid: o.uid,
      namespace: o.namespace ?? 'default',
      name: o.name,
      ...(o.labels === undefined ? {} : { labels: o.labels }),
      ...(o.annotations === undefined ? {} : { annotations: o.annotations }),
      ...(o.owner === undefined
        ? {}
        : {
            ownerReferences: [
              { ...o.owner, uid: '00000000-0000-4000-8000-000000000001', controller: true },
            ],
          }),
    },
    spec: {
      nodeName: o.node ?? 'node-a',
      ...(o.hostNetwork === undefined ? {} : { hostNetwork: o.hostNetwork }),
      containers: [{ name: 'main' }],
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(ips[0] === undefined ? {} : { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) }),
      ...(hostIps[0] === undefined
        ? {}
        : { hostIP: hostIps[0], hostIPs: hostIps.map((ip) => ({ ip })) }),
    },
  };
}

export interface RecordedRequest {
  readonly kind: 'list' | 'watch' | 'other';
  readonly query: Readonly<Record<string, string>>;
  /** performance.now() at arrival. */
  readonly at: number;
  status: number;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Watcher {
  readonly res: ServerResponse;
  readonly node: string;
  readonly bookmarks: boolean;
  timer?: NodeJS.Timeout;
}

interface Snapshot {
  readonly rv: number;
  readonly items: readonly FakePod[];
}

export class FakeKubeApiServer {
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  /** How a watch from a compacted resourceVersion is refused. */
  goneMode: 'event' | 'http' = 'event';
  readonly #server: Server;
  readonly #pods = new Map<string, FakePod>();
  readonly #history: Array<{ rv: number; type: EventType; object: FakePod }> = [];
  readonly #watchers = new Set<Watcher>();
  readonly #snapshots = new Map<string, Snapshot>();
  readonly #failures: Array<{ kind: 'list' | 'watch'; status: number; left: number }> = [];
  #rv = 1000;
  #compactedRv = 0;

  private constructor(server: Server, token: string) {
    this.#server = server;
    this.token = token;
    server.on('request', (req, res) => this.#handle(req, res));
  }

  static async start(token = 'fake-token'): Promise<FakeKubeApiServer> {
    return FakeKubeApiServer.listen(0, token);
  }

  /** Listens on a given port (0: any), e.g. to come up where an unreachable server was. */
  static async listen(port: number, token = 'fake-token'): Promise<FakeKubeApiServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new FakeKubeApiServer(server, token);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  /** Writes a kubeconfig (plain http, bearer token) that points the exporter at this server. */
  async writeKubeconfig(dir: string): Promise<string> {
    return writeKubeconfig(dir, this.url, this.token);
  }

  addPod(pod: FakePod): FakePod {
    return this.#change('ADDED', pod);
  }

  updatePod(uid: string, mutate: (pod: FakePod) => void): FakePod {
    const pod = this.#pods.get(uid);
    if (pod === undefined) throw new Error(`fake Kubernetes API server: no pod ${uid}`);
    const copy = structuredClone(pod);
    mutate(copy);
    return this.#change('MODIFIED', copy);
  }

  deletePod(uid: string): FakePod {
    const pod = this.#pods.get(uid);
    if (pod === undefined) throw new Error(`fake Kubernetes API server: no pod ${uid}`);
    return this.#change('DELETED', structuredClone(pod));
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watch that asked for bookmarks. */
  bookmark(): void {
    const event = {
      type: 'BOOKMARK',
      object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) } },
    };
    for (const w of this.#watchers) if (w.bookmarks) w.res.write(`${JSON.stringify(event)}\n`);
  }

  /** Forgets history up to now: older resourceVersions and continue tokens get 410 Gone. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history.length = 0;
  }

  /** Ends every open watch with an ERROR event carrying a 410 Status, as after a compaction. */
  expireWatches(): void {
    for (const w of [...this.#watchers]) {
      w.res.write(`${JSON.stringify({ type: 'ERROR', object: goneStatus() })}\n`);
      this.#endWatch(w);
    }
  }

  /** Breaks every open watch connection mid-stream, without ending the chunked body. */
  dropWatches(): void {
    for (const w of [...this.#watchers]) {
      this.#watchers.delete(w);
      clearTimeout(w.timer);
      w.res.socket?.destroy();
    }
  }

  /** Answers the next `times` requests of a kind with an HTTP error status. */
  failNext(kind: 'list' | 'watch', status: number, times = 1): void {
    this.#failures.push({ kind, status, left: times });
  }

  requestsOf(kind: RecordedRequest['kind']): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === kind);
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #change(type: EventType, pod: FakePod): FakePod {
    this.#rv++;
    const object = structuredClone(pod);
    object.metadata.resourceVersion = String(this.#rv);
    if (type === 'DELETED') this.#pods.delete(object.metadata.uid);
    else this.#pods.set(object.metadata.uid, object);
    this.#history.push({ rv: this.#rv, type, object });
    for (const w of this.#watchers)
      if (w.node === object.spec.nodeName) w.res.write(`${JSON.stringify({ type, object })}\n`);
    return object;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const kind =
      url.pathname !== '/api/v1/pods' ? 'other' : query.watch === 'true' ? 'watch' : 'list';
    const record: RecordedRequest = { kind, query, at: performance.now(), status: 0 };
    this.requests.push(record);
    const reply = (status: number, body: unknown) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const refuse = (code: number, reason: string, message: string) =>
      reply(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });

    if (req.method !== 'GET' || kind === 'other')
      return refuse(404, 'NotFound', `fake Kubernetes API server serves only GET /api/v1/pods`);
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return refuse(401, 'Unauthorized', 'fake Kubernetes API server: wrong or missing token');
    const node = nodeOfSelector(query.fieldSelector);
    if (node === undefined)
      return refuse(
        400,
        'BadRequest',
        'fake Kubernetes API server: pods must be listed and watched with fieldSelector spec.nodeName=<node>',
      );
    const failure = this.#failures.find((f) => f.kind === kind && f.left > 0);
    if (failure !== undefined) {
      failure.left--;
      return refuse(failure.status, 'InternalError', `injected failure ${failure.status}`);
    }
    if (kind === 'list') return this.#list(query, node, reply, refuse);
    return this.#watch(query, node, res, record, refuse);
  }

  #list(
    query: Record<string, string>,
    node: string,
    reply: (status: number, body: unknown) => void,
    refuse: (code: number, reason: string, message: string) => void,
  ): void {
    const rvParam = query.resourceVersion ?? '';
    const token = query.continue;
    if (token !== undefined && rvParam !== '')
      return refuse(
        400,
        'BadRequest',
        'specifying resource version is not allowed when using continue',
      );
    let snapshot: Snapshot;
    let offset = 0;
    if (token !== undefined) {
      const found = this.#snapshots.get(token);
      if (found === undefined || found.rv < this.#compactedRv)
        return refuse(410, 'Expired', 'The provided continue parameter is too old');
      snapshot = found;
      offset = Number(token.split(':')[1]);
    } else {
      if (rvParam !== '' && rvParam !== '0' && Number(rvParam) < this.#compactedRv)
        return refuse(
          410,
          'Expired',
          `too old resource version: ${rvParam} (${this.#compactedRv})`,
        );
      const items = [...this.#pods.values()]
        .filter((p) => p.spec.nodeName === node)
        .sort((a, b) =>
          `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
            `${b.metadata.namespace}/${b.metadata.name}`,
          ),
        );
      snapshot = { rv: this.#rv, items: structuredClone(items) };
    }
    const limit = query.limit === undefined ? Infinity : Number(query.limit);
    const page = snapshot.items.slice(offset, offset + limit);
    const next = offset + page.length;
    let cont: string | undefined;
    if (next < snapshot.items.length) {
      cont = `${snapshot.rv}:${next}:${this.#snapshots.size}`;
      this.#snapshots.set(cont, snapshot);
    }
    reply(200, {
      kind: 'PodList',
      apiVersion: 'v1',
      metadata: {
        resourceVersion: String(snapshot.rv),
        ...(cont === undefined
          ? {}
          : { continue: cont, remainingItemCount: snapshot.items.length - next }),
      },
      items: page,
    });
  }

  #watch(
    query: Record<string, string>,
    node: string,
    res: ServerResponse,
    record: RecordedRequest,
    refuse: (code: number, reason: string, message: string) => void,
  ): void {
    const rvParam = query.resourceVersion ?? '';
    const since = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    const gone = since !== undefined && since < this.#compactedRv;
    if (gone && this.goneMode === 'http')
      return refuse(410, 'Expired', `too old resource version: ${since} (${this.#compactedRv})`);
    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders(); // no content-length: the body goes out chunked
    const w: Watcher = { res, node, bookmarks: query.allowWatchBookmarks === 'true' };
    if (gone) {
      res.write(`${JSON.stringify({ type: 'ERROR', object: goneStatus() })}\n`);
      res.end();
      return;
    }
    if (since === undefined) {
      for (const pod of this.#pods.values())
        if (pod.spec.nodeName === node)
          res.write(`${JSON.stringify({ type: 'ADDED', object: pod })}\n`);
    } else {
      for (const e of this.#history)
        if (e.rv > since && e.object.spec.nodeName === node)
          res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    }
    this.#watchers.add(w);
    const timeoutSeconds = Number(query.timeoutSeconds ?? '0');
    if (timeoutSeconds > 0) w.timer = setTimeout(() => this.#endWatch(w), timeoutSeconds * 1000);
    res.on('close', () => {
      this.#watchers.delete(w);
      clearTimeout(w.timer);
    });
  }

  #endWatch(w: Watcher): void {
    this.#watchers.delete(w);
    clearTimeout(w.timer);
    w.res.end();
  }
}

/** The node of a fieldSelector such as "spec.nodeName=node-a" (other terms may follow). */
function nodeOfSelector(selector: string | undefined): string | undefined {
  for (const term of (selector ?? '').split(',')) {
    const m = /^spec\.nodeName=([^=!]+)$/.exec(term.trim());
    if (m?.[1] !== undefined) return m[1];
  }
  return undefined;
}

function goneStatus() {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'too old resource version',
    reason: 'Expired',
    code: 410,
  };
}

/** A kubeconfig for a plain-http server with a bearer token (JSON is YAML). */
export async function writeKubeconfig(dir: string, server: string, token: string): Promise<string> {
  const path = join(dir, 'kubeconfig');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user: { token } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    'current-context': 'fake',
  };
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}
