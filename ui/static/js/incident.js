// One incident: a compact header bar with the actions (by role), then the
// story (summary, impact scope, kill chain), the graph with node details,
// the timeline, the evidence and the comments.

import { api, APIError, query } from './api.js';
import { h, sevBadge, effectiveSeverity, fmtTime, gap, human, jsonBlock, TACTICS, SEVERITY, announce, shortID, copyable } from './dom.js';
import { renderGraph } from './graph.js';
import { story, impact, killChain, describe, riskWhy } from './story.js';
import { exposureLink } from './exposures.js';

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

// fetchIncident asks for an incident and its comments at once.
function fetchIncident(id) {
  return Promise.all([
    api('/v1/incidents/' + encodeURIComponent(id)),
    api(`/v1/incidents/${encodeURIComponent(id)}/comments`)]);
}

let prefetched = null;

// prefetchIncident starts loading incident id before the page is shown
// (while the console still asks who the token is), so the first paint does
// not wait for two round trips in a row. The next renderIncident of id
// takes it over.
export function prefetchIncident(id) {
  const p = fetchIncident(id);
  p.catch(() => {}); // the page that takes it over reports the failure
  prefetched = { id, p };
}

export function renderIncident(main, ctx, id, params) {
  const st = { detail: null, etag: '', comments: [], evidence: [], nextEvidence: '', showAll: false, expanded: new Set(), selected: null, pending: null, graph: null };
  const canAct = (rank[ctx.me.role] || 0) >= rank.analyst;
  const banner = h('div', { id: 'banner', class: 'banner', role: 'alert', hidden: true });
  const body = h('div', { class: 'incident' }, h('p', { class: 'muted' }, 'Loading incident…'));
  main.replaceChildren(h('p', {}, h('a', { href: '#/', class: 'back' }, '← Queue')), banner, body);
  let alive = true;

  function showBanner(kind, text, buttons) {
    banner.hidden = false;
    banner.className = `banner ${kind}`;
    banner.replaceChildren(h('span', { class: 'banner-text' }, text), ...[buttons || []].flat().filter(Boolean));
  }

  // draft is what the analyst typed in the action forms; a reload keeps it.
  function draft() {
    const out = {};
    for (const el of body.querySelectorAll('.actions [name]')) {
      if (el.value !== el.dataset.shown) out[el.name] = el.value;
    }
    return out;
  }
  function restoreDraft(dr) {
    if (!dr) return;
    for (const el of body.querySelectorAll('.actions [name]')) {
      if (!(el.name in dr)) continue;
      if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === dr[el.name])) continue;
      el.value = dr[el.name];
      el.dispatchEvent(new Event('change'));
    }
  }

  async function load(clearBanner) {
    try {
      const pre = prefetched && prefetched.id === id && !st.detail ? prefetched.p : null;
      prefetched = null;
      const [{ data, etag }, c] = await (pre || fetchIncident(id));
      if (!alive) return;
      if (!st.painted) performance.mark('musubi:incident-data');
      st.detail = data; st.etag = etag;
      st.evidence = data.evidence || []; st.nextEvidence = data.next_evidence_cursor || '';
      st.comments = c.data.items || c.data || [];
      if (clearBanner) { banner.hidden = true; announce('Incident reloaded.'); }
      const keep = st.pending && st.pending.draft;
      render();
      restoreDraft(keep);
      document.title = `${d0()} · ${id} — Musubi`;
    } catch (e) {
      if (!alive) return;
      if (e instanceof APIError && e.status === 404) {
        body.replaceChildren(h('p', { class: 'error', id: 'not-found', role: 'alert' }, 'No such incident in your tenants.'));
      } else {
        body.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The incident could not be loaded: ${e.message}`));
      }
    }
  }

  function d0() { return (st.detail && st.detail.title) || id; }

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
      st.pending = null;
      showBanner('ok', `${what}: saved.`);
      render();
    } catch (e) {
      failed(e, what, changes);
    }
  }

  // conflict explains a 412: who changed what since the page was loaded;
  // the analyst's typed values stay, and their change can be re-applied.
  async function conflict(what, changes) {
    const before = (st.detail && st.detail.workflow) || {};
    st.pending = { what, changes, draft: draft() };
    let who = 'Someone else', changed = [];
    try {
      const { data } = await api('/v1/incidents/' + encodeURIComponent(id));
      const w = data.workflow || {};
      who = w.updated_by || who;
      for (const k of ['status', 'assignee', 'verdict', 'reason', 'severity_override', 'tags', 'merged_into']) {
        const a = JSON.stringify(before[k] ?? null), b = JSON.stringify(w[k] ?? null);
        if (a !== b) changed.push(`${human(k)} ${k === 'tags' ? (w.tags || []).join(', ') || '—' : (w[k] ?? '—')}`);
      }
      if (w.updated_at) changed.push(`at ${fmtTime(Date.parse(w.updated_at))}`);
    } catch { /* the banner still says what happened */ }
    const mine = Object.entries(changes || {}).map(([k, v]) => `${human(k)} → ${Array.isArray(v) ? v.join(', ') : (k === 'reason' ? v : human(String(v ?? '—')))}`).join(', ');
    showBanner('conflict',
      `This incident was changed by someone else: ${who} set ${changed.length ? changed.join(', ') : 'it'} after you opened it. Your change (${mine || what}) was not saved; what you typed is kept.`,
      [h('button', { type: 'button', id: 'reload', onclick: () => load(true) }, 'Reload'),
        changes ? h('button', { type: 'button', id: 'reapply', class: 'primary', onclick: reapply }, 'Re-apply my change') : '']);
  }

  async function reapply() {
    const p = st.pending;
    await load(true);
    if (p) patch(p.changes, p.what);
  }

  function failed(e, what, changes) {
    if (e instanceof APIError && e.status === 412) {
      conflict(what, changes);
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
    // The first paint shows the header, the story and the timeline; the
    // graph, the costliest part to lay out, and the evidence are drawn in
    // the task after it.
    const graph = st.painted ? graphSection(d) : h('section', { class: 'card', id: 'graph-pending', 'aria-busy': 'true', 'aria-labelledby': 'graph-h' },
      h('h2', { id: 'graph-h' }, 'Graph'), h('p', { class: 'muted' }, 'Drawing the graph…'));
    body.replaceChildren(
      h('header', { class: 'inc-head' },
        h('div', { class: 'inc-title' }, sevBadge(sev, !!w.severity_override), h('h1', { id: 'incident-title' }, d.title)),
        h('div', { class: 'inc-meta' },
          h('span', { class: `status st-${w.status}`, id: 'incident-status' }, human(w.status)),
          h('span', {}, h('span', { class: 'muted' }, 'Assignee '), h('span', { id: 'incident-assignee' }, w.assignee || '—')),
          w.verdict ? h('span', {}, h('span', { class: 'muted' }, 'Verdict '), h('span', { id: 'incident-verdict' }, human(w.verdict))) : '',
          w.reason ? h('span', { class: 'reason' }, h('span', { class: 'muted' }, 'Reason '), w.reason) : '',
          h('span', {}, h('span', { class: 'muted' }, 'Tags '), h('span', { id: 'incident-tags' }, (w.tags || []).length ? (w.tags || []).map((t) => h('span', { class: 'tag' }, t)) : '—')),
          h('span', {}, h('span', { class: 'muted' }, 'Risk '), String(d.risk_score)),
          w.severity_override ? h('span', { class: 'muted' }, `correlator said ${SEVERITY[d.severity_id]}`) : '',
          h('span', {}, h('span', { class: 'muted' }, 'Id '), copyable(d.id, 30)),
          w.merged_into ? h('span', {}, 'Merged into ', h('a', { href: '#/incidents/' + encodeURIComponent(w.merged_into) }, w.merged_into)) : '',
          w.updated_by ? h('span', { class: 'muted', id: 'changed-by' }, `changed by ${w.updated_by}${w.updated_at ? ' · ' + fmtTime(Date.parse(w.updated_at)) : ''}`) : ''),
        canAct ? actions(d, w) : h('p', { class: 'muted', id: 'read-only' }, `Read-only: your role (${ctx.me.role}) cannot change incidents.`)),
      h('section', { class: 'card summary', 'aria-labelledby': 'sum-h', id: 'summary' },
        h('h2', { id: 'sum-h' }, 'What happened'),
        story(d),
        h('div', { class: 'summary-grid' },
          h('div', {}, h('h3', {}, 'Impact scope'), impact(d), h('h3', { id: 'risk-h' }, 'Why this risk'), riskWhy(d)),
          h('div', {}, h('h3', { id: 'kc-h' }, 'Kill chain'), killChain(d)))),
      // The predicted path the incident walked, asked for once, beside the
      // incident's own requests.
      st.exposures || (st.exposures = exposureLink(id)),
      graph,
      timeline(d),
      evidence(!st.painted),
      comments());
    for (const el of body.querySelectorAll('.actions [name]')) el.dataset.shown = el.value;
    if (st.painted) { fitGraph(); return; }
    st.painted = true;
    // Two frames: the second starts once the first has been painted.
    requestAnimationFrame(() => requestAnimationFrame(() => {
      performance.mark('musubi:incident-painted');
      document.body.dataset.incidentPainted = String(Math.round(performance.now()));
      setTimeout(() => {
        if (!alive || !graph.isConnected) return;
        graph.replaceWith(graphSection(st.detail));
        const list = document.getElementById('evidence');
        if (list) list.replaceChildren(...st.evidence.map(eventItem));
        fitGraph();
      });
    }));
  }

  function fitGraph() {
    if (!st.graph) return;
    requestAnimationFrame(() => {
      st.graph.fit();
      if (st.selected) st.graph.select(st.selected);
      performance.mark('musubi:incident-graph');
      document.body.dataset.graphDrawn = String(Math.round(performance.now()));
    });
  }

  // invalid shows what is wrong with a form, in words, without a request.
  function invalid(form, problems) {
    for (const old of body.querySelectorAll('.form-error')) old.remove();
    form.append(h('p', { class: 'form-error', id: 'form-error', role: 'alert' }, problems.join(' ')));
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
      // Checked here, in words, before anything is sent.
      for (const x of body.querySelectorAll('.form-error')) x.remove();
      const problems = [];
      if (statusSel.value === cur) problems.push(`The incident is already ${human(cur)}; choose another status.`);
      if (statusSel.value === 'closed' && cur !== 'closed') {
        if (!verdictSel.value) problems.push('Closing needs a verdict: choose whether it was a true positive, benign positive, false positive, undetermined or a duplicate.');
        if (!reason.value.trim()) problems.push('Closing needs a reason: say in a few words why.');
      }
      if (problems.length) { invalid(statusForm, problems); return; }
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
      for (const x of body.querySelectorAll('.form-error')) x.remove();
      const problems = [];
      if (!into.value.trim()) problems.push('Name the incident to merge this one into.');
      else if (into.value.trim() === id) problems.push('An incident cannot be merged into itself.');
      if (problems.length) { invalid(mergeForm, problems); return; }
      try {
        await api(`/v1/incidents/${encodeURIComponent(id)}/merge`, { method: 'POST', body: { into: into.value.trim(), reason: mreason.value.trim() }, etag: st.etag });
        await load(false);
        showBanner('ok', `Merged into ${into.value.trim()}.`);
      } catch (e) { failed(e, 'Merge'); }
    });
    return h('section', { class: 'actions', 'aria-label': 'Actions' }, statusForm, assignForm, sevForm, tagForm, mergeForm);
  }

  function graphSection(d) {
    const details = h('aside', { class: 'node-details', id: 'node-details', 'aria-live': 'polite' },
      h('p', { class: 'muted' }, 'Select a node (click, or Tab and Enter) to see its details, its links and its evidence.'));
    const toggle = h('label', { class: 'toggle' }, h('input', {
      type: 'checkbox', checked: st.showAll, onchange: (ev) => { st.showAll = ev.target.checked; render(); },
    }), ' show every entity (processes, files, users, hashes)');
    st.graph = renderGraph(d, {
      showAll: st.showAll,
      expanded: st.expanded,
      // Laid out for the width of the page's cards (the frame's border and
      // the card's padding aside), so that it fits on open.
      width: Math.max(1000, body.clientWidth - 32),
      // and, when it can, short enough that the graph and its toolbar fit
      // the window's height: the whole story on one screen.
      height: Math.max(560, window.innerHeight - 60),
      onExpand: (gid) => { st.expanded.add(gid); render(); },
      onSelect: async (nodeID, members) => {
        st.selected = nodeID;
        const n = (d.nodes || []).find((x) => x.id === nodeID);
        if (!n) return;
        details.replaceChildren(...nodeDetails(d, n, members));
        // Evidence comes in pages; fetch on until this node's is here.
        if (await fetchEvidence(nodeEventIDs(d, n, members)) && st.selected === nodeID) details.replaceChildren(...nodeDetails(d, n, members));
      },
    });
    const L = st.graph.layout;
    return h('section', { class: 'card', 'aria-labelledby': 'graph-h' },
      h('h2', { id: 'graph-h' }, 'Graph ', h('span', { class: 'muted' },
        `${L.groups.length} alert nodes (${(d.alerts || []).length} alerts) · ${L.entities.length} entities · ${L.links.length} links between alerts`)),
      toggle,
      h('div', { class: 'graph-layout' }, st.graph.el, details));
  }

  function nodeEventIDs(d, n, members) {
    const ids = [];
    const all = members && members.length ? members : [n.id];
    for (const m of all) if (m.startsWith('alert:')) ids.push(...(((d.alerts || []).find((x) => 'alert:' + x.id === m) || {}).event_ids || []));
    for (const e of d.edges || []) if (all.includes(e.source) || all.includes(e.target)) ids.push(...(e.event_ids || []));
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

  function nodeDetails(d, n, members) {
    const out = [];
    const all = members && members.length ? members : [n.id];
    const range = query({ from: new Date(d.first_seen - 86400000).toISOString(), to: new Date(d.last_seen + 86400000).toISOString() });
    if (n.kind === 'alert') {
      const as = all.map((m) => (d.alerts || []).find((x) => 'alert:' + x.id === m)).filter(Boolean);
      const a = as[0] || {};
      out.push(h('h3', {}, n.title, as.length > 1 ? h('span', { class: 'muted' }, ` ×${as.length}`) : ''), h('dl', { class: 'facts' },
        fact('Rule', h('span', { title: `version ${a.rule_version || '?'}` }, a.rule_id || n.subtitle || '')), fact('Severity', SEVERITY[a.severity_id || n.severity_id] || ''),
        fact('Stage', human(a.stage || '')), fact('Time', as.map((x) => fmtTime(x.time)).join(', ') || fmtTime(n.first_seen)), fact('Source', a.source || ''),
        a.count > 1 ? fact('Repeats', `${a.count} (folded into one alert)`) : '',
        fact('Tactics', (a.tactics || []).map((t) => TACTICS[t] || t).join(', ')), fact('Techniques', (a.techniques || []).join(', ')),
        as.map((x) => (x.summary ? fact('Summary', x.summary) : ''))));
    } else {
      out.push(h('h3', {}, `${human(n.entity)}: `, copyable(n.value, 60)),
        h('p', {}, h('a', { href: `#/entities/${encodeURIComponent(n.entity)}/${encodeURIComponent(n.value)}${range}`, id: 'pivot-link' }, 'Pivot: incidents and recent events of this entity →')),
        n.subtitle && n.subtitle !== n.entity ? h('p', { class: 'muted' }, n.subtitle) : '');
    }
    const links = (d.edges || []).filter((e) => all.includes(e.source) || all.includes(e.target));
    const strong = links.filter((e) => e.relation !== 'observed'), observed = links.filter((e) => e.relation === 'observed');
    const linkItem = (e) => {
      const out2 = all.includes(e.source);
      const other = out2 ? e.target : e.source;
      const on = (d.nodes || []).find((x) => x.id === other);
      const name = on ? (on.kind === 'alert' ? on.title : `${human(on.entity)} ${shortID(on.value, 40)}`) : other;
      return h('li', {}, `${out2 ? '→' : '←'} `,
        h('button', { type: 'button', class: 'linkish', onclick: () => selectNode(other) }, name),
        h('span', { class: 'muted' }, ` · ${e.relation}${e.join_key ? ' on ' + e.join_key : ''} · ${gap(e.gap_ms)}${e.rule_id ? ' · ' + e.rule_id : ''}`));
    };
    out.push(h('h4', {}, `Linked alerts (${strong.length})`), h('ul', { class: 'links' }, strong.slice(0, 50).map(linkItem)));
    if (observed.length) out.push(h('h4', {}, `Observed (${observed.length})`), h('ul', { class: 'links' }, observed.slice(0, 50).map(linkItem)));
    const eventIDs = nodeEventIDs(d, n, all);
    const evs = st.evidence.filter((x) => eventIDs.includes(x.id));
    out.push(h('h4', {}, `Evidence events (${eventIDs.length})`), evs.map(eventItem));
    if (evs.length < eventIDs.length) out.push(h('p', { class: 'muted' }, `${eventIDs.length - evs.length} more not in the loaded evidence pages.`));
    return out.flat(Infinity).filter((x) => x !== '' && x != null);
  }

  function timeline(d) {
    // Rows that say the same (two sequence alerts of one rule at one
    // instant) are one row with a count.
    const rows = [];
    for (const t of d.timeline || []) {
      const last = rows[rows.length - 1];
      if (last && last.t.time === t.time && last.t.rule_id === t.rule_id && last.t.title === t.title) { last.n++; continue; }
      rows.push({ t, n: 1 });
    }
    return h('section', { class: 'card', 'aria-labelledby': 'tl-h' },
      h('h2', { id: 'tl-h' }, 'Timeline'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'timeline', id: 'timeline' },
        h('thead', {}, h('tr', {}, ['Time', 'Δ', 'Stage', 'Severity', 'Alert', 'Rule'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows.map(({ t, n }, i) => h('tr', { class: t.correlated ? 'correlated' : '' },
          h('td', { class: 'nowrap' }, fmtTime(t.time)), h('td', { class: 'muted nowrap' }, i ? gap(t.time - rows[i - 1].t.time) : ''),
          h('td', {}, human(t.stage || '')), h('td', {}, sevBadge(t.severity_id)),
          h('td', {}, h('button', { type: 'button', class: 'linkish', onclick: () => selectNode('alert:' + t.alert_id) }, t.title),
            n > 1 ? h('span', { class: 'muted' }, ` ×${n}`) : '', t.correlated ? h('span', { class: 'chip' }, 'sequence') : '', (t.count || 1) > 1 ? h('span', { class: 'chip' }, `folded ×${t.count}`) : ''),
          h('td', {}, h('code', { title: `version ${t.rule_version || '?'}` }, t.rule_id))))))));
  }

  function selectNode(nodeID) {
    if (st.graph && st.graph.select(nodeID)) {
      document.getElementById('graph-h').scrollIntoView({ block: 'start' });
    }
  }

  // lazyJSON shows the normalized event and the raw record, built when
  // first opened (they are long and rarely read).
  function lazyJSON(ev) {
    const box = h('details', { class: 'ev-json' }, h('summary', {}, 'Normalized (OCSF) and raw record'));
    box.addEventListener('toggle', () => {
      if (!box.open || box.querySelector('.event-body')) return;
      box.append(h('div', { class: 'event-body' },
        h('div', {}, h('h5', {}, 'Normalized (OCSF)'), jsonBlock(ev.normalized)),
        ev.raw ? h('div', {}, h('h5', {}, 'Raw'), jsonBlock(ev.raw)) : ''));
    });
    return box;
  }

  function eventItem(ev) {
    const x = describe(ev);
    return h('details', { class: 'event', 'data-event-id': ev.id },
      h('summary', {}, h('span', { class: 'ev-time' }, fmtTime(ev.time)), ' ', h('strong', { class: 'ev-kind' }, x.kind + ':'), ' ',
        h('span', { class: 'ev-text' }, x.text), h('span', { class: 'muted' }, ` · ${x.product}`)),
      h('dl', { class: 'facts ev-facts' }, x.facts.map(([k, v]) => fact(k, String(v)))),
      lazyJSON(ev),
      h('p', { class: 'muted ev-id' }, 'event ', h('code', {}, ev.id)));
  }

  // evidence lists the loaded evidence events; later leaves the list to
  // fill after the first paint.
  function evidence(later) {
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
      h('div', { id: 'evidence' }, later ? h('p', { class: 'muted' }, 'Loading the evidence…') : st.evidence.map(eventItem)), more);
  }

  function comments() {
    const list = h('ol', { class: 'comments', id: 'comments' }, st.comments.map((c) => h('li', {},
      h('div', { class: 'muted' }, `${c.author} · ${fmtTime(Date.parse(c.time))}`), h('p', {}, c.body))));
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
  return () => {
    alive = false;
    document.title = 'Musubi console';
    delete document.body.dataset.incidentPainted;
    delete document.body.dataset.graphDrawn;
  };
}
