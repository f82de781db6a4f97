// The drill-down HTTP surface: the JSON API (docs/drilldown.md) behind an optional bearer
// token, and the page (src/drilldown/page/) that reads it. Query names are shown here and
// nowhere else, which is why this listens apart from /metrics (127.0.0.1 by default).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { PACKAGE_ROOT } from '../config.js';
import type { LoggerLike } from '../bpf/bpftool.js';
import type { DnsStatsRow } from '../dns/stats-row.js';
import { QTYPE_LABELS } from '../metrics/names.js';
import type { Snapshot } from '../snapshot.js';
import { runDoctor, type DoctorInput } from './doctor.js';
import type { EventRings } from './rings.js';
import {
  doctorCounters,
  lookupsByPod,
  namespaceSummaries,
  podCountersFromRows,
  podDetail,
  podDropCounts,
  podSummaries,
  ringsOfPod,
  type NameOf,
  type PodRef,
} from './views.js';

export interface DrilldownDeps {
  snapshot: () => Snapshot | undefined;
  rings: EventRings;
  nameOf: NameOf;
  /** Reads the pod's resolv.conf and main process (PodProbe.probe). */
  probe: (ref: PodRef) => Promise<Pick<DoctorInput, 'resolv' | 'interpreter'>>;
  /** Every dns_stats row, for per-qtype counts of one pod; omitted: the snapshot's totals. */
  statsRows?: () => Promise<DnsStatsRow[]>;
  /** Self-health of the event path, served at /api/v1/health. */
  health: () => Promise<Record<string, unknown>>;
  /** Bearer token the API requires; undefined: none. */
  token?: string | undefined;
  slowThresholdSeconds: number;
  log: LoggerLike;
}

/** Namespace and pod names (RFC 1123, plus the exporter's _host, _unknown, _uid-…, _other). */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/;
const MAX_URL = 2048;
const PAGE_DIR = path.join(PACKAGE_ROOT, 'src', 'drilldown', 'page');
const PAGE_ROUTES = ['/', '/namespaces/:ns', '/pods/:ns/:pod'];

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function name(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME_RE.test(value))
    throw new HttpError(
      400,
      `${what} must be a Kubernetes name (letters, digits, '.', '-', '_'; at most 253)`,
    );
  return value;
}

function limitParam(value: unknown): number {
  if (value === undefined) return 50;
  if (
    typeof value !== 'string' ||
    !/^\d{1,3}$/.test(value) ||
    Number(value) < 1 ||
    Number(value) > 50
  )
    throw new HttpError(400, 'limit must be a whole number from 1 to 50');
  return Number(value);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Rejects requests without the bearer token (compared in constant time). */
function requireToken(token: string | undefined) {
  const want = token === undefined ? undefined : digest(token);
  return (req: Request, res: Response, next: NextFunction) => {
    if (!want) return next();
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.get('authorization') ?? '');
    if (m && timingSafeEqual(digest(m[1]!), want)) return next();
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer realm="dnsrace drill-down"')
      .json({ error: 'unauthorized: send Authorization: Bearer <token> (--drilldown-token)' });
  };
}

/** One dns_stats dump shared by concurrent requests and reused for a second. */
function sharedRows(read: (() => Promise<DnsStatsRow[]>) | undefined) {
  let last: { at: number; rows: Promise<DnsStatsRow[]> } | undefined;
  return (): Promise<DnsStatsRow[]> | undefined => {
    if (!read) return undefined;
    const now = Date.now();
    if (!last || now - last.at > 1000) {
      const rows = read();
      last = { at: now, rows };
      rows.catch(() => (last = undefined));
    }
    return last.rows;
  };
}

function loadPage(): Record<string, { type: string; body: string }> {
  const read = (f: string) => readFileSync(path.join(PAGE_DIR, f), 'utf8');
  return {
    html: { type: 'text/html; charset=utf-8', body: read('index.html') },
    js: { type: 'text/javascript; charset=utf-8', body: read('app.js') },
    css: { type: 'text/css; charset=utf-8', body: read('app.css') },
  };
}

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export function drilldownRouter(deps: DrilldownDeps): express.Router {
  const r = express.Router();
  const rows = sharedRows(deps.statsRows);
  const page = loadPage();

  r.use((req, res, next) => {
    res.set(SECURITY_HEADERS);
    if (req.originalUrl.length > MAX_URL) return next(new HttpError(414, 'URL too long'));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.set('Allow', 'GET, HEAD');
      return next(new HttpError(405, `${req.method} not allowed: the drill-down is read-only`));
    }
    next();
  });

  const api = express.Router();
  api.use(requireToken(deps.token));
  api.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  api.get('/namespaces', (req, res) => {
    const raw = req.query.namespace;
    if (raw !== undefined && typeof raw !== 'string')
      throw new HttpError(400, 'namespace must be given once, as a comma-separated list');
    const only = raw ? new Set(raw.split(',').map((n) => name(n, 'namespace'))) : undefined;
    const snap = deps.snapshot();
    const recent = lookupsByPod(deps.rings, deps.nameOf);
    res.json({
      snapshotAt: snap?.readTimestampSeconds ?? null,
      slowThresholdSeconds: deps.slowThresholdSeconds,
      namespaces: namespaceSummaries(snap, recent).filter((n) => !only || only.has(n.namespace)),
    });
  });

  api.get('/namespaces/:ns/pods', (req, res) => {
    const ns = name(req.params.ns, 'namespace');
    const snap = deps.snapshot();
    res.json({
      namespace: ns,
      snapshotAt: snap?.readTimestampSeconds ?? null,
      slowThresholdSeconds: deps.slowThresholdSeconds,
      pods: podSummaries(ns, snap, lookupsByPod(deps.rings, deps.nameOf).get(ns)),
    });
  });

  api.get('/pods/:ns/:pod', async (req, res) => {
    const ref = { namespace: name(req.params.ns, 'namespace'), pod: name(req.params.pod, 'pod') };
    const limit = limitParam(req.query.limit);
    const snap = deps.snapshot();
    const rings = ringsOfPod(deps.rings, deps.nameOf, ref);
    const recent = rings.flatMap((x) => x.lookups).sort((a, b) => a.seq - b.seq);
    let podRows: DnsStatsRow[] | undefined;
    try {
      const all = await rows();
      podRows = all?.filter((x) => {
        const n = deps.nameOf(x.cgroupId);
        return n.namespace === ref.namespace && n.pod === ref.pod;
      });
    } catch (err) {
      deps.log.warn({ err }, 'drill-down: dns_stats dump failed; serving the snapshot totals');
    }
    const totals =
      podRows && podRows.length > 0
        ? podCountersFromRows(podRows).client
        : snap?.dns.pods.get(ref.namespace)?.get(ref.pod);
    const known = totals !== undefined || recent.length > 0;
    if (!known) throw new HttpError(404, `no DNS traffic of pod ${ref.namespace}/${ref.pod} seen`);
    const probed = await deps.probe(ref).catch((err: unknown): Pick<DoctorInput, 'resolv'> => ({
      resolv: { error: `probe failed: ${err instanceof Error ? err.message : String(err)}` },
    }));
    const shape = { connected: 0, unconnected: 0, firstRetryDelays: [] as number[] };
    for (const x of rings) {
      shape.connected += x.tally.connected;
      shape.unconnected += x.tally.unconnected;
      shape.firstRetryDelays.push(...x.tally.firstRetryDelays);
    }
    const doctor = runDoctor({
      ...probed,
      counters: totals ? doctorCounters(totals) : undefined,
      drops: podDropCounts(snap, ref),
      shape,
      recent: [...recent].reverse(),
    });
    res.json({
      snapshotAt: snap?.readTimestampSeconds ?? null,
      slowThresholdSeconds: deps.slowThresholdSeconds,
      ...podDetail({
        ref,
        snapshot: snap,
        rows: podRows,
        recent,
        doctor,
        nameOf: deps.nameOf,
        limit,
      }),
    });
  });

  api.get('/health', async (_req, res) => {
    res.json(await deps.health());
  });

  api.get('/qtypes', (_req, res) => {
    res.json({ qtypes: QTYPE_LABELS });
  });

  api.use((_req, _res, next) =>
    next(new HttpError(404, 'no such API endpoint: see docs/drilldown.md')),
  );
  r.use('/api/v1', api);

  for (const route of PAGE_ROUTES) {
    r.get(route, (req, res) => {
      if (req.params.ns !== undefined) name(req.params.ns, 'namespace');
      if (req.params.pod !== undefined) name(req.params.pod, 'pod');
      res.type(page.html!.type).send(page.html!.body);
    });
  }
  r.get('/static/app.js', (_req, res) => void res.type(page.js!.type).send(page.js!.body));
  r.get('/static/app.css', (_req, res) => void res.type(page.css!.type).send(page.css!.body));

  r.use((_req, _res, next) => next(new HttpError(404, 'not found: try / or /api/v1/namespaces')));
  r.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status =
      err instanceof HttpError
        ? err.status
        : typeof (err as { status?: unknown }).status === 'number' &&
            (err as { status: number }).status >= 400 &&
            (err as { status: number }).status < 500
          ? (err as { status: number }).status
          : 500;
    if (status >= 500) deps.log.warn({ err, url: req.originalUrl }, 'drill-down request failed');
    const message = status >= 500 ? 'internal error; see the exporter log' : (err as Error).message;
    if (req.originalUrl.startsWith('/api/')) res.status(status).json({ error: message });
    else res.status(status).type('text/plain').send(`${message}\n`);
  });
  return r;
}
