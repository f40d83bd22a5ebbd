// DOM and formatting helpers. Data from the API is only ever set as text
// or attribute values, never parsed as markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden' || k === 'required') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const SEVERITY = ['Unknown', 'Informational', 'Low', 'Medium', 'High', 'Critical', 'Fatal'];

export function sevBadge(id, override) {
  const name = SEVERITY[id] || String(id);
  return h('span', { class: `sev sev-${id}`, title: override ? `${name} (analyst override)` : name }, name, override ? ' *' : '');
}

export function effectiveSeverity(inc) {
  const o = inc.workflow && inc.workflow.severity_override;
  return o ? o : inc.severity_id;
}

export function fmtTime(ms) {
  if (!ms && ms !== 0) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function age(ms, now = Date.now()) {
  let d = Math.max(0, now - ms) / 1000;
  if (d < 60) return `${Math.floor(d)}s`;
  d /= 60; if (d < 60) return `${Math.floor(d)}m`;
  d /= 60; if (d < 48) return `${Math.floor(d)}h`;
  d /= 24; return `${Math.floor(d)}d`;
}

export function gap(msv) {
  const sign = msv < 0 ? '−' : '+';
  let v = Math.abs(msv) / 1000;
  if (v < 60) return `${sign}${Math.round(v)}s`;
  v /= 60; if (v < 60) return `${sign}${Math.round(v)}m`;
  v /= 60; if (v < 48) return `${sign}${(Math.round(v * 10) / 10)}h`;
  return `${sign}${Math.round(v / 24)}d`;
}

export function human(s) {
  return (s || '').replaceAll('_', ' ');
}

export const TACTICS = {
  TA0043: 'Reconnaissance', TA0042: 'Resource Development', TA0001: 'Initial Access', TA0002: 'Execution',
  TA0003: 'Persistence', TA0004: 'Privilege Escalation', TA0005: 'Defense Evasion', TA0006: 'Credential Access',
  TA0007: 'Discovery', TA0008: 'Lateral Movement', TA0009: 'Collection', TA0011: 'Command and Control',
  TA0010: 'Exfiltration', TA0040: 'Impact',
};

export function announce(text) {
  const live = document.getElementById('live');
  if (live) live.textContent = text;
}

// jsonBlock shows a JSON value (or JSON text) pretty-printed.
export function jsonBlock(v) {
  let text = v;
  if (typeof v === 'string') {
    try { text = JSON.stringify(JSON.parse(v), null, 2); } catch { text = v; }
  } else {
    text = JSON.stringify(v, null, 2);
  }
  return h('pre', { class: 'json' }, text);
}
