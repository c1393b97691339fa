// Small helpers to build the page: elements, SVG elements, text formatting.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(element, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "text") {
      element.textContent = String(value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("a", {href: "#/x", class: "link"}, "text", otherNode). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  apply(element, attrs);
  return append(element, children);
}

/** An SVG element. */
export function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  apply(element, attrs);
  return append(element, children);
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** "2026-12-03 14:22:05" in the browser's zone; "—" for nothing. */
export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** "0.4 ms", "12 ms", "3.2 s", "4 min 5 s". */
export function duration(ms) {
  if (ms === undefined || ms === null) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function shortId(id) {
  return id && id.length > 13 ? `${id.slice(0, 8)}…` : id;
}

const STATUS_TONES = {
  COMPLETED: "ok",
  ACTIVE: "run",
  PENDING_ASYNC: "run",
  PENDING_SUB_WORKFLOW: "run",
  PAUSED: "wait",
  WAITING_HUMAN: "wait",
  WAITING_HUMAN_INPUT: "wait",
  WAITING_CHILD_HUMAN_INPUT: "wait",
  CANCELLED: "off",
};

export const TERMINAL = new Set([
  "COMPLETED",
  "FAILED",
  "FAILED_ROLLED_BACK",
  "FAILED_CHILD_WORKFLOW",
  "FAILED_WORKER_CRASH",
  "CANCELLED",
]);
export const RETRYABLE = new Set(["FAILED", "FAILED_WORKER_CRASH", "FAILED_CHILD_WORKFLOW"]);
export const WAITING = new Set(["PAUSED", "WAITING_HUMAN", "WAITING_HUMAN_INPUT"]);
export const STATUSES = [
  "ACTIVE",
  "PENDING_ASYNC",
  "PENDING_SUB_WORKFLOW",
  "PAUSED",
  "WAITING_HUMAN",
  "WAITING_CHILD_HUMAN_INPUT",
  "COMPLETED",
  "FAILED",
  "FAILED_ROLLED_BACK",
  "FAILED_CHILD_WORKFLOW",
  "FAILED_WORKER_CRASH",
  "CANCELLED",
];

/** A status as a badge; the text says it, the colour only helps. */
export function badge(status, attrs = {}) {
  const tone = STATUS_TONES[status] || (String(status).startsWith("FAILED") ? "bad" : "off");
  return h("span", { class: `badge tone-${tone}`, ...attrs }, status);
}

/** Parse "#/runs/abc?x=1" into {parts: ["runs", "abc"], query: URLSearchParams}. */
export function parseHash(hash) {
  const text = (hash || "").replace(/^#\/?/, "");
  const [path, search] = text.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(search || "") };
}

/** Calls fn once, `ms` after the first of any number of calls meanwhile (a busy event stream
 * refreshes a view at most once per `ms`, and never starves it). `.cancel()` drops a pending
 * call. */
export function coalesce(fn, ms) {
  let timer = null;
  const call = () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}
