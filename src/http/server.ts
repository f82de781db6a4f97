// HTTP surface: /metrics (served from the last snapshot, never waits for bpftool),
// /healthz (the process answers) and /readyz (programs attached and maps read once).
import express, { type Request, type Response } from 'express';
import type { Server } from 'node:http';
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

export function createApp(deps: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
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

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
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
