// One incident: header, actions (by role), kill chain, graph with node
// details, timeline, evidence and comments.

import { api, APIError, query } from './api.js';
import { h, sevBadge, effectiveSeverity, fmtTime, gap, human, jsonBlock, TACTICS, SEVERITY, announce } from './dom.js';
import { renderGraph } from './graph.js';

const TRANSITIONS = {
  new: ['in_progress', 'on_hold', 'resolved', 'closed'],
  in_progress: ['on_hold', 'resolved', 'closed'],
  on_hold: ['in_progress', 'resolved', 'closed'],
  resolved: ['in_progress', 'closed'],
  closed: ['in_progress'],
  merged: [],
};
const VERDICTS = ['true_positive', 'benign_positive', 'false_positive', 'undetermined', 'duplicate'];
const rank = { viewer: 1, analyst: 2, admin: 3 };

export function renderIncident(main, ctx, id, params) {
  const st = { detail: null, etag: '', comments: [], evidence: [], nextEvidence: '', showAll: false, selected: null };
  const canAct = (rank[ctx.me.role] || 0) >= rank.analyst;
  const banner = h('div', { id: 'banner', class: 'banner', role: 'alert', hidden: true });
  const body = h('div', { class: 'incident' }, h('p', { class: 'muted' }, 'Loading incident…'));
  main.replaceChildren(h('p', {}, h('a', { href: '#/', class: 'back' }, '← Queue')), banner, body);
  let alive = true;

  function showBanner(kind, text, withReload) {
    banner.hidden = false;
    banner.className = `banner ${kind}`;
    banner.replaceChildren(h('span', {}, text), withReload ? h('button', { type: 'button', id: 'reload', onclick: () => load(true) }, 'Reload') : '');
  }

  async function load(clearBanner) {
    try {
      const { data, etag } = await api('/v1/incidents/' + encodeURIComponent(id));
      if (!alive) return;
      st.detail = data; st.etag = etag;
      st.evidence = data.evidence || []; st.nextEvidence = data.next_evidence_cursor || '';
      const c = await api(`/v1/incidents/${encodeURIComponent(id)}/comments`);
      st.comments = c.data.items || c.data || [];
      if (clearBanner) { banner.hidden = true; announce('Incident reloaded.'); }
      render();
    } catch (e) {
      if (!alive) return;
      if (e instanceof APIError && e.status === 404) {
        body.replaceChildren(h('p', { class: 'error', id: 'not-found', role: 'alert' }, 'No such incident in your tenants.'));
      } else {
        body.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The incident could not be loaded: ${e.message}`));
      }
    }
  }

  async function patch(changes, what) {
    try {
      const { data, etag } = await api('/v1/incidents/' + encodeURIComponent(id), {
        method: 'PATCH', body: changes, etag: st.etag, contentType: 'application/merge-patch+json',
      });
      // The answer is the incident's row with its new workflow; the graph,
      // timeline, alerts and evidence did not change (If-Match checked the
      // incident version), so they are kept from the last read.
      const { nodes, edges, timeline, alerts, evidence, next_evidence_cursor } = st.detail;
      st.detail = { ...data, nodes, edges, timeline, alerts, evidence, next_evidence_cursor };
      st.etag = etag;
      showBanner('ok', `${what}: saved.`);
      render();
    } catch (e) {
      failed(e, what);
    }
  }

  function failed(e, what) {
    if (e instanceof APIError && e.status === 412) {
      showBanner('conflict', 'This incident was changed by someone else; reload to see the changes, then try again.', true);
    } else if (e instanceof APIError && e.errors.length) {
      showBanner('error', `${what} refused: ${e.errors.join('; ')}`);
    } else {
      showBanner('error', `${what} failed: ${e.message}`);
    }
  }

  function render() {
    const d = st.detail;
    const w = d.workflow || {};
    const sev = effectiveSeverity(d);
    body.replaceChildren(
      h('header', { class: 'inc-head' },
        h('div', { class: 'inc-title' }, sevBadge(sev, !!w.severity_override), h('h1', { id: 'incident-title' }, d.title)),
        h('dl', { class: 'facts' },
          fact('Id', d.id), fact('Tenant', d.tenant_uid),
          fact('Status', h('span', { class: `status st-${w.status}`, id: 'incident-status' }, human(w.status))),
          fact('Assignee', h('span', { id: 'incident-assignee' }, w.assignee || '—')),
          w.verdict ? fact('Verdict', h('span', { id: 'incident-verdict' }, human(w.verdict))) : '',
          w.reason ? fact('Reason', w.reason) : '',
          fact('Tags', h('span', { id: 'incident-tags' }, (w.tags || []).length ? (w.tags || []).map((t) => h('span', { class: 'tag' }, t)) : '—')),
          fact('Risk', String(d.risk_score)),
          fact('Severity', `${SEVERITY[d.severity_id]}${w.severity_override ? ` → ${SEVERITY[w.severity_override]} (override)` : ''}`),
          fact('First seen', fmtTime(d.first_seen)), fact('Last seen', fmtTime(d.last_seen)),
          fact('Accounts', (d.accounts || []).join(', ')),
          w.merged_into ? fact('Merged into', h('a', { href: '#/incidents/' + encodeURIComponent(w.merged_into) }, w.merged_into)) : '',
          w.updated_by ? fact('Changed', `${w.updated_by} · ${w.updated_at ? w.updated_at.replace('T', ' ').slice(0, 19) + 'Z' : ''}`) : '')),
      canAct ? actions(d, w) : h('p', { class: 'muted', id: 'read-only' }, `Read-only: your role (${ctx.me.role}) cannot change incidents.`),
      killChain(d),
      graphSection(d),
      timeline(d),
      evidence(),
      comments());
  }

  function fact(k, v) {
    return [h('dt', {}, k), h('dd', {}, v)];
  }

  function actions(d, w) {
    const cur = w.status;
    const statusSel = h('select', { name: 'status', id: 'status-select' },
      [cur, ...(TRANSITIONS[cur] || [])].map((s2) => h('option', { value: s2, selected: s2 === cur }, human(s2))));
    const verdictSel = h('select', { name: 'verdict', id: 'verdict-select' }, h('option', { value: '' }, '—'), VERDICTS.map((v) => h('option', { value: v }, human(v))));
    const reason = h('input', { name: 'reason', id: 'reason-input', maxlength: 2000, placeholder: 'reason (needed to close)' });
    const closing = h('div', { class: 'closing' }, h('label', {}, 'Verdict ', verdictSel), h('label', { class: 'grow' }, 'Reason ', reason));
    const syncClosing = () => { closing.hidden = !['closed', 'resolved'].includes(statusSel.value) || statusSel.value === cur; };
    statusSel.addEventListener('change', syncClosing);
    syncClosing();
    const statusForm = h('form', { class: 'action', 'aria-label': 'Change status' },
      h('label', {}, 'Status ', statusSel), closing,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'status', disabled: cur === 'merged' }, 'Change status'));
    statusForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = { status: statusSel.value };
      if (verdictSel.value && !closing.hidden) p.verdict = verdictSel.value;
      if (reason.value.trim() && !closing.hidden) p.reason = reason.value.trim();
      patch(p, 'Status change');
    });

    const assignee = h('input', { name: 'assignee', value: w.assignee || '', 'aria-label': 'Assignee', placeholder: 'name' });
    const assignForm = h('form', { class: 'action', 'aria-label': 'Assign' },
      h('label', {}, 'Assignee ', assignee),
      h('button', { type: 'submit', 'data-action': 'assign' }, 'Assign'),
      h('button', { type: 'button', 'data-action': 'assign-me', onclick: () => patch({ assignee: 'me' }, 'Assignment') }, 'Take it'),
      h('button', { type: 'button', 'data-action': 'unassign', onclick: () => patch({ assignee: null }, 'Assignment') }, 'Unassign'));
    assignForm.addEventListener('submit', (ev) => { ev.preventDefault(); patch({ assignee: assignee.value.trim() || null }, 'Assignment'); });

    const sevSel = h('select', { name: 'severity_override', 'aria-label': 'Severity override' },
      h('option', { value: '' }, `correlator's (${SEVERITY[d.severity_id]})`),
      [1, 2, 3, 4, 5, 6].map((i) => h('option', { value: String(i), selected: w.severity_override === i }, SEVERITY[i])));
    const sevForm = h('form', { class: 'action', 'aria-label': 'Severity override' },
      h('label', {}, 'Severity ', sevSel), h('button', { type: 'submit', 'data-action': 'severity' }, 'Set severity'));
    sevForm.addEventListener('submit', (ev) => { ev.preventDefault(); patch({ severity_override: sevSel.value ? Number(sevSel.value) : null }, 'Severity override'); });

    const tags = h('input', { name: 'tags', id: 'tags-input', value: (w.tags || []).join(', '), placeholder: 'comma-separated', 'aria-label': 'Tags' });
    const tagForm = h('form', { class: 'action', 'aria-label': 'Tags' },
      h('label', { class: 'grow' }, 'Tags ', tags), h('button', { type: 'submit', 'data-action': 'tags' }, 'Save tags'));
    tagForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const list = tags.value.split(',').map((t) => t.trim()).filter(Boolean);
      patch({ tags: list.length ? list : null }, 'Tags');
    });

    const into = h('input', { name: 'into', placeholder: 'incident id', 'aria-label': 'Merge into incident' });
    const mreason = h('input', { name: 'merge_reason', placeholder: 'reason', 'aria-label': 'Merge reason' });
    const mergeForm = h('form', { class: 'action', 'aria-label': 'Merge' },
      h('label', {}, 'Merge into ', into), h('label', { class: 'grow' }, 'Reason ', mreason),
      h('button', { type: 'submit', 'data-action': 'merge', disabled: cur === 'merged' }, 'Merge'));
    mergeForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api(`/v1/incidents/${encodeURIComponent(id)}/merge`, { method: 'POST', body: { into: into.value.trim(), reason: mreason.value.trim() }, etag: st.etag });
        await load(false);
        showBanner('ok', `Merged into ${into.value.trim()}.`);
      } catch (e) { failed(e, 'Merge'); }
    });
    return h('section', { class: 'card actions', 'aria-labelledby': 'actions-h' },
      h('h2', { id: 'actions-h' }, 'Actions'), statusForm, assignForm, sevForm, tagForm, mergeForm);
  }

  function killChain(d) {
    const byStage = new Map();
    for (const t of d.timeline || []) {
      const k = t.stage || 'other';
      if (!byStage.has(k)) byStage.set(k, { n: 0, tactics: new Set(), techniques: new Set() });
      const e = byStage.get(k);
      e.n++;
      (t.tactics || []).forEach((x) => e.tactics.add(x));
      (t.techniques || []).forEach((x) => e.techniques.add(x));
    }
    const stages = [...(d.stages || [])];
    for (const k of byStage.keys()) if (!stages.includes(k)) stages.push(k);
    return h('section', { class: 'card', 'aria-labelledby': 'kc-h' },
      h('h2', { id: 'kc-h' }, 'Kill chain'),
      h('ol', { class: 'killchain', id: 'killchain' }, stages.map((stg) => {
        const e = byStage.get(stg) || { n: 0, tactics: new Set(), techniques: new Set() };
        return h('li', { 'data-stage': stg },
          h('strong', {}, human(stg)), h('span', { class: 'muted' }, ` ${e.n} alert${e.n === 1 ? '' : 's'}`),
          h('div', { class: 'tactics' }, [...e.tactics].map((t) => h('span', { class: 'chip', title: t }, TACTICS[t] || t))),
          h('div', { class: 'techniques' }, [...e.techniques].map((t) => h('span', { class: 'chip tech' }, t))));
      })));
  }

  function graphSection(d) {
    const details = h('aside', { class: 'node-details', id: 'node-details', 'aria-live': 'polite' },
      h('p', { class: 'muted' }, 'Select a node (click, or Tab and Enter) to see its details and evidence.'));
    const toggle = h('label', { class: 'toggle' }, h('input', {
      type: 'checkbox', checked: st.showAll, onchange: (ev) => { st.showAll = ev.target.checked; render(); },
    }), ' show every entity (processes, files, users, hashes)');
    const svg = renderGraph(d, {
      showAll: st.showAll,
      onSelect: async (n) => {
        st.selected = n.id;
        details.replaceChildren(...nodeDetails(d, n));
        // Evidence comes in pages; fetch on until this node's is here.
        if (await fetchEvidence(nodeEventIDs(d, n)) && st.selected === n.id) details.replaceChildren(...nodeDetails(d, n));
      },
    });
    const section = h('section', { class: 'card', 'aria-labelledby': 'graph-h' },
      h('h2', { id: 'graph-h' }, 'Graph ', h('span', { class: 'muted' }, `${(d.nodes || []).length} nodes · ${(d.edges || []).length} links`)),
      toggle,
      h('div', { class: 'graph-layout' }, h('div', { class: 'graph-wrap' }, svg), details));
    if (st.selected) {
      const g = svg.querySelector(`[data-node-id="${CSS.escape(st.selected)}"]`);
      if (g) queueMicrotask(() => g.dispatchEvent(new Event('click')));
    }
    return section;
  }

  function nodeEventIDs(d, n) {
    const ids = [];
    if (n.kind === 'alert') ids.push(...(((d.alerts || []).find((x) => x.id === n.value) || {}).event_ids || []));
    for (const e of d.edges || []) if (e.source === n.id || e.target === n.id) ids.push(...(e.event_ids || []));
    return [...new Set(ids)];
  }

  // fetchEvidence loads evidence pages (at most 10 more) until every id is
  // loaded; it reports whether it loaded anything.
  async function fetchEvidence(ids) {
    let loaded = false;
    for (let i = 0; i < 10 && st.nextEvidence; i++) {
      const have = new Set(st.evidence.map((x) => x.id));
      if (ids.every((x) => have.has(x))) break;
      try {
        const { data } = await api(`/v1/incidents/${encodeURIComponent(id)}?evidence_cursor=${encodeURIComponent(st.nextEvidence)}`);
        st.evidence.push(...(data.evidence || []));
        st.nextEvidence = data.next_evidence_cursor || '';
        loaded = true;
        const list = document.getElementById('evidence');
        if (list) list.append(...(data.evidence || []).map(eventItem));
      } catch { break; }
    }
    if (loaded) {
      const h2 = document.getElementById('ev-h');
      if (h2) h2.textContent = `Evidence events (${st.evidence.length}${st.nextEvidence ? '+' : ''})`;
    }
    return loaded;
  }

  function nodeDetails(d, n) {
    const out = [];
    const range = query({ from: new Date(d.first_seen - 86400000).toISOString(), to: new Date(d.last_seen + 86400000).toISOString() });
    if (n.kind === 'alert') {
      const a = (d.alerts || []).find((x) => x.id === n.value) || {};
      out.push(h('h3', {}, n.title), h('dl', { class: 'facts' },
        fact('Rule', `${a.rule_id || n.subtitle || ''} v${a.rule_version || '?'}`), fact('Severity', SEVERITY[a.severity_id || n.severity_id] || ''),
        fact('Stage', human(a.stage || '')), fact('Time', fmtTime(a.time || n.first_seen)), fact('Source', a.source || ''),
        fact('Tactics', (a.tactics || []).map((t) => TACTICS[t] || t).join(', ')), fact('Techniques', (a.techniques || []).join(', ')),
        a.summary ? fact('Summary', a.summary) : ''));
    } else {
      out.push(h('h3', {}, `${human(n.entity)}: `, h('code', {}, n.value)),
        h('p', {}, h('a', { href: `#/entities/${encodeURIComponent(n.entity)}/${encodeURIComponent(n.value)}${range}`, id: 'pivot-link' }, 'Pivot: incidents and recent events of this entity →')),
        n.subtitle && n.subtitle !== n.entity ? h('p', { class: 'muted' }, n.subtitle) : '');
    }
    const links = (d.edges || []).filter((e) => e.source === n.id || e.target === n.id);
    out.push(h('h4', {}, `Links (${links.length})`), h('ul', { class: 'links' }, links.slice(0, 50).map((e) => {
      const other = e.source === n.id ? e.target : e.source;
      const on = (d.nodes || []).find((x) => x.id === other);
      const name = on ? (on.kind === 'alert' ? on.title : `${human(on.entity)} ${on.value}`) : other;
      return h('li', {}, `${e.relation} ${e.source === n.id ? '→' : '←'} `,
        h('button', { type: 'button', class: 'linkish', onclick: () => selectNode(other) }, name),
        h('span', { class: 'muted' }, ` · ${gap(e.gap_ms)} · ${e.rule_id || ''} v${e.rule_version || ''}${e.join_key ? ' · join ' + e.join_key : ''}`));
    })));
    const eventIDs = nodeEventIDs(d, n);
    const evs = st.evidence.filter((x) => eventIDs.includes(x.id));
    out.push(h('h4', {}, `Evidence events (${eventIDs.length})`), evs.map(eventItem));
    if (evs.length < eventIDs.length) out.push(h('p', { class: 'muted' }, `${eventIDs.length - evs.length} more not in the loaded evidence pages.`));
    return out.flat(Infinity).filter((x) => x !== '' && x != null);
  }

  function timeline(d) {
    return h('section', { class: 'card', 'aria-labelledby': 'tl-h' },
      h('h2', { id: 'tl-h' }, 'Timeline'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'timeline', id: 'timeline' },
        h('thead', {}, h('tr', {}, ['Time', 'Δ', 'Stage', 'Severity', 'Alert', 'Rule'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, (d.timeline || []).map((t, i, all) => h('tr', { class: t.correlated ? 'correlated' : '' },
          h('td', {}, fmtTime(t.time)), h('td', { class: 'muted' }, i ? gap(t.time - all[i - 1].time) : ''),
          h('td', {}, human(t.stage || '')), h('td', {}, sevBadge(t.severity_id)),
          h('td', {}, h('button', { type: 'button', class: 'linkish', onclick: () => selectNode('alert:' + t.alert_id) }, t.title), t.correlated ? h('span', { class: 'chip' }, 'sequence') : ''),
          h('td', {}, h('code', {}, t.rule_id), h('span', { class: 'muted' }, ' v' + (t.rule_version || '')))))))));
  }

  function selectNode(nodeID) {
    const g = document.querySelector(`#graph [data-node-id="${CSS.escape(nodeID)}"]`);
    if (g) { g.dispatchEvent(new Event('click')); g.scrollIntoView({ block: 'nearest', inline: 'center' }); g.focus(); }
  }

  function eventItem(ev) {
    return h('details', { class: 'event', 'data-event-id': ev.id },
      h('summary', {}, h('code', {}, fmtTime(ev.time)), ` ${ev.source} · ${ev.operation || 'class ' + ev.class_uid} · `, h('span', { class: 'muted' }, ev.id)),
      h('div', { class: 'event-body' },
        h('div', {}, h('h5', {}, 'Normalized (OCSF)'), jsonBlock(ev.normalized)),
        ev.raw ? h('div', {}, h('h5', {}, 'Raw'), jsonBlock(ev.raw)) : ''));
  }

  function evidence() {
    const more = st.nextEvidence ? h('button', {
      type: 'button', onclick: async () => {
        try {
          const { data } = await api(`/v1/incidents/${encodeURIComponent(id)}?evidence_cursor=${encodeURIComponent(st.nextEvidence)}`);
          st.evidence.push(...(data.evidence || []));
          st.nextEvidence = data.next_evidence_cursor || '';
          render();
        } catch (e) { failed(e, 'Loading evidence'); }
      },
    }, 'Load more evidence') : '';
    return h('section', { class: 'card', 'aria-labelledby': 'ev-h' },
      h('h2', { id: 'ev-h' }, `Evidence events (${st.evidence.length}${st.nextEvidence ? '+' : ''})`),
      h('div', { id: 'evidence' }, st.evidence.map(eventItem)), more);
  }

  function comments() {
    const list = h('ol', { class: 'comments', id: 'comments' }, st.comments.map((c) => h('li', {},
      h('div', { class: 'muted' }, `${c.author} · ${(c.time || '').replace('T', ' ').slice(0, 19)}Z`), h('p', {}, c.body))));
    if (!st.comments.length) list.append(h('li', { class: 'muted' }, 'No comments yet.'));
    let form = '';
    if (canAct) {
      const ta = h('textarea', { name: 'body', rows: 3, maxlength: 16384, 'aria-label': 'New comment', required: true });
      form = h('form', { class: 'comment-form' }, ta, h('button', { type: 'submit', 'data-action': 'comment' }, 'Add comment'));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
          const { data } = await api(`/v1/incidents/${encodeURIComponent(id)}/comments`, { method: 'POST', body: { body: ta.value }, headers: { 'Idempotency-Key': key } });
          st.comments.push(data);
          render();
        } catch (e) { failed(e, 'Comment'); }
      });
    }
    return h('section', { class: 'card', 'aria-labelledby': 'cm-h' }, h('h2', { id: 'cm-h' }, 'Comments'), list, form);
  }

  load(false);
  return () => { alive = false; };
}
