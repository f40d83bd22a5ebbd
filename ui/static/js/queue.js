// The incident queue: filters (kept in the URL), status tabs with counts,
// cursor paging, keyboard navigation and auto-refresh.

import { api, query } from './api.js';
import { h, sevBadge, effectiveSeverity, fmtTime, age, gap, human, announce, inputTime, fromInputTime, zoneName } from './dom.js';

const STATUSES = ['new', 'in_progress', 'on_hold', 'resolved', 'closed', 'merged'];
// The working queue: what still needs an analyst.
const OPEN = ['new', 'in_progress', 'on_hold'];
export const LAST_KEY = 'musubi.lastIncident';
const ENTITY_TYPES = ['account', 'region', 'instance', 'host', 'ip', 'principal', 'role', 'session', 'access_key',
  'bucket', 'object', 'deployment', 'deployment_group', 'application', 'pipeline', 'process', 'file', 'user', 'hash', 'finding'];
const FILTERS = ['status', 'min_severity', 'assignee', 'tag', 'rule', 'entity_type', 'entity_value', 'account', 'from', 'to', 'q', 'sort', 'order'];
export const REFRESH_MS = 15000;
let firstPaintDone = false;

// queueURL is the API request for the first page the address asks for.
function queueURL(params, tenant) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  // No status in the URL means the working queue: open incidents.
  const status = f.status === 'all' ? '' : (f.status || OPEN.join(','));
  const cursors = (params.get('cursors') || '').split(',').filter(Boolean);
  return '/v1/incidents' + query({
    status, min_severity: f.min_severity, assignee: f.assignee, tag: f.tag, rule: f.rule,
    entity_type: f.entity_type, entity_value: f.entity_value, account: f.account, from: f.from, to: f.to,
    q: f.q, sort: f.sort, order: f.order, limit: 50, cursor: cursors[cursors.length - 1] || '', tenant,
  });
}

let prefetched = null;

// prefetchQueue starts loading the queue's page before it is shown (while
// the console still asks who the token is), for the tenant picked last in
// this tab: the first paint then waits for one round trip, not two. The
// next renderQueue that asks for the same page takes it over.
export function prefetchQueue(params, tenant) {
  const url = queueURL(params, tenant);
  const p = api(url);
  p.catch(() => {}); // the page that takes it over reports the failure
  prefetched = { url, p };
}


export function renderQueue(main, ctx, params) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const cursors = (params.get('cursors') || '').split(',').filter(Boolean);
  const cursor = cursors[cursors.length - 1] || '';
  const seen = new Set();
  let items = [];
  let selected = 0;
  let timer = null;
  let controller = null;

  const setParams = (changes, keepCursor) => {
    const next = { ...f, ...changes };
    const q = new URLSearchParams();
    for (const k of FILTERS) if (next[k]) q.set(k, next[k]);
    if (keepCursor && changes.cursors !== undefined) { if (changes.cursors) q.set('cursors', changes.cursors); }
    const s = q.toString();
    location.hash = '#/' + (s ? '?' + s : '');
  };

  // Filters.
  const field = (label, name, input) => h('label', { class: 'field' }, h('span', {}, label), input);
  const text = (name, placeholder) => h('input', { name, value: f[name], placeholder: placeholder || '', type: 'search' });
  const select = (name, options) => h('select', { name },
    options.map(([v, l]) => h('option', { value: v, selected: f[name] === v }, l)));
  const assigneeMode = ['', 'me', 'none'].includes(f.assignee) ? f.assignee : 'other';
  const form = h('form', { class: 'filters', id: 'filters', role: 'search', 'aria-label': 'Filter incidents' },
    field('Search', 'q', text('q', 'title or id  (/, Esc leaves)')),
    field('Min severity', 'min_severity', select('min_severity', [['', 'any'], ['1', 'Informational'], ['2', 'Low'], ['3', 'Medium'], ['4', 'High'], ['5', 'Critical'], ['6', 'Fatal']])),
    field('Assignee', 'assignee_mode', h('select', { name: 'assignee_mode' },
      [['', 'anyone'], ['me', 'mine'], ['none', 'unassigned'], ['other', 'named…']].map(([v, l]) => h('option', { value: v, selected: assigneeMode === v }, l)))),
    field('Assignee name', 'assignee_name', h('input', { name: 'assignee_name', value: assigneeMode === 'other' ? f.assignee : '', type: 'search' })),
    field('Tag', 'tag', text('tag')),
    field('Rule', 'rule', text('rule', 'rule id')),
    field('Entity', 'entity_type', select('entity_type', [['', 'any type'], ...ENTITY_TYPES.map((t) => [t, human(t)])])),
    field('Entity value', 'entity_value', text('entity_value')),
    field('Account', 'account', text('account', '12 digits')),
    field(`From (${zoneName()}, 24 h)`, 'from', h('input', { name: 'from', type: 'datetime-local', value: inputTime(f.from) })),
    field(`To (${zoneName()}, 24 h)`, 'to', h('input', { name: 'to', type: 'datetime-local', value: inputTime(f.to) })),
    field('Sort', 'sort', select('sort', [['', 'risk score'], ['last_seen', 'last seen'], ['first_seen', 'first seen'], ['severity', 'severity'], ['updated', 'updated']])),
    field('Order', 'order', select('order', [['', 'newest / highest first'], ['asc', 'oldest / lowest first']])),
    h('div', { class: 'filter-buttons' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', onclick: () => { location.hash = '#/'; } }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    const mode = d.get('assignee_mode');
    setParams({
      q: d.get('q').trim(), min_severity: d.get('min_severity'), tag: d.get('tag').trim(), rule: d.get('rule').trim(),
      entity_type: d.get('entity_type'), entity_value: d.get('entity_value').trim(), account: d.get('account').trim(),
      from: fromInputTime(d.get('from')), to: fromInputTime(d.get('to')), sort: d.get('sort'), order: d.get('order'),
      assignee: mode === 'other' ? d.get('assignee_name').trim() : mode,
    });
  });

  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Status' });
  const status = h('p', { class: 'muted refresh', id: 'refresh-status' }, 'Loading…');
  const notice = h('p', { class: 'notice', id: 'new-notice', hidden: true });
  const errorBox = h('p', { class: 'error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const table = h('table', { class: 'queue', id: 'queue' },
    h('caption', { class: 'sr-only' }, 'Incidents; j/k or arrow keys move, Enter opens'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Severity'), h('th', { scope: 'col' }, 'Incident'), h('th', { scope: 'col', class: 'wide' }, 'Status'),
      h('th', { scope: 'col', class: 'wide' }, 'Assignee'), h('th', { scope: 'col', class: 'wide' }, 'Stages'),
      h('th', { scope: 'col', class: 'num wide' }, 'Alerts'), h('th', { scope: 'col', class: 'num wide' }, 'Risk'),
      h('th', { scope: 'col', class: 'wide' }, 'Last seen'), h('th', { scope: 'col', class: 'wide num' }, 'Duration'))),
    tbody);
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });

  main.replaceChildren(
    h('div', { class: 'queue-head' }, h('h1', {}, 'Incident queue'), status),
    h('details', { class: 'filter-box', open: window.innerWidth > 700 || FILTERS.some((k) => f[k] && k !== 'status') },
      h('summary', {}, 'Filters'), form),
    tabs, notice, errorBox,
    h('div', { class: 'table-wrap' }, table),
    pager,
    h('p', { class: 'muted keys' }, 'Keys: j/k or ↑/↓ move · Enter opens · / search · r refresh'));

  function renderTabs(counts) {
    const c = counts || {};
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    const open = OPEN.reduce((a, k) => a + (c[k] || 0), 0);
    const cur = f.status || 'open';
    const tab = (value, label, n) => h('button', {
      type: 'button', class: 'tab', 'aria-pressed': String(cur === value), dataset: { status: value },
      onclick: () => setParams({ status: value === 'open' ? '' : value }),
    }, label, ' ', h('span', { class: 'count' }, String(n)));
    tabs.replaceChildren(tab('open', 'Open', open), tab('all', 'All', total), ...STATUSES.map((st) => tab(st, human(st), c[st] || 0)));
  }

  function selectRow(i, focus) {
    const rows = tbody.querySelectorAll('tr[data-id]');
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => { r.tabIndex = j === selected ? 0 : -1; r.classList.toggle('selected', j === selected); r.setAttribute('aria-selected', String(j === selected)); });
    if (focus) rows[selected].focus();
  }

  function renderRows(fresh) {
    const now = Date.now();
    // A refresh must not take the keyboard focus away from the queue.
    const hadFocus = tbody.contains(document.activeElement);
    tbody.replaceChildren(...items.map((inc, i) => {
      const sev = effectiveSeverity(inc);
      const w = inc.workflow || {};
      const stages = inc.stages || [];
      return h('tr', {
        'data-id': inc.id, tabindex: i === selected ? 0 : -1, class: `sevrow-${sev}${fresh.has(inc.id) ? ' fresh' : ''}`,
        onclick: (ev) => { if (!ev.target.closest('a')) open(inc.id); },
        onfocus: () => selectRow(i),
      },
      h('td', {}, sevBadge(sev, !!w.severity_override)),
      h('td', { class: 'title' }, h('a', { href: '#/incidents/' + encodeURIComponent(inc.id), tabindex: -1, onclick: () => sessionStorage.setItem(LAST_KEY, inc.id) }, inc.title),
        h('div', { class: 'sub muted' }, h('span', { class: 'narrow-only' }, `${human(w.status || inc.status)} · ${age(inc.last_seen, now)} ago ·`),
          inc.id, (w.tags || []).map((t) => h('span', { class: 'tag' }, t)))),
      h('td', { class: 'wide' }, h('span', { class: `status st-${w.status || inc.status}` }, human(w.status || inc.status))),
      h('td', { class: 'wide' }, w.assignee || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'wide stages', title: stages.map(human).join(' → ') }, stages.length > 1 ? `${stages.length}: ${human(stages[0])} → ${human(stages[stages.length - 1])}` : human(stages[0] || '')),
      h('td', { class: 'num wide' }, String((inc.alert_ids || []).length)),
      h('td', { class: 'num wide' }, String(inc.risk_score)),
      h('td', { class: 'wide nowrap', title: fmtTime(inc.last_seen) }, age(inc.last_seen, now) + ' ago'),
      h('td', { class: 'wide num nowrap', title: `first seen ${fmtTime(inc.first_seen)}, last seen ${fmtTime(inc.last_seen)}` }, gap(inc.last_seen - inc.first_seen).slice(1)));
    }));
    if (!items.length) tbody.append(h('tr', {}, h('td', { colspan: 9, class: 'muted empty' }, 'No incidents match these filters.')));
    selectRow(selected, hadFocus);
  }

  function renderPager(next) {
    const prev = cursors.length > 0;
    pager.replaceChildren(
      h('button', { type: 'button', disabled: !prev, onclick: () => setParams({ cursors: cursors.slice(0, -1).join(',') }, true) }, '← Newer'),
      h('span', { class: 'muted' }, `Page ${cursors.length + 1}`),
      h('button', { type: 'button', id: 'next-page', disabled: !next, onclick: () => setParams({ cursors: [...cursors, next].join(',') }, true) }, 'Older →'));
  }

  async function load(isRefresh) {
    if (controller) controller.abort();
    controller = new AbortController();
    const url = queueURL(params, ctx.tenant);
    const pre = !isRefresh && prefetched && prefetched.url === url ? prefetched.p : null;
    prefetched = null;
    try {
      const { data } = await (pre || api(url, { signal: controller.signal }));
      if (controller.signal.aborted) return;
      const fresh = new Set();
      if (isRefresh) for (const inc of data.items) if (!seen.has(inc.id)) fresh.add(inc.id);
      for (const inc of data.items) seen.add(inc.id);
      // Keep the selected row; coming back from an incident, select it.
      const keep = (items[selected] && items[selected].id) || (!isRefresh && sessionStorage.getItem(LAST_KEY));
      items = data.items;
      if (keep) selected = Math.max(0, items.findIndex((x) => x.id === keep));
      if (!isRefresh && items[selected] && items[selected].id === sessionStorage.getItem(LAST_KEY)) requestAnimationFrame(() => selectRow(selected, true));
      errorBox.hidden = true;
      renderTabs(data.counts_by_status);
      renderRows(fresh);
      renderPager(data.next_cursor);
      status.textContent = `${items.length} shown · updated ${new Date().toLocaleTimeString()}` + (cursor ? '' : ` · refreshes every ${REFRESH_MS / 1000}s`);
      if (fresh.size) {
        notice.hidden = false;
        notice.textContent = `${fresh.size} new incident${fresh.size > 1 ? 's' : ''} arrived (highlighted).`;
        announce(notice.textContent);
      }
      if (!firstPaintDone) {
        firstPaintDone = true;
        requestAnimationFrame(() => {
          performance.mark('musubi:queue-painted');
          document.body.dataset.queuePainted = String(Math.round(performance.now()));
        });
      }
    } catch (e) {
      if (e.name === 'AbortError') return;
      errorBox.hidden = false;
      errorBox.textContent = `The queue could not be loaded: ${e.message}` + (e.errors && e.errors.length ? ' — ' + e.errors.join('; ') : '');
    }
  }

  function open(incID) {
    sessionStorage.setItem(LAST_KEY, incID);
    location.hash = '#/incidents/' + encodeURIComponent(incID);
  }

  function onKey(ev) {
    const t = ev.target;
    // Esc leaves the search and filter fields for the list.
    if (ev.key === 'Escape' && t.closest && t.closest('#filters')) { t.blur(); selectRow(selected, true); ev.preventDefault(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t.closest && t.closest('input, select, textarea, button, summary')) return;
    switch (ev.key) {
      case 'j': case 'ArrowDown': selectRow(selected + 1, true); ev.preventDefault(); break;
      case 'k': case 'ArrowUp': selectRow(selected - 1, true); ev.preventDefault(); break;
      case 'Enter': if (items[selected]) { open(items[selected].id); ev.preventDefault(); } break;
      case '/': form.closest('details').open = true; form.querySelector('[name=q]').focus(); ev.preventDefault(); break;
      case 'r': load(true); break;
    }
  }
  document.addEventListener('keydown', onKey);
  load(false).then(() => { if (document.activeElement === main || document.activeElement === document.body) selectRow(selected, true); });
  if (!cursor) {
    timer = setInterval(() => { if (document.visibilityState === 'visible') load(true); }, REFRESH_MS);
  }
  return () => {
    document.removeEventListener('keydown', onKey);
    if (timer) clearInterval(timer);
    if (controller) controller.abort();
  };
}
