// The runs: counts per status, filters (status, type, an exact id), a page of the table, kept
// fresh by the event stream.

import { ApiError, get, withQuery } from "../api.js";
import { STATUSES, badge, coalesce, h, shortId, when } from "../dom.js";

const SIZES = [10, 25, 50, 100];

function filtersFrom(query) {
  const size = Number(query.get("size"));
  return {
    status: query.get("status") || "",
    type: query.get("type") || "",
    id: query.get("id") || "",
    size: SIZES.includes(size) ? size : 25,
    page: Math.max(0, Number.parseInt(query.get("page") || "0", 10) || 0),
  };
}

function go(filters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value !== "" && !(name === "page" && value === 0) && !(name === "size" && value === 25)) {
      query.set(name, String(value));
    }
  }
  const text = query.toString();
  location.hash = text ? `#/workflows?${text}` : "#/workflows";
}

function row(run) {
  const link = h(
    "a",
    { href: `#/runs/${encodeURIComponent(run.workflow_id)}`, title: run.workflow_id },
    h("code", {}, shortId(run.workflow_id)),
  );
  return h(
    "tr",
    { "data-testid": "workflow-row", "data-workflow-id": run.workflow_id },
    h("td", { "data-label": "Run" }, link),
    h("td", { "data-label": "Type" }, run.workflow_type),
    h("td", { "data-label": "Status" }, badge(run.status, { "data-testid": "status-badge" })),
    h("td", { "data-label": "Step" }, run.current_step || "—"),
    h("td", { "data-label": "Created" }, when(run.created_at)),
    h("td", { "data-label": "Updated" }, when(run.updated_at)),
  );
}

export async function mount(main, route) {
  const filters = filtersFrom(route.query);
  const types = (await get("workflows/types")).types.map((t) => t.workflow_type);

  const countsBar = h("div", { class: "counts", role: "group", "aria-label": "Runs per status" });
  const tbody = h("tbody");
  const pageInfo = h("span", {
    "data-testid": "page-info",
    class: "page-info",
    "aria-live": "polite",
  });
  const prev = h(
    "button",
    { type: "button", class: "secondary", "data-testid": "page-prev" },
    "← Newer",
  );
  const next = h(
    "button",
    { type: "button", class: "secondary", "data-testid": "page-next" },
    "Older →",
  );
  const message = h("p", { class: "error", role: "alert", hidden: true });
  const emptyNote = h("p", { class: "empty", "data-testid": "empty", hidden: true });

  const typeSelect = h(
    "select",
    { id: "filter-type", "data-testid": "filter-type" },
    h("option", { value: "" }, "All types"),
    types.map((t) => h("option", { value: t, selected: t === filters.type }, t)),
  );
  const statusSelect = h(
    "select",
    { id: "filter-status", "data-testid": "filter-status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((st) => h("option", { value: st, selected: st === filters.status }, st)),
  );
  const sizeSelect = h(
    "select",
    { id: "page-size", "data-testid": "page-size" },
    SIZES.map((n) => h("option", { value: n, selected: n === filters.size }, `${n} per page`)),
  );
  const search = h("input", {
    id: "search-id",
    "data-testid": "search-id",
    type: "search",
    placeholder: "Run id",
    value: filters.id,
    spellcheck: "false",
    autocomplete: "off",
  });

  typeSelect.addEventListener("change", () => go({ ...filters, type: typeSelect.value, page: 0 }));
  statusSelect.addEventListener("change", () =>
    go({ ...filters, status: statusSelect.value, page: 0 }),
  );
  sizeSelect.addEventListener("change", () =>
    go({ ...filters, size: Number(sizeSelect.value), page: 0 }),
  );
  prev.addEventListener("click", () => go({ ...filters, page: Math.max(0, filters.page - 1) }));
  next.addEventListener("click", () => go({ ...filters, page: filters.page + 1 }));
  const searchForm = h(
    "form",
    {
      class: "search",
      role: "search",
      "data-testid": "search-form",
      onsubmit: (event) => {
        event.preventDefault();
        go({ ...filters, id: search.value.trim(), page: 0 });
      },
    },
    h("label", { for: "search-id", class: "visually-hidden" }, "Find a run by its id"),
    search,
    h("button", { type: "submit", class: "secondary" }, "Find"),
  );

  main.replaceChildren(
    h(
      "section",
      { class: "panel" },
      h("div", { class: "title-row" }, h("h1", {}, "Workflows"), countsBar),
      h(
        "div",
        { class: "filters" },
        h("label", { for: "filter-type" }, "Type", typeSelect),
        h("label", { for: "filter-status" }, "Status", statusSelect),
        searchForm,
      ),
      message,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "runs", "data-testid": "workflows-table" },
          h("caption", { class: "visually-hidden" }, "Workflow runs, newest first"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Run", "Type", "Status", "Current step", "Created", "Updated"].map((c) =>
                h("th", { scope: "col" }, c),
              ),
            ),
          ),
          tbody,
        ),
      ),
      emptyNote,
      h("div", { class: "pager" }, prev, pageInfo, next, sizeSelect),
    ),
  );

  async function loadCounts() {
    const counts = await get(withQuery("workflows/counts", { type: filters.type }));
    const chip = (status, label, count) =>
      h(
        "button",
        {
          type: "button",
          class: ["count", status ? "" : "count-all"],
          "data-testid": "status-count",
          "data-status": status,
          "aria-pressed": filters.status === status ? "true" : "false",
          onclick: () => go({ ...filters, status, page: 0 }),
        },
        badge(label),
        h("span", { class: "count-n" }, String(count)),
      );
    countsBar.replaceChildren(
      chip("", "ALL", counts.total),
      ...STATUSES.filter((st) => counts.by_status[st]).map((st) =>
        chip(st, st, counts.by_status[st]),
      ),
    );
  }

  async function loadRows() {
    let runs;
    let total;
    if (filters.id) {
      try {
        const found = await get(`workflows/${encodeURIComponent(filters.id)}`);
        runs = [found];
        total = 1;
      } catch (error) {
        if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 422))
          throw error;
        runs = [];
        total = 0;
      }
    } else {
      const page = await get(
        withQuery("workflows", {
          status: filters.status,
          type: filters.type,
          limit: filters.size,
          offset: filters.page * filters.size,
        }),
      );
      runs = page.workflows;
      total = page.total;
    }
    tbody.replaceChildren(...runs.map(row));
    const first = total ? filters.page * filters.size + 1 : 0;
    const last = filters.id ? total : Math.min(total, (filters.page + 1) * filters.size);
    pageInfo.textContent = `${first}–${last} of ${total}`;
    prev.disabled = filters.page === 0;
    next.disabled = last >= total;
    emptyNote.hidden = runs.length > 0;
    emptyNote.textContent = filters.id
      ? `No run has the id “${filters.id}”.`
      : "No runs match these filters.";
  }

  async function refresh() {
    try {
      await Promise.all([loadCounts(), loadRows()]);
      message.hidden = true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      message.hidden = false;
      message.textContent = `Cannot load the runs: ${error.message}`;
    }
  }

  await refresh();
  const later = coalesce(refresh, 1000); // 13 small queries a refresh: at most one a second
  return {
    update: () => later(),
    destroy: () => later.cancel(),
  };
}
