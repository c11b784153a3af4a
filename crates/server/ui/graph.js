// The pivot graph: the sample, its indicators and the samples sharing them. Zoom (wheel or
// buttons), pan (drag the background), drag a node, expand a node to its neighbours (click or
// Enter; an indicator expands to the samples its search finds), filter by node type, a legend, and downloads as `sandscope graph` writes
// them (the server's own exporter). Expanded nodes and hidden types are part of the URL.

import { api, download } from "./api.js";
import { el, svg, clear, show, errorBox, shortText } from "./dom.js";
import { href, remember } from "./router.js";
import { schema } from "./schema.js";
import { pivot, pivotQuery } from "./pivot.js";

/** Samples an indicator node expands to (its search's first page). */
const INDICATOR_FANOUT = 20;

function layout(nodes, edges, iterations) {
  // Fruchterman-Reingold relaxation so new nodes settle without overlapping; pinned nodes
  // (the root, dragged ones) stay put.
  const all = [...nodes.values()];
  const ideal = 120;
  const index = new Map(all.map((n, i) => [n.id, i]));
  for (let it = 0; it < iterations; it++) {
    const temperature = 40 * (1 - it / iterations) + 1;
    const force = all.map(() => [0, 0]);
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        let dx = all[i].x - all[j].x;
        let dy = all[i].y - all[j].y;
        let d2 = dx * dx + dy * dy;
        if (d2 < 0.01) { dx = (i - j) * 0.1; dy = 0.1; d2 = dx * dx + dy * dy; }
        if (d2 > 360000) continue;
        const push = (ideal * ideal) / d2;
        force[i][0] += dx * push; force[i][1] += dy * push;
        force[j][0] -= dx * push; force[j][1] -= dy * push;
      }
    }
    for (const e of edges.values()) {
      const i = index.get(e.source);
      const j = index.get(e.target);
      const dx = all[i].x - all[j].x;
      const dy = all[i].y - all[j].y;
      const pull = Math.sqrt(dx * dx + dy * dy) / ideal;
      force[i][0] -= dx * pull; force[i][1] -= dy * pull;
      force[j][0] += dx * pull; force[j][1] += dy * pull;
    }
    all.forEach((n, i) => {
      if (n.pinned) return;
      const [fx, fy] = force[i];
      const len = Math.sqrt(fx * fx + fy * fy) || 1;
      const step = Math.min(len, temperature);
      n.x += (fx / len) * step;
      n.y += (fy / len) * step;
    });
  }
}

export async function graphPage(sha256, params) {
  const nodes = new Map();
  const edges = new Map();
  const hidden = new Set((params.get("hide") || "").split(",").filter(Boolean));
  const view = { x: -600, y: -400, w: 1200, h: 800 };
  const canvas = svg("svg", { class: "graph", id: "graph", role: "group", "aria-label": "pivot graph", tabindex: "0" });
  const scene = svg("g", {});
  canvas.appendChild(scene);
  const stats = el("p", { class: "muted", id: "graph-stats", "aria-live": "polite" });
  const side = el("div", { class: "side", id: "graph-side" }, el("p", { class: "muted" },
    "Click a node to expand it: a sample to its indicators and the samples sharing them, an indicator to the samples a search for it finds. Drag nodes or the background; the wheel zooms."));
  const status = el("div", {});
  const filters = el("fieldset", { class: "graph-filters", id: "graph-filters" }, el("legend", {}, "Node types"));
  const tables = await schema().catch(() => null);

  const setView = () => canvas.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  const zoom = (factor, cx, cy) => {
    const x = cx === undefined ? view.x + view.w / 2 : cx;
    const y = cy === undefined ? view.y + view.h / 2 : cy;
    view.x = x - (x - view.x) * factor; view.y = y - (y - view.y) * factor;
    view.w *= factor; view.h *= factor;
    setView();
  };
  const fit = () => {
    const shown = [...nodes.values()].filter((n) => !hidden.has(n.kind));
    if (!shown.length) return;
    const xs = shown.map((n) => n.x);
    const ys = shown.map((n) => n.y);
    const pad = 120;
    view.x = Math.min(...xs) - pad; view.y = Math.min(...ys) - pad;
    view.w = Math.max(...xs) - view.x + pad; view.h = Math.max(...ys) - view.y + pad;
    setView();
  };
  const button = (label, id, action) => {
    const b = el("button", { type: "button", id }, label);
    b.addEventListener("click", action);
    return b;
  };
  const toolbar = el("div", { class: "graph-tools" },
    button("Zoom in", "zoom-in", () => zoom(0.8)), button("Zoom out", "zoom-out", () => zoom(1.25)), button("Fit", "zoom-fit", fit),
    " Download: ", ["json", "dot", "graphml"].map((format) => button(format === "graphml" ? "GraphML" : format.toUpperCase(), `graph-export-${format}`,
      () => download(`/sandscope/graph/${encodeURIComponent(sha256)}/export/${format}`, `${sha256}.graph.${format}`)
        .catch((e) => { clear(status); status.append(errorBox(e)); }))));
  const legend = el("ul", { class: "legend", id: "graph-legend", "aria-label": "legend" });
  show(el("h1", {}, "Pivot graph"), el("p", {}, "Around ", el("a", { class: "sha", href: href("sample", sha256) }, sha256)),
    status, toolbar, stats, el("div", { class: "graph-wrap" }, canvas, el("div", { class: "side-col" }, filters, legend, side)));

  // Pan and zoom.
  const toScene = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [view.x + ((event.clientX - rect.left) / rect.width) * view.w, view.y + ((event.clientY - rect.top) / rect.height) * view.h];
  };
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x, y] = toScene(event);
    zoom(event.deltaY > 0 ? 1.15 : 0.87, x, y);
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    const g = event.target.closest("g.node");
    const [x, y] = toScene(event);
    drag = { node: g ? nodes.get(g.dataset.id) : null, x, y, moved: false };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const [x, y] = toScene(event);
    const dx = x - drag.x;
    const dy = y - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
    if (!drag.moved) return;
    if (drag.node) {
      drag.node.x += dx; drag.node.y += dy; drag.node.pinned = true;
      drag.x = x; drag.y = y;
      draw(false);
    } else {
      view.x -= dx; view.y -= dy;
      setView();
    }
  });
  canvas.addEventListener("pointerup", (event) => {
    const wasClick = drag && !drag.moved;
    const node = drag && drag.node;
    drag = null;
    if (wasClick && node) activate(node);
    else if (wasClick) {
      const g = event.target.closest("g.node");
      if (g) activate(nodes.get(g.dataset.id));
    }
  });
  canvas.addEventListener("keydown", (event) => {
    const g = event.target.closest("g.node");
    if (g && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); activate(nodes.get(g.dataset.id)); }
    else if (event.key === "+" || event.key === "=") zoom(0.8);
    else if (event.key === "-") zoom(1.25);
  });

  function activate(node) {
    if (!node) return;
    select(node);
    expand(node);
  }

  /** An indicator's neighbours: the samples a search for it finds (as a pivot link would). */
  async function indicatorNeighbours(node) {
    const query = tables && pivotQuery(tables.modifierByName.get("behaviour"), node.label);
    if (!query) return { nodes: [], edges: [] };
    const body = await api("/intelligence/search", { query, limit: String(INDICATOR_FANOUT) });
    const hits = (body.data || []).map((item) => String(item.id));
    return {
      nodes: hits.map((sha) => ({ id: "sample:" + sha, kind: "sample", label: sha, sha256: sha })),
      edges: hits.map((sha) => ({ source: node.id, target: "sample:" + sha, relation: "found_by_search" })),
    };
  }

  /** A node's neighbours: a sample's own graph, an indicator's search. */
  async function neighbours(node) {
    return node.sha256 ? (await api(`/sandscope/graph/${encodeURIComponent(node.sha256)}`)).data
      : indicatorNeighbours(node);
  }

  function expansionFailed(node, error) {
    node.expanded = false;
    clear(status);
    status.appendChild(errorBox(error));
  }

  function rememberExpanded() {
    const expanded = [...nodes.values()].filter((n) => n.expanded && n.depth > 0 && n.sha256).map((n) => n.sha256);
    remember({ expanded: expanded.join(",") });
  }

  async function expand(node) {
    if (node.expanded) return;
    node.expanded = true;
    let data;
    try {
      data = await neighbours(node);
    } catch (error) {
      expansionFailed(node, error);
      return;
    }
    merge(node, data);
    rememberExpanded();
    draw(true);
  }

  /**
   * Re-open the samples a shared link expanded: wave by wave (a node may appear only once an
   * earlier one is expanded), each wave's graphs fetched at once, laid out and drawn once.
   */
  async function reopen(shas) {
    const pending = new Set(shas);
    for (;;) {
      const wave = [...pending].map((sha) => nodes.get("sample:" + sha)).filter((n) => n && !n.expanded);
      if (!wave.length) break;
      for (const node of wave) { node.expanded = true; pending.delete(node.sha256); }
      const results = await Promise.allSettled(wave.map(neighbours));
      results.forEach((r, i) => {
        if (r.status === "fulfilled") merge(wave[i], r.value); else expansionFailed(wave[i], r.reason);
      });
    }
    rememberExpanded();
    draw(true);
  }

  /** Add a node's neighbours around it. */
  function merge(node, data) {
    const fresh = (data.nodes || []).filter((n) => !nodes.has(String(n.id)));
    fresh.forEach((n, i) => {
      const angle = (2 * Math.PI * i) / Math.max(fresh.length, 1) + node.depth * 0.5;
      const radius = node.depth === 0 ? 260 : 150;
      nodes.set(String(n.id), { id: String(n.id), kind: String(n.kind), label: String(n.label),
        sha256: n.sha256 ? String(n.sha256) : null, expanded: false, depth: node.depth + 1,
        x: node.x + radius * Math.cos(angle), y: node.y + radius * Math.sin(angle) });
    });
    for (const e of data.edges || []) {
      const key = [String(e.source), String(e.target)].sort().join("|");
      if (nodes.has(String(e.source)) && nodes.has(String(e.target))) {
        edges.set(key, { source: String(e.source), target: String(e.target), relation: String(e.relation) });
      }
    }
  }

  function select(node) {
    clear(side);
    side.append(el("h3", {}, node.kind), el("p", {}, el("code", {}, node.label)));
    if (node.sha256) {
      side.appendChild(el("p", {}, el("a", { href: href("sample", node.sha256) }, "Open sample")));
    } else if (tables) {
      // An indicator node may come from several attributes: it pivots on all behaviour text.
      const modifier = tables.modifierByName.get("behaviour");
      side.appendChild(el("p", {}, "Search samples with this: ", pivot(modifier, node.label)));
    }
    for (const g of scene.querySelectorAll("g.node")) g.classList.toggle("selected", g.dataset.id === node.id);
  }

  function drawFilters() {
    const kinds = [...new Set([...nodes.values()].map((n) => n.kind))].sort();
    clear(legend);
    for (const kind of kinds) {
      const n = [...nodes.values()].filter((x) => x.kind === kind).length;
      legend.append(el("li", {}, svg("svg", { width: 14, height: 14, class: `swatch kind-${kind.replace(/[^a-z]/g, "")}`, "aria-hidden": "true" },
        svg("circle", { cx: 7, cy: 7, r: 6 })), ` ${kind} (${n})`));
    }
    for (const kind of kinds) {
      if (filters.querySelector(`input[value="${kind.replace(/[^a-z]/g, "")}"]`)) continue;
      const id = `filter-${kind.replace(/[^a-z]/g, "")}`;
      const box = el("input", { type: "checkbox", id, value: kind.replace(/[^a-z]/g, ""), checked: hidden.has(kind) ? undefined : "" });
      box.addEventListener("change", () => {
        if (box.checked) hidden.delete(kind); else hidden.add(kind);
        remember({ hide: [...hidden].join(",") });
        draw(false);
      });
      filters.append(el("label", { for: id }, box, ` ${kind}`));
    }
  }

  function draw(relayout) {
    if (relayout) layout(nodes, edges, nodes.size > 300 ? 60 : 120);
    clear(scene);
    const visible = (n) => n && !hidden.has(n.kind);
    for (const e of edges.values()) {
      const a = nodes.get(e.source);
      const b = nodes.get(e.target);
      if (!visible(a) || !visible(b)) continue;
      scene.appendChild(svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y }, svg("title", {}, e.relation)));
    }
    for (const n of nodes.values()) {
      if (!visible(n)) continue;
      const classes = ["node", "kind-" + n.kind.replace(/[^a-z]/g, "")];
      if (n.expanded) classes.push("expanded");
      // The accessible name starts with the visible (shortened) label, then says the kind.
      const shown = shortText(n.label, n.kind === "sample" ? 16 : 36);
      const g = svg("g", { class: classes.join(" "), "data-id": n.id, "data-kind": n.kind, "data-expanded": n.expanded ? "true" : "false",
        tabindex: "0", role: "button", "aria-label": `${shown} (${n.kind})` },
        svg("circle", { cx: n.x, cy: n.y, r: n.kind === "sample" ? 11 : 8 }),
        svg("text", { x: n.x + 13, y: n.y + 4 }, shown),
        svg("title", {}, `${n.kind}: ${n.label}`));
      scene.appendChild(g);
    }
    const shown = scene.querySelectorAll("g.node").length;
    stats.textContent = `${nodes.size} nodes (${shown} shown), ${edges.size} edges`;
    drawFilters();
    if (relayout) fit();
  }

  const root = { id: "sample:" + sha256, kind: "sample", label: sha256, sha256, expanded: false, depth: 0, x: 0, y: 0, pinned: true };
  nodes.set(root.id, root);
  setView();
  await expand(root);
  const shared = (params.get("expanded") || "").split(",").filter(Boolean);
  if (shared.length) await reopen(shared);
}
