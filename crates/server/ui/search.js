// The search page: the query box, the modifier help generated from the query crate's table,
// and each matching sample with where it matched (attribute labels from the schema), its
// dates, sandboxes, Sigma badges and tags; sorting by the orders the API allows.

import { api } from "./api.js";
import { el, clear, show, errorBox, shortText, isoTime, levelBadge, hitsText } from "./dom.js";
import { href, searchHref } from "./router.js";
import { schema, pivotModifier } from "./schema.js";
import { pivotQuery } from "./pivot.js";
import { queryRulesetHref } from "./rulesets.js";

const PAGE_SIZE = "20";

/** The query help: every modifier the parser accepts, with its other names, kind and example. */
function modifierHelp(list, modifiers) {
  clear(list);
  for (const m of modifiers) {
    const names = m.written ? [m.name].concat(m.aliases || []).map((n) => n + ":").join("  ") : m.name;
    const example = el("a", { href: searchHref(String(m.example)) }, el("code", {}, String(m.example)));
    list.append(el("dt", {}, names), el("dd", {}, String(m.help), " (", String(m.kind), ") — e.g. ", example));
  }
}

/** Mark the first occurrence of any literal of the query in the value (text nodes only). */
function highlight(value, query) {
  const literals = [];
  const re = /(?:[a-z_]+:)?("((?:[^"\\]|\\.)*)"|[^\s()]+)/gi;
  let m;
  while ((m = re.exec(query)) !== null) {
    let lit = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[1];
    lit = lit.replace(/^"|"$/g, "").replace(/^@/, "");
    if (lit && !/^(and|or|not)$/i.test(lit)) literals.push(lit.toLowerCase());
  }
  const lower = value.toLowerCase();
  for (const lit of literals) {
    const at = lower.indexOf(lit);
    if (at >= 0) {
      return [value.slice(0, at), el("mark", {}, value.slice(at, at + lit.length)), value.slice(at + lit.length)];
    }
  }
  return [value];
}

/** Every text value of a report attribute (records: every column), for locating a snippet. */
function attributeTexts(value, out, depth) {
  if (depth > 300 || value === undefined || value === null) return;
  if (Array.isArray(value)) { for (const v of value) attributeTexts(v, out, depth + 1); return; }
  if (typeof value === "object") { for (const v of Object.values(value)) attributeTexts(v, out, depth + 1); return; }
  out.push(String(value).toLowerCase());
}

/** The labels of the attributes of `summary` that hold `snippet`, in table order. */
function whereMatched(tables, summary, snippet) {
  const wanted = String(snippet).toLowerCase();
  const labels = [];
  for (const attribute of tables.attributes) {
    if (attribute.section === "bookkeeping" || summary[attribute.name] === undefined) continue;
    const texts = [];
    attributeTexts(summary[attribute.name], texts, 0);
    if (texts.includes(wanted)) labels.push(attribute.label);
  }
  return labels;
}

/** Label each snippet with where it matched, once the sample's summary is in. */
async function labelSnippets(sha256, rows) {
  try {
    const [tables, body] = await Promise.all([schema(), api(`/files/${encodeURIComponent(sha256)}/behaviour_summary`)]);
    for (const { field, value } of rows) {
      const labels = whereMatched(tables, body.data || {}, value);
      if (labels.length) field.textContent = labels.join(", ");
    }
  } catch (_) { /* the generic label stays */ }
}

function sigmaBadges(stats) {
  if (!stats) return null;
  const badges = ["critical", "high", "medium", "low"].filter((l) => Number(stats[l]) > 0)
    .map((l) => levelBadge(l, `${stats[l]} ${l}`));
  return badges.length ? el("span", { class: "badges", title: "Sigma rules matched" }, "Sigma: ", badges) : null;
}

/** A tag as a link to the samples with it (the tags attribute's own modifier). */
function tagLink(tables, tag) {
  const q = tables ? pivotQuery(pivotModifier(tables, tables.attributeByName.get("tags"), true), tag) : null;
  return q ? el("a", { class: "tag", href: searchHref(q) }, tag) : el("span", { class: "tag" }, tag);
}

function resultItem(tables, item, query) {
  const sha256 = String(item.id);
  const attrs = item.attributes || {};
  const snippets = (item.context_attributes && item.context_attributes.snippets) || [];
  const rows = snippets.slice(0, 5).map((s) => ({
    field: el("span", { class: "field" }, String(s.field)),
    value: String(s.value),
  }));
  const facts = el("div", { class: "facts" },
    attrs.first_submission_date ? el("span", {}, "first seen ", el("time", {}, isoTime(attrs.first_submission_date))) : null,
    attrs.last_submission_date ? el("span", {}, "last seen ", el("time", {}, isoTime(attrs.last_submission_date))) : null,
    Array.isArray(attrs.sandboxes) && attrs.sandboxes.length ? el("span", { class: "sandboxes" }, attrs.sandboxes.map(String).join(", ")) : null,
    sigmaBadges(attrs.sigma_analysis_stats),
    Array.isArray(attrs.tags) && attrs.tags.length
      ? el("span", { class: "tags" }, attrs.tags.map((t) => tagLink(tables, String(t))))
      : null);
  const li = el("li", { class: "result" },
    el("a", { class: "sha", href: href("sample", sha256) }, sha256), facts,
    rows.map((r) => el("div", { class: "snippet" }, r.field, highlight(shortText(r.value, 300), query))));
  if (rows.length) labelSnippets(sha256, rows);
  return li;
}

function totalText(meta, page) {
  const total = Number(meta && meta.total_hits) || 0;
  const atLeast = meta && meta.total_hits_relation === "gte";
  const count = hitsText(total, atLeast);
  return `${count} matching sample${total === 1 && !atLeast ? "" : "s"} — page ${page}`;
}

export async function searchPage(params) {
  const q = params.get("q") || "";
  const order = params.get("order") || "";
  const cursor = params.get("cursor") || "";
  const page = Number(params.get("page") || "1");
  const input = el("input", { id: "query", name: "q", type: "search", spellcheck: "false",
    placeholder: "behaviour_files:@tutanota.com", "aria-label": "query" });
  input.value = q;
  const orderSelect = el("select", { id: "order", "aria-label": "sort order" }, el("option", { value: "" }, "best match"));
  const form = el("form", { class: "search-form", id: "search-form", role: "search" }, input, orderSelect,
    el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text) location.hash = searchHref(text, { order: orderSelect.value });
  });
  orderSelect.addEventListener("change", () => {
    const text = input.value.trim();
    if (text) location.hash = searchHref(text, { order: orderSelect.value });
  });
  const helpList = el("dl", { id: "modifier-help" });
  const help = el("details", { class: "help" }, el("summary", {}, "Search modifiers"),
    el("p", {}, "A bare word searches all behaviour text. A value wrapped in escaped quotes (",
      el("code", {}, "\"\\\"a\\\\b\\\"\""), ") is an exact phrase; * is a wildcard; AND, OR, NOT and ( ) combine terms."),
    helpList);
  schema().then((s) => modifierHelp(helpList, s.modifiers),
    (error) => { clear(helpList); helpList.append(errorBox(error)); });
  const results = el("div", { id: "results", "aria-live": "polite" });
  show(el("h1", {}, "Search behaviour"), form, help, results);
  if (!q) { input.focus(); return; }
  results.appendChild(el("p", { class: "muted" }, "Searching…"));
  let body;
  try {
    const req = { query: q, limit: PAGE_SIZE };
    if (order) req.order = order;
    if (cursor) req.cursor = cursor;
    body = await api("/intelligence/search", req);
  } catch (error) {
    clear(results);
    results.appendChild(errorBox(error, q));
    return;
  }
  const tables = await schema().catch(() => null);
  const meta = body.meta || {};
  for (const name of meta.allowed_orders || []) {
    for (const dir of ["-", "+"]) {
      const value = name + dir;
      orderSelect.append(el("option", { value, selected: value === order || undefined },
        `${name.replace(/_/g, " ")} ${dir === "-" ? "newest first" : "oldest first"}`));
    }
  }
  clear(results);
  results.appendChild(el("p", { class: "muted", id: "total-hits" }, totalText(meta, page), " — ",
    el("a", { id: "make-ruleset", href: queryRulesetHref(q) }, "Livehunt this query (new ruleset)")));
  results.appendChild(el("ul", { class: "results" }, (body.data || []).map((item) => resultItem(tables, item, q))));
  const pager = el("div", { class: "pager" });
  if (page > 1) {
    const back = el("button", { type: "button", id: "prev-page" }, "Previous page");
    back.addEventListener("click", () => history.back());
    pager.appendChild(back);
  }
  if (meta.cursor) {
    pager.appendChild(el("a", { id: "next-page", href: searchHref(q, { order, cursor: meta.cursor, page: String(page + 1) }) }, "Next page"));
  }
  results.appendChild(pager);
}
