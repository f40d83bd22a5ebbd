// The incident graph, drawn as SVG with a deterministic layered layout:
// one column per kill-chain stage in the incident's order; alerts on top
// (by time), then the entities each first seen in that stage (by kind).
// Alert-to-alert links are drawn bold with their relation and time gap;
// "observed" links from an alert to its entities are faint until a node
// is selected.

import { s, human, gap, SEVERITY } from './dom.js';

// Entity kinds shown by default; processes, files and users are behind
// "show every entity".
const KIND_ORDER = ['instance', 'host', 'ip', 'access_key', 'session', 'principal', 'role', 'account', 'bucket', 'object',
  'application', 'deployment_group', 'deployment', 'pipeline', 'finding', 'hash', 'region', 'user', 'process', 'file'];
const DETAIL_KINDS = new Set(['process', 'file', 'user', 'hash']);

const COL_W = 300, NODE_W = 236, ALERT_H = 44, ENT_H = 30, GAP = 10, TOP = 44, PAD = 16;

function trunc(str, n) {
  return str.length > n ? str.slice(0, n - 1) + '…' : str;
}

// layout places the nodes; it depends only on the incident, so the same
// incident is always drawn the same way.
export function layout(inc, showAll) {
  const stageOf = new Map();
  for (const t of inc.timeline || []) stageOf.set('alert:' + t.alert_id, t.stage || '');
  const stages = [...(inc.stages || [])];
  const column = new Map(stages.map((st, i) => [st, i]));
  const colOf = (st) => {
    if (!column.has(st)) { column.set(st, stages.length); stages.push(st || 'other'); }
    return column.get(st);
  };
  const nodes = new Map();
  const alerts = (inc.nodes || []).filter((n) => n.kind === 'alert');
  alerts.sort((a, b) => (a.first_seen - b.first_seen) || a.id.localeCompare(b.id));
  for (const n of alerts) nodes.set(n.id, { ...n, col: colOf(stageOf.get(n.id) || ''), h: ALERT_H });
  // An entity's column is the earliest column of the alerts it touches.
  const entCol = new Map();
  for (const e of inc.edges || []) {
    for (const [a, b] of [[e.source, e.target], [e.target, e.source]]) {
      const an = nodes.get(a);
      if (an && !nodes.has(b)) entCol.set(b, Math.min(entCol.has(b) ? entCol.get(b) : Infinity, an.col));
    }
  }
  const entities = (inc.nodes || []).filter((n) => n.kind !== 'alert' && (showAll || !DETAIL_KINDS.has(n.entity)));
  const rank = (k) => { const i = KIND_ORDER.indexOf(k); return i < 0 ? KIND_ORDER.length : i; };
  entities.sort((a, b) => (rank(a.entity) - rank(b.entity)) || a.value.localeCompare(b.value));
  for (const n of entities) nodes.set(n.id, { ...n, col: entCol.has(n.id) ? entCol.get(n.id) : 0, h: ENT_H });

  const cols = stages.map(() => ({ alerts: [], entities: [] }));
  for (const n of nodes.values()) (n.kind === 'alert' ? cols[n.col].alerts : cols[n.col].entities).push(n);
  const alertBand = Math.max(0, ...cols.map((c) => c.alerts.length * (ALERT_H + GAP)));
  for (const [i, c] of cols.entries()) {
    const x = PAD + i * COL_W;
    c.alerts.forEach((n, j) => { n.x = x; n.y = TOP + j * (ALERT_H + GAP); });
    c.entities.forEach((n, j) => { n.x = x; n.y = TOP + alertBand + 30 + j * (ENT_H + GAP); });
  }
  const height = TOP + alertBand + 30 + Math.max(0, ...cols.map((c) => c.entities.length * (ENT_H + GAP))) + PAD;
  const edges = (inc.edges || []).filter((e) => nodes.has(e.source) && nodes.has(e.target));
  return { stages, nodes, edges, width: PAD * 2 + stages.length * COL_W - (COL_W - NODE_W), height, entityTop: TOP + alertBand + 10 };
}

function edgePath(a, b) {
  const ay = a.y + a.h / 2, by = b.y + b.h / 2;
  if (a.col === b.col) {
    const x = a.x + NODE_W, bend = 18 + Math.min(36, Math.abs(by - ay) / 8);
    return [`M${x},${ay} C${x + bend},${ay} ${x + bend},${by} ${x},${by}`, x + bend * 0.75, (ay + by) / 2];
  }
  const [x1, x2] = a.x < b.x ? [a.x + NODE_W, b.x] : [a.x, b.x + NODE_W];
  const mx = (x1 + x2) / 2;
  return [`M${x1},${ay} C${mx},${ay} ${mx},${by} ${x2},${by}`, mx, (ay + by) / 2];
}

// entityLabel is an entity node's kind and value, the value cut to fit.
function entityLabel(n) {
  const kind = human(n.entity);
  const kindW = Math.ceil(kind.length * 7.2) + 10;
  const fit = Math.max(6, Math.floor((NODE_W - 12 - kindW - 10) / 7.6));
  return [s('text', { x: 12, y: 19, class: 'n-kind' }, kind), s('text', { x: 12 + kindW, y: 19, class: 'n-title' }, trunc(n.value, fit))];
}

// renderGraph draws inc into an <svg>; onSelect gets the chosen node.
export function renderGraph(inc, { showAll, onSelect }) {
  const L = layout(inc, showAll);
  const svg = s('svg', {
    class: 'graph', id: 'graph', width: L.width, height: L.height, viewBox: `0 0 ${L.width} ${L.height}`,
    role: 'group', 'aria-label': `Incident graph: ${L.nodes.size} nodes, ${L.edges.length} links`,
  });
  svg.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  L.stages.forEach((st, i) => {
    svg.append(s('text', { class: 'stage-label', x: PAD + i * COL_W, y: 20 }, `${i + 1}. ${human(st)}`));
    if (i > 0) svg.append(s('line', { class: 'stage-sep', x1: PAD + i * COL_W - 15, x2: PAD + i * COL_W - 15, y1: 4, y2: L.height - 4 }));
  });
  svg.append(s('text', { class: 'band-label', x: PAD, y: L.entityTop + 8 }, 'entities (column = stage first seen)'));
  const edgeLayer = s('g', { class: 'edges' });
  const labelLayer = s('g', { class: 'edge-labels' });
  for (const e of L.edges) {
    const a = L.nodes.get(e.source), b = L.nodes.get(e.target);
    const [d, lx, ly] = edgePath(a, b);
    const strong = a.kind === 'alert' && b.kind === 'alert';
    const label = `${e.relation} · ${gap(e.gap_ms)}`;
    const p = s('path', {
      d, class: `edge ${strong ? 'strong' : 'observed'}`, 'data-source': e.source, 'data-target': e.target,
      'marker-end': strong ? 'url(#arrow)' : null,
    }, s('title', {}, `${e.relation} — rule ${e.rule_id || '?'} v${e.rule_version || '?'} — join ${e.join_key || '—'} — gap ${gap(e.gap_ms)} — ${(e.event_ids || []).length} evidence event(s)`));
    edgeLayer.append(p);
    if (strong) labelLayer.append(s('text', { class: 'edge-label', x: lx, y: ly - 3, 'text-anchor': 'middle', 'data-source': e.source, 'data-target': e.target }, label));
  }
  svg.append(edgeLayer);
  const nodeLayer = s('g', { class: 'nodes' });
  for (const n of L.nodes.values()) {
    const isAlert = n.kind === 'alert';
    const title = isAlert ? n.title : n.value;
    const g = s('g', {
      class: `node ${isAlert ? 'alert sev-' + (n.severity_id || 0) : 'entity kind-' + n.entity}`, tabindex: 0, role: 'button',
      'data-node-id': n.id, transform: `translate(${n.x},${n.y})`,
      'aria-label': isAlert ? `alert ${n.title}, ${SEVERITY[n.severity_id] || ''}` : `${human(n.entity)} ${n.value}`,
    },
    s('title', {}, isAlert ? `${n.title}\n${n.subtitle || ''}` : `${n.entity}: ${n.value}${n.subtitle ? '\n' + n.subtitle : ''}`),
    s('rect', { width: NODE_W, height: n.h, rx: isAlert ? 4 : n.h / 2 }),
    isAlert
      ? [s('text', { x: 8, y: 17, class: 'n-title' }, trunc(title, 28)), s('text', { x: 8, y: 34, class: 'n-sub' }, trunc(n.subtitle || '', 31))]
      : entityLabel(n));
    const pick = () => {
      for (const el of svg.querySelectorAll('.selected, .hot')) el.classList.remove('selected', 'hot');
      svg.classList.add('focused');
      g.classList.add('selected');
      for (const el of svg.querySelectorAll(`[data-source="${CSS.escape(n.id)}"], [data-target="${CSS.escape(n.id)}"]`)) el.classList.add('hot');
      onSelect(n);
    };
    g.addEventListener('click', pick);
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pick(); } });
    nodeLayer.append(g);
  }
  svg.append(nodeLayer, labelLayer);
  return svg;
}
