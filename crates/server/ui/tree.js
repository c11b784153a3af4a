// The process tree, collapsible and rendered lazily: a node's children are built when it is
// first opened, a chunk at a time, so a report with tens of thousands of processes shows its
// first screen at once and says how much is not drawn yet. Each node with children has a
// toggle button (aria-expanded); the command line beside it is a pivot link, so no control
// nests in another. Keyboard: Up/Down move between toggles, Left closes, Right opens.

import { el, chunked } from "./dom.js";
import { pivot } from "./pivot.js";

const CHUNK = 100;
/** Levels open at first: the roots show their children, nothing deeper is built. */
const OPEN_DEPTH = 1;
const MAX_DEPTH = 256;

function count(nodes, depth) {
  if (!Array.isArray(nodes) || depth > MAX_DEPTH) return 0;
  let n = nodes.length;
  for (const node of nodes) n += count(node && node.children, depth + 1);
  return n;
}

function setOpen(item, open) {
  const toggle = item.querySelector(":scope > .row > .toggle");
  if (!toggle) return;
  if (open && !item.dataset.built) item.build();
  const group = item.querySelector(":scope > ul");
  if (group) group.hidden = !open;
  toggle.setAttribute("aria-expanded", String(open));
  toggle.textContent = open ? "▾" : "▸";
}

function nodeItem(node, depth, modifier) {
  const n = node || {};
  const children = Array.isArray(n.children) && depth < MAX_DEPTH ? n.children : [];
  const name = String(n.name || "");
  const pid = String(n.process_id || "?");
  const toggle = children.length
    ? el("button", { type: "button", class: "toggle", "aria-expanded": "false", "aria-label": `children of process ${pid}` }, "▸")
    : el("span", { class: "toggle-space", "aria-hidden": "true" });
  const row = el("div", { class: "row" }, toggle,
    el("span", { class: "pid" }, `[${pid}]`),
    el("span", { class: "cmd" }, pivot(modifier, name)),
    n.time_offset !== undefined && Number.isFinite(Number(n.time_offset)) ? el("span", { class: "muted offset" }, ` +${n.time_offset}s`) : null,
    children.length ? el("span", { class: "muted" }, ` (${children.length.toLocaleString("en-US")} child${children.length === 1 ? "" : "ren"})`) : null);
  const item = el("li", {}, row);
  if (!children.length) return item;
  item.build = () => {
    item.dataset.built = "true";
    const group = el("ul", {});
    item.appendChild(group);
    chunked(group, children, (child) => nodeItem(child, depth + 1, modifier), CHUNK, "child processes");
  };
  toggle.addEventListener("click", () => setOpen(item, toggle.getAttribute("aria-expanded") !== "true"));
  if (depth < OPEN_DEPTH) setOpen(item, true);
  return item;
}

function keyboard(tree) {
  tree.addEventListener("keydown", (event) => {
    const toggle = event.target.closest(".toggle");
    if (!toggle) return;
    const item = toggle.closest("li");
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      setOpen(item, event.key === "ArrowRight");
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    const all = [...tree.querySelectorAll(".toggle")].filter((t) => t.offsetParent !== null);
    const next = all[all.indexOf(toggle) + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) next.focus();
  });
}

/** The tree of `nodes` (process nodes with children), or null when empty. */
export function processTree(nodes, modifier) {
  if (!Array.isArray(nodes) || !nodes.length) return null;
  const total = count(nodes, 0);
  const tree = el("ul", { class: "tree process-tree", "aria-label": "process tree" });
  const wrap = el("div", {}, el("p", { class: "muted tree-count" }, `${total.toLocaleString("en-US")} processes`), tree);
  chunked(tree, nodes, (node) => nodeItem(node, 0, modifier), CHUNK, "root processes");
  keyboard(tree);
  return wrap;
}
