// One run: status, its graph coloured by where each step stands, the actions that apply
// (resume with a form made from the step's input model, run the next step, retry, cancel),
// the state, step durations, the audit timeline and the log. Live: redrawn when the run
// changes.

import { ApiError, get, post } from "../api.js";
import { confirmAction } from "../dialogs.js";
import {
  RETRYABLE,
  TERMINAL,
  WAITING,
  badge,
  coalesce,
  duration,
  h,
  shortId,
  when,
} from "../dom.js";
import {
  clearErrors,
  collect,
  resultArea,
  schemaFields,
  showErrors,
  showResult,
} from "../forms.js";
import { drawGraph, legend } from "../graph.js";
import { jsonTree } from "../jsonview.js";

const AUDIT_LIMIT = 500;
const LOG_LIMIT = 500;

async function load(id) {
  const path = `workflow/${encodeURIComponent(id)}`;
  const [detail, steps, graph, audit, logs] = await Promise.all([
    get(`workflows/${encodeURIComponent(id)}`),
    get(`${path}/steps`),
    get(`${path}/graph`),
    get(`${path}/audit?limit=${AUDIT_LIMIT}`),
    get(`${path}/logs?limit=${LOG_LIMIT}`),
  ]);
  const info = TERMINAL.has(detail.status) ? null : await get(`${path}/current_step_info`);
  return { detail, steps, graph, audit, logs, info };
}

function fact(label, value, attrs = {}) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", attrs, value));
}

function header(run) {
  const { detail } = run;
  const children = detail.child_ids || [];
  return h(
    "section",
    { class: "panel run-head" },
    h(
      "p",
      { class: "crumbs" },
      h("a", { href: "#/workflows" }, "Workflows"),
      " / ",
      h("code", {}, shortId(detail.workflow_id)),
    ),
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, detail.workflow_type, " ", h("span", { class: "muted" }, "run")),
      badge(detail.status, { "data-testid": "run-status" }),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("Id", h("code", {}, detail.workflow_id)),
      fact(
        "Type",
        detail.workflow_type + (detail.workflow_version ? ` v${detail.workflow_version}` : ""),
        { "data-testid": "run-type" },
      ),
      fact("Current step", detail.current_step || "—", { "data-testid": "run-current-step" }),
      fact("Created", when(detail.created_at)),
      fact("Updated", when(detail.updated_at)),
      detail.completed_at ? fact("Ended", when(detail.completed_at)) : null,
      detail.owner_id ? fact("Owner", detail.owner_id) : null,
      detail.parent_execution_id
        ? fact(
            "Parent",
            h(
              "a",
              { href: `#/runs/${encodeURIComponent(detail.parent_execution_id)}` },
              h("code", {}, shortId(detail.parent_execution_id)),
            ),
            { "data-testid": "run-parent" },
          )
        : null,
      children.length
        ? fact(
            "Children",
            h(
              "ul",
              { class: "inline-list" },
              children.map((child) =>
                h(
                  "li",
                  {},
                  h(
                    "a",
                    { href: `#/runs/${encodeURIComponent(child)}` },
                    h("code", {}, shortId(child)),
                  ),
                ),
              ),
            ),
            { "data-testid": "run-children" },
          )
        : null,
    ),
    detail.error_message ? h("p", { class: "error", role: "alert" }, detail.error_message) : null,
  );
}

function graphPanel(run) {
  const states = new Map(run.steps.steps.map((step) => [step.name, step]));
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Steps"),
    h(
      "div",
      { class: "graph-wrap" },
      drawGraph(run.graph, states, {
        "data-testid": "run-graph",
        "aria-label": `The steps of ${run.detail.workflow_type}, coloured by state`,
      }),
    ),
    legend(),
  );
}

function durationsPanel(run) {
  const ran = run.steps.steps.filter((step) => step.attempts > 0);
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Step durations"),
    ran.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "compact", "data-testid": "step-durations" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Step", "State", "Runs", "Last", "Total", "Finished"].map((c) =>
                  h("th", { scope: "col" }, c),
                ),
              ),
            ),
            h(
              "tbody",
              {},
              ran.map((step) =>
                h(
                  "tr",
                  { "data-step": step.name },
                  h("td", {}, step.name),
                  h(
                    "td",
                    {},
                    step.state,
                    step.error ? h("div", { class: "error small" }, step.error) : null,
                  ),
                  h("td", { class: "num" }, String(step.attempts)),
                  h("td", { class: "num" }, duration(step.duration_ms)),
                  h("td", { class: "num" }, duration(step.total_duration_ms)),
                  h("td", {}, when(step.finished_at)),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted", "data-testid": "step-durations" }, "No step has run yet."),
  );
}

function auditPanel(run) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Audit timeline"),
    h(
      "ol",
      { class: "timeline", "data-testid": "audit-timeline" },
      run.audit.map((entry) => {
        const change =
          entry.old_status || entry.new_status
            ? ` ${entry.old_status || "—"} → ${entry.new_status || "—"}`
            : "";
        const extra =
          entry.data && Object.keys(entry.data).length
            ? h("details", {}, h("summary", {}, "data"), jsonTree(entry.data))
            : null;
        return h(
          "li",
          { "data-event": entry.event_type },
          h("time", { datetime: entry.timestamp || "" }, when(entry.timestamp)),
          h("span", { class: "event" }, entry.event_type),
          entry.step_name ? h("span", { class: "step" }, entry.step_name) : null,
          change ? h("span", { class: "muted" }, change) : null,
          entry.duration_ms !== null && entry.duration_ms !== undefined
            ? h("span", { class: "muted" }, ` ${duration(entry.duration_ms)}`)
            : null,
          entry.user_id ? h("span", { class: "muted" }, ` by ${entry.user_id}`) : null,
          extra,
        );
      }),
    ),
  );
}

function logsPanel(run) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Log"),
    run.logs.length
      ? h(
          "ol",
          { class: "logs", "data-testid": "run-logs" },
          run.logs.map((line) =>
            h(
              "li",
              { class: `level-${String(line.level).toLowerCase()}` },
              h("time", {}, when(line.logged_at)),
              h("span", { class: "level" }, line.level),
              line.step_name ? h("span", { class: "step" }, line.step_name) : null,
              h("span", { class: "message" }, line.message),
            ),
          ),
        )
      : h("p", { class: "muted", "data-testid": "run-logs" }, "Nothing logged."),
  );
}

function statePanel(run) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "State"),
    h("div", { "data-testid": "run-state" }, jsonTree(run.detail.state)),
  );
}

/** What the action's answer says, for the result line. */
function outcome(verb, answer) {
  if (answer.error) {
    return [
      "error",
      `${verb}: step ${answer.error.step || "?"} failed (${answer.error.type}: ${answer.error.message}); the run is ${answer.status}.`,
    ];
  }
  const where =
    answer.current_step && !TERMINAL.has(answer.status) ? ` at ${answer.current_step}` : "";
  return ["success", `${verb}: the run is ${answer.status}${where}.`];
}

function actionsPanel(run, act, result) {
  const { detail, info, steps } = run;
  const forms = [];
  const id = detail.workflow_id;
  const path = `workflow/${encodeURIComponent(id)}`;

  if (WAITING.has(detail.status) && info && info.name) {
    const schema = info.input_schema;
    const form = h(
      "form",
      { class: "action", "data-testid": "resume-form", novalidate: true },
      h("h3", {}, `Resume: ${info.name}`),
      info.description ? h("p", { class: "muted" }, info.description) : null,
      schema
        ? schemaFields(schema, "resume")
        : h("p", { class: "muted" }, "This step takes no input."),
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", class: "primary", "data-testid": "resume-submit" }, "Submit"),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearErrors(form);
      let input;
      try {
        input = collect(form);
      } catch (error) {
        showErrors(form, [error]);
        return;
      }
      act(
        form,
        `Submit this input to ${info.name}?`,
        JSON.stringify(input),
        "Submit",
        () => post(`${path}/resume`, { user_input: input }),
        "Resumed",
      );
    });
    forms.push(form);
  } else if (detail.status === "ACTIVE" && detail.current_step) {
    const form = h(
      "form",
      { class: "action", "data-testid": "next-form" },
      h("h3", {}, "Run the next step"),
      h(
        "p",
        { class: "muted" },
        `Runs ${detail.current_step} (and what follows it automatically).`,
      ),
      h(
        "div",
        { class: "buttons" },
        h(
          "button",
          { type: "submit", class: "primary", "data-testid": "next-submit" },
          `Run ${detail.current_step}`,
        ),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      act(
        form,
        `Run ${detail.current_step}?`,
        "The step runs now, on the server.",
        "Run",
        () => post(`${path}/next`, { user_input: {} }),
        "Ran",
      );
    });
    forms.push(form);
  }

  if (RETRYABLE.has(detail.status)) {
    const failed = steps.steps.find((step) => step.state === "failed");
    const select = h(
      "select",
      { name: "from_step", id: "retry-from" },
      h("option", { value: "" }, failed ? `the failed step (${failed.name})` : "the failed step"),
      steps.steps.map((step) => h("option", { value: step.name }, step.name)),
    );
    const form = h(
      "form",
      { class: "action", "data-testid": "retry-form" },
      h("h3", {}, "Retry"),
      h("label", { for: "retry-from" }, "From step"),
      select,
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", class: "primary", "data-testid": "retry-submit" }, "Retry"),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const from = select.value;
      act(
        form,
        "Retry this run?",
        `It runs again from ${from || (failed ? failed.name : "the failed step")}.`,
        "Retry",
        () => post(`${path}/retry`, from ? { from_step: from } : {}),
        "Retried",
      );
    });
    forms.push(form);
  }

  if (!TERMINAL.has(detail.status)) {
    const reason = h("input", {
      name: "reason",
      id: "cancel-reason",
      maxlength: 2000,
      placeholder: "Why (kept in the audit log)",
    });
    const form = h(
      "form",
      { class: "action", "data-testid": "cancel-form" },
      h("h3", {}, "Cancel"),
      h("label", { for: "cancel-reason" }, "Reason"),
      reason,
      h(
        "div",
        { class: "buttons" },
        h(
          "button",
          { type: "submit", class: "danger", "data-testid": "cancel-submit" },
          "Cancel run",
        ),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      act(
        form,
        "Cancel this run?",
        `It stops for good${text ? `: “${text}”` : ""}. Compensations of a saga run.`,
        "Cancel run",
        () => post(`${path}/cancel`, text ? { reason: text } : {}),
        "Cancelled",
      );
    });
    forms.push(form);
  }

  return h(
    "section",
    { class: "panel actions" },
    h("h2", {}, "Actions"),
    forms.length
      ? forms
      : h("p", { class: "muted" }, `Nothing to do: the run is ${detail.status}.`),
    result,
  );
}

export async function mount(main, route) {
  const id = route.name;
  const result = resultArea();
  let signature = "";
  let busy = false;
  let gone = false; // left for another page: a late answer must not draw over it

  async function act(form, title, text, okLabel, call, verb) {
    if (!(await confirmAction(title, text, okLabel))) return;
    busy = true;
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    try {
      const answer = await call();
      const [kind, message] = outcome(verb, answer);
      showResult(result, kind, message);
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        const rest = showErrors(form, error.fieldErrors);
        showResult(
          result,
          "error",
          rest.length || !error.fieldErrors.length
            ? `${error.message}`
            : "The input was refused: see the fields marked.",
        );
        busy = false;
        for (const button of form.querySelectorAll("button")) button.disabled = false;
        return;
      }
      showResult(result, "error", error.message);
    }
    busy = false;
    await refresh(true);
  }

  async function refresh(force = false) {
    let run;
    try {
      run = await load(id);
      if (gone) return;
    } catch (error) {
      if (gone) return;
      if (error instanceof ApiError && error.status === 404) {
        main.replaceChildren(
          h(
            "section",
            { class: "panel" },
            h("h1", {}, "No such run"),
            h("p", { "data-testid": "empty" }, `No run has the id “${id}”.`),
            h("a", { href: "#/workflows" }, "Back to the workflows"),
          ),
        );
        return;
      }
      throw error;
    }
    const next = `${run.detail.version}|${run.detail.status}|${run.detail.current_step}|${run.audit.length}`;
    if (!force && next === signature) return;
    signature = next;
    main.replaceChildren(
      header(run),
      h(
        "div",
        { class: "columns" },
        h("div", { class: "col-main" }, graphPanel(run), durationsPanel(run)),
        h("div", { class: "col-side" }, actionsPanel(run, act, result), statePanel(run)),
      ),
      auditPanel(run),
      logsPanel(run),
    );
  }

  await refresh(true);
  const later = coalesce(() => {
    if (!busy && !gone) refresh().catch(() => {});
  }, 300);
  return {
    update: (event) => {
      if (!event || event.workflow_id === id) later();
    },
    destroy: () => {
      gone = true;
      later.cancel();
    },
  };
}
