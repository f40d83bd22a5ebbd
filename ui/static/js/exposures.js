// Exposures: the predicted attack paths of the tenant (GET /v1/exposures),
// highest risk first, with the API's filters (kind, account, minimum risk)
// and its cursor pages. Each path is drawn hop by hop, with the evidence
// that each hop is open (security group rules, metadata options, policy
// statements, pipeline stages) and the countermeasures that would break
// it. The incident page links the paths its entities lie on
// (exposureLink, from GET /v1/incidents/{id}/exposures).

import { api, query } from './api.js';
import { h, fmtTime, human, shortID } from './dom.js';

const KINDS = { internet_instance_to_production: 'Internet-facing instance → production', role_to_production: 'Role → production' };
const RELATIONS = { exposes: 'exposes', runs_as: 'runs as', can_write: 'can write', source_of: 'is the source of', deploys_to: 'deploys to' };

function nodeName(n) {
  if (n.entity === 'internet') return 'the internet';
  return shortID(n.value, 40);
}

// pathView draws one path: its assets in a row joined by their relations,
// then each hop's evidence and the countermeasures.
export function pathView(p, { shared = [] } = {}) {
  const on = new Set(shared.map((x) => x.node.entity + ':' + x.node.value));
  const chain = h('ol', { class: 'path-chain', 'aria-label': 'Path' });
  (p.hops || []).forEach((hop, i) => {
    if (i === 0) chain.append(node(hop.from));
    chain.append(h('li', { class: 'path-rel', 'data-relation': hop.relation }, `${RELATIONS[hop.relation] || human(hop.relation)} →`), node(hop.to));
  });
  function node(n) {
    const hit = on.has(n.entity + ':' + n.value);
    return h('li', { class: `path-node kind-${n.entity}${hit ? ' shared' : ''}`, title: n.value, 'data-entity': n.entity, 'data-value': n.value },
      h('span', { class: 'path-kind' }, human(n.entity)), ' ', h('strong', {}, nodeName(n)), hit ? h('span', { class: 'chip' }, 'in the incident') : '');
  }
  const hops = h('ol', { class: 'hops' }, (p.hops || []).map((hop) => h('li', { class: 'hop' },
    h('div', {}, h('strong', {}, nodeName(hop.from)), ` ${RELATIONS[hop.relation] || human(hop.relation)} `, h('strong', {}, nodeName(hop.to))),
    h('ul', { class: 'evidence' }, (hop.evidence || []).map((e) => h('li', {}, e)),
      (hop.statements || []).map((st) => h('li', { class: 'statement' },
        'Policy ', h('code', {}, shortID(st.policy, 48)), ` statement ${st.statement}${st.sid ? ` (${st.sid})` : ''}: ${st.effect} `,
        h('code', {}, (st.action || []).join(', ') || ('not ' + (st.not_action || []).join(', '))), ' on ', h('code', {}, (st.resource || []).join(', ') || '*'),
        st.condition_not_evaluated ? h('span', { class: 'muted' }, ' · its condition is not evaluated') : ''))))));
  const cms = h('ul', { class: 'countermeasures' }, (p.countermeasures || []).map((c) => h('li', { 'data-cm': c.id },
    h('strong', {}, c.title), h('span', { class: 'muted' }, ` · on ${human(c.target.entity)} ${shortID(c.target.value, 40)} · ${c.effect === 'breaks' ? 'breaks the path' : 'shortens it to its variant'}`))));
  return [chain,
    h('div', { class: 'path-details' },
      h('div', {}, h('h3', {}, 'Hops and evidence'), hops),
      h('div', {}, h('h3', {}, 'Countermeasures that would break it'), cms,
        (p.not_evaluated || []).length ? [h('h3', {}, 'Not evaluated'), h('ul', { class: 'muted' }, p.not_evaluated.map((x) => h('li', {}, x)))] : ''))];
}

export function renderExposures(main, ctx, params) {
  let alive = true;
  const f = {
    kind: params.get('kind') || '', account: params.get('account') || '', min_risk: params.get('min_risk') || '', limit: params.get('limit') || '',
  };
  const kind = h('select', { name: 'kind', id: 'exp-kind', 'aria-label': 'Kind of path' }, h('option', { value: '' }, 'every kind'),
    Object.entries(KINDS).map(([k, v]) => h('option', { value: k, selected: f.kind === k }, v)));
  const account = h('input', { name: 'account', id: 'exp-account', value: f.account, placeholder: '12-digit account', inputmode: 'numeric', 'aria-label': 'Account', size: 14 });
  const minRisk = h('input', { name: 'min_risk', id: 'exp-min-risk', type: 'number', min: 0, max: 100, value: f.min_risk, 'aria-label': 'Minimum risk', style: 'width: 5em' });
  const form = h('form', { class: 'exp-filters', id: 'exp-filters', 'aria-label': 'Filter paths' },
    h('label', {}, 'Kind ', kind), h('label', {}, 'Account ', account), h('label', {}, 'Risk at least ', minRisk),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = '#/exposures' + query({ kind: kind.value, account: account.value.trim(), min_risk: minRisk.value, limit: f.limit });
  });
  const status = h('p', { class: 'muted', id: 'exp-status', role: 'status' }, 'Loading the predicted paths…');
  const list = h('ol', { class: 'exposures', id: 'exposures' });
  const more = h('button', { type: 'button', id: 'exp-more', hidden: true }, 'Next paths');
  main.replaceChildren(h('div', { class: 'queue-head' }, h('h1', {}, 'Exposures'),
    h('p', { class: 'muted' }, 'Attack paths predicted from the asset inventory alone, before anyone walks them; highest risk first.')),
  form, status, list, more);
  document.title = 'Exposures — Musubi';

  let cursor = '';
  let shown = 0;
  async function load() {
    more.disabled = true;
    try {
      const { data } = await api('/v1/exposures' + query({ tenant: ctx.tenant, kind: f.kind, account: f.account, min_risk: f.min_risk, limit: f.limit, cursor }));
      if (!alive) return;
      for (const x of data.items || []) list.append(item(x, ++shown));
      cursor = data.next_cursor || '';
      more.hidden = !cursor;
      more.disabled = false;
      status.textContent = `${shown} path${shown === 1 ? '' : 's'}${cursor ? ' so far' : ''} on the inventory as of ${fmtTime(Date.parse(data.as_of))}` +
        (data.inventory_truncated ? ' · the inventory is larger than one read: paths through the rest are missing' : '');
      if (!shown) status.textContent = `No predicted path on the inventory as of ${fmtTime(Date.parse(data.as_of))}${f.kind || f.account || f.min_risk ? ' with these filters' : ''}.`;
    } catch (e) {
      if (!alive) return;
      status.textContent = `The paths could not be loaded: ${e.message}${e.errors && e.errors.length ? ' — ' + e.errors.join('; ') : ''}`;
      status.className = 'error';
    }
  }
  more.addEventListener('click', load);

  function item(x, n) {
    const risk = x.risk >= 80 ? 5 : x.risk >= 60 ? 4 : x.risk >= 40 ? 3 : 2;
    return h('li', { class: 'card exposure', 'data-id': x.id, id: 'exposure-' + x.id },
      h('div', { class: 'exp-head' },
        h('span', { class: `sev sev-${risk}`, title: 'risk 0–100' }, `Risk ${x.risk}`),
        h('h2', {}, `${n}. ${KINDS[x.kind] || human(x.kind)}`),
        h('span', { class: 'muted' }, `account ${x.account}`)),
      (x.risk_factors || []).length ? h('p', { class: 'risk-factors' }, h('span', { class: 'muted' }, 'Why: '), x.risk_factors.join(' · ')) : '',
      pathView(x));
  }

  load();
  return () => { alive = false; };
}

// exposureLink is the incident page's card of the paths its entities lie
// on: "this path was predicted on …", drawn as on the exposures page.
export function exposureLink(id) {
  const card = h('section', { class: 'card exposure-link', id: 'exposure-link', 'aria-labelledby': 'xl-h', hidden: true });
  api(`/v1/incidents/${encodeURIComponent(id)}/exposures`).then(({ data }) => {
    const items = data.items || [];
    if (!items.length) return;
    card.hidden = false;
    card.replaceChildren(h('h2', { id: 'xl-h' }, items.length === 1 ? 'A predicted attack path' : `${items.length} predicted attack paths`),
      ...items.map((m) => h('div', { class: 'exp-match', 'data-id': m.path.id },
        h('p', { class: 'predicted' }, `This path was predicted on ${fmtTime(m.since)}, before the incident began: `,
          `${m.shared.length} of its assets ${m.shared.length === 1 ? 'is' : 'are'} in the incident (${m.shared.map((x) => shortID(x.node.value, 30)).join(', ')}). Risk ${m.path.risk}. `,
          h('a', { href: '#/exposures' + query({ account: m.path.account }), class: 'exp-open' }, 'All predicted paths of this account →')),
        pathView(m.path, { shared: m.shared }))));
  }).catch((e) => {
    card.hidden = false;
    card.replaceChildren(h('p', { class: 'muted', id: 'xl-error' }, `The predicted attack paths could not be loaded: ${e.message}`));
  });
  return card;
}
