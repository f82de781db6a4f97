// HTTP surface: /metrics (served from the last snapshot, never waits for bpftool),
// /healthz (the process answers) and /readyz (programs attached and maps read once); and the
// transport limits that this listener and the drill-down's share (listen()).
import express, { type NextFunction, type Request, type Response } from 'express';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { contentTypeOf, renderText, type TextFormat } from '../exposition/prom-text.js';
import { encodeProtobuf, PROTOBUF_CONTENT_TYPE } from '../exposition/protobuf.js';
import type { Family } from '../exposition/model.js';

export interface HttpDeps {
  families: () => Family[];
  readiness: () => { ready: boolean; reason: string };
  log: Logger;
}

export type ExpositionFormat = TextFormat | 'protobuf';

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

function parseMediaRange(part: string): MediaRange {
  const [type = '', ...rest] = part.split(';').map((p) => p.trim());
  const params = new Map<string, string>();
  for (const p of rest) {
    const [name = '', value = ''] = p.split('=', 2).map((x) => x.trim());
    if (name) params.set(name.toLowerCase(), value.replace(/^"(.*)"$/, '$1'));
  }
  const q = params.has('q') ? Number(params.get('q')) : 1;
  return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0 };
}

/** The one protobuf flavour served: delimited MetricFamily messages (what Prometheus asks for). */
function isDelimitedMetricFamily(r: MediaRange): boolean {
  return (
    r.type === 'application/vnd.google.protobuf' &&
    r.params.get('proto') === 'io.prometheus.client.MetricFamily' &&
    r.params.get('encoding') === 'delimited'
  );
}

const TEXT_RANGES = new Set(['application/openmetrics-text', 'text/plain', 'text/*', '*/*']);

/**
 * Protobuf when the scraper asks for delimited MetricFamily messages and rates no text
 * format higher (Prometheus with native histograms enabled lists it first, at the highest
 * q). Otherwise OpenMetrics only when the scraper asks for it; everything else gets text.
 */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  if (!accept) return 'prometheus';
  const ranges = accept.split(',').map(parseMediaRange);
  const protoQ = Math.max(0, ...ranges.filter(isDelimitedMetricFamily).map((r) => r.q));
  const textQ = Math.max(0, ...ranges.filter((r) => TEXT_RANGES.has(r.type)).map((r) => r.q));
  if (protoQ > 0 && protoQ >= textQ) return 'protobuf';
  return accept.includes('application/openmetrics-text') ? 'openmetrics' : 'prometheus';
}

async function render(
  families: readonly Family[],
  format: ExpositionFormat,
): Promise<{ contentType: string; body: string | Buffer }> {
  if (format === 'protobuf') {
    const bytes = encodeProtobuf(families);
    return {
      contentType: PROTOBUF_CONTENT_TYPE,
      body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    };
  }
  return { contentType: contentTypeOf(format), body: await renderText(families, format) };
}

/** Longest request target served; Prometheus sends `/metrics` with no query. */
export const MAX_URL_BYTES = 2048;

/** True when the request announces a body (every route here is read-only and takes none). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Refuses what no route here takes, before any route runs: long URLs (414) and methods other
 * than GET and HEAD (405). Bodies are refused for both listeners in listen().
 */
function refuseUnservable(req: Request, res: Response, next: NextFunction): void {
  const refuse = (status: number, message: string) => {
    // A refused request's body is never read: close instead of draining it for keep-alive.
    if (hasBody(req)) res.set('Connection', 'close');
    res.status(status).type('text/plain').send(`${message}\n`);
  };
  if (req.originalUrl.length > MAX_URL_BYTES)
    return refuse(414, `URL longer than ${MAX_URL_BYTES} bytes`);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.set('Allow', 'GET, HEAD');
    return refuse(405, `${req.method} not allowed: this server is read-only`);
  }
  next();
}

export function createApp(deps: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(refuseUnservable);
  app.get('/metrics', async (req: Request, res: Response) => {
    const format = negotiateFormat(req.get('accept'));
    try {
      const { contentType, body } = await render(deps.families(), format);
      // Vary: caches must not hand one format to a scraper that asked for another.
      res.set('Content-Type', contentType).vary('Accept').send(body);
    } catch (err) {
      deps.log.error({ err }, 'rendering /metrics failed');
      res.status(500).type('text/plain').send('rendering metrics failed; see the exporter log\n');
    }
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const { ready, reason } = deps.readiness();
    res
      .status(ready ? 200 : 503)
      .type('text/plain')
      .send(`${reason}\n`);
  });
  app.get('/', (_req, res) => {
    res
      .type('text/html')
      .send(
        '<h1>dnsrace</h1><p><a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>\n',
      );
  });
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found: try /metrics, /healthz or /readyz\n');
  });
  return app;
}

/**
 * Transport limits of both listeners (/metrics and the drill-down). A client that opens a
 * connection and trickles its headers (slowloris) is answered 408 and closed after
 * HEADERS_TIMEOUT_MS, checked every CONNECTION_CHECK_MS (Node's defaults, 60 s checked every
 * 30 s, let each such connection live 90 s). Headers over Node's 16 KiB get 431 and a close.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const CONNECTION_CHECK_MS = 1_000;

/**
 * Neither listener takes a request body: a GET or HEAD that announces one gets 413 before
 * routing, and the connection is closed rather than the body read. Other methods reach the
 * app, which answers 405.
 */
function refusedBody(req: IncomingMessage, res: ServerResponse): boolean {
  if (!hasBody(req) || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  res
    .writeHead(413, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' })
    .end('request bodies are not accepted\n');
  return true;
}

/** CONNECT (a proxy request) would otherwise just be dropped: answer it like any refused method. */
function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  socket.end(
    'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  );
}

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(
      {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: CONNECTION_CHECK_MS,
      },
      (req, res) => {
        if (!refusedBody(req, res)) app(req, res);
      },
    );
    server.on('connect', refuseConnect);
    server.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `cannot listen on ${host}:${port}: address in use (set --listen-address)`
            : `cannot listen on ${host}:${port}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
  });
}
