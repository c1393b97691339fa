// A JSON value as a tree of <details> elements: objects and arrays fold, the top levels open.

import { h } from "./dom.js";

const OPEN_DEPTH = 2;

function scalar(value) {
  if (value === null) return h("span", { class: "json-null" }, "null");
  if (typeof value === "string") return h("span", { class: "json-str" }, JSON.stringify(value));
  if (typeof value === "number") return h("span", { class: "json-num" }, String(value));
  if (typeof value === "boolean") return h("span", { class: "json-bool" }, String(value));
  return h("span", {}, String(value));
}

function node(key, value, depth) {
  const label = key === null ? [] : [h("span", { class: "json-key" }, key), ": "];
  if (value === null || typeof value !== "object") {
    return h("li", {}, label, scalar(value));
  }
  const entries = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  if (!entries.length) return h("li", {}, label, h("span", { class: "json-empty" }, summary));
  return h(
    "li",
    {},
    h(
      "details",
      { open: depth < OPEN_DEPTH },
      h("summary", {}, label, h("span", { class: "json-count" }, summary)),
      h(
        "ul",
        {},
        entries.map(([k, v]) => node(k, v, depth + 1)),
      ),
    ),
  );
}

export function jsonTree(value, attrs = {}) {
  return h("ul", { class: "json", ...attrs }, node(null, value, 0));
}
