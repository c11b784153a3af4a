// Text-only DOM helpers. Every value shown comes from attacker-written logs, so elements are
// built with createElement and text nodes only: nothing here parses HTML.

/** el("a", {href: "#/x", class: "c"}, "text", child…): attributes by setAttribute, text by text nodes. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** The same for SVG elements. */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(typeof child === "string" || typeof child === "number"
      ? document.createTextNode(String(child)) : child);
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

const main = () => document.getElementById("main");

/** Replace the page's content. */
export function show(...children) {
  const target = main();
  clear(target);
  append(target, children);
}

export function shortText(text, max) {
  const s = String(text);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** A Unix time (seconds) as an ISO date-time, or "" when absent. */
export function isoTime(seconds) {
  if (seconds === undefined || seconds === null || !Number.isFinite(Number(seconds))) return "";
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * A search's `total_hits` as text: exact counts as they are; a lower bound (relation "gte",
 * the store stopped counting) rounded down to two significant digits with a "+" ("10,000+"
 * for 10,020), since the digits past where counting stopped carry no information.
 */
export function hitsText(total, atLeast) {
  const n = Math.max(0, Math.floor(Number(total) || 0));
  if (!atLeast) return n.toLocaleString("en-US");
  const unit = n >= 100 ? 10 ** (String(n).length - 2) : 1;
  return (Math.floor(n / unit) * unit).toLocaleString("en-US") + "+";
}

/** One value as text: lists joined, absent as nothing. */
export function cellText(value) {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.map(cellText).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export const LEVELS = ["critical", "high", "medium", "low", "informational"];

/** A Sigma level as a coloured badge (unknown levels plain). */
export function levelBadge(level, text) {
  const l = String(level || "").toLowerCase();
  return el("span", { class: LEVELS.includes(l) ? `badge level-${l}` : "badge" }, text === undefined ? String(level || "") : text);
}

/** An error as an alert box; with the query, a caret under the column the server named. */
export function errorBox(error, queryText) {
  const box = el("div", { class: "error", role: "alert" },
    el("strong", {}, error.code || "Error"), ": ", error.message || String(error));
  if (error.status === 401) {
    box.appendChild(el("div", {}, "Enter an API key at the top right."));
  }
  if (queryText && Number.isInteger(error.column) && error.column > 0) {
    const at = Math.min(error.column - 1, queryText.length);
    box.appendChild(el("pre", { class: "query-caret" }, queryText + "\n" + " ".repeat(at) + "^"));
    box.appendChild(el("div", { class: "muted" }, `at column ${error.column}`));
  }
  return box;
}

/**
 * Render `items` into `container` a chunk at a time: the first `chunk` now, the rest behind a
 * button that says how many are not shown yet (nothing is dropped silently).
 */
export function chunked(container, items, render, chunk, noun) {
  let shown = 0;
  const more = el("button", { type: "button", class: "more" });
  const note = el("p", { class: "truncated muted" }, more);
  function next(count) {
    const end = Math.min(items.length, shown + count);
    const fragment = document.createDocumentFragment();
    for (; shown < end; shown++) fragment.appendChild(render(items[shown], shown));
    container.appendChild(fragment);
    const rest = items.length - shown;
    if (rest > 0) {
      more.textContent = `Show ${Math.min(rest, chunk).toLocaleString("en-US")} more (${shown.toLocaleString("en-US")} of ${items.length.toLocaleString("en-US")} ${noun || "items"} shown)`;
      if (!note.isConnected) container.after(note);
    } else {
      note.remove();
    }
  }
  more.addEventListener("click", () => next(chunk));
  next(chunk);
  return note;
}
