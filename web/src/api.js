// Talking to the node's REST API: the token, JSON calls, and the upload with progress.

const TOKEN_KEY = 'ferry.token';

export const NO_TOKEN_MESSAGE =
  'This page has no valid token: open the address “ferry relay” printed (it ends in #token=…)';

/** Take a `token=…` out of the URL fragment, keep it, and leave the URL without it. */
export function takeTokenFromUrl() {
  const m = /(?:^#|[#&?/])token=([^&]*)/.exec(location.hash);
  if (!m) return false;
  const token = decodeURIComponent(m[1]);
  if (token) {
    try {
      localStorage.setItem(TOKEN_KEY, token);
    } catch {
      memoryToken = token;
    }
  }
  let rest = location.hash.replace(/[?&]?token=[^&]*/, '').replace(/^#&/, '#');
  if (rest === '#' || rest === '#/?' || rest === '') rest = '#/';
  history.replaceState(null, '', location.pathname + location.search + rest);
  return !!token;
}

let memoryToken = null;

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || memoryToken;
  } catch {
    return memoryToken;
  }
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Listeners told when a state-changing call was refused for want of a valid token. */
const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

function headers(extra) {
  const hd = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

async function errorFrom(res) {
  let msg = '';
  try {
    const text = await res.text();
    try {
      msg = JSON.parse(text).error || text;
    } catch {
      msg = text;
    }
  } catch {
    /* no body */
  }
  return msg.trim() || `${res.status} ${res.statusText}`.trim();
}

function refused(status, method, msg) {
  if (status === 401 && method !== 'GET') {
    for (const fn of unauthorizedListeners) fn();
    return new ApiError(401, NO_TOKEN_MESSAGE);
  }
  return new ApiError(status, msg);
}

/**
 * A JSON call. `body` (if given) is sent as JSON. Rejects with ApiError carrying the node's {"error"} message.
 */
export async function api(method, path, { body, signal, query } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  let res;
  try {
    res = await fetch(url, {
      method,
      signal,
      headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The node does not answer (is it still running?)');
  }
  if (!res.ok) throw refused(res.status, method, await errorFrom(res));
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch {
    throw new ApiError(res.status, 'The node sent an answer that is not JSON');
  }
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, body, opts) => api('POST', path, { ...opts, body });

/**
 * POST a file's raw bytes with XMLHttpRequest, so the upload reports progress.
 * Returns {promise, abort}. onProgress(loaded, total).
 */
export function upload(path, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    for (const [k, v] of Object.entries(headers({ 'Content-Type': 'application/octet-stream' }))) {
      xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else
        reject(refused(xhr.status, 'POST', (data && data.error) || xhr.responseText.trim() || `${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => reject(new ApiError(0, 'The upload failed: the node does not answer'));
    xhr.onabort = () => reject(new ApiError(0, 'The upload was stopped'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
