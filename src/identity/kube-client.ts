// The two requests pod identity makes to the Kubernetes API, on node:http(s): a GET whose JSON
// answer is read whole (a list page), and a watch whose body streams events until the server
// ends it or the caller aborts. Secret files are read again for every request, so a rotated
// service account token (the kubelet renews it about hourly) or certificate is picked up.
// Bounding a request in time is the caller's business: pass a signal, or abort the watch.
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { KubeApiConfig, KubeSecret } from './kube-config.js';
import {
  kubeApiError,
  kubeRequestOptions,
  type KubeCredentials,
  type KubeQuery,
} from './kube-request.js';
import { WatchStreamSplitter, type WatchEvent, type WatchLine } from './kube-watch-stream.js';

export interface KubeRequestContext {
  /** Connection pool (createKubeAgent); default: node's global agent. */
  readonly agent?: http.Agent;
  /** Aborts the request, in any phase. */
  readonly signal?: AbortSignal;
}

/** Keeps connections between requests (a list's pages, the watch after them). */
export function createKubeAgent(config: KubeApiConfig): http.Agent {
  return config.server.startsWith('http:')
    ? new http.Agent({ keepAlive: true })
    : new https.Agent({ keepAlive: true });
}

/** GET apiPath; resolves with the parsed JSON of a 200 answer, rejects with KubeApiError else. */
export async function kubeGetJson(
  config: KubeApiConfig,
  apiPath: string,
  query: KubeQuery,
  ctx: KubeRequestContext = {},
): Promise<unknown> {
  let body: string;
  try {
    const res = await open(config, apiPath, query, ctx);
    body = await readBody(res);
    if (!res.complete) throw new Error('connection closed before the whole answer arrived');
  } catch (err) {
    // An abort surfaces as a reset socket: say timeout or stop instead (the signal's reason).
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    throw err;
  }
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new Error(`answer to GET ${apiPath} is not JSON`, { cause: err });
  }
}

export interface WatchHandlers {
  /** The server answered 200: events follow. */
  onOpen(): void;
  onEvent(event: WatchEvent): void;
  /** A line that was no watch event (skipped). */
  onMalformed?(reason: string): void;
  /**
   * Once, unless aborted first: no argument when the server ended the stream (its timeoutSeconds),
   * else why it failed (KubeApiError for an answer other than 200, 410 Gone included).
   */
  onEnd(err?: unknown): void;
}

/** Starts a watch (the caller puts watch=true and the rest in query); returns abort. */
export function kubeWatch(
  config: KubeApiConfig,
  apiPath: string,
  query: KubeQuery,
  handlers: WatchHandlers,
  agent?: http.Agent,
): () => void {
  const controller = new AbortController();
  let ended = false;
  const end = (err?: unknown) => {
    if (ended) return;
    ended = true;
    controller.abort();
    handlers.onEnd(err);
  };
  const ctx: KubeRequestContext = { signal: controller.signal, ...(agent ? { agent } : {}) };
  open(config, apiPath, query, ctx)
    .then((res) => {
      if (ended) {
        res.destroy();
        return;
      }
      // Keepalive probes find a peer that vanished without a FIN sooner than the idle timeout.
      res.socket.setKeepAlive(true, 30_000);
      handlers.onOpen();
      const splitter = new WatchStreamSplitter();
      const deliver = (take: () => WatchLine[]) => {
        try {
          for (const line of take()) {
            if (ended) return;
            if (line.kind === 'event') handlers.onEvent(line.event);
            else handlers.onMalformed?.(line.reason);
          }
        } catch (err) {
          end(err);
        }
      };
      res.on('data', (chunk: Buffer) => {
        if (!ended) deliver(() => splitter.push(chunk));
      });
      res.on('end', () => {
        if (ended) return;
        deliver(() => splitter.end());
        end();
      });
      res.on('error', (err) =>
        end(new Error(`watch connection lost: ${err.message}`, { cause: err })),
      );
      res.on('close', () => {
        if (!res.complete) end(new Error('watch connection closed before the stream ended'));
      });
    }, end)
    .catch(end); // a handler that threw ends the watch rather than the process
  return () => {
    ended = true;
    controller.abort();
  };
}

/** The secret material of one request, read now. Errors name the file and where it came from. */
export async function readKubeCredentials(config: KubeApiConfig): Promise<KubeCredentials> {
  const [ca, cert, key, token] = await Promise.all([
    readSecret(config.ca),
    readSecret(config.clientCert),
    readSecret(config.clientKey),
    readSecret(config.token),
  ]);
  const bearer = token?.trim();
  if (bearer === '')
    throw new Error(
      `the bearer token is empty${config.token && 'file' in config.token ? ` (${config.token.field} ${config.token.file})` : ''}`,
    );
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(bearer === undefined ? {} : { token: bearer }),
  };
}

async function readSecret(secret: KubeSecret | undefined): Promise<string | undefined> {
  if (secret === undefined) return undefined;
  if ('data' in secret) return secret.data;
  try {
    return await readFile(secret.file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${secret.field} ${secret.file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Longest error answer read: a Status object is small; a proxy's error page is not needed. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Sends the request; resolves with a 200 answer, rejects with KubeApiError for any other. */
async function open(
  config: KubeApiConfig,
  apiPath: string,
  query: KubeQuery,
  ctx: KubeRequestContext,
): Promise<IncomingMessage> {
  const creds = await readKubeCredentials(config);
  ctx.signal?.throwIfAborted();
  const { protocol, options } = kubeRequestOptions(config, creds, apiPath, query);
  const transport = protocol === 'https:' ? https : http;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = transport.request({ ...options, ...(ctx.agent ? { agent: ctx.agent } : {}) });
    // Not request's own signal option: an abort between the last byte of the answer and the
    // request's 'close' destroys the socket with an error nobody listens to (node 20), which
    // crashes the process. destroy() without an error is quiet in every phase.
    const signal = ctx.signal;
    const onAbort = () => {
      req.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => signal?.removeEventListener('abort', onAbort));
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode === 200) return res;
  const body = await readBody(res, MAX_ERROR_BODY_BYTES).catch(() => '');
  throw kubeApiError(res.statusCode ?? 0, body);
}

async function readBody(res: IncomingMessage, maxBytes = Infinity): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    bytes += chunk.length;
    if (bytes >= maxBytes) break; // leaving the loop destroys the response
  }
  return Buffer.concat(chunks).toString('utf8');
}
