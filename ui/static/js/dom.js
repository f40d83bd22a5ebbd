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

// The analyst's time zone: "UTC" or "local" (the browser's), kept in
// localStorage (it is no secret) and used by every view.
const TZ_KEY = 'musubi.tz';
export function timeZone() { return localStorage.getItem(TZ_KEY) === 'local' ? 'local' : 'UTC'; }
export function setTimeZone(z) { localStorage.setItem(TZ_KEY, z === 'local' ? 'local' : 'UTC'); }
export function zoneName() {
  return timeZone() === 'UTC' ? 'UTC' : (Intl.DateTimeFormat().resolvedOptions().timeZone || 'local');
}
const pad = (n) => String(n).padStart(2, '0');

// fmtTime shows epoch milliseconds as "2026-11-20 09:01:00 UTC" in the
// analyst's zone (24-hour clock).
export function fmtTime(ms, { zone = true, seconds = true } = {}) {
  if (!ms && ms !== 0) return '';
  const d = new Date(ms);
  const utc = timeZone() === 'UTC';
  const [y, mo, da, hh, mi, ss] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  return `${y}-${pad(mo)}-${pad(da)} ${pad(hh)}:${pad(mi)}${seconds ? ':' + pad(ss) : ''}${zone ? ' ' + (utc ? 'UTC' : zoneShort(d)) : ''}`;
}

// fmtClock is the time of day only, for compact labels.
export function fmtClock(ms) {
  return fmtTime(ms, { zone: false }).slice(11);
}

function zoneShort(d) {
  const off = -d.getTimezoneOffset();
  return `UTC${off < 0 ? '−' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

// inputTime is ms as a datetime-local value in the analyst's zone;
// fromInputTime is the reverse, as RFC 3339 for the API.
export function inputTime(iso) {
  if (!iso) return '';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  return fmtTime(ms, { zone: false, seconds: false }).replace(' ', 'T');
}
export function fromInputTime(v) {
  if (!v) return '';
  if (timeZone() === 'UTC') return (v.length === 16 ? v + ':00' : v) + 'Z';
  return new Date(v).toISOString();
}

// shortID cuts an identifier in the middle ("ASIA…QX2K"), keeping the
// parts that tell such identifiers apart; ARNs become their resource
// ("role/web-app-role", "web-app-role/i-0a1b…0718").
export function shortID(v, max = 22) {
  let x = String(v || '');
  const arn = /^arn:aws[\w-]*:([\w-]+):[\w-]*:\d*:(.+)$/.exec(x);
  if (arn) {
    x = arn[2];
    if (x.startsWith('assumed-role/')) x = x.slice('assumed-role/'.length);
  }
  if (/^(AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}$/.test(x)) return x.slice(0, 4) + '…' + x.slice(-4);
  if (x.length <= max) return x;
  if (x.includes('/')) {
    const parts = x.split('/');
    const last = parts[parts.length - 1];
    if (last.length < max - 4) {
      const head = x.slice(0, max - last.length - 2);
      return head + '…/' + last;
    }
  }
  const keep = max - 1;
  return x.slice(0, Math.ceil(keep / 2)) + '…' + x.slice(x.length - Math.floor(keep / 2));
}

// copyable is an identifier shown short, with the full value on hover and
// copied whole (the element's text is the short form; copy puts the value).
export function copyable(value, max, cls) {
  const el = h('code', { class: 'id' + (cls ? ' ' + cls : ''), title: value, 'data-full': value }, shortID(value, max));
  el.addEventListener('copy', (ev) => { ev.preventDefault(); ev.clipboardData.setData('text/plain', value); });
  return el;
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
  if (v < 60) return `${sign}${Math.round(v)} s`;
  v /= 60; if (v < 60) return `${sign}${Math.round(v)} m`;
  v /= 60; if (v < 48) return `${sign}${(Math.round(v * 10) / 10)} h`;
  return `${sign}${Math.round(v / 24)} d`;
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

// jsonBlock shows a JSON value (or JSON text) pretty-printed; epoch
// milliseconds under keys named *time* are shown in the analyst's zone.
export function jsonBlock(v) {
  let val = v;
  if (typeof v === 'string') {
    try { val = JSON.parse(v); } catch { return h('pre', { class: 'json' }, v); }
  }
  const text = JSON.stringify(val, (k, x) => (typeof x === 'number' && /time/i.test(k) && x > 1e11 && x < 1e14 ? `${fmtTime(x)} (${x})` : x), 2);
  return h('pre', { class: 'json' }, text);
}

// TACTIC_OF_STAGE is the ATT&CK tactic each kill-chain stage stands for.
export const TACTIC_OF_STAGE = {
  reconnaissance: 'TA0043', resource_development: 'TA0042', initial_access: 'TA0001', execution: 'TA0002',
  persistence: 'TA0003', privilege_escalation: 'TA0004', defense_evasion: 'TA0005', credential_access: 'TA0006',
  discovery: 'TA0007', lateral_movement: 'TA0008', collection: 'TA0009', command_and_control: 'TA0011',
  exfiltration: 'TA0010', impact: 'TA0040',
};
