// The incident's story, computed in the browser from the incident detail
// the API returns: a one-paragraph account (what happened, where, with
// which identity, to what), the impact scope with counts, human evidence
// per event class and the kill-chain progression.

import { h, human, copyable, fmtTime, gap, TACTICS, TACTIC_OF_STAGE } from './dom.js';

const PRIVATE = /^(10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|fc|fd|::1$)/i;

// scope gathers the incident's entities by what an analyst asks about,
// each list in order of first sight.
export function scope(d) {
  const byKind = new Map();
  const hub = new Set((d.nodes || []).filter((n) => /\(hub\)/.test(n.subtitle || '')).map((n) => n.id));
  const alerts = [...(d.alerts || [])].sort((a, b) => (a.time - b.time) || a.id.localeCompare(b.id));
  const add = (kind, value, time) => {
    if (!byKind.has(kind)) byKind.set(kind, new Map());
    const m = byKind.get(kind);
    if (!m.has(value) || m.get(value) > time) m.set(value, time);
  };
  for (const a of alerts) for (const e of a.entities || []) add(e.entity, e.value, a.time);
  for (const n of d.nodes || []) if (n.kind !== 'alert') add(n.entity, n.value, n.first_seen);
  const list = (kind, keep = () => true) => [...(byKind.get(kind) || new Map())].filter(([v]) => keep(v)).sort((a, b) => a[1] - b[1]).map(([v]) => v);
  return {
    hosts: list('host'),
    instances: list('instance'),
    roles: list('role'),
    keys: list('access_key'),
    sessions: list('session'),
    externalIPs: list('ip', (v) => !PRIVATE.test(v) && !hub.has('ip:' + v)),
    buckets: list('bucket'),
    objects: list('object'),
    deployments: list('deployment'),
    groups: list('deployment_group'),
    accounts: list('account').length ? list('account') : (d.accounts || []),
    alerts,
  };
}

const ent = (v, max) => copyable(v, max, 'ent');
const listOf = (vals, max) => {
  const out = [];
  vals.forEach((v, i) => { if (i) out.push(i === vals.length - 1 ? ' and ' : ', '); out.push(ent(v, max)); });
  return out;
};
const quote = (t) => h('q', {}, t);

// story writes the paragraph.
export function story(d) {
  const sc = scope(d);
  const tl = d.timeline || [];
  if (!tl.length) return h('p', { id: 'story' }, 'This incident has no alerts yet.');
  const first = sc.alerts[0] || {}, last = sc.alerts[sc.alerts.length - 1] || {};
  const hostOf = (a) => ((a.entities || []).find((e) => e.entity === 'host') || {}).value;
  const instOf = (a) => ((a.entities || []).find((e) => e.entity === 'instance') || {}).value;
  const stages = d.stages || [];
  const parts = [];
  parts.push(`Between ${fmtTime(d.first_seen)} and ${fmtTime(d.last_seen)} (${gap(d.last_seen - d.first_seen).slice(1)}), `,
    `${tl.length} alert${tl.length === 1 ? '' : 's'} in ${stages.length} stage${stages.length === 1 ? '' : 's'}`,
    stages.length > 1 ? ` — ${human(stages[0])} to ${human(stages[stages.length - 1])}` : '', '. ');
  const entryHost = hostOf(first), entryInst = instOf(first);
  parts.push('It began', entryHost ? [' on ', ent(entryHost)] : '', entryInst ? [' (instance ', ent(entryInst), ')'] : '', ' with ', quote(first.title), '. ');
  if (sc.roles.length || sc.keys.length) {
    parts.push('Identities: ', sc.roles.length ? ['role ', listOf(sc.roles.map((r) => r.replace(/^.*:role\//, '')), 24)] : '',
      sc.keys.length ? [sc.roles.length ? ', ' : '', 'access key', sc.keys.length > 1 ? 's ' : ' ', listOf(sc.keys)] : '',
      sc.externalIPs.length ? [', used from ', listOf(sc.externalIPs)] : '', '. ');
  } else if (sc.externalIPs.length) {
    parts.push('Outside addresses: ', listOf(sc.externalIPs), '. ');
  }
  if (sc.buckets.length) {
    parts.push('It reached bucket', sc.buckets.length > 1 ? 's ' : ' ', listOf(sc.buckets),
      sc.objects.length ? ` (${sc.objects.length} object${sc.objects.length === 1 ? '' : 's'})` : '', '. ');
  }
  const others = sc.hosts.filter((x) => x !== entryHost);
  if (sc.deployments.length) {
    parts.push('Deployment', sc.deployments.length > 1 ? 's ' : ' ', listOf(sc.deployments), sc.groups.length ? [' (group ', listOf(sc.groups), ')'] : '',
      others.length ? [' carried it to ', listOf(others)] : '', '. ');
  } else if (others.length) {
    parts.push('It spread to ', listOf(others), '. ');
  }
  if (last !== first) parts.push('Last: ', quote(last.title), hostOf(last) ? [' on ', ent(hostOf(last))] : '', ` at ${fmtTime(last.time)}.`);
  return h('p', { id: 'story', class: 'story' }, parts);
}

// impact lists the scope with counts.
export function impact(d) {
  const sc = scope(d);
  const rows = [
    ['Hosts', sc.hosts], ['Instances', sc.instances], ['Roles', sc.roles], ['Access keys', sc.keys],
    ['Outside IPs', sc.externalIPs], ['Buckets', sc.buckets], ['Objects', sc.objects], ['Deployments', sc.deployments], ['Accounts', sc.accounts],
  ].filter(([, v]) => v.length);
  return h('dl', { class: 'impact', id: 'impact' }, rows.map(([k, v]) => h('div', { class: 'impact-row', 'data-kind': k },
    h('dt', {}, k, ' ', h('span', { class: 'count' }, String(v.length))),
    h('dd', {}, v.slice(0, 6).map((x) => ent(x, 26)), v.length > 6 ? h('span', { class: 'muted' }, ` +${v.length - 6} more`) : ''))));
}

// RISK_FACTORS names the asset factors of an incident's risk.
const RISK_FACTORS = {
  internet_facing: 'internet-facing', imdsv1_allowed: 'IMDSv1 allowed', exploitable_vulnerability: 'exploitable vulnerability',
  role_writes_deployment_source: 'role writes a deployment source', production_target: 'production target',
  crown_jewel: 'crown jewel', on_predicted_path: 'on a predicted attack path',
};

export const riskFactorName = (name) => RISK_FACTORS[name] || human(name);

// riskFactorsByAsset maps each entity node id (kind:value) to the asset
// factors of the incident's risk found on it.
export function riskFactorsByAsset(d) {
  const m = new Map();
  for (const f of (d.risk_explanation || {}).factors || []) {
    if (!m.has(f.asset)) m.set(f.asset, []);
    m.get(f.asset).push(f);
  }
  return m;
}

// riskWhy says how the risk score is made: the correlator's part and each
// asset factor with its points, asset and evidence.
export function riskWhy(d) {
  const x = d.risk_explanation;
  if (!x) return h('p', { class: 'muted', id: 'risk-why' }, `Risk ${d.risk_score}, from the alerts alone (the incident's assets were not scored).`);
  const factors = x.factors || [];
  const lead = h('p', { class: 'risk-sum' }, h('strong', {}, `Risk ${d.risk_score}`), ` = ${x.correlation} from the alerts`,
    factors.length ? ` + ${factors.reduce((n, f) => n + f.points, 0)} from ${factors.length} asset factor${factors.length === 1 ? '' : 's'}` : ', no asset factor',
    d.risk_score >= 100 && factors.length ? ' (at most 100)' : '',
    x.inventory_as_of ? h('span', { class: 'muted' }, ` · inventory as of ${fmtTime(x.inventory_as_of)}`) : '');
  return h('div', { id: 'risk-why', class: 'risk-why' }, lead,
    x.unavailable ? h('p', { class: 'muted' }, `Assets not scored: ${x.unavailable}`) : '',
    x.inventory_truncated ? h('p', { class: 'muted' }, 'The inventory was truncated: factors on some assets may be missing.') : '',
    factors.length ? h('ul', { class: 'risk-factors' }, factors.map((f) => h('li', { 'data-factor': f.name, 'data-asset': f.asset },
      h('span', { class: 'points' }, `+${f.points}`), ' ', h('strong', {}, riskFactorName(f.name)),
      h('span', { class: 'muted' }, ` (weight ${f.weight}) on `), ent(f.asset.slice(f.asset.indexOf(':') + 1), 40),
      f.evidence ? h('div', { class: 'muted evidence-line' }, f.evidence) : ''))) : '');
}

// killChain shows the stages in order, each with its own tactic, its
// alerts (by title) and when it was first seen.
export function killChain(d) {
  const byStage = new Map();
  for (const t of d.timeline || []) {
    const k = t.stage || 'other';
    if (!byStage.has(k)) byStage.set(k, { n: 0, first: t.time, titles: new Map() });
    const e = byStage.get(k);
    e.n++;
    e.first = Math.min(e.first, t.time);
    e.titles.set(t.title, (e.titles.get(t.title) || 0) + 1);
  }
  const stages = [...(d.stages || [])];
  for (const k of byStage.keys()) if (!stages.includes(k)) stages.push(k);
  return h('ol', { class: 'killchain', id: 'killchain' }, stages.map((stg) => {
    const e = byStage.get(stg) || { n: 0, first: 0, titles: new Map() };
    const tactic = TACTIC_OF_STAGE[stg];
    return h('li', { 'data-stage': stg },
      h('div', { class: 'kc-head' }, h('strong', {}, tactic ? TACTICS[tactic] : human(stg)),
        h('span', { class: 'muted' }, ` ${e.n} alert${e.n === 1 ? '' : 's'}${e.first ? ' · from ' + fmtTime(e.first, { zone: false }).slice(11, 16) : ''}`)),
      h('ul', { class: 'kc-alerts' }, [...e.titles].slice(0, 4).map(([t, n]) => h('li', {}, t, n > 1 ? h('span', { class: 'muted' }, ` ×${n}`) : '')),
        e.titles.size > 4 ? h('li', { class: 'muted' }, `+${e.titles.size - 4} more`) : ''));
  }));
}

const get = (o, path) => path.split('.').reduce((x, k) => (x == null ? x : x[k]), o);
const ep = (e) => (e ? `${e.ip || e.domain || e.hostname || '?'}${e.port ? ':' + e.port : ''}` : '?');

// describe turns an evidence event into a human sentence and facts for its
// class: API call, process launch, connection, file change, finding.
export function describe(ev) {
  let n = ev.normalized;
  if (typeof n === 'string') { try { n = JSON.parse(n); } catch { n = {}; } }
  n = n || {};
  const host = get(n, 'device.hostname');
  const facts = [];
  const f = (k, v) => { if (v !== undefined && v !== null && v !== '') facts.push([k, v]); };
  let kind = n.class_name || `class ${ev.class_uid}`, text = '';
  switch (ev.class_uid) {
    case 6003: {
      kind = 'API call';
      const op = get(n, 'api.operation') || ev.operation || '';
      const svc = (get(n, 'api.service.name') || '').replace('.amazonaws.com', '');
      const who = get(n, 'actor.user.uid_alt') || get(n, 'actor.session.uid') || get(n, 'actor.user.name') || get(n, 'actor.user.uid') || '';
      const from = get(n, 'src_endpoint.ip') || get(n, 'src_endpoint.domain') || '';
      const res = (n.resources || []).map((r) => r.name || r.uid).filter(Boolean);
      const req = get(n, 'api.request.data') || {};
      const target = res[0] || [req.bucketName, req.key].filter(Boolean).join('/') || req.applicationName || '';
      text = `${svc ? svc + ' ' : ''}${op}`;
      f('Principal', who); f('Access key', get(n, 'actor.user.credential_uid') || get(n, 'actor.session.credential_uid'));
      f('Source', from); f('Target', target); f('Result', n.status);
      const dep = get(n, 'api.response.data.deploymentId'); f('Deployment', dep);
      break;
    }
    case 1007: {
      kind = 'Process launch';
      text = get(n, 'process.cmd_line') || get(n, 'process.file.path') || get(n, 'process.name') || '';
      f('Host', host); f('Parent', get(n, 'process.parent_process.file.path') || get(n, 'actor.process.file.path') || get(n, 'process.parent_process.name'));
      f('User', get(n, 'process.user.name')); f('PID', get(n, 'process.pid'));
      break;
    }
    case 4001: {
      kind = 'Connection';
      text = `${ep(n.src_endpoint)} → ${ep(n.dst_endpoint)}`;
      f('Host', host); f('Process', get(n, 'actor.process.cmd_line') || get(n, 'actor.process.file.path') || get(n, 'actor.process.name'));
      f('Protocol', { 6: 'TCP', 17: 'UDP', 1: 'ICMP' }[get(n, 'connection_info.protocol_num')]);
      break;
    }
    case 1001: {
      kind = `File ${(n.activity_name || 'change').toLowerCase()}`;
      text = get(n, 'file.path') || '';
      f('Host', host); f('Process', get(n, 'actor.process.file.path') || get(n, 'actor.process.name')); f('User', get(n, 'actor.process.user.name') || get(n, 'actor.user.name'));
      break;
    }
    case 2004: case 2005: {
      kind = 'Finding';
      text = get(n, 'metadata.event_code') || get(n, 'finding_info.title') || n.message || '';
      f('Detail', n.message); f('Host', host); f('Severity', n.severity);
      f('Source', get(n, 'src_endpoint.ip')); f('Process', get(n, 'actor.process.cmd_line'));
      break;
    }
    default:
      text = [n.activity_name, ev.operation].filter(Boolean).join(' ');
      f('Host', host);
  }
  return { kind, text, facts, product: get(n, 'metadata.product.name') || ev.source };
}
