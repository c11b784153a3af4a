// Every value is a pivot: a link to the search for it, with the attribute's modifier and the
// value escaped as the query parser reads it, and a copy button. Hovering or focusing a link
// asks the store how many samples share the value (one search, limit 1, cached).
//
// The parser (crates/query/src/parse.rs): in a "…" value `\"` and `\\` are escapes; a value
// whose decoded text is itself wrapped in quotes is an exact, anchored phrase. So a text
// value becomes `name:"\"<escaped>\""`. A token value (ids, tags) is `name:"<escaped>"`.

import { api } from "./api.js";
import { el, hitsText } from "./dom.js";
import { searchHref } from "./router.js";

// The parser's limits on one text value (MAX_VALUE_WORDS, MAX_WILDCARDS): past them a pivot
// searches a prefix of the value rather than fail.
const MAX_WORDS = 60;
const MAX_WILDCARDS = 16;

function escapeQuoted(text) {
  return text.replace(/\\/g, "\\\\").replace(/"/g, "\\\"");
}

/** The query that finds the samples with `value` under `modifier` (a schema modifier), or null. */
export function pivotQuery(modifier, value) {
  const text = String(value).trim();
  if (!/[\p{L}\p{N}]/u.test(text)) return null;
  if (modifier.kind === "token") return `${modifier.name}:"${escapeQuoted(text)}"`;
  if (modifier.kind !== "text") return null;
  const words = [...text.matchAll(/[\p{L}\p{N}]+/gu)];
  const wildcards = (text.match(/\*/g) || []).length;
  if (words.length <= MAX_WORDS && wildcards <= MAX_WILDCARDS) {
    return `${modifier.name}:"\\"${escapeQuoted(text)}\\""`;
  }
  // Too long for one phrase: its first words, unanchored at the end, wildcards as spaces.
  const last = words[Math.min(words.length, MAX_WORDS) - 1];
  const prefix = text.slice(0, last.index + last[0].length).replace(/\*/g, " ");
  return `${modifier.name}:"\\"${escapeQuoted(prefix)}"`;
}

/** A copy-to-clipboard button for `text`. */
export function copyButton(text, label) {
  const button = el("button", { type: "button", class: "copy", title: "Copy", "aria-label": `Copy ${label || "value"}` }, "copy");
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    event.stopPropagation();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "copied";
    } catch (_) {
      button.textContent = "copy failed";
    }
    setTimeout(() => { button.textContent = "copy"; }, 1200);
  });
  return button;
}

const counts = new Map();

/** How many samples the query finds ("3 samples", "10,000+ samples"), asked once per query. */
function sampleCount(query) {
  if (!counts.has(query)) {
    counts.set(query, api("/intelligence/search", { query, limit: "1" }).then((body) => {
      const meta = body.meta || {};
      const total = Number(meta.total_hits) || 0;
      const atLeast = meta.total_hits_relation === "gte";
      return `${hitsText(total, atLeast)} sample${total === 1 && !atLeast ? "" : "s"}`;
    }, (error) => { counts.delete(query); throw error; }));
  }
  return counts.get(query);
}

function showCountOnInterest(link, query) {
  let timer = null;
  const ask = () => {
    if (link.dataset.counted) return;
    timer = setTimeout(() => {
      link.dataset.counted = "true";
      sampleCount(query).then((text) => {
        link.after(el("span", { class: "count muted", title: "samples sharing this value" }, ` ${text}`));
      }, () => { delete link.dataset.counted; });
    }, 200);
  };
  link.addEventListener("pointerenter", ask);
  link.addEventListener("focus", ask);
  link.addEventListener("pointerleave", () => clearTimeout(timer));
}

/** `value` as a pivot link (when it can be searched) with a copy button. */
export function pivot(modifier, value, shown) {
  const text = String(value);
  const query = modifier ? pivotQuery(modifier, text) : null;
  const content = shown === undefined ? text : shown;
  const link = query
    ? el("a", { class: "pivot", href: searchHref(query), title: query, "data-query": query }, content)
    : el("span", {}, content);
  if (query) showCountOnInterest(link, query);
  return el("span", { class: "value" }, link, copyButton(text));
}
