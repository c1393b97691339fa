// The REST API, with the API key the user gave (sessionStorage) and errors as ApiError.

const KEY_STORAGE = "ruvon.apiKey";
const API_BASE = new URL("../api/v1/", document.baseURI);

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (status ? `The server answered ${status}.` : "No answer."));
    this.status = status;
    this.type = error.type || (status ? "http_error" : "network");
    this.details = error.details || {};
  }

  /** The field errors of a 422: [{field, message}]. */
  get fieldErrors() {
    const errors = Array.isArray(this.details.errors) ? this.details.errors : [];
    return errors.map((error) => {
      if (typeof error === "string") {
        const at = error.indexOf(": ");
        return at > 0
          ? { field: error.slice(0, at), message: error.slice(at + 2) }
          : { field: "", message: error };
      }
      const loc = Array.isArray(error.loc) ? error.loc.filter((p) => p !== "body") : [];
      return {
        field: error.field || loc.join("."),
        message: error.message || error.msg || "Invalid value",
      };
    });
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export function apiUrl(path) {
  return new URL(path.replace(/^\//, ""), API_BASE).toString();
}

/** Listeners told when the server refuses the key (401). */
const unauthorized = new Set();
export function onUnauthorized(listener) {
  unauthorized.add(listener);
}

/** JSON from /api/v1<path>; throws ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { error: { message: "The server cannot be reached." } });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) for (const listener of unauthorized) listener(error);
    throw error;
  }
  return data;
}

export const get = (path, options) => api(path, options);
export const post = (path, body) => api(path, { method: "POST", body: body ?? {} });

/** "/workflows?status=A&type=B" without the empty ones. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
