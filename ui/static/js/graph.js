// The incident graph, drawn as SVG with a deterministic layout that tells
// the story in time: alerts placed left to right by event time, so every
// alert-to-alert arrow points right (or down, between alerts of the same
// instant), and the kill-chain stages (in the incident's order) streaming
// down the page: at any time the stages read top to bottom, and a later
// stage rises into the room earlier ones left, so the whole story fits one
// screen. Repeats of one rule in a stage fold into one node with a count,
// and linked steps of a stage within minutes into one node naming each.
// Each alert carries, just below it, the context entities it was the
// first to name. Links between alerts are labelled
// with what joins them ("same access key ASIA…QX2K · +5 m"); labels that
// would cover a node or another label are placed further along their link
// or, failing that, shown only on hover and when an end is selected.
// "Observed" links from an alert to its entities appear only for the
// selected node.

import { s, h, human, gap, shortID, fmtClock, SEVERITY } from './dom.js';
import { riskFactorsByAsset, riskFactorName } from './story.js';

// Entity kinds shown by default; processes, files, users and hashes are
// behind "show every entity".
const KIND_ORDER = ['instance', 'host', 'ip', 'access_key', 'session', 'principal', 'role', 'account', 'bucket', 'object',
  'application', 'deployment_group', 'deployment', 'pipeline', 'finding', 'hash', 'region', 'user', 'process', 'file'];
const DETAIL_KINDS = new Set(['process', 'file', 'user', 'hash']);
// Short names of entity kinds for the pills (the full name is on hover).
const KIND_SHORT = { access_key: 'key', deployment_group: 'group', deployment: 'deploy', application: 'app', principal: 'principal', instance: 'instance' };

// NODE_W is the width of an alert node: layout tries NODE_WIDTHS and keeps
// the widest whose story fits the height it is given.
const NODE_WIDTHS = Array.from({ length: 23 }, (_, i) => 184 - 2 * i); // 184 … 140
let NODE_W = 184;
const LABEL_H = 16, LANE_GAP = 10, COL_W = 206, PAD = 12, TOP = 6, LINE = 14, SUB_LINE = 13, ENT_H = 19, ENT_GAP = 3, CELL_GAP = 10;
// An entity pill is at most this wide, so that two usually share a row.
const PILL_MAX = 124;
export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const TITLE_FONT = `600 12px ${FONT}`, SUB_FONT = `11px ${FONT}`, LABEL_FONT = `11px ${FONT}`, LANE_FONT = `700 12px ${FONT}`;
const KIND_FONT = `11px ${FONT}`, VALUE_FONT = `600 11.5px ${FONT}`;

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

// edgeLabels are a link's labels, longest first: the full one
// (edgeLabel), the kind's short name with the value ("key ASIA…QX2K ·
// +1 m"), and the kind alone ("key · +1 m").
export function edgeLabels(e) {
  const full = edgeLabel(e);
  const m = /^([a-z_]+)(?:@[^=:]*)?[:=](.*)$/.exec(e.join_key || '');
  if (!m) return [full, full, full];
  const kind = KIND_SHORT[m[1]] || human(m[1]);
  return [full, `${kind} ${shortID(m[2], 10)} · ${gap(e.gap_ms)}`, `${kind} · ${gap(e.gap_ms)}`];
}

// Low-value context kinds: behind a "+N" pill under their alert until it
// is opened (or "show every entity" is on).
const MINOR_KINDS = new Set(['session', 'principal', 'account', 'object', 'application', 'deployment_group', 'pipeline', 'finding', 'region']);
// Private, link-local and loopback addresses are minor too.
const PRIVATE_IP = /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|127\.|f[cd][0-9a-f]{2}:|fe80:)/i;
// Repeats of one rule in one lane within this time fold into one node.
const FOLD_WINDOW_MS = 10 * 60 * 1000;
// Stages are told apart by TINTS background tints (app.css), in order.
const TINTS = 9;
// Linked steps of one stage within this time fold into one node.
const STEP_WINDOW_MS = 5 * 60 * 1000;
// Columns step at most COL_W apart (nodes side by side) and, when the
// story has more steps than the width holds, at least MIN_STEP apart: the
// nodes then overlap in x and stack within their lane, like a Gantt chart.
const MIN_STEP = 44, H_GAP = 10, V_GAP = 6;
// Distances from its link at which a label may sit, tied to it by a leader
// line, when none of its places on the link is free.
const FAR_STEPS = [28, 40, 56, 72, 90, 110];

// layout places the nodes; it depends only on the incident, the entities
// opened and the width it is laid out for, so the same incident is always
// drawn the same way in one window.
export function layout(inc, showAll, { expanded = new Set(), width = 1376, height = Infinity, widths = NODE_WIDTHS } = {}) {
  let best = null;
  for (const w of widths) {
    NODE_W = w;
    const L = layoutAt(inc, showAll, expanded, width);
    L.nodeW = w;
    if (!best || L.height < best.height) best = L;
    if (L.height <= height) { best = L; break; }
  }
  NODE_W = best.nodeW;
  return best;
}

function layoutAt(inc, showAll, expanded, target) {
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

  // Fold repeats of one rule in a lane (the same step on several hosts, a
  // burst) into one group, when they are close in time.
  const groups = [];
  const groupOf = new Map();
  const lastOfRule = new Map();
  for (const n of alerts) {
    const lane = laneOf(stageOf.get(n.id) || n.mainstat);
    const key = lane + '\u0000' + ruleOf(n);
    const prev = lastOfRule.get(key);
    if (prev && n.first_seen - prev.members[prev.members.length - 1].first_seen <= FOLD_WINDOW_MS) {
      prev.members.push(n);
      groupOf.set(n.id, prev);
      continue;
    }
    const g = { id: n.id, kind: 'alert', lane, members: [n], time: n.first_seen, entities: [], more: [] };
    groups.push(g);
    groupOf.set(n.id, g);
    lastOfRule.set(key, g);
  }

  // Steps of one stage that follow each other within STEP_WINDOW_MS
  // and are linked (one process fetching credentials, then reading them)
  // fold into one node that names each step: a lane then holds the
  // story's steps side by side instead of stacked.
  const linked = new Set();
  for (const e of inc.edges || []) {
    const a = groupOf.get(e.source), b = groupOf.get(e.target);
    if (a && b && a !== b) { linked.add(a.id + '>' + b.id); linked.add(b.id + '>' + a.id); }
  }
  const lastInLane = new Map();
  for (const g of [...groups]) {
    const prev = lastInLane.get(g.lane);
    const prevLast = prev && prev.members[prev.members.length - 1].first_seen;
    if (prev && g.time - prevLast <= STEP_WINDOW_MS && (linked.has(prev.id + '>' + g.id) || (prev.steps || [prev.id]).some((id) => linked.has(id + '>' + g.id)))) {
      prev.steps = prev.steps || [prev.id];
      prev.steps.push(g.id);
      prev.members.push(...g.members);
      for (const m of g.members) groupOf.set(m.id, prev);
      groups.splice(groups.indexOf(g), 1);
      continue;
    }
    lastInLane.set(g.lane, g);
  }

  // Links between groups (one per pair, the earliest edge kept).
  const links = [];
  const byPair = new Map();
  const alertEdges = (inc.edges || []).filter((e) => groupOf.has(e.source) && groupOf.has(e.target));
  alertEdges.sort((a, b) => (a.time - b.time) || a.id.localeCompare(b.id));
  const preds = new Map();
  for (const e of alertEdges) {
    let a = groupOf.get(e.source), b = groupOf.get(e.target);
    if (a === b) continue;
    // An arrow points from the earlier alert to the later one.
    if (b.time < a.time || (b.time === a.time && b.id < a.id && !(preds.get(a) || new Set()).has(b))) [a, b] = [b, a];
    const k = a.id + '>' + b.id;
    if (byPair.has(k)) { byPair.get(k).edges.push(e); continue; }
    const l = { key: k, from: a, to: b, edges: [e] };
    byPair.set(k, l);
    links.push(l);
    if (!preds.has(b)) preds.set(b, new Set());
    preds.get(b).add(a);
  }

  // Columns: in time order, a group stays in the current column unless an
  // earlier alert it follows is there. Alerts of one instant: the ones
  // others follow come first.
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
  const order = [...groups].sort((a, b) => (a.time - b.time) || (a.depth - b.depth) || a.id.localeCompare(b.id));
  for (const g of order) {
    if ([...(preds.get(g) || [])].some((p) => p.col === col && p.time < g.time)) col++;
    g.col = col;
  }
  const cols = col + 1;

  // Context entities under the first alert that names them; the minor
  // kinds behind a "+N" pill.
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
  // A host is named on its alert's node already (its second line).
  const namedOn = (g, n) => n.entity === 'host' && g.members.some((m) => ((alertInfo.get(m.id) || {}).entities || []).some((x) => x.entity === 'host' && x.value === n.value));
  const entities = [];
  for (const [id, g] of entityFirst) {
    const n = nodeByID.get(id);
    const ent = { ...n, kind: 'entity', group: g };
    if (!showAll && !expanded.has(g.id) && (MINOR_KINDS.has(n.entity) || (n.entity === 'ip' && PRIVATE_IP.test(n.value)) || namedOn(g, n))) { g.more.push(ent); continue; }
    g.entities.push(ent);
    entities.push(ent);
  }
  for (const g of groups) g.entities.sort((a, b) => (rank(a.entity) - rank(b.entity)) || a.value.localeCompare(b.value));

  // Sizes.
  for (const g of groups) {
    const first = g.members[0];
    // Each step's title in full; more than one step each starts with "›".
    g.titles = [...new Set(g.members.map((m) => m.title))];
    g.lines = [];
    g.titleStart = [];
    for (const t of g.titles) {
      g.titleStart.push(g.lines.length);
      g.lines.push(...wrap(g.titles.length > 1 ? '› ' + t : t, TITLE_FONT, NODE_W - 16));
    }
    const last = g.members.reduce((m, x) => Math.max(m, x.first_seen), 0);
    const info = alertInfo.get(first.id) || {};
    const count = g.members.reduce((n, m) => n + ((alertInfo.get(m.id) || {}).count || 1), 0);
    g.count = count;
    const hosts = [...new Set(g.members.flatMap((m) => ((alertInfo.get(m.id) || {}).entities || []).filter((x) => x.entity === 'host').map((x) => x.value)))];
    const where = hosts.length ? hosts.join(', ') : (info.source || '');
    g.sub = wrap(`${fmtClock(first.first_seen)}${last > first.first_seen + 999 && g.titles.length > 1 ? '–' + fmtClock(last) : ''}${count > 1 ? ` · ×${count}` : ''}${where ? ' · ' + where : ''}`, SUB_FONT, NODE_W - 16);
    g.h = 6 + g.lines.length * LINE + g.sub.length * SUB_LINE + 5;
    g.severity = Math.max(...g.members.map((m) => m.severity_id || 0));
    g.correlated = g.members.some((m) => /^corr-/.test(m.value));
    // The "+N" pill sits beside the last entity, or alone under the node.
    g.moreText = g.more.length ? `+${g.more.length}` : '';
    const moreW = g.more.length ? textWidth(g.moreText, KIND_FONT) + 16 : 0;
    // Pills flow in rows under the node, as wide as what they say.
    let ox = 4, row = 0;
    const room = NODE_W - 4;
    g.entities.forEach((e) => {
      const kind = KIND_SHORT[e.entity] || human(e.entity);
      e.kindText = kind;
      e.kindW = textWidth(kind, KIND_FONT) + 6;
      e.label = fitID(e.value, VALUE_FONT, PILL_MAX - 9 - e.kindW - 8);
      e.w = Math.min(PILL_MAX, 9 + e.kindW + textWidth(e.label, VALUE_FONT) + 8);
      if (ox > 4 && ox + e.w > room) { row++; ox = 4; }
      e.ox = ox; e.oy = row;
      ox += e.w + 4;
    });
    g.moreW = moreW;
    if (moreW) {
      if (g.entities.length && ox + moreW > room) { row++; ox = 4; }
      g.moreAt = { ox: g.entities.length ? ox : NODE_W - moreW, oy: row };
    }
    const rows = g.entities.length || moreW ? row + 1 : 0;
    g.cellH = g.h + rows * (ENT_H + ENT_GAP);
  }

  // x by column. Each step between columns wants to be wide enough that a
  // group clears the one before it in its lane (so nothing stacks); when
  // those wishes exceed the width, every step keeps MIN_STEP and the rest
  // of the width is shared in proportion to what each step wanted beyond
  // it.
  const want = new Array(cols).fill(MIN_STEP);
  want[0] = 0;
  const lastIn = new Map();
  for (const g of order) {
    const p = lastIn.get(g.lane);
    if (p && p.col < g.col) {
      // The steps from p's column to g's share what clearing p needs.
      const need = (NODE_W + H_GAP) / (g.col - p.col);
      for (let c = p.col + 1; c <= g.col; c++) want[c] = Math.max(want[c], Math.min(COL_W, need));
    }
    lastIn.set(g.lane, g);
  }
  const room = target - (PAD * 2 + NODE_W);
  const extra = want.reduce((n, w, c) => n + (c ? w - MIN_STEP : 0), 0);
  // (k above 1 spreads the steps over the whole width: more room between
  // the stages that share a time.)
  const k = extra > 0 ? Math.max(0, (room - (cols - 1) * MIN_STEP) / extra) : 1;
  const colX = [PAD];
  for (let c = 1; c < cols; c++) colX.push(colX[c - 1] + Math.floor(MIN_STEP + (want[c] - MIN_STEP) * k));
  for (const g of groups) g.x = colX[g.col];

  // y: the stages stream down the page. Lanes are placed in kill-chain
  // order; a group sits below every group of an earlier stage that it
  // shares columns with (so at any time the stages read top to bottom in
  // order) and takes the highest such place where it overlaps no group of
  // its own stage. A stage's first group carries the stage's name above
  // it. Where the story moves on in time, later stages rise into the room
  // earlier ones left, instead of each stage taking a full-width band.
  const placed = [];
  const firstOf = new Map();
  for (const g of order) if (!firstOf.has(g.lane)) firstOf.set(g.lane, g);
  const laneLines = lanes.map((l) => [human(l)]);
  for (let i = 0; i < lanes.length; i++) {
    const mine = [];
    for (const g of order) {
      if (g.lane !== i) continue;
      g.labelH = firstOf.get(i) === g ? LABEL_H : 0;
      const tall = g.labelH + g.cellH;
      const across = (o) => o.x < g.x + NODE_W + H_GAP && g.x < o.x + NODE_W + H_GAP;
      let floor = TOP;
      for (const o of placed) if (across(o)) floor = Math.max(floor, o.top + o.tall + LANE_GAP);
      const hits = (y) => mine.some((o) => across(o) && o.top < y + tall + V_GAP && y < o.top + o.tall + V_GAP);
      const ys = [floor, ...mine.filter(across).map((o) => o.top + o.tall + V_GAP)].filter((y) => y >= floor).sort((a, b) => a - b);
      g.top = ys.find((y) => !hits(y));
      g.tall = tall;
      g.y = g.top + g.labelH;
      mine.push(g);
    }
    placed.push(...mine);
  }
  let bottom = TOP;
  for (const g of groups) {
    bottom = Math.max(bottom, g.top + g.tall);
    for (const e of g.entities) { e.x = g.x + e.ox; e.y = g.y + g.h + ENT_GAP + e.oy * (ENT_H + ENT_GAP); e.h = ENT_H; }
    if (g.more.length) {
      g.moreBox = { x: g.x + g.moreAt.ox, y: g.y + g.h + ENT_GAP + g.moreAt.oy * (ENT_H + ENT_GAP), w: g.moreW, h: ENT_H };
    }
  }
  const y = bottom + CELL_GAP / 2;
  const width = colX[cols - 1] + NODE_W + PAD;
  return { lanes, firstOf, laneLines, groups, groupOf, links, entities, observed, width, height: y + PAD, cols };
}

// linkPath draws the arrow from a to b. Apart in x, it is a curve from a's
// right side to b's left; overlapping in x (stacked in the Gantt layout),
// it leaves a's top or bottom near its left edge and turns right into b's
// left side; at one instant in one column, it runs down a's right side.
function linkPath(a, b) {
  const ay = a.y + Math.min(a.h / 2, 24), by = b.y + Math.min(b.h / 2, 24);
  if (a.col === b.col) {
    const x = a.x + NODE_W, bend = 22 + Math.min(30, Math.abs(by - ay) / 8);
    return { d: `M${x},${ay} C${x + bend},${ay} ${x + bend},${by} ${x + 2},${by}`, pts: cubicPoints(x, ay, x + bend, ay, x + bend, by, x + 2, by) };
  }
  if (b.x >= a.x + NODE_W + 8) {
    const x1 = a.x + NODE_W, x2 = b.x - 2;
    const mx = (x1 + x2) / 2;
    return { d: `M${x1},${ay} C${mx},${ay} ${mx},${by} ${x2},${by}`, pts: cubicPoints(x1, ay, mx, ay, mx, by, x2, by) };
  }
  const x0 = a.x + Math.min(14, (b.x - a.x) / 3), down = b.y > a.y;
  const y0 = down ? a.y + a.h : a.y;
  const r = Math.min(6, Math.abs(by - y0) / 2, (b.x - x0) / 2);
  const yr = down ? by - r : by + r;
  const d = `M${x0},${y0} L${x0},${yr} Q${x0},${by} ${x0 + r},${by} L${b.x - 2},${by}`;
  const pts = [];
  for (let i = 0; i <= 8; i++) pts.push([x0, y0 + (yr - y0) * i / 8]);
  for (let i = 0; i <= 4; i++) pts.push([x0 + r + (b.x - 2 - x0 - r) * i / 4, by]);
  return { d, pts };
}

// cubicPoints samples a cubic Bézier curve.
function cubicPoints(x0, y0, x1, y1, x2, y2, x3, y3) {
  const out = [];
  for (let i = 0; i <= 16; i++) {
    const t = i / 16, u = 1 - t;
    out.push([u * u * u * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t * t * t * x3, u * u * u * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y3]);
  }
  return out;
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

// renderGraph draws inc; it returns the view (toolbar, scrollable graph,
// minimap) and fit(), which scales the graph to the width it was given.
export function renderGraph(inc, { showAll, onSelect, expanded, onExpand, width, height }) {
  const L = layout(inc, showAll, { expanded, width, height });
  const riskOf = riskFactorsByAsset(inc);
  const svg = s('svg', {
    class: 'graph', id: 'graph', viewBox: `0 0 ${L.width} ${L.height}`, 'data-width': L.width, 'data-height': L.height,
    role: 'group', 'aria-label': `Incident graph: ${L.groups.length} alert nodes, ${L.entities.length} entities, ${L.links.length} links between alerts`,
    'font-family': FONT,
  });
  svg.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  const content = s('g', { id: 'graph-content' });
  svg.append(content);
  // Each group's place is tinted with its stage's colour; the stage's
  // first group carries its name.
  for (const g of L.groups) {
    content.append(s('rect', { class: `lane tint-${g.lane % TINTS}`, x: g.x - 4, y: g.top - 3, width: NODE_W + 8, height: g.tall + 6, rx: 4, 'data-lane': L.lanes[g.lane] }));
  }
  for (const [i, g] of L.firstOf) {
    content.append(s('text', { class: 'lane-label', x: g.x + 2, y: g.top + 12, 'data-lane': L.lanes[i] }, L.laneLines[i][0]));
  }

  const boxes = [];
  for (const g of L.groups) {
    boxes.push({ x: g.x, y: g.y, w: NODE_W, h: g.h });
    if (g.labelH) boxes.push({ x: g.x, y: g.top, w: textWidth(L.laneLines[g.lane][0], LANE_FONT) + 4, h: g.labelH });
    for (const e of g.entities) boxes.push({ x: e.x, y: e.y, w: e.w, h: e.h });
    if (g.moreBox) boxes.push(g.moreBox);
  }
  const edgeLayer = s('g', { class: 'edges' });
  const observedLayer = s('g', { class: 'observed-layer' });
  const labelLayer = s('g', { class: 'edge-labels' });
  // Link labels, placed in rounds so that every link gets one: first each
  // link's full label ("same access key ASIA…QX2K · +1 m") where it fits;
  // then, for the links left, a shorter one ("key ASIA…QX2K · +1 m"), then
  // the shortest ("key · +1 m"); the full text is on hover either way. A
  // round places the links with the fewest free places first. A label
  // goes on its link, from its middle outwards — centred, beside, above or
  // below — where it covers no node, stage name or other label.
  const placed = [];
  const items = L.links.map((l) => {
    const { d, pts } = linkPath(l.from, l.to);
    const e = l.edges[0];
    return {
      l, d, pts, e, texts: edgeLabels(e), spot: null,
      title: l.edges.map((x) => `${x.relation} — ${x.join_key || '—'} — ${gap(x.gap_ms)} — rule ${x.rule_id || '?'} — ${(x.event_ids || []).length} evidence event(s)`).join('\n'),
      src: 'alert:' + l.from.members[0].value, dst: 'alert:' + l.to.members[0].value,
    };
  });
  const hgt = 16;
  const spots = (it, text, far) => {
    const w = textWidth(text, LABEL_FONT) + 8;
    const mid = (it.pts.length - 1) / 2;
    const along = it.pts.map((p, i) => [p, Math.abs(i - mid)]).sort((a, b) => a[1] - b[1]).map((x) => x[0]);
    const near = ([px, py]) => [[px - w / 2, py - hgt / 2], [px + 4, py - hgt / 2], [px - w - 4, py - hgt / 2], [px - w / 2, py - hgt - 3], [px - w / 2, py + 3],
      [px + 4, py - hgt - 3], [px + 4, py + 3], [px - w - 4, py - hgt - 3], [px - w - 4, py + 3],
      [px + 4, py - 2 * hgt - 6], [px + 4, py + hgt + 6], [px - w - 4, py - 2 * hgt - 6], [px - w - 4, py + hgt + 6]];
    // Away from the link, a label is tied to it by a leader line: centred
    // at growing distances in twelve directions.
    const tried = [];
    if (far) {
      for (const r of FAR_STEPS) {
        for (const [px, py] of along) tried.push([[px, py], Array.from({ length: 12 }, (_, k) => [px + r * Math.cos(k * Math.PI / 6) - w / 2, py + r * Math.sin(k * Math.PI / 6) - hgt / 2])]);
      }
    } else {
      for (const p of along) tried.push([p, near(p)]);
    }
    const out = [];
    for (const [[px, py], cands] of tried) {
      for (const [bx, by] of cands) {
        const box = { x: bx, y: by, w, h: hgt, text, anchor: far ? [px, py] : null };
        if (box.x < 0 || box.x + w > L.width || box.y < 0 || box.y + hgt > L.height) continue;
        if (boxes.some((b) => overlaps(b, box)) || placed.some((b) => overlaps(b, box))) continue;
        out.push(box);
      }
    }
    return out;
  };
  // Rounds: which label (0 full, 1 short, 2 shortest) and whether away
  // from the link.
  for (const [which, far] of [[0, false], [1, false], [2, false], [1, true], [2, true]]) {
    let left = items.filter((it) => !it.spot);
    for (const it of left) it.free = spots(it, it.texts[which], far);
    while (left.length) {
      // The most constrained link first; ties in link order.
      const best = left.reduce((a, b) => (b.free.length < a.free.length ? b : a));
      left = left.filter((it) => it !== best);
      if (!best.free.length) continue;
      best.spot = best.free[0];
      placed.push(best.spot);
      for (const it of left) it.free = it.free.filter((b) => !overlaps(b, best.spot));
    }
  }
  for (const it of items) {
    const { d, pts, e, title, src, dst } = it;
    edgeLayer.append(s('path', { d, class: `edge strong${e.relation === 'sequence' ? ' sequence' : ''}`, 'data-source': src, 'data-target': dst, 'marker-end': 'url(#arrow)' },
      s('title', {}, title)));
    let spot = it.spot;
    if (!spot) {
      const text = it.texts[0], w = textWidth(text, LABEL_FONT) + 8;
      const [px, py] = pts[Math.floor((pts.length - 1) / 2)];
      spot = { x: px - w / 2, y: py - hgt / 2, w, h: hgt, text, hidden: true };
    }
    // The leader runs from the label's nearest edge to its place on the link.
    const leader = spot.anchor && s('line', {
      class: 'leader', x1: Math.max(0, Math.min(spot.w, spot.anchor[0] - spot.x)), y1: Math.max(0, Math.min(hgt, spot.anchor[1] - spot.y)),
      x2: spot.anchor[0] - spot.x, y2: spot.anchor[1] - spot.y,
    });
    labelLayer.append(s('g', { class: `edge-label${spot.hidden ? ' tucked' : ''}${leader ? ' led' : ''}`, 'data-source': src, 'data-target': dst, 'data-full': it.texts[0], transform: `translate(${spot.x},${spot.y})` },
      s('title', {}, title),
      ...(leader ? [leader] : []),
      s('rect', { width: spot.w, height: hgt, rx: 3 }),
      s('text', { x: 4, y: 12 }, spot.text)));
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
      'aria-label': `alert ${g.titles.join('; then ')}${g.count > 1 ? `, ${g.count} times` : ''}, ${SEVERITY[g.severity] || ''}`,
    },
    s('title', {}, `${g.titles.join('\n')}\n${g.members.map((m) => `${fmtClock(m.first_seen)} ${m.subtitle || ''}`).join('\n')}`),
    s('rect', { width: NODE_W, height: g.h, rx: 5 }),
    s('text', { class: 'n-title', x: 8, y: 6 + 11 }, g.lines.map((ln, j) => s('tspan', { x: 8, dy: j ? LINE : 0 }, ln))),
    s('text', { class: 'n-sub', x: 8, y: 6 + g.lines.length * LINE + 10 }, g.sub.map((ln, j) => s('tspan', { x: 8, dy: j ? SUB_LINE : 0 }, ln))));
    for (const m of members) elements.set(m, el);
    activate(el, first.id);
    nodeLayer.append(el);
    for (const e of g.entities) {
      // An asset with factors of the incident's risk says so: outlined,
      // and the factors and their evidence on hover and to readers.
      const risks = riskOf.get(e.id) || [];
      const riskText = risks.map((f) => `${riskFactorName(f.name)} (+${f.points}): ${f.evidence}`).join('\n');
      const ee = s('g', {
        class: `node entity kind-${e.entity}${risks.length ? ' at-risk' : ''}`, tabindex: 0, role: 'button', 'data-node-id': e.id, transform: `translate(${e.x},${e.y})`,
        'aria-label': `${human(e.entity)} ${e.value}${risks.length ? ' — asset risk: ' + risks.map((f) => riskFactorName(f.name)).join(', ') : ''}`,
      },
      s('title', {}, `${human(e.entity)}: ${e.value}${e.subtitle && e.subtitle !== e.entity ? '\n' + e.subtitle : ''}${riskText ? '\nAsset risk:\n' + riskText : ''}`),
      s('rect', { width: e.w, height: e.h, rx: e.h / 2 }),
      s('text', { class: 'n-kind', x: 9, y: 13.5 }, e.kindText),
      s('text', { class: 'n-value', x: 9 + e.kindW, y: 13.5, 'data-full': e.value }, e.label));
      ee.addEventListener('copy', (ev) => { ev.preventDefault(); ev.clipboardData.setData('text/plain', e.value); });
      elements.set(e.id, ee);
      activate(ee, e.id);
      nodeLayer.append(ee);
    }
    if (g.moreBox) {
      const b = g.moreBox;
      // Hidden assets with risk factors mark the pill that holds them.
      const risky = g.more.filter((e) => riskOf.has(e.id));
      const moreRisk = (e) => (riskOf.get(e.id) || []).map((f) => ` — asset risk: ${riskFactorName(f.name)} (+${f.points}): ${f.evidence}`).join('');
      const more = s('g', {
        class: `node more${risky.length ? ' at-risk' : ''}`, tabindex: 0, role: 'button', 'data-node-id': 'more:' + first.id, transform: `translate(${b.x},${b.y})`,
        'data-at-risk': risky.map((e) => e.id).join(' '),
        'aria-label': `show ${g.more.length} more entities: ${g.more.map((e) => `${human(e.entity)} ${e.value}`).join(', ')}${risky.length ? `; with asset risk: ${risky.map((e) => e.value).join(', ')}` : ''}`,
      },
      s('title', {}, g.more.map((e) => `${human(e.entity)}: ${e.value}${moreRisk(e)}`).join('\n')),
      s('rect', { width: b.w, height: b.h, rx: b.h / 2 }),
      s('text', { class: 'n-kind', x: 8, y: 13.5 }, g.moreText));
      const open = (ev) => { ev.preventDefault(); ev.stopPropagation(); if (onExpand) onExpand(first.id); };
      more.addEventListener('click', open);
      more.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') open(ev); });
      nodeLayer.append(more);
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
    if (z > 1) wrapEl.classList.remove('fitted');
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
  // fit shows the whole graph: scaled down to the frame's width when wider
  // (never up), and the frame as tall as the graph.
  const fit = () => {
    settle();
    wrapEl.classList.add('fitted');
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
    h('span', { class: 'muted', title: 'Time runs left to right; at any time the stages read top to bottom. Ctrl+wheel zooms, drag pans.' }, 'Time →, stages ↓'),
    h('ol', { class: 'stage-legend', id: 'stage-legend', 'aria-label': 'Stages, in kill-chain order' },
      L.lanes.map((lane, i) => (L.firstOf.has(i) ? h('li', { class: `tint-${i % TINTS}`, 'data-lane': lane }, human(lane)) : '')).filter(Boolean)));
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
