// HTTP surface: /metrics (served from the last snapshot, never waits for bpftool),
// /healthz (the process answers) and /readyz (programs attached and maps read once).
import express, { type Request, type Response } from 'express';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { contentTypeOf, renderText, type TextFormat } from '../exposition/prom-text.js';
import type { Family } from '../exposition/model.js';

export interface HttpDeps {
  families: () => Family[];
  readiness: () => { ready: boolean; reason: string };
  log: Logger;
}

/** OpenMetrics only when the scraper asks for it; everything else gets the text format. */
export function negotiateFormat(accept: string | undefined): TextFormat {
  return accept?.includes('application/openmetrics-text') ? 'openmetrics' : 'prometheus';
}

export function createApp(deps: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (req: Request, res: Response) => {
    const format = negotiateFormat(req.get('accept'));
    try {
      const body = await renderText(deps.families(), format);
      res.type(contentTypeOf(format)).send(body);
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
