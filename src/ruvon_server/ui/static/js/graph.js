// A workflow graph (GET .../graph, JSON) drawn as SVG. Steps are boxes in file order, top to
// bottom (a workflow with dependencies: in layers, a step below everything it needs); an edge to
// the next box is a short arrow, every other edge (a route, a jump ahead or back) a curve on the
// right. `states` (step name -> {state, current, duration_ms}) colours the boxes.

import { duration, h, s } from "./dom.js";

const BOX_W = 224;
const BOX_H = 46;
const ROW = 76;
const COL = 252;
const PAD = 16;
const LANE = 18;

export const STATE_LABELS = {
  done: "done",
  running: "running",
  waiting: "waiting",
  failed: "failed",
  skipped: "skipped",
  pending: "pending",
  cancelled: "cancelled",
};

function layers(graph) {
  const index = new Map(graph.nodes.map((node, i) => [node.name, i]));
  if (!graph.dag) return graph.nodes.map((_, i) => i);
  const layer = graph.nodes.map(() => 0);
  // Edges only lead forward in a valid DAG; relax in file order until nothing moves.
  for (let pass = 0; pass < graph.nodes.length; pass += 1) {
    let moved = false;
    for (const edge of graph.edges) {
      const from = index.get(edge.source);
      const to = index.get(edge.target);
      if (from === undefined || to === undefined || from >= to) continue;
      if (layer[to] < layer[from] + 1) {
        layer[to] = layer[from] + 1;
        moved = true;
      }
    }
    if (!moved) break;
  }
  return layer;
}

function caption(node) {
  const parts = [node.kind];
  if (node.tasks && node.tasks.length) parts.push(`${node.tasks.length} tasks`);
  if (node.target_workflow_type) parts.push(`→ ${node.target_workflow_type}`);
  if (node.body) parts.push(`${node.body.nodes.length} steps inside`);
  return parts.join(" · ");
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The SVG of `graph`; `states`: optional step name -> {state, current, duration_ms}. */
export function drawGraph(graph, states = null, attrs = {}) {
  const layer = layers(graph);
  const perLayer = new Map();
  const position = new Map();
  graph.nodes.forEach((node, i) => {
    const column = perLayer.get(layer[i]) || 0;
    perLayer.set(layer[i], column + 1);
    position.set(node.name, { x: PAD + column * COL, y: PAD + layer[i] * ROW, row: layer[i] });
  });
  const rows = Math.max(0, ...layer) + 1;
  const columns = Math.max(1, ...perLayer.values());
  const endY = PAD + rows * ROW;
  position.set("END", { x: PAD + BOX_W / 2 - 10, y: endY, row: rows, end: true });

  const curves = [];
  const arrows = [];
  let lanes = 0;
  for (const edge of graph.edges) {
    const from = position.get(edge.source);
    const to = position.get(edge.target);
    if (!from || !to) continue;
    const straight = to.row === from.row + 1 && (to.end ? from.x === PAD : to.x === from.x);
    if (straight) {
      const x = from.x + BOX_W / 2;
      const d = `M${x},${from.y + BOX_H} L${x},${to.y - 2}`;
      arrows.push({ edge, d, labelX: x + 6, labelY: from.y + BOX_H + (ROW - BOX_H) / 2 + 4 });
    } else {
      lanes += 1;
      const out = PAD + columns * COL - (COL - BOX_W) + lanes * LANE;
      const x1 = from.x + BOX_W;
      const y1 = from.y + BOX_H / 2;
      const x2 = to.end ? to.x + 19 : to.x + BOX_W;
      const y2 = to.end ? to.y + 10 : to.y + BOX_H / 2;
      curves.push({
        edge,
        lane: out,
        d: `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2 + 4},${y2}`,
        labelX: x1 + 6,
        labelY: y1 - 6,
      });
    }
  }
  const width = PAD * 2 + columns * COL - (COL - BOX_W) + (lanes + 1) * LANE + 150;
  const height = endY + 40;

  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: "graph",
    role: "group",
    ...attrs,
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "marker",
        {
          id: "arrow",
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: "auto-start-reverse",
        },
        s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }),
      ),
    ),
  );
  for (const { edge, d, labelX, labelY } of arrows) {
    svg.append(s("path", { d, class: `edge edge-${edge.kind}`, "marker-end": "url(#arrow)" }));
    if (edge.label) {
      svg.append(s("text", { x: labelX, y: labelY, class: "edge-label" }, clip(edge.label, 28)));
    }
  }
  for (const { edge, d, labelX, labelY } of curves) {
    const path = s("path", { d, class: `edge edge-${edge.kind}`, "marker-end": "url(#arrow)" });
    path.append(
      s("title", {}, `${edge.source} → ${edge.target}${edge.label ? `: ${edge.label}` : ""}`),
    );
    svg.append(path);
    if (edge.label) {
      svg.append(s("text", { x: labelX, y: labelY, class: "edge-label" }, clip(edge.label, 28)));
    }
  }
  for (const node of graph.nodes) {
    const { x, y } = position.get(node.name);
    const info = states ? states.get(node.name) : null;
    const state = info ? info.state : null;
    const title = [`${node.name} (${node.kind})`];
    if (node.function) title.push(node.function);
    if (node.description) title.push(node.description);
    if (node.tasks && node.tasks.length) {
      title.push(`tasks: ${node.tasks.map((task) => task.name).join(", ")}`);
    }
    if (state) title.push(`state: ${STATE_LABELS[state] || state}`);
    if (info && info.duration_ms !== null && info.duration_ms !== undefined) {
      title.push(`last run: ${duration(info.duration_ms)}`);
    }
    const group = s(
      "g",
      {
        class: [
          "node",
          state ? `state-${state}` : "state-none",
          info && info.current ? "current" : "",
        ],
        "data-step": node.name,
        "data-state": state || undefined,
        tabindex: 0,
        "aria-label": `${node.name}, ${node.kind}${state ? `, ${STATE_LABELS[state] || state}` : ""}`,
        transform: `translate(${x},${y})`,
      },
      s("title", {}, title.join("\n")),
      s("rect", { width: BOX_W, height: BOX_H, rx: 8 }),
      s("text", { x: 12, y: 19, class: "node-name" }, clip(node.name, 27)),
      s("text", { x: 12, y: 36, class: "node-kind" }, clip(caption(node), state ? 22 : 32)),
    );
    if (state) {
      group.append(
        s(
          "text",
          { x: BOX_W - 10, y: 36, class: "node-state", "text-anchor": "end" },
          STATE_LABELS[state] || state,
        ),
      );
    }
    svg.append(group);
  }
  const end = position.get("END");
  svg.append(
    s(
      "g",
      { class: "end", transform: `translate(${end.x},${end.y})` },
      s("circle", { cx: 10, cy: 10, r: 9 }),
      s("text", { x: -6, y: 14, "text-anchor": "end" }, "END"),
    ),
  );
  return svg;
}

/** The colours' legend. */
export function legend() {
  return h(
    "ul",
    { class: "legend", "aria-label": "Step states" },
    Object.entries(STATE_LABELS).map(([state, label]) =>
      h("li", {}, h("span", { class: `swatch swatch-${state}`, "aria-hidden": "true" }), label),
    ),
  );
}
