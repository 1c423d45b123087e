// The one way the dashboard talks to leadflow: the public JSON API, with the session cookie.
// The API key never reaches the browser's storage; the session cookie is HttpOnly and state
// changes carry the CSRF token the session answer gave us.

let current = null; // {account_id, account_name, csrf_token, expires_at}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || { status, title: `HTTP ${status}`, code: "http_error" };
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const listeners = new Set();

/** The signed-in session (or null). */
export function session() {
  return current;
}

export function setSession(value) {
  current = value;
}

/** Called with the problem whenever the API answers 401: the app sends the merchant to sign in. */
export function onUnauthorized(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  if (query) {
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === "") continue;
      if (Array.isArray(value)) value.forEach((item) => url.searchParams.append(key, item));
      else url.searchParams.set(key, String(value));
    }
  }
  return url.pathname + url.search;
}

export async function api(method, path, { query, body } = {}) {
  method = method.toUpperCase();
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method) && current && current.csrf_token) {
    headers["X-CSRF-Token"] = current.csrf_token;
  }
  let response;
  try {
    response = await fetch(buildUrl(path, query), {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, {
      status: 0,
      title: "Network error",
      detail: "leadflow could not be reached. Is the server running?",
      code: "network_error",
    });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith("/v1/session") && !path.startsWith("/v1/setup")) {
      current = null;
      listeners.forEach((listener) => listener(error.problem));
    }
    throw error;
  }
  return data;
}
