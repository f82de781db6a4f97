import { afterEach, describe, expect, it } from 'vitest';
import { request as httpRequest, type Server } from 'node:http';
import { pino } from 'pino';
import { createApp, listen } from '../../src/http/server.js';
import type { Family } from '../../src/exposition/model.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function start(ready: boolean, families: () => Family[] = () => []) {
  const app = createApp({
    families,
    readiness: () => ({
      ready,
      reason: ready ? 'ready' : 'not ready: BPF programs not attached yet',
    }),
    log: pino({ level: 'silent' }),
  });
  server = await listen(app, '127.0.0.1', 0);
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

describe('HTTP surface', () => {
  it('answers /healthz, and /readyz with 503 and the reason until ready', async () => {
    const base = await start(false);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toMatch(/not attached/);
  });

  it('serves text by default and OpenMetrics when asked', async () => {
    const fam: Family = {
      type: 'counter',
      name: 'dnsrace_x_total',
      help: 'x',
      samples: [{ labels: {}, value: 3 }],
    };
    const base = await start(true, () => [fam]);
    const plain = await fetch(`${base}/metrics`);
    expect(plain.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await plain.text()).toContain('dnsrace_x_total 3');
    const om = await fetch(`${base}/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    });
    expect(om.headers.get('content-type')).toMatch(/^application\/openmetrics-text/);
    expect(await om.text()).toMatch(/dnsrace_x_total 3\n# EOF\n$/);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('answers 500 with a pointer to the log when rendering fails, and 404 elsewhere', async () => {
    const base = await start(true, () => {
      throw new Error('boom');
    });
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(500);
    expect(await r.text()).toMatch(/see the exporter log/);
    const nf = await fetch(`${base}/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toMatch(/try \/metrics/);
  });

  it.each([
    ['POST', '/metrics', {}, '', 405],
    ['DELETE', '/readyz', {}, '', 405],
    ['OPTIONS', '/nope', {}, '', 405],
    ['GET', `/metrics?${'a'.repeat(3000)}`, {}, '', 414],
    ['GET', '/metrics', { 'content-length': '5' }, 'hello', 413],
    ['GET', '/metrics', { 'transfer-encoding': 'chunked' }, 'x', 413],
    ['GET', '/metrics', { 'content-length': '0' }, '', 200],
    ['HEAD', '/metrics', {}, '', 200],
  ] as const)('%s %s (%o) -> %i', async (method, path, headers, body, status) => {
    const base = new URL(await start(true));
    const got = await new Promise<{ status: number; allow?: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: base.hostname, port: base.port, method, path, headers },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, allow: res.headers.allow });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(got.status).toBe(status);
    if (status === 405) expect(got.allow).toBe('GET, HEAD');
  });

  it('names the address when the port is taken', async () => {
    await start(true);
    const a = server!.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    const app = createApp({
      families: () => [],
      readiness: () => ({ ready: true, reason: '' }),
      log: pino({ level: 'silent' }),
    });
    await expect(listen(app, '127.0.0.1', port)).rejects.toThrow(
      `cannot listen on 127.0.0.1:${port}: address in use`,
    );
  });
});
