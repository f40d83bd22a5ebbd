// The API client: every request carries the session's bearer token; errors
// become APIError with the problem document of the answer.

const TOKEN_KEY = 'musubi.token';
const TENANT_KEY = 'musubi.tenant';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(v) { sessionStorage.setItem(TOKEN_KEY, v); },
  get tenant() { return sessionStorage.getItem(TENANT_KEY) || ''; },
  set tenant(v) { sessionStorage.setItem(TENANT_KEY, v); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(TENANT_KEY); },
};

export class APIError extends Error {
  constructor(status, problem, etag) {
    const p = problem || {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.problem = p;
    this.errors = p.errors || [];
    this.etag = etag;
  }
}

// api calls the API; it resolves to {data, etag} and rejects with APIError.
export async function api(path, { method = 'GET', body, etag, contentType, signal, token, headers: extra } = {}) {
  const headers = { Accept: 'application/json', ...extra };
  const tok = token || session.token;
  if (tok) headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
  if (etag) headers['If-Match'] = etag;
  const res = await fetch(path, {
    method, headers, signal, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (res.status !== 204 && (res.headers.get('Content-Type') || '').includes('json')) {
    data = await res.json();
  }
  if (!res.ok) {
    const err = new APIError(res.status, data, res.headers.get('ETag'));
    if (res.status === 401 && !token) window.dispatchEvent(new CustomEvent('musubi:unauthorized', { detail: err }));
    throw err;
  }
  return { data, etag: res.headers.get('ETag') };
}

// query builds a query string from an object, skipping empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// entityPath is the API path of one entity; a value may contain slashes.
export function entityPath(type, value) {
  return `/v1/entities/${encodeURIComponent(type)}/` + value.split('/').map(encodeURIComponent).join('/');
}
