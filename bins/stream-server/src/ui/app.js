// The operator console: plain ES2020, no framework. Everything comes from the admin
// JSON API with the token kept in sessionStorage (this tab only); nothing is built
// with innerHTML from data (text nodes only), so a source id or payload cannot inject.
'use strict';

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const state = {
  role: null, tab: 'overview', timer: null,
  sources: { offset: 0, q: '', status: '' }, lastCounts: new Map(),
  dlq: { offset: 0 }, workers: new Map(), clusterOn: false, loadFailed: false,
};

// ---- HTTP -------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem('token');
  if (token) headers.Authorization = `Bearer ${token}`;
  if (method !== 'GET') headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method, headers, body: method === 'GET' ? undefined : JSON.stringify(body || {}),
    credentials: 'omit', cache: 'no-store',
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const why = data && data.error ? data.error : `HTTP ${resp.status}`;
    throw new HttpError(resp.status, why);
  }
  return data;
}

// ---- small DOM helpers ------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function show(node, on) { node.hidden = !on; }

// Replaces the children of #id, skipping absent (null) parts.
function put(id, ...children) { $(id).replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined)); }

function message(text, isError) {
  const m = $('message');
  m.textContent = text || '';
  m.className = isError ? 'error' : '';
  show(m, Boolean(text));
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.floor(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor(s % 3600 / 60)).padStart(2, '0')} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor(s % 86400 / 3600)} h`;
}

function since(iso) {
  if (!iso) return null;
  return Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
}

function when(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '—'; }

const canChange = () => state.role !== 'read';

// ---- sign-in ----------------------------------------------------------------------

async function start() {
  let who;
  try {
    who = await api('/whoami');
  } catch (e) {
    stopTimer();
    show($('app'), false); show($('tabs'), false); show($('forget'), false);
    if (e.status === 401) {
      const had = sessionStorage.getItem('token');
      sessionStorage.removeItem('token');
      message(had
        ? 'Wrong token: the server refused it (401). No data is shown. Enter the admin or read-only token.'
        : 'This server needs a token. Enter the admin or the read-only token.', Boolean(had));
      show($('login'), true);
      $('token').focus();
    } else {
      message(`Cannot reach the admin API: ${e.message}`, true);
    }
    return;
  }
  state.role = who.role;
  message('');
  show($('login'), false);
  document.body.classList.toggle('read-only', !canChange());
  if (!canChange()) document.querySelectorAll('.admin-only').forEach((n) => n.remove());
  $('role').textContent = { admin: 'admin', read: 'read-only token: no actions', open: 'no token configured (loopback)' }[who.role] || who.role;
  show($('forget'), Boolean(sessionStorage.getItem('token')));
  show($('tabs'), true);
  show($('app'), true);
  openTab(location.hash.slice(1) || state.tab);
}

function stopTimer() { if (state.timer) clearInterval(state.timer); state.timer = null; }

function openTab(tab) {
  if (!['overview', 'sources', 'dlq', 'config'].includes(tab)) tab = 'overview';
  state.tab = tab;
  if (location.hash.slice(1) !== tab) history.replaceState(null, '', `#${tab}`);
  for (const b of document.querySelectorAll('.tab')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const s of document.querySelectorAll('main > section')) show(s, s.id === tab);
  stopTimer();
  refresh();
  // The dead letters and the config change only when someone acts: no polling there.
  if (tab === 'overview' || tab === 'sources') state.timer = setInterval(refresh, 2000);
}

async function refresh() {
  const tab = state.tab;
  try {
    if (tab === 'overview') await loadOverview();
    else if (tab === 'sources') await loadSources();
    else if (tab === 'dlq') await loadDlq();
    else await loadConfig();
    $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    // A loading error goes once loading works again; an action's message stays.
    if (state.loadFailed) { state.loadFailed = false; message(''); }
  } catch (e) {
    if (e.status === 401) { start(); return; }
    state.loadFailed = true;
    message(`Loading ${tab} failed: ${e.message}`, true);
  }
}

// ---- overview ---------------------------------------------------------------------

// 10-second moving averages of the last `seconds` values (bursty sources stay readable).
function smooth(values, seconds) {
  const out = [];
  const from = Math.max(0, values.length - seconds);
  for (let i = from; i < values.length; i++) {
    const w = values.slice(Math.max(0, i - 9), i + 1);
    out.push(w.reduce((a, b) => a + b, 0) / w.length);
  }
  return out;
}

// The ring covers 15 minutes; a server up for less shows its uptime only.
function chart(raw, uptime) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 900, H = 160, PAD = 4, TOP = 22; // TOP: room for the label
  const seconds = Math.max(30, Math.min(raw.records_in.length, uptime + 1));
  // Out first: in (dashed) is drawn over it, so both show where they coincide.
  const series = [['records_out', 'var(--out)'], ['records_in', 'var(--in)'], ['dead_lettered', 'var(--dead)']];
  const t = Object.fromEntries(series.map(([k]) => [k, smooth(raw[k], seconds)]));
  const max = Math.max(1, ...series.flatMap(([k]) => t[k]));
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `records per second, peak ${max.toFixed(1)}`);
  for (const [key, colour] of series) {
    const pts = t[key].map((v, i) => `${(i * W / (t[key].length - 1 || 1)).toFixed(1)},${(H - PAD - v * (H - PAD - TOP) / max).toFixed(1)}`);
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts.join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', colour);
    line.setAttribute('stroke-width', '1.5');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    line.setAttribute('class', `line-${key}`);
    // In and out often coincide: in is dashed so both show.
    if (key === 'records_in') line.setAttribute('stroke-dasharray', '6 4');
    svg.append(line);
  }
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', '6'); label.setAttribute('y', '14'); label.setAttribute('font-size', '12');
  label.setAttribute('fill', '#5f6b76');
  const span = seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${seconds} s`;
  label.textContent = `peak ${max.toFixed(1)}/s (10 s average) · ${span} ago → now`;
  svg.append(label);
  put('chart', svg);
}

function recent(values, seconds) {
  const tail = values.slice(-seconds - 1, -1); // the current second is still filling
  return tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
}

function meter(label, value, cap) {
  const pct = cap ? Math.min(100, 100 * value / cap) : 0;
  const bar = el('span');
  bar.style.width = `${pct}%`;
  return el('div', {}, el('div', { text: `${label}: ${value}${cap ? ` of ${cap}` : ''}` }), el('div', { class: 'meter' }, bar));
}

function healthItem(ok, text) { return el('li', { class: ok ? 'ok' : 'bad', text: `${ok ? '●' : '▲'} ${text}` }); }

async function loadOverview() {
  const [t, summary, ready, page] = await Promise.all([
    api('/throughput'), api('/metrics/summary?streams=false'), readyState(),
    api('/streams?limit=1'), loadCluster(),
  ]);
  chart(t, summary.uptime_seconds);
  put('rates',
    ...[['in', 'records_in', 'legend-in'], ['out', 'records_out', 'legend-out'], ['dead-lettered', 'dead_lettered', 'legend-dead']]
      .map(([name, key, cls]) => el('span', { class: `figure ${cls}` }, `${name} `, el('b', { text: recent(t[key], 10).toFixed(1) }), ' /s (last 10 s)')));
  const c = ready.components || {};
  const h = ready.health || {};
  const items = [];
  if (c.producer) {
    items.push(healthItem(c.producer.kafka_connected, c.producer.kafka_connected
      ? `Kafka connected (${h.producer ? h.producer.brokers : '?'} broker(s))`
      : `Kafka unreachable: ${(h.producer && h.producer.last_error) || 'no reason given'}`));
  }
  if (c.dlq) {
    items.push(healthItem(c.dlq.healthy, c.dlq.reachable
      ? `DLQ store reachable, ${c.dlq.pending} pending, ${c.dlq.buffered} buffered`
      : `DLQ store unreachable (${c.dlq.buffered} rows buffered in memory)`));
  }
  for (const r of ready.reasons || []) items.push(healthItem(false, r));
  if (!items.length) items.push(healthItem(ready.ready, ready.ready ? 'ready' : 'not ready'));
  put('health', ...items);
  const q = summary.queue;
  put('queue',
    el('div', { class: 'muted', text: `${q.size} held · ${q.utilization_percent.toFixed(1)} % of the tighter cap · ${q.dropped} dropped since start` }),
    ...['critical', 'high', 'normal', 'low'].map((p) => meter(p, (q.by_priority || {})[p] || 0, q.max_size)),
    q.max_bytes ? meter('bytes', Object.values(q.bytes_by_priority || {}).reduce((a, b) => a + b, 0), q.max_bytes) : null);
  const th = summary.throttling;
  const lag = (h.lag && h.lag.watched_groups) || {};
  const cls = th.current_state === 'normal' ? 'ok' : th.current_state === 'moderate' ? 'warn' : 'bad';
  put('throttle',
    el('div', {}, 'State ', el('b', { class: cls, text: th.current_state }), ` · backoff level ${th.backoff_level} · ${th.rate_adjustments} rate changes`),
    el('div', { class: 'muted', text: `lag probe: ${(h.lag && h.lag.mode) || '?'}${h.lag && h.lag.error ? ` (failing: ${h.lag.error})` : ''}` }),
    Object.keys(lag).length
      ? el('table', {}, el('tbody', {}, Object.entries(lag).map(([g, n]) => el('tr', {}, el('td', { text: g }), el('td', { text: `${n} behind` })))))
      : el('div', { class: 'muted', text: 'no consumer group watched' }));
  put('source-counts',
    el('div', { text: `${page.total} configured` }),
    ...Object.entries(page.by_status).map(([st, n]) => el('div', { class: `status-${st}`, text: `${n} ${st}` })),
    c.streams && c.streams.failing.length ? el('div', { class: 'bad', text: `${c.streams.failing.length} failing: ${c.streams.failing.slice(0, 10).join(', ')}` }) : null);
}

async function readyState() {
  // 503 still carries the reasons: read the body either way.
  const headers = {};
  const token = sessionStorage.getItem('token');
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch('/ready', { headers, credentials: 'omit', cache: 'no-store' });
  return resp.json();
}

async function loadCluster() {
  let view;
  try {
    view = await api('/cluster');
  } catch (e) {
    if (e.status !== 404) throw e;
    state.clusterOn = false;
    show($('cluster-box'), false);
    return;
  }
  state.clusterOn = true;
  state.workers = new Map();
  for (const m of view.members) for (const s of (m.report && m.report.sources) || []) state.workers.set(s, m.worker_id);
  for (const s of view.sources) state.workers.set(s, view.worker_id);
  show($('cluster-box'), true);
  put('cluster', el('div', { class: 'muted', text: `group ${view.group_id}, this worker ${view.worker_id}` }),
    el('table', {}, el('tbody', {}, view.members.map((m) => el('tr', {},
      el('td', { text: m.worker_id }),
      el('td', { class: m.last_seen_ms_ago < 10000 ? 'ok' : 'bad', text: `seen ${(m.last_seen_ms_ago / 1000).toFixed(0)} s ago` }),
      el('td', { text: `${((m.report && m.report.sources) || []).length} sources` }))))));
}

// ---- sources ----------------------------------------------------------------------

function perMinute(s) {
  const now = Date.now();
  const prev = state.lastCounts.get(s.id);
  state.lastCounts.set(s.id, { n: s.records_processed, at: now });
  if (!prev || now - prev.at < 500) return prev && prev.rate !== undefined ? prev.rate : null;
  const rate = Math.max(0, (s.records_processed - prev.n) * 60000 / (now - prev.at));
  state.lastCounts.get(s.id).rate = rate;
  return rate;
}

function sourceActions(s) {
  if (!canChange()) return null;
  const allowed = {
    running: ['pause', 'stop'], paused: ['resume', 'stop'], stopped: ['start'],
    disabled: ['start'], unassigned: [],
  }[s.status] || [];
  return el('td', { class: 'actions-col' }, allowed.map((a) => el('button', {
    type: 'button', class: 'action', 'data-action': a, text: a,
    onclick: (ev) => streamAction(ev.target, s.id, a),
  })));
}

async function streamAction(button, id, action) {
  button.disabled = true;
  try {
    const info = await api(`/streams/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
    message(`${id}: ${action} done, now ${info.status}.`);
  } catch (e) {
    message(`${id}: ${action} failed: ${e.message}`, true);
  }
  await loadSources();
}

function sourceRow(s) {
  const rate = perMinute(s);
  const parts = s.parts.length
    ? s.parts.map((p) => `${p.last_status || '—'}${p.consecutive_failures ? ` (${p.consecutive_failures} failed)` : ''}`).join(', ')
    : '—';
  const partsTitle = s.parts.map((p) => `${p.name}: ${p.last_status || 'not asked yet'}${p.last_error ? ` — ${p.last_error}` : ''}`).join('\n');
  const poll = s.last_poll_at ? `${age(since(s.last_poll_at))} ago, ${s.last_poll_outcome}` : 'not yet';
  const worker = state.clusterOn ? state.workers.get(s.id) || '—' : 'local';
  return el('tr', { 'data-id': s.id, 'data-status': s.status },
    el('td', { class: 'id', text: s.id, title: s.source_type }),
    el('td', { class: `status status-${s.status}`, text: s.failing ? `${s.status}, failing` : s.status, title: s.last_error || undefined }),
    sourceActions(s),
    el('td', { text: s.mode }),
    el('td', { text: s.priority }),
    el('td', { class: s.last_poll_outcome === 'error' ? 'bad' : undefined, text: poll, title: s.last_error || undefined }),
    el('td', { class: 'freshness', title: s.freshness_basis ? `from ${s.freshness_basis.replace('_', ' ')}: ${s.newest_event_at}` : 'no record or fetch yet', text: s.freshness_seconds === null ? '—' : `${age(s.freshness_seconds)}${s.freshness_basis === 'last_fetch' ? ' (fetch)' : ''}` }),
    el('td', { text: rate === null ? '…' : rate.toFixed(0) }),
    el('td', { class: s.errors ? 'warn' : undefined, text: s.errors }),
    el('td', { text: s.records_dead_lettered }),
    el('td', { class: 'wrap parts', title: partsTitle || undefined, text: parts }),
    el('td', { text: worker }));
}

async function loadSources() {
  const st = state.sources;
  const params = new URLSearchParams({ q: st.q, status: st.status, offset: st.offset, limit: PAGE });
  const [page] = await Promise.all([api(`/streams?${params}`), state.clusterOn ? loadCluster() : null]);
  if (page.matched > 0 && st.offset >= page.matched) { st.offset = 0; return loadSources(); }
  $('sources-table').tBodies[0].replaceChildren(...page.items.map(sourceRow));
  const last = Math.min(page.matched, st.offset + page.items.length);
  $('source-range').textContent = page.matched
    ? `${st.offset + 1}–${last} of ${page.matched}${page.matched !== page.total ? ` matching (${page.total} sources)` : ' sources'}`
    : `no source matches (${page.total} sources)`;
  $('source-prev').disabled = st.offset === 0;
  $('source-next').disabled = last >= page.matched;
}

// ---- dead letters -----------------------------------------------------------------

function dlqFilter() {
  const f = {};
  for (const [key, id] of [['source_id', 'dlq-source'], ['reason', 'dlq-reason'], ['status', 'dlq-status']]) {
    const v = $(id).value.trim();
    if (v) f[key] = v;
  }
  return f;
}

function confirmThen(text, act) {
  const d = $('confirm');
  $('confirm-text').textContent = text;
  const yes = $('confirm-yes'), no = $('confirm-no');
  const done = () => { yes.onclick = null; no.onclick = null; d.close(); };
  yes.onclick = async () => { done(); await act(); };
  no.onclick = done;
  d.showModal();
}

async function loadDlq() {
  const f = dlqFilter();
  const params = new URLSearchParams({ ...f, limit: PAGE, offset: state.dlq.offset });
  const [list, stats] = await Promise.all([api(`/dlq?${params}`), api('/dlq/stats')]);
  put('dlq-reasons', ...stats.by_reason.map(([r]) => el('option', { value: r })));
  put('dlq-stats',
    el('span', { text: `${stats.total} row(s), ${stats.pending} pending` }),
    ...stats.by_status.map(([s, n]) => el('span', { class: 'muted', text: `${s}: ${n}` })),
    stats.oldest_pending_at ? el('span', { class: 'muted', text: `oldest pending ${when(stats.oldest_pending_at)}` }) : null);
  $('dlq-table').tBodies[0].replaceChildren(...list.items.map(dlqRow));
  $('dlq-range').textContent = list.items.length
    ? `${state.dlq.offset + 1}–${state.dlq.offset + list.items.length}` : 'no dead letter matches';
  $('dlq-prev').disabled = state.dlq.offset === 0;
  $('dlq-next').disabled = list.items.length < PAGE;
}

function dlqRow(l) {
  const topic = () => $('dlq-topic') && $('dlq-topic').value.trim();
  const actions = canChange() ? el('td', { class: 'actions-col' },
    el('button', { type: 'button', class: 'action', 'data-action': 'replay', text: 'replay',
      onclick: () => { const t = topic(); confirmThen(`Replay 1 row (dead letter ${l.id}) to ${t ? `topic ${t}` : `its topic ${l.source_topic}`}?`, () => dlqAct(() => api(`/dlq/${l.id}/replay${t ? `?topic=${encodeURIComponent(t)}` : ''}`, { method: 'POST' }), 'replay')); } }),
    el('button', { type: 'button', class: 'action', 'data-action': 'discard', text: 'discard',
      onclick: () => confirmThen(`Discard 1 row (dead letter ${l.id})? It is kept as discarded and never sent.`, () => dlqAct(() => api(`/dlq/${l.id}`, { method: 'DELETE' }), 'discard')) })) : null;
  return el('tr', { 'data-id': l.id, 'data-status': l.status },
    el('td', {}, el('button', { type: 'button', class: 'link-button', title: 'show the payload', text: `#${l.id}`, onclick: () => openPayload(l.id) })),
    el('td', { text: l.source_id }), el('td', { text: l.source_topic }),
    el('td', { text: l.failure_reason }), el('td', { class: 'status', text: l.status }),
    el('td', { text: l.retry_count }), el('td', { text: when(l.created_at) }),
    el('td', { text: l.payload_bytes }), el('td', { class: 'wrap', text: l.error_details }), actions);
}

async function openPayload(id) {
  try {
    // One row with its payload: the list itself never carries payloads.
    const f = dlqFilter();
    const list = await api(`/dlq?${new URLSearchParams({ ...f, payload: true, limit: PAGE, offset: state.dlq.offset })}`);
    const row = list.items.find((l) => l.id === id);
    const p = $('payload');
    p.textContent = row ? `Dead letter #${id} payload:\n${typeof row.payload === 'string' ? row.payload : JSON.stringify(row.payload, null, 2)}` : `Dead letter #${id} is no longer listed.`;
    show(p, true);
    p.scrollIntoView({ block: 'nearest' });
  } catch (e) {
    message(`Payload of #${id}: ${e.message}`, true);
  }
}

async function dlqAct(call, what) {
  try {
    const out = await call();
    message(`${what}: ${out && out.replayed !== undefined ? `${out.replayed} replayed, ${out.failed} failed` : out && out.deleted !== undefined ? `${out.deleted} deleted` : 'done'}.`);
  } catch (e) {
    message(`${what} failed: ${e.message}`, true);
  }
  await loadDlq();
}

async function replayMatching() {
  const f = dlqFilter();
  f.status = f.status || 'permanent_failure';
  // Count what the replay takes: the same filter, up to the replay's own limit.
  const rows = await api(`/dlq?${new URLSearchParams({ ...f, limit: 1000 })}`);
  const n = rows.items.length;
  if (!n) { message('No dead letter matches the filter: nothing to replay.'); return; }
  const t = $('dlq-topic').value.trim();
  const what = Object.entries(f).map(([k, v]) => `${k} ${v}`).join(', ');
  confirmThen(`Replay ${n}${n === 1000 ? ' (the first 1000)' : ''} row(s) matching ${what} to ${t ? `topic ${t}` : 'their own topics'}?`,
    () => dlqAct(() => api('/dlq/replay', { method: 'POST', body: { ...f, limit: 1000, ...(t ? { topic: t } : {}) } }), 'replay'));
}

async function purgeSettled() {
  const stats = await api('/dlq/stats');
  const settled = ['replayed', 'retry_success', 'discarded'];
  const n = stats.by_status.filter(([s]) => settled.includes(s)).reduce((a, [, c]) => a + c, 0);
  if (!n) { message('No settled row (replayed, retry_success, discarded): nothing to purge.'); return; }
  confirmThen(`Delete ${n} settled row(s) (${settled.join(', ')}) for good? Pending rows are kept.`,
    () => dlqAct(() => api('/dlq/purge', { method: 'POST', body: { status: settled, older_than_days: 0 } }), 'purge'));
}

// ---- config -----------------------------------------------------------------------

async function loadConfig() {
  const [cfg, w] = await Promise.all([api('/config'), api('/config/warnings')]);
  put('warnings', ...(w.warnings.length
    ? w.warnings.map((x) => el('li', { class: 'warn' }, el('code', { text: x.path || '(file)' }), `: ${x.message}`, x.hint ? el('div', { class: 'muted', text: x.hint }) : null))
    : [el('li', { class: 'ok', text: 'none' })]));
  $('config-text').textContent = JSON.stringify(cfg, null, 2);
}

// ---- wiring -----------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('token', $('token').value.trim());
    $('token').value = '';
    start();
  });
  $('forget').addEventListener('click', () => { sessionStorage.removeItem('token'); location.reload(); });
  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => openTab(b.dataset.tab));
  let typing;
  $('source-q').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.sources.q = $('source-q').value.trim(); state.sources.offset = 0; loadSources().catch((e) => message(e.message, true)); }, 250);
  });
  $('source-status').addEventListener('change', () => { state.sources.status = $('source-status').value; state.sources.offset = 0; refresh(); });
  $('source-prev').addEventListener('click', () => { state.sources.offset = Math.max(0, state.sources.offset - PAGE); refresh(); });
  $('source-next').addEventListener('click', () => { state.sources.offset += PAGE; refresh(); });
  $('dlq-refresh').addEventListener('click', () => { state.dlq.offset = 0; refresh(); });
  $('dlq-prev').addEventListener('click', () => { state.dlq.offset = Math.max(0, state.dlq.offset - PAGE); refresh(); });
  $('dlq-next').addEventListener('click', () => { state.dlq.offset += PAGE; refresh(); });
  if ($('dlq-replay-all')) $('dlq-replay-all').addEventListener('click', () => replayMatching().catch((e) => message(e.message, true)));
  if ($('dlq-purge')) $('dlq-purge').addEventListener('click', () => purgeSettled().catch((e) => message(e.message, true)));
  start();
});
