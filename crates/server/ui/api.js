// The API under /api/v3: requests with the analyst's key, errors as ApiError (VirusTotal's
// error envelope, with the query column when the parser gave one), downloads as files.

const KEY_STORAGE = "sandscope-api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export class ApiError extends Error {
  constructor(status, code, message, column) {
    super(message);
    this.status = status;
    this.code = code;
    this.column = column;
  }
}

export async function request(path, options) {
  const opts = options || {};
  const headers = Object.assign({ "x-apikey": apiKey() }, opts.headers || {});
  const response = await fetch("/api/v3" + path, { method: opts.method || "GET", headers, body: opts.body });
  if (!response.ok) {
    let code = "HttpError" + response.status;
    let message = response.statusText;
    let column;
    try {
      const body = await response.json();
      if (body && body.error) {
        code = String(body.error.code);
        message = String(body.error.message);
        column = body.error.column;
      }
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, code, message, column);
  }
  return response;
}

/** GET path?params as JSON. */
export async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const response = await request(path + query);
  return response.json();
}

/** A change (POST, PATCH, DELETE) with an optional JSON body; the answer's JSON, or null when empty. */
export async function change(method, path, body) {
  const opts = { method };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { "content-type": "application/json" };
  }
  const text = await (await request(path, opts)).text();
  return text ? JSON.parse(text) : null;
}

/** Fetch path (with the key) and hand it to the browser as a download. */
export async function download(path, fallbackName) {
  const response = await request(path);
  const disposition = response.headers.get("content-disposition") || "";
  const named = /filename="([^"]+)"/.exec(disposition);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = named ? named[1] : fallbackName;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** Every report of a sample (all pages, bounded). */
export async function sampleReports(sha256) {
  let reports = [];
  let cursor = "";
  for (let pages = 0; pages < 10; pages++) {
    const params = { limit: "40" };
    if (cursor) params.cursor = cursor;
    const body = await api(`/files/${encodeURIComponent(sha256)}/behaviours`, params);
    reports = reports.concat(body.data || []);
    cursor = body.meta && body.meta.cursor;
    if (!cursor) break;
  }
  return reports;
}
