// The process tree, collapsible and rendered lazily: a node's children are built when it is
// first opened, a chunk at a time, so a report with tens of thousands of processes shows its
// first screen at once. Keyboard: the summaries are focusable; Enter/Space toggles (native
// <details>), arrows move between visible nodes, Left closes, Right opens.

import { el, chunked } from "./dom.js";
import { pivot } from "./pivot.js";

const CHUNK = 200;
const OPEN_DEPTH = 2;
const MAX_DEPTH = 256;

function count(nodes, depth) {
  if (!Array.isArray(nodes) || depth > MAX_DEPTH) return 0;
  let n = nodes.length;
  for (const node of nodes) n += count(node && node.children, depth + 1);
  return n;
}

function nodeItem(node, depth, modifier) {
  const n = node || {};
  const label = [
    el("span", { class: "pid" }, "[" + String(n.process_id || "?") + "]"),
    el("span", { class: "cmd" }, pivot(modifier, String(n.name || ""))),
    Number.isFinite(Number(n.time_offset)) && n.time_offset !== undefined
      ? el("span", { class: "muted offset" }, ` +${n.time_offset}s`) : null,
  ];
  const children = Array.isArray(n.children) ? n.children : [];
  if (!children.length || depth >= MAX_DEPTH) return el("li", { role: "treeitem" }, el("div", { class: "leaf", tabindex: "-1" }, label));
  const details = el("details", {}, el("summary", {}, label,
    el("span", { class: "muted" }, ` (${children.length.toLocaleString("en-US")} child${children.length === 1 ? "" : "ren"})`)));
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    const list = el("ul", { role: "group" });
    details.appendChild(list);
    chunked(list, children, (child) => nodeItem(child, depth + 1, modifier), CHUNK, "child processes");
  };
  details.addEventListener("toggle", () => { if (details.open) build(); });
  if (depth < OPEN_DEPTH) { build(); details.open = true; }
  return el("li", { role: "treeitem" }, details);
}

/** Visible focusable rows of the tree, in document order. */
function rows(tree) {
  return [...tree.querySelectorAll("summary, .leaf")].filter((r) => r.offsetParent !== null);
}

function keyboard(tree) {
  tree.addEventListener("keydown", (event) => {
    const row = event.target.closest("summary, .leaf");
    if (!row) return;
    const all = rows(tree);
    const at = all.indexOf(row);
    let target = null;
    if (event.key === "ArrowDown") target = all[at + 1];
    else if (event.key === "ArrowUp") target = all[at - 1];
    else if (event.key === "ArrowRight" && row.tagName === "SUMMARY" && !row.parentElement.open) row.parentElement.open = true;
    else if (event.key === "ArrowLeft" && row.tagName === "SUMMARY" && row.parentElement.open) row.parentElement.open = false;
    else return;
    event.preventDefault();
    if (target) {
      row.setAttribute("tabindex", "-1");
      target.setAttribute("tabindex", "0");
      target.focus();
    }
  });
}

/** The tree of `nodes` (process nodes with children), or null when empty. */
export function processTree(nodes, modifier) {
  if (!Array.isArray(nodes) || !nodes.length) return null;
  const total = count(nodes, 0);
  const tree = el("ul", { class: "tree process-tree", role: "tree", "aria-label": "process tree" });
  const wrap = el("div", {}, el("p", { class: "muted tree-count" }, `${total.toLocaleString("en-US")} processes`), tree);
  chunked(tree, nodes, (node) => nodeItem(node, 0, modifier), CHUNK, "root processes");
  const first = tree.querySelector("summary, .leaf");
  if (first) first.setAttribute("tabindex", "0");
  keyboard(tree);
  return wrap;
}
