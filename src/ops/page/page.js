// smtp-sidecar status page: plain JavaScript, no build step, no library.
// The admin token comes from the URL fragment (#token=..., printed by `smtp-sidecar queue page`),
// which the browser never sends to a server; it is kept in sessionStorage (this origin and tab
// only) and sent as "Authorization: Bearer" on every /admin request. Everything shown is set
// with textContent: an address or an upstream's answer can never become markup.
'use strict';

const TOKEN_KEY = 'smtp-sidecar-admin-token';
const REFRESH_MS = 5000;

function takeToken() {
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, match[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const token = takeToken();
const $ = (id) => document.getElementById(id);

function notice(text, isError) {
  const el = $('notice');
  el.textContent = text;
  el.classList.toggle('error', Boolean(isError));
}

async function api(method, path) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'x-smtp-sidecar-client': 'page' },
    cache: 'no-store',
    credentials: 'omit',
  });
  let body;
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  if (!response.ok && response.status !== 404) {
    const error = new Error(body.error || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return { status: response.status, body };
}

// ---- formatting ----

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${two(h)}h`;
  if (h > 0) return `${h}h${two(m)}m`;
  if (m > 0) return `${m}m${two(s % 60)}s`;
  return `${s % 60}s`;
}

let serverNow = Date.now();
const ago = (iso) => (iso ? `${duration(serverNow - Date.parse(iso))} ago` : '—');
const until = (iso) => {
  if (!iso) return '—';
  const ms = Date.parse(iso) - serverNow;
  return ms > 0 ? `in ${duration(ms)}` : 'now';
};
const address = (a) => (a === '' ? '<>' : a);

function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.text !== undefined) node.textContent = options.text;
  if (options.className) node.className = options.className;
  if (options.label) node.dataset.label = options.label;
  if (options.title) node.title = options.title;
  const kids = children.filter(Boolean);
  // a cell's content is one block, so the phone layout (label | content) keeps it together
  if (tag === 'td' && kids.length > 0) node.append(el('div', {}, kids));
  else node.append(...kids);
  return node;
}

function senderCell(row) {
  const original = row.originalSender ?? row.sender;
  const lines = [el('div', { text: address(original) })];
  if (original !== row.sender) lines.push(el('div', { className: 'small', text: `sent as ${address(row.sender)}` }));
  if (row.originalFrom && row.originalFrom.toLowerCase() !== original.toLowerCase()) lines.push(el('div', { className: 'small', text: `From: ${row.originalFrom}` }));
  return el('td', { label: 'Sender' }, lines);
}

function actionButton(action, qid, text, className) {
  const button = el('button', { text, className });
  button.type = 'button';
  button.dataset.action = action;
  button.dataset.qid = qid;
  button.setAttribute('aria-label', `${text} message ${qid}`);
  return button;
}

function fill(tableId, emptyId, rows) {
  const tbody = $(tableId).tBodies[0];
  tbody.replaceChildren(...rows);
  $(tableId).hidden = rows.length === 0;
  if (emptyId) $(emptyId).hidden = rows.length !== 0;
}

// ---- sections ----

function renderCounters(totals, data) {
  const items = [
    ['Received', totals.received],
    ['Rejected', totals.rejected],
    ['Delivered (rcpt)', totals.delivered],
    ['Deferred (rcpt)', totals.deferred],
    ['Bounced (rcpt)', totals.failed],
    ['In queue', data.queued.total],
    ['Failed mail', data.failed.total],
  ];
  $('counters').replaceChildren(...items.map(([name, value]) => el('div', {}, [el('dt', { text: name }), el('dd', { text: String(value) })])));
}

function renderUpstreams(upstreams) {
  fill(
    'upstreams',
    null,
    upstreams.map((u) =>
      el('tr', {}, [
        el('td', { label: 'Upstream', text: u.name, className: 'mono' }),
        el('td', { label: 'State' }, [
          el('span', { className: u.up ? 'state-up' : 'state-down', text: u.up ? 'up' : 'down' }),
          u.up ? null : el('div', { className: 'small', text: u.downUntil ? `skipped until ${new Date(u.downUntil).toLocaleTimeString()}` : '' }),
        ]),
        el('td', { label: 'Last error' }, [
          el('div', { className: 'answer', text: u.lastError ?? '—' }),
          u.lastErrorAt ? el('div', { className: 'small', text: ago(u.lastErrorAt) }) : null,
        ]),
        el('td', { label: 'Last success', text: ago(u.lastSuccessAt) }),
      ]),
    ),
  );
}

function renderTokens(tokens) {
  $('tokens-wrap').hidden = tokens.length === 0;
  fill(
    'tokens',
    null,
    tokens.map((t) => {
      const expired = t.expiresAt && Date.parse(t.expiresAt) <= serverNow;
      const state = t.lastError ? 'failing' : t.expiresAt ? (expired ? 'expired' : 'valid') : 'not fetched yet';
      return el('tr', {}, [
        el('td', { label: 'Upstream', text: t.upstream, className: 'mono' }),
        el('td', { label: 'Token' }, [
          el('span', { className: t.lastError || expired ? 'state-down' : t.expiresAt ? 'state-up' : '', text: state }),
          el('div', { className: 'small', text: `${t.fetches} fetch(es), last ${ago(t.lastSuccessAt)}` }),
          t.certificateWarning ? el('div', { className: 'small', text: t.certificateWarning }) : null,
        ]),
        el('td', { label: 'Expires', text: t.expiresAt ? `${until(t.expiresAt)} (${new Date(t.expiresAt).toLocaleTimeString()})` : '—' }),
        el('td', { label: 'Last error' }, [el('div', { className: 'answer', text: t.lastError ?? '—' }), t.lastErrorAt ? el('div', { className: 'small', text: ago(t.lastErrorAt) }) : null]),
      ]);
    }),
  );
}

/**
 * A table of messages (queue or failed mail) and the count in its heading: "(total)", or
 * "(total; the N oldest shown)" when the list was cut. Each row starts with the queue ID;
 * `cells` gives the rest.
 */
function fillMessages(id, list, shown, cells) {
  $(`${id}-count`).textContent = list.total > list.messages.length ? `(${list.total}; the ${list.messages.length} ${shown} shown)` : `(${list.total})`;
  fill(
    id,
    `${id}-empty`,
    list.messages.map((m) => el('tr', { title: m.qid }, [el('td', { label: 'Queue ID', text: m.qid, className: 'qid' }), ...cells(m)])),
  );
}

function renderQueue(queued) {
  fillMessages('queue', queued, 'oldest', (m) => [
    el('td', { label: 'Age', text: duration(serverNow - Date.parse(m.receivedAt)) }),
    senderCell(m),
    el('td', { label: 'Recipients' }, [el('ul', { className: 'plain' }, m.pendingRecipients.map((r) => el('li', { text: r })))]),
    el('td', { label: 'Tries', text: String(m.attempts) }),
    el('td', { label: 'Next try', text: until(m.nextAttemptAt) }),
    el('td', { label: 'Last answer', className: 'answer', text: m.lastError ?? '—' }),
    el('td', { label: 'Actions' }, [el('div', { className: 'actions' }, [actionButton('retry', m.qid, 'Retry'), actionButton('delete', m.qid, 'Delete', 'danger')])]),
  ]);
}

function renderFailed(failed) {
  fillMessages('failed', failed, 'newest', (m) => [
    el('td', { label: 'Failed', text: ago(m.failedAt) }),
    senderCell(m),
    el('td', { label: 'Why' }, [
      el('div', { text: m.reason }),
      el('ul', { className: 'plain' }, m.recipients.map((r) => el('li', { className: 'answer', text: r.response ? `${r.address}: ${r.response}` : r.address }))),
    ]),
    el('td', { label: 'Actions' }, [el('div', { className: 'actions' }, [actionButton('requeue', m.qid, 'Requeue'), actionButton('delete', m.qid, 'Delete', 'danger')])]),
  ]);
}

function renderRecent(recent) {
  fill(
    'recent',
    'recent-empty',
    recent.map((r) =>
      el('tr', {}, [
        el('td', { label: 'When', text: ago(r.at) }),
        el('td', { label: 'Queue ID', text: r.qid, className: 'qid' }),
        el('td', { label: 'To' }, [el('ul', { className: 'plain' }, r.recipients.map((a) => el('li', { text: a })))]),
        el('td', { label: 'Relay', text: r.relay, className: 'mono' }),
        el('td', { label: 'Status' }, [el('span', { className: `st-${r.outcome}`, text: r.outcome }), el('div', { className: 'small', text: r.dsn })]),
        el('td', { label: 'Answer', className: 'answer', text: r.response }),
      ]),
    ),
  );
}

// ---- refresh and actions ----

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const { body } = await api('GET', '/admin/overview');
    serverNow = Date.parse(body.now) || Date.now();
    renderCounters(body.totals, body);
    renderUpstreams(body.upstreams);
    renderTokens(body.tokens);
    renderQueue(body.queued);
    renderFailed(body.failed);
    renderRecent(body.recent);
    $('main').hidden = false;
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    if ($('notice').classList.contains('error')) notice('');
  } catch (err) {
    const text = err.status === 401
      ? 'This page needs the admin token: open the link that "smtp-sidecar queue page" prints (run it as the relay\'s user).'
      : `Could not load the status: ${err.message}`;
    notice(text, true);
  } finally {
    busy = false;
  }
}

const ACTIONS = {
  retry: { method: 'POST', path: (q) => `/admin/queue/${q}/retry`, done: (q) => `${q}: retry scheduled now` },
  requeue: { method: 'POST', path: (q) => `/admin/failed/${q}/requeue`, done: (q) => `${q}: back in the queue, due now` },
  delete: { method: 'DELETE', path: (q) => `/admin/queue/${q}`, done: (q) => `${q}: deleted` },
};

document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
  if (!button) return;
  const { action, qid } = button.dataset;
  const spec = ACTIONS[action];
  if (!spec || !/^[A-Za-z0-9]+$/.test(qid)) return;
  if (action === 'delete' && !window.confirm(`Delete message ${qid} for good?`)) return;
  button.disabled = true;
  try {
    const { status } = await api(spec.method, spec.path(qid));
    notice(status === 404 ? `${qid}: no longer there (delivered or removed meanwhile)` : spec.done(qid), status === 404);
  } catch (err) {
    notice(`${qid}: ${action} failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
    await refresh();
  }
});

// no polling while the tab is hidden; the page catches up when it is shown again
const tick = () => {
  if (document.visibilityState !== 'hidden') void refresh();
};
$('refresh').addEventListener('click', () => void refresh());
let timer = setInterval(tick, REFRESH_MS);
$('auto').addEventListener('change', (event) => {
  clearInterval(timer);
  if (event.target.checked) timer = setInterval(tick, REFRESH_MS);
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') void refresh();
});

if (token) void refresh();
else notice('This page needs the admin token: open the link that "smtp-sidecar queue page" prints (run it as the relay\'s user).', true);
