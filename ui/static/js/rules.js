// Rules: the loaded detection and sequence rules with versions and, for
// tokens of every tenant, their counters; admins of every tenant reload.

import { api } from './api.js';
import { h, SEVERITY, human, TACTICS } from './dom.js';

export function renderRules(main, ctx) {
  let alive = true;
  const msg = h('p', { role: 'status', id: 'rules-status' });
  const filter = h('input', { type: 'search', class: 'rule-filter', placeholder: 'filter by id, title, stage, technique', 'aria-label': 'Filter rules' });
  const tbody = h('tbody');
  let rules = [];
  let stats = false;
  const canReload = ctx.me.role === 'admin' && ctx.me.all_tenants;
  const reload = canReload ? h('button', {
    type: 'button', class: 'primary', id: 'reload-rules', 'data-action': 'reload', onclick: async () => {
      msg.textContent = 'Reloading…';
      try {
        await api('/-/reload', { method: 'POST' });
        msg.textContent = 'Rules reloaded.';
        load();
      } catch (e) {
        msg.textContent = `Reload refused: ${e.message}${e.errors && e.errors.length ? ' — ' + e.errors.join('; ') : ''}`;
      }
    },
  }, 'Reload rules') : '';
  const thead = h('thead');
  main.replaceChildren(h('div', { class: 'queue-head' }, h('h1', {}, 'Rules'), reload), msg, filter,
    h('div', { class: 'table-wrap' }, h('table', { class: 'rules', id: 'rules' }, thead, tbody)));

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const cols = ['Rule', 'Kind', 'Version', 'Severity', 'Stage', 'ATT&CK', ...(stats ? ['Evaluations', 'Matches', 'Errors'] : [])];
    thead.replaceChildren(h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c))));
    tbody.replaceChildren(...rules.filter((r) => !q || JSON.stringify(r).toLowerCase().includes(q)).map((r) => h('tr', {},
      h('td', {}, h('code', {}, r.id), h('div', { class: 'sub' }, r.title)),
      h('td', {}, r.kind), h('td', {}, h('code', {}, r.version)), h('td', {}, SEVERITY[r.severity_id] || ''),
      h('td', {}, human(r.stage || '')),
      h('td', {}, (r.tactics || []).map((t) => h('span', { class: 'chip', title: t }, TACTICS[t] || t)), (r.techniques || []).map((t) => h('span', { class: 'chip tech' }, t))),
      stats ? [h('td', { class: 'num' }, String(r.evaluations || 0)), h('td', { class: 'num' }, String(r.matches || 0)), h('td', { class: 'num' }, String(r.errors || 0))] : '')));
  }
  filter.addEventListener('input', draw);

  async function load() {
    try {
      const { data } = await api('/v1/rules');
      if (!alive) return;
      rules = data.rules || [];
      stats = !!data.stats;
      if (!msg.textContent) msg.textContent = `${rules.length} rules loaded` + (stats ? '' : ' (counters are shown only to tokens of every tenant)');
      draw();
    } catch (e) {
      if (alive) msg.textContent = `The rules could not be loaded: ${e.message}`;
    }
  }
  load();
  return () => { alive = false; };
}
