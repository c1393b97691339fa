// Forms made from a JSON Schema (a Pydantic model's): one control per top-level field, typed by
// the schema (text, number, checkbox, a list of choices, JSON for lists and objects), required
// fields marked. The server validates; its field errors are shown next to the fields.

import { h } from "./dom.js";

function resolve(schema, root) {
  let current = schema || {};
  for (let guard = 0; current.$ref && guard < 10; guard += 1) {
    const name = current.$ref.split("/").pop();
    current = {
      ...((root.$defs || root.definitions || {})[name] || {}),
      ...current,
      $ref: undefined,
    };
  }
  if (Array.isArray(current.anyOf)) {
    const options = current.anyOf.filter((option) => option.type !== "null");
    const nullable = options.length < current.anyOf.length;
    if (options.length === 1) {
      return { ...resolve(options[0], root), ...current, anyOf: undefined, nullable };
    }
    return { ...current, nullable, type: "json" };
  }
  if (Array.isArray(current.allOf) && current.allOf.length === 1) {
    return { ...resolve(current.allOf[0], root), ...current, allOf: undefined };
  }
  return current;
}

function kindOf(field) {
  if (Array.isArray(field.enum)) return "enum";
  if (field.const !== undefined) return "enum";
  switch (field.type) {
    case "boolean":
      return "boolean";
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "string":
      return "string";
    default:
      return "json";
  }
}

function control(name, field, required, id) {
  const kind = kindOf(field);
  const common = {
    id,
    name,
    "data-kind": kind,
    "aria-required": required ? "true" : undefined,
    "aria-describedby": `${id}-hint ${id}-error`,
  };
  const initial = field.default;
  if (kind === "boolean") {
    return h("input", { ...common, type: "checkbox", checked: initial === true });
  }
  if (kind === "enum") {
    const values = field.enum || [field.const];
    return h(
      "select",
      common,
      required ? null : h("option", { value: "" }, "—"),
      values.map((value) =>
        h("option", { value: JSON.stringify(value), selected: value === initial }, String(value)),
      ),
    );
  }
  if (kind === "json") {
    return h("textarea", {
      ...common,
      rows: 4,
      spellcheck: "false",
      placeholder: field.type === "array" ? "[ ]" : "{ }",
      text: initial !== undefined ? JSON.stringify(initial, null, 2) : undefined,
    });
  }
  const type = kind === "string" ? (field.format === "email" ? "email" : "text") : "number";
  return h("input", {
    ...common,
    type,
    step: kind === "number" ? "any" : undefined,
    inputmode: kind === "integer" ? "numeric" : undefined,
    value: initial !== undefined && initial !== null ? String(initial) : undefined,
    placeholder: field.examples ? String(field.examples[0]) : undefined,
  });
}

/** The form's fields for `schema` (an object schema); `prefix` keeps ids unique. */
export function schemaFields(schema, prefix) {
  const root = schema || {};
  const properties = resolve(root, root).properties || {};
  const required = new Set(root.required || []);
  const rows = [];
  for (const [name, raw] of Object.entries(properties)) {
    const field = resolve(raw, root);
    const id = `${prefix}-${name}`;
    const isRequired = required.has(name);
    const hint = [field.description, kindOf(field) === "json" ? "JSON" : null]
      .filter(Boolean)
      .join(" · ");
    rows.push(
      h(
        "div",
        { class: ["field", `field-${kindOf(field)}`], "data-field-row": name },
        h(
          "label",
          { for: id },
          field.title || name,
          isRequired ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null,
        ),
        control(name, field, isRequired, id),
        h("small", { id: `${id}-hint`, class: "hint" }, hint),
        h("span", {
          id: `${id}-error`,
          class: "field-error",
          "data-testid": "field-error",
          "data-field": name,
          role: "alert",
        }),
      ),
    );
  }
  return rows;
}

/** The values of the form's schema fields; throws {field, message} for JSON that does not
 * parse. Empty optional fields are left out (the model's default applies). */
export function collect(form) {
  const values = {};
  for (const element of form.querySelectorAll("[data-kind]")) {
    const name = element.name;
    const required = element.getAttribute("aria-required") === "true";
    const kind = element.dataset.kind;
    if (kind === "boolean") {
      values[name] = element.checked;
      continue;
    }
    const text = element.value.trim();
    if (!text) {
      if (required && kind === "string") values[name] = "";
      continue;
    }
    if (kind === "enum" || kind === "json") {
      try {
        values[name] = JSON.parse(text);
      } catch {
        throw { field: name, message: "Not valid JSON." };
      }
    } else if (kind === "integer" || kind === "number") {
      const number = Number(text);
      values[name] = Number.isNaN(number) ? text : number;
    } else {
      values[name] = element.value;
    }
  }
  return values;
}

/** Put each error next to its field (the first part of its path); the ones without a field
 * come back, to be shown with the form. */
export function showErrors(form, errors) {
  clearErrors(form);
  const rest = [];
  for (const error of errors) {
    const top = String(error.field || "").split(".")[0];
    const slot =
      top && form.querySelector(`[data-testid="field-error"][data-field="${CSS.escape(top)}"]`);
    if (slot) {
      slot.textContent = slot.textContent
        ? `${slot.textContent}; ${error.message}`
        : error.field === top
          ? error.message
          : `${error.field}: ${error.message}`;
      const input = form.querySelector(`[name="${CSS.escape(top)}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      rest.push(error);
    }
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
  return rest;
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll('[data-testid="field-error"]')) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]"))
    input.removeAttribute("aria-invalid");
}

/** A message area for the result of an action (success or error). */
export function resultArea() {
  return h("div", {
    class: "result",
    "data-testid": "action-result",
    role: "status",
    "aria-live": "polite",
  });
}

export function showResult(area, kind, message) {
  area.dataset.kind = kind;
  area.textContent = message;
}
