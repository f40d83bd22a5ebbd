// The incident graph, drawn as SVG with a deterministic layout that tells
// the story in time: one horizontal lane per kill-chain stage (in the
// incident's order), alerts placed left to right by event time, so every
// alert-to-alert arrow points right (or down, between alerts of the same
// instant). Repeats of one rule next to each other in a lane fold into one
// node with a count. Each alert carries, just below it, the context
// entities it was the first to name. Links between alerts are labelled
// with what joins them ("same access key ASIA…QX2K · +5 m"); labels that
// would cover a node or another label are placed further along their link
// or, failing that, shown only on hover and when an end is selected.
// "Observed" links from an alert to its entities appear only for the
// selected node.

import { s, h, human, gap, shortID, fmtClock, SEVERITY } from './dom.js';

// Entity kinds shown by default; processes, files, users and hashes are
// behind "show every entity".
const KIND_ORDER = ['instance', 'host', 'ip', 'access_key', 'session', 'principal', 'role', 'account', 'bucket', 'object',
  'application', 'deployment_group', 'deployment', 'pipeline', 'finding', 'hash', 'region', 'user', 'process', 'file'];
const DETAIL_KINDS = new Set(['process', 'file', 'user', 'hash']);
// Short names of entity kinds for the pills (the full name is on hover).
const KIND_SHORT = { access_key: 'key', deployment_group: 'group', deployment: 'deploy', application: 'app', principal: 'principal', instance: 'instance' };

const LANE_W = 120, COL_W = 182, NODE_W = 164, PAD = 12, TOP = 8, LINE = 15, ENT_H = 22, ENT_GAP = 4, CELL_GAP = 14;
export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const TITLE_FONT = `600 12px ${FONT}`, SUB_FONT = `11px ${FONT}`, LABEL_FONT = `10.5px ${FONT}`, LANE_FONT = `700 12px ${FONT}`;

let ctx2d;
const widths = new Map();
// textWidth measures text as the page draws it (a canvas with the same
// font; rounded up, with a pixel to spare for hinting).
export function textWidth(text, font) {
  const k = font + '\u0000' + text;
  let w = widths.get(k);
  if (w === undefined) {
    ctx2d = ctx2d || document.createElement('canvas').getContext('2d');
    if (ctx2d.font !== font) ctx2d.font = font;
    w = Math.ceil(ctx2d.measureText(text).width) + 1;
    widths.set(k, w);
  }
  return w;
}

// wrap breaks text into lines no wider than width (a word longer than the
// line is cut in the middle of the word, never dropped).
export function wrap(text, font, width) {
  const lines = [];
  let cur = '';
  for (const word of String(text).split(/\s+/).filter(Boolean)) {
    const next = cur ? cur + ' ' + word : word;
    if (textWidth(next, font) <= width) { cur = next; continue; }
    if (cur) lines.push(cur);
    cur = word;
    while (textWidth(cur, font) > width && cur.length > 1) {
      let i = cur.length - 1;
      while (i > 1 && textWidth(cur.slice(0, i), font) > width) i--;
      lines.push(cur.slice(0, i));
      cur = cur.slice(i);
    }
  }
  if (cur) lines.push(cur);
  return lines.length ? lines : [''];
}

// fitID shortens an identifier in the middle until it fits width.
function fitID(value, font, width) {
  for (let max = 40; max >= 6; max--) {
    const v = shortID(value, max);
    if (textWidth(v, font) <= width) return v;
  }
  return shortID(value, 6);
}

// edgeLabel says what links two alerts: the join key's kind and value and
// the time gap.
export function edgeLabel(e) {
  const key = e.join_key || '';
  let kind = '', value = '';
  const m = /^([a-z_]+)(?:@[^=:]*)?[:=](.*)$/.exec(key);
  if (m) { kind = m[1]; value = m[2]; }
  const what = kind ? `${e.relation === 'sequence' ? 'sequence on' : 'same'} ${human(kind)} ${shortID(value, 14)}` : e.relation;
  return `${what} · ${gap(e.gap_ms)}`;
}

// layout places the nodes; it depends only on the incident, so the same
// incident is always drawn the same way.
export function layout(inc, showAll) {
  const alertInfo = new Map((inc.alerts || []).map((a) => ['alert:' + a.id, a]));
  const stageOf = new Map();
  for (const t of inc.timeline || []) stageOf.set('alert:' + t.alert_id, t.stage || '');
  const lanes = [...(inc.stages || [])];
  const laneOf = (st) => {
    let i = lanes.indexOf(st || 'other');
    if (i < 0) { lanes.push(st || 'other'); i = lanes.length - 1; }
    return i;
  };
  const nodeByID = new Map((inc.nodes || []).map((n) => [n.id, n]));
  const alerts = (inc.nodes || []).filter((n) => n.kind === 'alert');
  alerts.sort((a, b) => (a.first_seen - b.first_seen) || a.id.localeCompare(b.id));
  const ruleOf = (n) => (alertInfo.get(n.id) || {}).rule_id || n.subtitle || n.title;

  // Fold neighbours of one rule in a lane into one group.
  const groups = [];
  const groupOf = new Map();
  const lastInLane = new Map();
  let before = null;
  for (const n of alerts) {
    const lane = laneOf(stageOf.get(n.id) || n.mainstat);
    const prev = lastInLane.get(lane);
    // Only neighbours in time fold, so a node never spans another alert.
    const adjacent = prev && (prev.members[prev.members.length - 1] === before || prev.members[prev.members.length - 1].first_seen === n.first_seen);
    before = n;
    if (adjacent && ruleOf(prev.members[0]) === ruleOf(n)) {
      prev.members.push(n);
      groupOf.set(n.id, prev);
      continue;
    }
    const g = { id: n.id, kind: 'alert', lane, members: [n], time: n.first_seen, entities: [] };
    groups.push(g);
    groupOf.set(n.id, g);
    lastInLane.set(lane, g);
  }

  // Links between groups (one per pair, the earliest edge kept).
  const links = [];
  const seenPair = new Set();
  const alertEdges = (inc.edges || []).filter((e) => groupOf.has(e.source) && groupOf.has(e.target));
  alertEdges.sort((a, b) => (a.time - b.time) || a.id.localeCompare(b.id));
  const preds = new Map();
  for (const e of alertEdges) {
    let a = groupOf.get(e.source), b = groupOf.get(e.target);
    if (a === b) continue;
    // An arrow points from the earlier alert to the later one.
    if (b.time < a.time) [a, b] = [b, a];
    const k = a.id + '>' + b.id;
    if (seenPair.has(k)) { links.find((l) => l.key === k).edges.push(e); continue; }
    seenPair.add(k);
    links.push({ key: k, from: a, to: b, edges: [e] });
    if (!preds.has(b)) preds.set(b, new Set());
    preds.get(b).add(a);
  }

  // Columns: in time order, a group joins the current column unless its
  // lane already has one there or an earlier group it follows is there.
  // Alerts of one instant: the ones others follow come first.
  for (const g of groups) g.depth = 0;
  for (let changed = true, n = 0; changed && n < groups.length; n++) {
    changed = false;
    for (const g of groups) {
      for (const p of preds.get(g) || []) {
        if (p.time === g.time && g.depth < p.depth + 1) { g.depth = p.depth + 1; changed = true; }
      }
    }
  }
  let col = 0;
  const used = new Set();
  for (const g of [...groups].sort((a, b) => (a.time - b.time) || (a.depth - b.depth) || a.id.localeCompare(b.id))) {
    const clash = used.has(col + ':' + g.lane) || [...(preds.get(g) || [])].some((p) => p.col === col && p.time < g.time);
    if (clash) { col++; used.clear(); }
    g.col = col;
    used.add(col + ':' + g.lane);
  }
  const cols = col + 1;

  // Context entities beside the first alert that names them.
  const rank = (k) => { const i = KIND_ORDER.indexOf(k); return i < 0 ? KIND_ORDER.length : i; };
  const entityFirst = new Map();
  const observed = [];
  for (const e of inc.edges || []) {
    const [al, en] = groupOf.has(e.source) ? [e.source, e.target] : [e.target, e.source];
    const n = nodeByID.get(en);
    if (!groupOf.has(al) || !n || n.kind === 'alert') continue;
    if (!showAll && DETAIL_KINDS.has(n.entity)) continue;
    observed.push({ alert: al, entity: en, edge: e });
    const g = groupOf.get(al);
    const cur = entityFirst.get(en);
    if (!cur || g.time < cur.time || (g.time === cur.time && g.id < cur.id)) entityFirst.set(en, g);
  }
  const entities = [];
  for (const [id, g] of entityFirst) {
    const n = nodeByID.get(id);
    const ent = { ...n, kind: 'entity', group: g };
    g.entities.push(ent);
    entities.push(ent);
  }
  for (const g of groups) g.entities.sort((a, b) => (rank(a.entity) - rank(b.entity)) || a.value.localeCompare(b.value));

  // Sizes.
  for (const g of groups) {
    const first = g.members[0];
    g.lines = wrap(first.title, TITLE_FONT, NODE_W - 16);
    const info = alertInfo.get(first.id) || {};
    const count = g.members.reduce((n, m) => n + ((alertInfo.get(m.id) || {}).count || 1), 0);
    g.count = count;
    const hosts = [...new Set(g.members.flatMap((m) => ((alertInfo.get(m.id) || {}).entities || []).filter((x) => x.entity === 'host').map((x) => x.value)))];
    const where = hosts.length ? hosts.join(', ') : (info.source || '');
    g.sub = wrap(`${fmtClock(first.first_seen)}${count > 1 ? ` · ×${count}` : ''}${where ? ' · ' + where : ''}`, SUB_FONT, NODE_W - 16);
    g.h = 8 + g.lines.length * LINE + g.sub.length * 14 + 6;
    g.severity = Math.max(...g.members.map((m) => m.severity_id || 0));
    g.correlated = g.members.some((m) => /^corr-/.test(m.value));
    for (const e of g.entities) {
      const kind = KIND_SHORT[e.entity] || human(e.entity);
      e.kindText = kind;
      e.kindW = textWidth(kind, `10.5px ${FONT}`) + 6;
      e.label = fitID(e.value, `600 11.5px ${FONT}`, NODE_W - 8 - 9 - e.kindW - 8);
    }
    g.cellH = g.h + g.entities.length * (ENT_H + ENT_GAP);
  }

  // Lanes: as tall as their tallest cell; a lane with no alert is skipped.
  const laneH = lanes.map(() => 0);
  for (const g of groups) laneH[g.lane] = Math.max(laneH[g.lane], g.cellH);
  const laneY = [];
  let y = TOP;
  const laneLines = lanes.map((l) => wrap(human(l), LANE_FONT, LANE_W - 24));
  for (let i = 0; i < lanes.length; i++) {
    laneY.push(y);
    if (laneH[i] > 0) laneH[i] = Math.max(laneH[i], laneLines[i].length * 15 + 12) + CELL_GAP;
    y += laneH[i];
  }
  for (const g of groups) {
    g.x = PAD + LANE_W + g.col * COL_W;
    g.y = laneY[g.lane] + CELL_GAP / 2;
    g.entities.forEach((e, j) => { e.x = g.x + 8; e.y = g.y + g.h + ENT_GAP + j * (ENT_H + ENT_GAP); e.h = ENT_H; e.w = NODE_W - 8; });
  }
  const width = PAD * 2 + LANE_W + cols * COL_W - (COL_W - NODE_W);
  return { lanes, laneY, laneH, laneLines, groups, groupOf, links, entities, observed, width, height: y + PAD, cols };
}

function linkPath(a, b) {
  const ay = a.y + Math.min(a.h / 2, 24), by = b.y + Math.min(b.h / 2, 24);
  if (a.col === b.col) {
    // Same instant: down (or up) the right side.
    const x = a.x + NODE_W, bend = 22 + Math.min(30, Math.abs(by - ay) / 8);
    return `M${x},${ay} C${x + bend},${ay} ${x + bend},${by} ${x + 2},${by}`;
  }
  const x1 = a.x + NODE_W, x2 = b.x - 2;
  const mx = (x1 + x2) / 2;
  return `M${x1},${ay} C${mx},${ay} ${mx},${by} ${x2},${by}`;
}

// bezier evaluates a path of the form linkPath makes at t.
function bezier(d, t) {
  const n = d.match(/-?[\d.]+/g).map(Number);
  const [x0, y0, x1, y1, x2, y2, x3, y3] = n;
  const u = 1 - t;
  return [u * u * u * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t * t * t * x3, u * u * u * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y3];
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

// renderGraph draws inc; it returns the view (toolbar, scrollable graph,
// minimap) and fit(), which scales the graph to the width it was given.
export function renderGraph(inc, { showAll, onSelect }) {
  const L = layout(inc, showAll);
  const svg = s('svg', {
    class: 'graph', id: 'graph', viewBox: `0 0 ${L.width} ${L.height}`, 'data-width': L.width, 'data-height': L.height,
    role: 'group', 'aria-label': `Incident graph: ${L.groups.length} alert nodes, ${L.entities.length} entities, ${L.links.length} links between alerts`,
    'font-family': FONT,
  });
  svg.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  const content = s('g', { id: 'graph-content' });
  svg.append(content);
  L.lanes.forEach((lane, i) => {
    if (!L.laneH[i]) return;
    content.append(s('rect', { class: `lane ${i % 2 ? 'odd' : 'even'}`, x: 0, y: L.laneY[i], width: L.width, height: L.laneH[i] }));
    content.append(s('text', { class: 'lane-label', x: PAD, y: L.laneY[i] + 18, 'data-lane': lane },
      L.laneLines[i].map((ln, j) => s('tspan', { x: PAD, dy: j ? 15 : 0 }, ln))));
  });

  const boxes = [];
  for (const g of L.groups) {
    boxes.push({ x: g.x, y: g.y, w: NODE_W, h: g.h });
    for (const e of g.entities) boxes.push({ x: e.x, y: e.y, w: e.w, h: e.h });
  }
  const edgeLayer = s('g', { class: 'edges' });
  const observedLayer = s('g', { class: 'observed-layer' });
  const labelLayer = s('g', { class: 'edge-labels' });
  const placed = [];
  for (const l of L.links) {
    const d = linkPath(l.from, l.to);
    const e = l.edges[0];
    const label = edgeLabel(e);
    const title = l.edges.map((x) => `${x.relation} — ${x.join_key || '—'} — ${gap(x.gap_ms)} — rule ${x.rule_id || '?'} — ${(x.event_ids || []).length} evidence event(s)`).join('\n');
    const src = 'alert:' + l.from.members[0].value, dst = 'alert:' + l.to.members[0].value;
    edgeLayer.append(s('path', { d, class: `edge strong${e.relation === 'sequence' ? ' sequence' : ''}`, 'data-source': src, 'data-target': dst, 'marker-end': 'url(#arrow)' },
      s('title', {}, title)));
    const w = textWidth(label, LABEL_FONT) + 8, hgt = 15;
    let spot = null;
    for (const t of [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.12, 0.88]) {
      const [px, py] = bezier(d, t);
      const box = { x: px - w / 2, y: py - hgt / 2, w, h: hgt };
      if (box.x < LANE_W || box.x + w > L.width || box.y < 0 || box.y + hgt > L.height) continue;
      if (boxes.some((b) => overlaps(b, box)) || placed.some((b) => overlaps(b, box))) continue;
      spot = box; break;
    }
    if (!spot) { const [px, py] = bezier(d, 0.5); spot = { x: px - w / 2, y: py - hgt / 2, w, h: hgt, hidden: true }; }
    if (!spot.hidden) placed.push(spot);
    labelLayer.append(s('g', { class: `edge-label${spot.hidden ? ' tucked' : ''}`, 'data-source': src, 'data-target': dst, transform: `translate(${spot.x},${spot.y})` },
      s('title', {}, title),
      s('rect', { width: w, height: hgt, rx: 3 }),
      s('text', { x: 4, y: 11 }, label)));
  }
  content.append(edgeLayer, observedLayer);

  const nodeLayer = s('g', { class: 'nodes' });
  const elements = new Map();
  const pick = (id, el) => {
    for (const x of svg.querySelectorAll('.selected, .hot')) x.classList.remove('selected', 'hot');
    svg.classList.add('focused');
    el.classList.add('selected');
    const members = (el.dataset.members || id).split(' ');
    for (const m of members) {
      for (const x of svg.querySelectorAll(`[data-source="${CSS.escape(m)}"], [data-target="${CSS.escape(m)}"]`)) x.classList.add('hot');
    }
    // "Observed" links of the selected node only.
    observedLayer.replaceChildren();
    for (const o of L.observed) {
      if (!members.includes(o.alert) && o.entity !== id) continue;
      const g = L.groupOf.get(o.alert), ent = L.entities.find((x) => x.id === o.entity);
      if (!g || !ent || ent.group === g) continue;
      const ax = g.x + NODE_W / 2, ay = g.y + g.h / 2, ex = ent.x + ent.w / 2, ey = ent.y + ent.h / 2;
      observedLayer.append(s('path', { class: 'edge observed hot', d: `M${ax},${ay} L${ex},${ey}`, 'data-source': o.alert, 'data-target': o.entity }));
    }
    onSelect(id, members);
  };
  const activate = (el, id) => {
    el.addEventListener('click', () => pick(id, el));
    el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(id, el); } });
  };
  for (const g of L.groups) {
    const first = g.members[0];
    const members = g.members.map((m) => m.id);
    const el = s('g', {
      class: `node alert sev-${g.severity}${g.correlated ? ' correlated' : ''}`, tabindex: 0, role: 'button',
      'data-node-id': first.id, 'data-members': members.join(' '), 'data-time': g.time, 'data-col': g.col, transform: `translate(${g.x},${g.y})`,
      'aria-label': `alert ${first.title}${g.count > 1 ? `, ${g.count} times` : ''}, ${SEVERITY[g.severity] || ''}`,
    },
    s('title', {}, `${first.title}\n${g.members.map((m) => `${fmtClock(m.first_seen)} ${m.subtitle || ''}`).join('\n')}`),
    s('rect', { width: NODE_W, height: g.h, rx: 5 }),
    s('text', { class: 'n-title', x: 8, y: 8 + 11 }, g.lines.map((ln, j) => s('tspan', { x: 8, dy: j ? LINE : 0 }, ln))),
    s('text', { class: 'n-sub', x: 8, y: 8 + g.lines.length * LINE + 10 }, g.sub.map((ln, j) => s('tspan', { x: 8, dy: j ? 14 : 0 }, ln))),
    g.count > 1 ? s('text', { class: 'n-count', x: NODE_W - 6, y: g.h - 6, 'text-anchor': 'end' }, `×${g.count}`) : '');
    for (const m of members) elements.set(m, el);
    activate(el, first.id);
    nodeLayer.append(el);
    for (const e of g.entities) {
      const ee = s('g', {
        class: `node entity kind-${e.entity}`, tabindex: 0, role: 'button', 'data-node-id': e.id, transform: `translate(${e.x},${e.y})`,
        'aria-label': `${human(e.entity)} ${e.value}`,
      },
      s('title', {}, `${human(e.entity)}: ${e.value}${e.subtitle && e.subtitle !== e.entity ? '\n' + e.subtitle : ''}`),
      s('rect', { width: e.w, height: e.h, rx: e.h / 2 }),
      s('text', { class: 'n-kind', x: 9, y: 15 }, e.kindText),
      s('text', { class: 'n-value', x: 9 + e.kindW, y: 15, 'data-full': e.value }, e.label));
      ee.addEventListener('copy', (ev) => { ev.preventDefault(); ev.clipboardData.setData('text/plain', e.value); });
      elements.set(e.id, ee);
      activate(ee, e.id);
      nodeLayer.append(ee);
    }
  }
  content.append(nodeLayer, labelLayer);

  // The view: toolbar, the scrolling graph and a minimap.
  const wrapEl = h('div', { class: 'graph-wrap', id: 'graph-wrap', tabindex: -1 }, svg);
  let zoom = 1;
  const zoomLabel = h('span', { class: 'muted zoom-level', id: 'zoom-level' }, '100%');
  const setZoom = (z, keepCenter = true) => {
    const cx = (wrapEl.scrollLeft + wrapEl.clientWidth / 2) / zoom, cy = (wrapEl.scrollTop + wrapEl.clientHeight / 2) / zoom;
    zoom = Math.max(0.2, Math.min(3, z));
    svg.setAttribute('width', String(Math.round(L.width * zoom)));
    svg.setAttribute('height', String(Math.round(L.height * zoom)));
    zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
    if (keepCenter) { wrapEl.scrollLeft = cx * zoom - wrapEl.clientWidth / 2; wrapEl.scrollTop = cy * zoom - wrapEl.clientHeight / 2; }
    drawViewport();
  };
  // settle corrects, once the graph is on the page, what the canvas
  // measured differently from the SVG: an entity's value moves right of
  // its kind and is shortened further until it fits its pill.
  let settled = false;
  const settle = () => {
    if (settled || !svg.isConnected) return;
    settled = true;
    for (const e of L.entities) {
      const el = elements.get(e.id);
      if (!el) continue;
      const kind = el.querySelector('.n-kind'), val = el.querySelector('.n-value');
      const x = 9 + Math.ceil(kind.getComputedTextLength()) + 6;
      val.setAttribute('x', String(x));
      const room = e.w - x - 7;
      for (let max = 30; val.getComputedTextLength() > room && max >= 5; max--) val.textContent = shortID(e.value, max);
    }
    for (const t of svg.querySelectorAll('.node.alert tspan')) {
      const room = NODE_W - 14;
      while (t.getComputedTextLength() > room && t.textContent.length > 2) t.textContent = t.textContent.slice(0, -2) + '…';
    }
  };
  const fit = () => {
    settle();
    const w = wrapEl.clientWidth - 2;
    if (w > 0) setZoom(Math.min(1, w / L.width), false);
  };
  const mini = s('svg', { class: 'minimap', id: 'minimap', viewBox: `0 0 ${L.width} ${L.height}`, 'aria-hidden': 'true' });
  for (const g of L.groups) mini.append(s('rect', { class: `mm-node sev-${g.severity}`, x: g.x, y: g.y, width: NODE_W, height: g.h }));
  const view = s('rect', { class: 'mm-view', x: 0, y: 0, width: L.width, height: L.height });
  mini.append(view);
  function drawViewport() {
    view.setAttribute('x', String(wrapEl.scrollLeft / zoom));
    view.setAttribute('y', String(wrapEl.scrollTop / zoom));
    view.setAttribute('width', String(Math.min(L.width, wrapEl.clientWidth / zoom)));
    view.setAttribute('height', String(Math.min(L.height, wrapEl.clientHeight / zoom)));
  }
  mini.addEventListener('click', (ev) => {
    const r = mini.getBoundingClientRect();
    const gx = (ev.clientX - r.left) / r.width * L.width, gy = (ev.clientY - r.top) / r.height * L.height;
    wrapEl.scrollLeft = gx * zoom - wrapEl.clientWidth / 2;
    wrapEl.scrollTop = gy * zoom - wrapEl.clientHeight / 2;
  });
  wrapEl.addEventListener('scroll', drawViewport);
  wrapEl.addEventListener('wheel', (ev) => {
    if (!ev.ctrlKey && !ev.metaKey) return;
    ev.preventDefault();
    setZoom(zoom * (ev.deltaY < 0 ? 1.15 : 1 / 1.15));
  }, { passive: false });
  // Drag to pan.
  let drag = null;
  wrapEl.addEventListener('pointerdown', (ev) => {
    if (ev.target.closest('.node') || ev.button !== 0) return;
    drag = { x: ev.clientX, y: ev.clientY, l: wrapEl.scrollLeft, t: wrapEl.scrollTop };
    wrapEl.classList.add('panning');
  });
  window.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    wrapEl.scrollLeft = drag.l - (ev.clientX - drag.x);
    wrapEl.scrollTop = drag.t - (ev.clientY - drag.y);
  });
  window.addEventListener('pointerup', () => { drag = null; wrapEl.classList.remove('panning'); });

  const btn = (label, title, fn, id) => h('button', { type: 'button', title, 'aria-label': title, onclick: fn, id }, label);
  const toolbar = h('div', { class: 'graph-tools', role: 'toolbar', 'aria-label': 'Graph view' },
    btn('Fit', 'Fit the whole graph to the width', fit, 'graph-fit'),
    btn('−', 'Zoom out', () => setZoom(zoom / 1.25), 'graph-zoom-out'),
    btn('+', 'Zoom in', () => setZoom(zoom * 1.25), 'graph-zoom-in'),
    btn('100%', 'Actual size', () => setZoom(1), 'graph-actual'),
    zoomLabel,
    h('span', { class: 'muted' }, 'Ctrl+wheel zooms, drag pans; time runs left to right.'));
  setZoom(1, false);
  toolbar.append(h('div', { class: 'minimap-box', title: 'Minimap: click to move there' }, mini));
  const el = h('div', { class: 'graph-view' }, toolbar, wrapEl);
  const select = (id) => {
    const target = elements.get(id);
    if (!target) return false;
    target.dispatchEvent(new Event('click'));
    const b = target.getBoundingClientRect(), r = wrapEl.getBoundingClientRect();
    if (b.left < r.left || b.right > r.right) wrapEl.scrollLeft += b.left - r.left - r.width / 2 + b.width / 2;
    target.focus({ preventScroll: true });
    return true;
  };
  return { el, svg, fit, select, layout: L };
}
