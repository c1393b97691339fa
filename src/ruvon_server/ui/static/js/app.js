// The page: a router over the URL's hash, the live event stream shared by the views, and the
// API-key prompt when the server refuses a request.

import { onUnauthorized } from "./api.js";
import { askForKey } from "./dialogs.js";
import { h, parseHash } from "./dom.js";
import { subscribe } from "./live.js";
import * as definitions from "./views/definitions.js";
import * as run from "./views/run.js";
import * as workflows from "./views/workflows.js";

const POLL_MS = 15000; // changes made by other processes (workers, the CLI) are not streamed

const main = document.getElementById("main");
const liveStatus = document.querySelector('[data-testid="live-status"]');
let view = null;
let stopLive = null;

function route() {
  const { parts, query } = parseHash(location.hash);
  const [section, name] = parts;
  if (section === "runs" && name) return { module: run, nav: "workflows", name, query };
  if (section === "definitions") return { module: definitions, nav: "definitions", name, query };
  return { module: workflows, nav: "workflows", name: null, query };
}

let shown = 0; // the latest show(): an earlier one that answers late is dropped

async function show() {
  const ticket = ++shown;
  const target = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === target.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view && view.destroy) view.destroy();
  view = null;
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  // The view draws into a page of its own, put in place once it is ready and still wanted.
  const page = h("div", { class: "page" });
  let mounted = null;
  try {
    mounted = await target.module.mount(page, target);
  } catch (error) {
    page.replaceChildren(
      h(
        "section",
        { class: "panel" },
        h("h1", {}, "Cannot show this page"),
        h("p", { class: "error", role: "alert" }, error.message || String(error)),
      ),
    );
  }
  if (ticket !== shown) {
    if (mounted && mounted.destroy) mounted.destroy();
    return;
  }
  view = mounted;
  main.replaceChildren(page);
}

function setLive(connected) {
  liveStatus.dataset.live = connected ? "true" : "false";
  liveStatus.textContent = connected ? "live" : "offline";
}

function startLive() {
  if (stopLive) stopLive();
  stopLive = subscribe((event) => {
    if (view && view.update) view.update(event);
  }, setLive);
}

onUnauthorized(async (error) => {
  if (await askForKey(error.message)) {
    startLive();
    show();
  }
});

document.querySelector('[data-testid="key-button"]').addEventListener("click", async () => {
  if (await askForKey("")) {
    startLive();
    show();
  }
});

window.addEventListener("hashchange", () => {
  show();
  main.focus({ preventScroll: true });
});
setInterval(() => {
  if (view && view.update && document.visibilityState === "visible") view.update(null);
}, POLL_MS);

if (!location.hash) history.replaceState(null, "", "#/workflows");
startLive();
show();
