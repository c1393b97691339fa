// The registered workflow types with their graphs, and a form to start a run of one.

import { ApiError, get, post } from "../api.js";
import { confirmAction } from "../dialogs.js";
import { h } from "../dom.js";
import {
  clearErrors,
  collect,
  resultArea,
  schemaFields,
  showErrors,
  showResult,
} from "../forms.js";
import { drawGraph } from "../graph.js";

async function list(main) {
  const { types } = await get("workflows/types");
  const cards = await Promise.all(
    types.map(async (type) => {
      let drawing;
      if (type.problem) {
        drawing = h("p", { class: "error" }, type.problem);
      } else {
        try {
          const graph = await get(
            `workflows/types/${encodeURIComponent(type.workflow_type)}/graph`,
          );
          drawing = h(
            "div",
            { class: "graph-wrap small" },
            drawGraph(graph, null, {
              "data-testid": "type-graph",
              "aria-label": `The steps of ${type.workflow_type}`,
            }),
          );
        } catch (error) {
          drawing = h("p", { class: "error" }, error.message);
        }
      }
      return h(
        "article",
        { class: "panel card", "data-testid": "definition-card", "data-type": type.workflow_type },
        h(
          "div",
          { class: "title-row" },
          h(
            "h2",
            {},
            type.workflow_type,
            type.version ? h("span", { class: "muted" }, ` v${type.version}`) : null,
          ),
          h(
            "a",
            {
              class: "button primary",
              href: `#/definitions/${encodeURIComponent(type.workflow_type)}`,
              "data-testid": "start-link",
            },
            "Start a run",
          ),
        ),
        type.description ? h("p", {}, type.description) : null,
        drawing,
      );
    }),
  );
  main.replaceChildren(
    h(
      "section",
      { class: "panel" },
      h("h1", {}, "Definitions"),
      h(
        "p",
        { class: "muted" },
        `${types.length} workflow type${types.length === 1 ? "" : "s"} registered on this server.`,
      ),
    ),
    cards.length
      ? h("div", { class: "cards" }, cards)
      : h("p", { "data-testid": "empty" }, "No workflow type is registered."),
  );
  return {};
}

async function start(main, name) {
  const type = await get(`workflows/types/${encodeURIComponent(name)}`);
  const graph = type.problem
    ? null
    : await get(`workflows/types/${encodeURIComponent(name)}/graph`);
  const result = resultArea();
  const fields = h(
    "div",
    { class: "schema-fields" },
    schemaFields(type.state_schema || {}, "start"),
  );
  const raw = h("textarea", {
    name: "__json",
    id: "start-json",
    rows: 10,
    spellcheck: "false",
    hidden: true,
    "aria-describedby": "start-json-hint",
    placeholder: '{"order_id": "A-1"}',
  });
  const rawHint = h(
    "small",
    { id: "start-json-hint", class: "hint", hidden: true },
    "The initial state as one JSON object (the fields above are ignored).",
  );
  const toggle = h(
    "button",
    { type: "button", class: "secondary", "data-testid": "json-toggle", "aria-pressed": "false" },
    "Edit as JSON",
  );
  toggle.addEventListener("click", () => {
    const on = raw.hidden;
    if (on) {
      try {
        raw.value = JSON.stringify(collect(form), null, 2);
      } catch {
        raw.value = raw.value || "{}";
      }
    }
    raw.hidden = !on;
    rawHint.hidden = !on;
    fields.hidden = on;
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    toggle.textContent = on ? "Edit as fields" : "Edit as JSON";
  });
  const key = h("input", {
    id: "start-key",
    name: "__idempotency_key",
    maxlength: 200,
    autocomplete: "off",
    placeholder: "optional: the same key never starts a second run",
  });
  const form = h(
    "form",
    { class: "start", "data-testid": "start-form", novalidate: true },
    h("h2", {}, "Initial state"),
    fields,
    h("label", { for: "start-json", class: "visually-hidden" }, "Initial state (JSON)"),
    raw,
    rawHint,
    h("div", { class: "field" }, h("label", { for: "start-key" }, "Idempotency key"), key),
    h(
      "div",
      { class: "buttons" },
      toggle,
      h("button", { type: "submit", class: "primary", "data-testid": "start-submit" }, "Start"),
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    let data;
    try {
      if (!raw.hidden) {
        data = JSON.parse(raw.value || "{}");
        if (data === null || typeof data !== "object" || Array.isArray(data))
          throw new Error("not an object");
      } else {
        data = collect(form);
      }
    } catch (error) {
      if (error && error.field) showErrors(form, [error]);
      else showResult(result, "error", "The initial state must be one JSON object.");
      return;
    }
    if (
      !(await confirmAction(
        `Start a ${name} run?`,
        "The run starts now and runs until it waits or ends.",
        "Start",
      ))
    )
      return;
    try {
      const body = { workflow_type: name, initial_data: data };
      if (key.value.trim()) body.idempotency_key = key.value.trim();
      const run = await post("workflow/start", body);
      location.hash = `#/runs/${encodeURIComponent(run.workflow_id)}`;
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        const rest = raw.hidden ? showErrors(form, error.fieldErrors) : error.fieldErrors;
        showResult(
          result,
          "error",
          rest.length || !error.fieldErrors.length
            ? error.message
            : "The initial state was refused: see the fields marked.",
        );
      } else {
        showResult(result, "error", error.message);
      }
    }
  });

  main.replaceChildren(
    h(
      "section",
      { class: "panel" },
      h("p", { class: "crumbs" }, h("a", { href: "#/definitions" }, "Definitions"), " / ", name),
      h("h1", {}, `Start ${name}`),
      type.description ? h("p", {}, type.description) : null,
      type.problem ? h("p", { class: "error", role: "alert" }, type.problem) : null,
    ),
    h(
      "div",
      { class: "columns" },
      h("div", { class: "col-side" }, h("section", { class: "panel" }, form, result)),
      graph
        ? h(
            "div",
            { class: "col-main" },
            h(
              "section",
              { class: "panel" },
              h("h2", {}, "Steps"),
              h(
                "div",
                { class: "graph-wrap" },
                drawGraph(graph, null, {
                  "data-testid": "type-graph",
                  "aria-label": `The steps of ${name}`,
                }),
              ),
            ),
          )
        : null,
    ),
  );
  return {};
}

export async function mount(main, route) {
  return route.name ? start(main, route.name) : list(main);
}
