// The console's entry: sign-in, the header and the hash router
// (#/ queue, #/incidents/{id}, #/entities/{type}/{value}, #/exposures,
// #/rules).

import { api, session, APIError } from './api.js';
import { h, timeZone, setTimeZone, zoneName } from './dom.js';
import { renderQueue, prefetchQueue } from './queue.js';
import { renderIncident, prefetchIncident } from './incident.js';
import { renderEntity } from './entity.js';
import { renderRules } from './rules.js';
import { renderExposures } from './exposures.js';

const main = document.getElementById('main');
const ctx = { me: null, tenant: '' };
let cleanup = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  return { parts: path.split('/').filter(Boolean), params: new URLSearchParams(qs || '') };
}

function showLogin(message) {
  document.getElementById('top').hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'login-help' });
  const err = h('p', { class: 'error', role: 'alert', id: 'login-error' }, message || '');
  const form = h('form', { class: 'login', id: 'login' },
    h('h1', {}, 'Musubi'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'login-help', class: 'muted' }, 'Kept only in this browser tab (sessionStorage) until you sign out or close it.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const { data } = await api('/v1/me', { token: input.value.trim() });
      session.token = input.value.trim();
      await start(data);
    } catch (e) {
      err.textContent = e instanceof APIError && e.status === 401 ? 'Unknown or expired token.' : `Sign-in failed: ${e.message}`;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

async function start(me) {
  ctx.me = me;
  const ids = me.tenants.map((t) => t.id);
  ctx.tenant = ids.includes(session.tenant) ? session.tenant : (ids[0] || '');
  session.tenant = ctx.tenant;
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${me.name} · ${me.role}`;
  document.getElementById('who').dataset.role = me.role;
  const pick = document.getElementById('tenant-pick');
  const sel = document.getElementById('tenant');
  // One tenant at a time: the queue and pivots never mix tenants.
  sel.replaceChildren(...me.tenants.map((t) => h('option', { value: t.id, selected: t.id === ctx.tenant }, t.name || t.id)));
  pick.hidden = me.tenants.length < 2;
  if (me.tenants.length < 2) {
    document.getElementById('who').textContent += ` · ${(me.tenants[0] && (me.tenants[0].name || me.tenants[0].id)) || ''}`;
  }
  route();
}

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  if (!ctx.me) return;
  const { parts, params } = parseHash();
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = a.dataset.nav === (['rules', 'exposures'].includes(parts[0]) ? parts[0] : 'queue');
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = parts[0] === 'rules' ? 'Rules — Musubi' : parts[0] === 'entities' ? `${decodeURIComponent(parts.slice(2).join('/'))} — Musubi` : 'Incident queue — Musubi';
  try {
    if (parts[0] === 'incidents' && parts[1]) {
      cleanup = renderIncident(main, ctx, decodeURIComponent(parts[1]), params);
    } else if (parts[0] === 'entities' && parts.length >= 3) {
      cleanup = renderEntity(main, ctx, decodeURIComponent(parts[1]), decodeURIComponent(parts.slice(2).join('/')), params);
    } else if (parts[0] === 'exposures') {
      cleanup = renderExposures(main, ctx, params);
    } else if (parts[0] === 'rules') {
      cleanup = renderRules(main, ctx);
    } else {
      cleanup = renderQueue(main, ctx, params);
    }
  } catch (e) {
    main.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('musubi:unauthorized', () => {
  session.clear();
  ctx.me = null;
  showLogin('Your token is no longer accepted; sign in again.');
});
document.getElementById('logout').addEventListener('click', () => {
  session.clear();
  ctx.me = null;
  if (cleanup) { cleanup(); cleanup = null; }
  showLogin('Signed out.');
});
const tz = document.getElementById('tz');
tz.value = timeZone();
tz.options[1].textContent = timeZone() === 'local' ? zoneName() : (Intl.DateTimeFormat().resolvedOptions().timeZone || "this browser's zone");
tz.addEventListener('change', () => { setTimeZone(tz.value); route(); });
document.getElementById('tenant').addEventListener('change', (ev) => {
  ctx.tenant = ev.target.value;
  session.tenant = ctx.tenant;
  if (location.hash.startsWith('#/incidents/') || location.hash.startsWith('#/entities/')) location.hash = '#/';
  else route();
});

(async () => {
  if (!session.token) { showLogin(); return; }
  // An incident's address: its data is asked for while /v1/me answers.
  const { parts, params } = parseHash();
  if (parts[0] === 'incidents' && parts[1]) prefetchIncident(decodeURIComponent(parts[1]));
  // The queue, for the tenant picked last in this tab (start keeps it
  // when the token still has it).
  else if (!parts.length && session.tenant) prefetchQueue(params, session.tenant);
  try {
    const { data } = await api('/v1/me');
    await start(data);
  } catch (e) {
    if (!(e instanceof APIError && e.status === 401)) showLogin(`The API did not answer: ${e.message}`);
  }
})();
