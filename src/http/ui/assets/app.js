// The cluster view page: renders the state the node pushes over Server-Sent Events
// (`event: state`), and sends the write form to POST write. Plain JS, no dependencies.
'use strict';

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
};

/** `2026-12-04T03:10:05.212Z/000007/A` -> `03:10:05.212 · 7` (wall time, logical counter). */
function shortHlc(hlc) {
  const [wall = '', logical = '0'] = String(hlc).split('/');
  const time = wall.includes('T') ? wall.slice(11, 23) : wall;
  return `${time} · ${Number(logical)}`;
}

function showValue(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

let nodeIds = [];

function renderNodes(state) {
  const box = $('nodes');
  box.replaceChildren(
    ...state.nodes.map((n) => {
      const v = n.vitals;
      const status = v && v.status;
      const health = n.health === 'ok' ? ['pill-ok', 'healthy'] : n.health === 'down' ? ['pill-bad', 'down'] : ['pill-bad', 'Redis unreachable'];
      const link = state.links[n.id] || {};
      const peers = status ? status.peers : [];
      const backlog = el(
        'table',
        { class: 'backlog', 'aria-label': `Replication backlog of ${n.id} per peer` },
        el('thead', {}, el('tr', {}, ...['peer', 'waiting', 'delayed', 'failed', 'oldest'].map((h) => el('th', { scope: 'col', text: h })))),
        el(
          'tbody',
          {},
          ...peers.map((p) =>
            el(
              'tr',
              {},
              el('td', { text: p.id }),
              el('td', { text: p.backlog ? p.backlog.waiting + p.backlog.active : '—' }),
              el('td', { text: p.backlog ? p.backlog.delayed : '—' }),
              el('td', { text: p.backlog ? p.backlog.failed : '—' }),
              el('td', { text: fmtMs(p.oldestPendingMs) }),
            ),
          ),
        ),
      );
      // The anti-entropy report's shape belongs to the node (issue 8); show its time and any counts.
      const antiEntropy = peers
        .filter((p) => p.antiEntropy && typeof p.antiEntropy === 'object')
        .map((p) => {
          const ae = p.antiEntropy.lastRound && typeof p.antiEntropy.lastRound === 'object' ? p.antiEntropy.lastRound : p.antiEntropy;
          const timeKey = Object.keys(ae).find((k) => /at$/i.test(k) && typeof ae[k] === 'number');
          const counts = Object.keys(ae)
            .filter((k) => k !== timeKey && typeof ae[k] === 'number' && !/ms$|at$/i.test(k))
            .map((k) => `${ae[k]} ${k}`);
          return `${p.id}: ${timeKey ? new Date(ae[timeKey]).toLocaleTimeString() : 'reported'}${counts.length ? ` (${counts.join(', ')})` : ''}`;
        });
      return el(
        'article',
        { class: 'card node', 'data-node': n.id, 'data-health': n.health, 'aria-label': `Node ${n.id}` },
        el('div', { class: 'node-head' }, el('h3', {}, n.id, n.self ? el('span', { class: 'self', text: 'serving this page' }) : null), el('span', { class: `pill ${health[0]}`, text: health[1] })),
        el(
          'div',
          { class: 'stats' },
          el('div', { class: 'stat' }, el('b', { text: fmtMs(v && v.lag.p50Ms) }), el('span', { text: 'lag p50' })),
          el('div', { class: 'stat' }, el('b', { text: fmtMs(v && v.lag.p99Ms) }), el('span', { text: 'lag p99' })),
          el('div', { class: 'stat' }, el('b', { text: v ? String(v.conflicts) : '—' }), el('span', { text: 'conflicts' })),
        ),
        backlog,
        antiEntropy.length ? el('p', { class: 'meta', text: `last anti-entropy round · ${antiEntropy.join(' · ')}` }) : null,
        el(
          'div',
          { class: 'node-foot' },
          el('span', { class: 'muted', text: status ? `outbox ${status.outbox ?? '—'}` : 'no status' }),
          link.dashboard ? el('a', { href: link.dashboard, target: '_blank', rel: 'noopener', text: 'Bull dashboard ↗' }) : null,
        ),
      );
    }),
  );
}

function renderNodeSelect(state) {
  const ids = state.nodes.map((n) => n.id);
  if (ids.join() === nodeIds.join()) return;
  nodeIds = ids;
  const select = $('write-node');
  const chosen = select.value;
  select.replaceChildren(
    ...state.nodes.map((n) => el('option', { value: n.id, text: n.self ? `${n.id} (this node)` : n.id, disabled: !n.self && !(state.links[n.id] || {}).url })),
  );
  select.value = ids.includes(chosen) ? chosen : state.node;
}

function renderGrid(state) {
  $('grid-head').replaceChildren(el('th', { scope: 'col', text: 'Key' }), ...state.nodes.map((n) => el('th', { scope: 'col', text: `Node ${n.id}` })));
  const body = $('grid-body');
  if (state.rows.length === 0) {
    body.replaceChildren(el('tr', {}, el('td', { class: 'muted', colspan: state.nodes.length + 1, text: 'No keys yet: write one.' })));
    return;
  }
  body.replaceChildren(
    ...state.rows.map((row) => {
      const c = row.conflict;
      const keyCell = el(
        'th',
        { scope: 'row' },
        el('span', { class: 'key', text: row.key }),
        c
          ? el(
              'div',
              { class: 'conflict-note', 'data-conflict': 'true' },
              el('span', { class: 'chip chip-conflict', text: 'conflict' }),
              ' winner ',
              el('b', { text: c.winner.origin }),
              ` @ ${shortHlc(c.winner.hlc)} · loser `,
              el('b', { text: c.loser.origin }),
              ` @ ${shortHlc(c.loser.hlc)}`,
            )
          : null,
      );
      const cells = state.nodes.map((n) => {
        const cell = row.cells[n.id];
        if (cell === undefined) return el('td', { class: 'cell unknown', 'data-node': n.id, 'data-state': 'unknown', text: 'unreadable' });
        if (cell === null) {
          return el('td', { class: 'cell missing', 'data-node': n.id, 'data-state': 'stale' }, el('span', { class: 'tag', text: 'stale' }), el('span', { class: 'value', text: 'not here yet' }));
        }
        const state = cell.stale ? 'stale' : 'fresh';
        return el(
          'td',
          { class: `cell ${state}`, 'data-node': n.id, 'data-state': state, title: `hlc ${cell.hlc}, written on ${cell.origin}` },
          el('span', { class: 'tag', text: cell.stale ? 'stale' : '✓' }),
          cell.deleted ? el('span', { class: 'value deleted', text: 'deleted' }) : el('span', { class: 'value', text: showValue(cell.value) }),
          el('span', { class: 'meta', text: `${shortHlc(cell.hlc)} · from ${cell.origin}` }),
        );
      });
      return el('tr', { 'data-key': row.key, 'data-conflict': c ? 'true' : undefined }, keyCell, ...cells);
    }),
  );
}

function render(state) {
  $('served-by').textContent = `served by node ${state.node}`;
  const converged = $('converged');
  converged.textContent = state.rows.length === 0 ? 'no keys' : state.converged ? 'converged' : 'replicating…';
  converged.className = `pill ${state.converged ? 'pill-ok' : 'pill-wait'}`;
  renderNodes(state);
  renderNodeSelect(state);
  renderGrid(state);
}

let source;
function connect() {
  if (source) source.close();
  const prefix = $('prefix').value;
  $('keys-mode').textContent = prefix ? `starting with “${prefix}”` : 'most recent writes';
  source = new EventSource(`events${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ''}`);
  const live = $('live');
  source.addEventListener('state', (event) => {
    live.textContent = 'live';
    live.className = 'pill pill-ok';
    render(JSON.parse(event.data));
  });
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'pill pill-bad';
  });
}

let typing;
$('prefix').addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(connect, 250);
});

$('write').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('write-key').value;
  const text = $('write-value').value;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  const node = $('write-node').value;
  const out = $('write-result');
  out.textContent = `writing ${key} on ${node}…`;
  try {
    const res = await fetch('write', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ node, key, value }) });
    const answer = await res.json();
    out.textContent = res.ok ? `✓ ${key} written on ${node} at ${shortHlc(answer.hlc)}` : `✗ ${(answer.error && answer.error.message) || `HTTP ${res.status}`}`;
  } catch (error) {
    out.textContent = `✗ ${error.message}`;
  }
});

connect();
