// dnsrace drill-down page: namespaces -> pods ranked by trouble -> one pod. Reads the JSON
// API of the same listener; every value goes into the DOM as text (never as markup).
/* global document, location, history, localStorage, fetch, Node, setTimeout, clearTimeout */
'use strict';

const TOKEN_KEY = 'dnsrace-drilldown-token';
const REFRESH_MS = 10000;

const CAUSE_TEXT = {
  netfilter_drop: 'Dropped by netfilter on this node',
  conntrack_insert_failed: 'Lost to a conntrack insert race on this node',
  unanswered: 'Lookups never answered',
  answer_lost: 'Server answered, the answer never arrived',
  server_error: 'DNS server errors',
  slow_server: 'The DNS server is slow',
  slow_answer: 'Slow answer from beyond this node',
  search_amplification: 'Search-list walk multiplies queries',
  retransmitted: 'Answered only after a re-send',
  slow: 'Slow lookups',
  nxdomain: 'NXDOMAIN',
  ok: 'OK',
};
const CAUSE_SEVERITY = {
  netfilter_drop: 'critical',
  conntrack_insert_failed: 'critical',
  unanswered: 'critical',
  answer_lost: 'critical',
  server_error: 'critical',
  slow_server: 'warning',
  slow_answer: 'warning',
  search_amplification: 'warning',
  retransmitted: 'warning',
  slow: 'warning',
  nxdomain: 'info',
  ok: 'ok',
};
const KIND_TEXT = {
  slow: 'answered slowly',
  failed: 'failed',
  timeout: 'timed out',
  retransmit: 're-sent',
  nxdomain: 'NXDOMAIN',
};

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat())
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function seconds(s) {
  if (s === null || s === undefined) return '–';
  if (s >= 1) return `${s.toFixed(s >= 10 ? 1 : 2)} s`;
  if (s >= 0.001) return `${(s * 1000).toFixed(s >= 0.01 ? 0 : 1)} ms`;
  return `${Math.round(s * 1e6)} µs`;
}

function ago(unix) {
  if (!unix) return '–';
  const d = Math.max(0, Date.now() / 1000 - unix);
  if (d < 90) return `${Math.round(d)} s ago`;
  if (d < 5400) return `${Math.round(d / 60)} min ago`;
  return `${Math.round(d / 3600)} h ago`;
}

function clock(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
}

function badge(cause) {
  return h(
    'span',
    { class: `badge sev-${CAUSE_SEVERITY[cause] || 'info'}` },
    CAUSE_TEXT[cause] || cause,
  );
}

function nsHref(ns) {
  return `/namespaces/${encodeURIComponent(ns)}`;
}

class Unauthorized extends Error {}

async function api(path) {
  const token = localStorage.getItem(TOKEN_KEY);
  const r = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (r.status === 401) throw new Unauthorized('unauthorized');
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}

function setCrumbs(parts) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren(
    ...parts.flatMap((p, i) => [
      i ? ' › ' : '',
      p.href ? h('a', { href: p.href }, p.text) : h('span', {}, p.text),
    ]),
  );
}

function setUpdated(snapshotAt) {
  document.getElementById('updated').textContent = snapshotAt
    ? `kernel maps read ${ago(snapshotAt)}`
    : '';
}

function stat(value, label) {
  return h('div', { class: 'stat' }, h('b', {}, value), h('span', {}, label));
}

function tokenForm(main) {
  const input = h('input', { type: 'password', autocomplete: 'off', 'aria-label': 'bearer token' });
  const form = h(
    'form',
    { class: 'token' },
    h('h1', {}, 'Token needed'),
    h('p', {}, 'This drill-down requires the bearer token set with --drilldown-token.'),
    input,
    h('button', { type: 'submit' }, 'Open'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, input.value.trim());
    render();
  });
  main.replaceChildren(form);
}

async function renderNamespaces(main) {
  const data = await api('/api/v1/namespaces');
  setCrumbs([{ text: 'Namespaces' }]);
  setUpdated(data.snapshotAt);
  const rows = data.namespaces.map((n) =>
    h(
      'tr',
      {},
      h('td', {}, badge(n.headline.cause), ' ', n.headline.text),
      h('td', {}, h('a', { href: nsHref(n.namespace) }, n.namespace)),
      h('td', {}, n.worstPod ? h('a', { href: n.worstPod.href }, n.worstPod.pod) : '–'),
      h('td', { class: 'num' }, n.queries),
      h('td', { class: 'num' }, n.timeouts),
      h('td', { class: 'num' }, n.drops),
      h('td', { class: 'num' }, seconds(n.p99Seconds)),
    ),
  );
  main.replaceChildren(
    h('h1', {}, 'Namespaces, most trouble first'),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'cause'),
          h('th', {}, 'namespace'),
          h('th', {}, 'worst pod'),
          h('th', { class: 'num' }, 'queries'),
          h('th', { class: 'num' }, 'timeouts'),
          h('th', { class: 'num' }, 'drops'),
          h('th', { class: 'num' }, 'p99'),
        ),
      ),
      h(
        'tbody',
        {},
        rows.length ? rows : h('tr', {}, h('td', { colspan: 7 }, 'No DNS traffic seen yet.')),
      ),
    ),
  );
}

async function renderPods(main, ns) {
  const data = await api(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods`);
  setCrumbs([{ text: 'Namespaces', href: '/' }, { text: ns }]);
  setUpdated(data.snapshotAt);
  const rows = data.pods.map((p) =>
    h(
      'tr',
      {},
      h('td', {}, badge(p.headline.cause), ' ', p.headline.text),
      h('td', {}, h('a', { href: p.href }, p.pod)),
      h('td', { class: 'num' }, p.queries),
      h('td', { class: 'num' }, p.timeouts),
      h('td', { class: 'num' }, p.retransmits),
      h('td', { class: 'num' }, p.drops),
      h('td', { class: 'num' }, seconds(p.p99Seconds)),
      h('td', { class: 'num' }, ago(p.lastEventAt)),
    ),
  );
  main.replaceChildren(
    h('h1', {}, `Pods in ${ns}, most trouble first`),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'cause'),
          h('th', {}, 'pod'),
          h('th', { class: 'num' }, 'queries'),
          h('th', { class: 'num' }, 'timeouts'),
          h('th', { class: 'num' }, 're-sends'),
          h('th', { class: 'num' }, 'drops'),
          h('th', { class: 'num' }, 'p99'),
          h('th', { class: 'num' }, 'last event'),
        ),
      ),
      h(
        'tbody',
        {},
        rows.length ? rows : h('tr', {}, h('td', { colspan: 8 }, 'No pod of this namespace seen.')),
      ),
    ),
  );
}

function histogram(buckets, slowSeconds) {
  if (!buckets.length) return h('p', { class: 'muted' }, 'No answers yet.');
  const W = 900;
  const H = 220;
  const left = 44;
  const bottom = 40;
  const max = Math.max(...buckets.map((b) => b.count));
  const bw = Math.min(48, (W - left) / buckets.length);
  const chart = svg('svg', {
    class: 'hist',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-label': 'latency histogram',
  });
  chart.append(svg('text', { x: 0, y: 12 }, `${max}`));
  chart.append(svg('line', { x1: left - 4, y1: 4, x2: left - 4, y2: H - bottom, stroke: '#999' }));
  const labelEvery = Math.ceil(buckets.length / 12);
  buckets.forEach((b, i) => {
    const bh = max ? Math.max(b.count ? 2 : 0, ((H - bottom - 8) * b.count) / max) : 0;
    const x = left + i * bw;
    const bar = svg('rect', {
      class: b.le > slowSeconds ? 'bar slow' : 'bar',
      x: x + 1,
      y: H - bottom - bh,
      width: Math.max(1, bw - 2),
      height: bh,
    });
    bar.append(svg('title', {}, `≤ ${seconds(b.le)}: ${b.count}`));
    chart.append(bar);
    if (i % labelEvery === 0)
      chart.append(svg('text', { x: x + 2, y: H - bottom + 16 }, `≤${seconds(b.le)}`));
  });
  chart.append(
    svg(
      'text',
      { x: left, y: H - 6 },
      'first send → answer (bars in red: slower than the slow-lookup threshold)',
    ),
  );
  return chart;
}

function findingEl(f) {
  return h(
    'div',
    { class: `finding sev-${f.severity}` },
    h('h3', {}, h('span', { class: `badge sev-${f.severity}` }, f.severity), ' ', f.title),
    f.detail ? h('p', {}, f.detail) : null,
    f.fixes.length
      ? h(
          'ul',
          {},
          f.fixes.map((x) => h('li', {}, x)),
        )
      : null,
  );
}

function lookupsTable(recent, empty) {
  if (!recent.length) return h('p', { class: 'muted' }, empty);
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'what happened'),
        h('th', {}, 'name'),
        h('th', {}, 'type'),
        h('th', { class: 'num' }, 'took'),
        h('th', { class: 'num' }, 'in server'),
        h('th', { class: 'num' }, 're-sends'),
        h('th', {}, 'answer'),
        h('th', {}, 'when'),
      ),
    ),
    h(
      'tbody',
      {},
      recent.map((l) =>
        h(
          'tr',
          {},
          h(
            'td',
            {},
            badge(l.diagnosis),
            h('div', { class: 'muted' }, KIND_TEXT[l.kind] || l.kind),
          ),
          h('td', { class: 'mono' }, l.name + (l.nameTruncated ? '…' : '')),
          h('td', {}, l.qtype),
          h('td', { class: 'num' }, seconds(l.latencySeconds)),
          h(
            'td',
            { class: 'num', title: l.serverPod || '' },
            l.serverSideSeconds === null ? '–' : seconds(l.serverSideSeconds),
          ),
          h('td', { class: 'num' }, l.retransmits),
          h(
            'td',
            {},
            l.rcode || 'none',
            h('div', { class: 'muted mono' }, `${l.server} id ${l.dnsId}`),
          ),
          h(
            'td',
            { class: 'num', title: new Date(l.at * 1000).toISOString() },
            clock(l.at),
            h('div', { class: 'muted' }, ago(l.at)),
          ),
        ),
      ),
    ),
  );
}

function resolverBox(d) {
  const rc = d.resolvConf;
  const amp = d.amplification;
  return h(
    'dl',
    { class: 'kv' },
    h('dt', {}, 'resolver'),
    h(
      'dd',
      {},
      h('b', {}, d.libc.verdict),
      h(
        'ul',
        {},
        d.libc.evidence.map((e) => h('li', { class: 'muted' }, e)),
      ),
    ),
    h('dt', {}, 'amplification'),
    h(
      'dd',
      {},
      amp.factor === null
        ? '–'
        : `×${amp.factor} (${amp.queries} queries, ${amp.noerror} NOERROR, ${amp.nxdomain} NXDOMAIN)`,
    ),
    ...(rc
      ? [
          h('dt', {}, 'ndots'),
          h('dd', {}, rc.ndots),
          h('dt', {}, 'search'),
          h(
            'dd',
            { class: 'mono' },
            rc.search.length ? `${rc.search.length}: ${rc.search.join(' ')}` : 'none',
          ),
          h('dt', {}, 'nameserver'),
          h('dd', { class: 'mono' }, rc.nameservers.join(' ')),
          h('dt', {}, 'options'),
          h('dd', { class: 'mono' }, rc.options.join(' ') || 'none'),
          h('dt', {}, 'read from'),
          h('dd', { class: 'mono muted' }, rc.source),
        ]
      : [h('dt', {}, 'resolv.conf'), h('dd', { class: 'muted' }, d.resolvConfError || 'unknown')]),
  );
}

function splitTable(d) {
  const rc = Object.entries(d.rcodes).filter(([, n]) => n > 0);
  const qt = d.qtypes ? Object.entries(d.qtypes).filter(([, t]) => t.queries > 0) : [];
  return h(
    'div',
    { class: 'grid' },
    h(
      'div',
      {},
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, h('th', {}, 'answer'), h('th', { class: 'num' }, 'count'))),
        h(
          'tbody',
          {},
          rc.map(([r, n]) => h('tr', {}, h('td', {}, r), h('td', { class: 'num' }, n))),
        ),
      ),
    ),
    qt.length
      ? h(
          'div',
          {},
          h(
            'table',
            {},
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', {}, 'type'),
                h('th', { class: 'num' }, 'queries'),
                h('th', { class: 'num' }, 'answered'),
                h('th', { class: 'num' }, 'NXDOMAIN'),
                h('th', { class: 'num' }, 're-sends'),
                h('th', { class: 'num' }, 'timeouts'),
              ),
            ),
            h(
              'tbody',
              {},
              qt.map(([q, t]) =>
                h(
                  'tr',
                  {},
                  h('td', {}, q),
                  h('td', { class: 'num' }, t.queries),
                  h('td', { class: 'num' }, t.answered),
                  h('td', { class: 'num' }, t.nxdomain),
                  h('td', { class: 'num' }, t.retransmits),
                  h('td', { class: 'num' }, t.timeouts),
                ),
              ),
            ),
          ),
        )
      : null,
  );
}

async function renderPod(main, ns, pod) {
  const d = await api(`/api/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(pod)}`);
  setCrumbs([{ text: 'Namespaces', href: '/' }, { text: ns, href: nsHref(ns) }, { text: pod }]);
  setUpdated(d.snapshotAt);
  const s = d.summary;
  const sev = CAUSE_SEVERITY[s.headline.cause] || 'info';
  main.replaceChildren(
    h('h1', {}, h('span', { class: 'muted' }, `${ns} / `), pod),
    h(
      'div',
      { class: `headline sev-${sev}`, id: 'headline' },
      CAUSE_TEXT[s.headline.cause] || s.headline.cause,
      h('small', {}, s.headline.text),
    ),
    h('h2', {}, 'What to do'),
    d.doctor.findings.length
      ? h('div', { id: 'findings' }, d.doctor.findings.map(findingEl))
      : h('p', { class: 'muted' }, 'Nothing to fix found.'),
    h(
      'h2',
      {},
      `Recent slow and failed lookups (slower than ${seconds(d.slowThresholdSeconds)}, failed, timed out, re-sent after a drop)`,
    ),
    h(
      'div',
      { id: 'lookups' },
      lookupsTable(
        d.recent.filter((l) => l.kind !== 'nxdomain'),
        'No slow or failed lookup seen since the exporter started.',
      ),
    ),
    h('h2', {}, 'Numbers'),
    h(
      'div',
      { class: 'stats' },
      stat(s.queries, 'queries'),
      stat(s.answered, 'answered'),
      stat(s.timeouts, 'timeouts'),
      stat(s.retransmits, 're-sends'),
      stat(s.drops, 'dropped packets'),
      stat(seconds(s.p50Seconds), 'p50'),
      stat(seconds(s.p99Seconds), 'p99'),
      stat(s.amplification === null ? '–' : `×${s.amplification}`, 'queries per answer'),
    ),
    h('h2', {}, 'Latency'),
    histogram(d.histogram, d.slowThresholdSeconds),
    h('h2', {}, 'Answers by code and type'),
    splitTable(d),
    h('h2', {}, 'Resolver'),
    resolverBox(d.doctor),
    h('h2', {}, 'Recent NXDOMAIN answers (search-list walks show here)'),
    h(
      'div',
      { id: 'nxdomain' },
      lookupsTable(
        d.recent.filter((l) => l.kind === 'nxdomain').slice(0, 12),
        'No NXDOMAIN answer seen.',
      ),
    ),
  );
}

let timer;

async function render() {
  clearTimeout(timer);
  const main = document.getElementById('main');
  const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === 'pods' && parts.length === 3) await renderPod(main, parts[1], parts[2]);
    else if (parts[0] === 'namespaces' && parts.length === 2) await renderPods(main, parts[1]);
    else await renderNamespaces(main);
    timer = setTimeout(render, REFRESH_MS);
  } catch (err) {
    if (err instanceof Unauthorized) return tokenForm(main);
    main.replaceChildren(
      h('h1', {}, 'Cannot show this'),
      h('p', {}, err.message),
      h('p', {}, h('a', { href: '/' }, 'Back to the namespaces')),
    );
  }
}

if (location.hash.startsWith('#token=')) {
  localStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, '', location.pathname);
}
document.addEventListener('DOMContentLoaded', render);
