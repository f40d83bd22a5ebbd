// Entity pivot: the incidents, alerts and recent events of the caller's
// tenant that name one entity.

import { api, entityPath, query } from './api.js';
import { h, sevBadge, effectiveSeverity, fmtTime, human, jsonBlock } from './dom.js';
import { describe } from './story.js';

export function renderEntity(main, ctx, type, value, params) {
  let alive = true;
  const from = params.get('from') || '';
  const to = params.get('to') || '';
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/', class: 'back' }, '← Queue')),
    h('h1', { id: 'entity-title' }, `${human(type)}: `, h('code', {}, value)),
    h('p', { class: 'muted' }, from || to ? `Between ${from || '…'} and ${to || 'now'}` : 'The last 7 days'),
    body);
  (async () => {
    try {
      const { data } = await api(entityPath(type, value) + query({ from, to, tenant: ctx.tenant, limit: 100 }));
      if (!alive) return;
      body.replaceChildren(
        h('section', { class: 'card', 'aria-labelledby': 'ei-h' }, h('h2', { id: 'ei-h' }, `Incidents (${data.incidents.length})`),
          h('div', { class: 'table-wrap' }, h('table', { class: 'queue', id: 'entity-incidents' },
            h('thead', {}, h('tr', {}, ['Severity', 'Incident', 'Status', 'Last seen'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, data.incidents.map((inc) => h('tr', { 'data-id': inc.id },
              h('td', {}, sevBadge(effectiveSeverity(inc))),
              h('td', {}, h('a', { href: '#/incidents/' + encodeURIComponent(inc.id) }, inc.title), h('div', { class: 'sub muted' }, inc.id)),
              h('td', {}, human((inc.workflow && inc.workflow.status) || inc.status)),
              h('td', {}, fmtTime(inc.last_seen)))))))),
        h('section', { class: 'card', 'aria-labelledby': 'ea-h' }, h('h2', { id: 'ea-h' }, `Alerts (${data.alerts.length})`),
          h('ul', { class: 'links' }, data.alerts.map((a) => h('li', {}, sevBadge(a.severity_id), ' ', fmtTime(a.time), ' ', a.title, ' ',
            h('code', { class: 'muted' }, a.rule_id))))),
        h('section', { class: 'card', 'aria-labelledby': 'ee-h' }, h('h2', { id: 'ee-h' }, `Recent events (${data.events.length})`),
          data.events.map((ev) => h('details', { class: 'event' },
            h('summary', {}, ((x) => [h('span', { class: 'ev-time' }, fmtTime(ev.time)), ' ', h('strong', {}, x.kind + ':'), ' ', h('span', { class: 'ev-text' }, x.text), h('span', { class: 'muted' }, ` · ${x.product}`)])(describe(ev))),
            h('div', { class: 'event-body' }, h('div', {}, h('h5', {}, 'Normalized (OCSF)'), jsonBlock(ev.normalized)),
              ev.raw ? h('div', {}, h('h5', {}, 'Raw'), jsonBlock(ev.raw)) : '')))));
    } catch (e) {
      if (alive) body.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The entity could not be loaded: ${e.message}` + (e.errors && e.errors.length ? ' — ' + e.errors.join('; ') : '')));
    }
  })();
  return () => { alive = false; };
}
