// One report's (or the summary's) content, section by section as the attribute table orders
// them: every value a pivot, long lists shown a chunk at a time, the Sigma hits as a panel
// sorted by level and the ATT&CK techniques grouped by tactic.

import { el, chunked, cellText, isoTime, levelBadge, LEVELS } from "./dom.js";
import { pivot } from "./pivot.js";
import { pivotModifier } from "./schema.js";
import { processTree } from "./tree.js";
import { sigmaRulesetHref } from "./rulesets.js";

const CHUNK = 200;

function section(title, ...content) {
  const items = content.flat().filter(Boolean);
  if (!items.length) return null;
  return el("section", {}, el("h3", {}, title), items);
}

function valueList(values, modifier) {
  if (!Array.isArray(values) || !values.length) return null;
  const list = el("ul", { class: "values" });
  const wrap = el("div", {}, list);
  chunked(list, values, (v) => el("li", {}, pivot(modifier, cellText(v))), CHUNK, "values");
  return wrap;
}

function recordTable(tables, attribute, records) {
  const columns = attribute.columns || [];
  if (!Array.isArray(records) || !records.length || !columns.length) return null;
  const text = pivotModifier(tables, attribute, false);
  const token = pivotModifier(tables, attribute, true);
  const body = el("tbody", {});
  const table = el("table", {}, el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.label)))), body);
  const wrap = el("div", { class: "table-wrap" }, table);
  chunked(body, records, (record) => el("tr", {}, columns.map((column, i) => {
    const r = record || {};
    const value = r[column.key];
    if (column.key === "rule_level") return el("td", {}, levelBadge(value));
    if (value === undefined || value === null || value === "") return el("td", {});
    if (typeof value === "number") return el("td", {}, String(value));
    const values = Array.isArray(value) ? value.map(cellText) : [cellText(value)];
    // The key column of an attribute with a token modifier (a technique id) pivots on it.
    const modifier = i === 0 && token.kind === "token" ? token : text;
    return el("td", {}, values.map((v) => pivot(modifier, v)));
  })), CHUNK, "rows");
  return wrap;
}

/** One attribute's value, shown as its kind says. */
function attributeContent(tables, attribute, value) {
  switch (attribute.kind) {
    case "tree": return processTree(value, pivotModifier(tables, attribute, false));
    case "strings": return valueList(value, pivotModifier(tables, attribute, false));
    case "records": return recordTable(tables, attribute, value);
    case "counts": {
      const columns = attribute.columns || [];
      return el("table", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.label))),
        el("tr", {}, columns.map((c) => el("td", {}, cellText((value || {})[c.key])))));
    }
    case "date": return el("p", {}, isoTime(value));
    case "text": case "number": return valueList([cellText(value)], pivotModifier(tables, attribute, false));
    default: return null;
  }
}

function levelRank(level) {
  const at = LEVELS.indexOf(String(level || "").toLowerCase());
  return at < 0 ? LEVELS.length : at;
}

/** The Sigma hits, most severe first; each expands to its description and matched fields. */
export function sigmaPanel(tables, results) {
  if (!Array.isArray(results) || !results.length) return null;
  const attribute = tables.attributeByName.get("sigma_analysis_results");
  const ruleModifier = pivotModifier(tables, attribute, true);
  const sorted = results.map((r) => r || {}).sort((a, b) => levelRank(a.rule_level) - levelRank(b.rule_level)
    || String(a.rule_title).localeCompare(String(b.rule_title)));
  const list = el("ul", { class: "sigma-hits" });
  const wrap = el("div", { id: "sigma-panel" }, list);
  chunked(list, sorted, (hit) => {
    const contexts = Array.isArray(hit.match_context) ? hit.match_context : [];
    const events = contexts.map((c, i) => {
      const values = Object.entries((c && c.values) || {});
      return el("table", { class: "match" }, el("caption", {}, `event ${i + 1}`),
        values.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, String(k)), el("td", {}, pivot(null, String(v))))));
    });
    return el("li", { class: "sigma-hit", "data-level": String(hit.rule_level || "") },
      el("details", {},
        el("summary", {}, levelBadge(hit.rule_level), " ", el("span", { class: "rule-title" }, String(hit.rule_title || "")),
          el("span", { class: "muted" }, ` — ${contexts.length} matched event${contexts.length === 1 ? "" : "s"}`)),
        el("div", { class: "sigma-detail" },
          hit.rule_description ? el("p", {}, String(hit.rule_description)) : null,
          el("p", { class: "muted" }, "rule ", hit.rule_id ? pivot(ruleModifier, String(hit.rule_id)) : "(no id)",
            hit.rule_author ? ` by ${String(hit.rule_author)}` : "", hit.rule_source ? ` — ${String(hit.rule_source)}` : ""),
          hit.rule_id ? el("p", {}, el("a", { class: "make-sigma-ruleset", href: sigmaRulesetHref(String(hit.rule_id), String(hit.rule_title || hit.rule_id)) },
            "Livehunt this rule (new Sigma ruleset)")) : null,
          events)));
  }, 100, "Sigma hits");
  return wrap;
}

/** ATT&CK trees of several reports as one: tactics and techniques by id, signatures unioned. */
export function mergeTrees(trees) {
  const tactics = new Map();
  for (const tree of trees) {
    for (const tactic of (tree && tree.tactics) || []) {
      const key = String(tactic.id || tactic.name);
      if (!tactics.has(key)) tactics.set(key, { id: tactic.id, name: tactic.name, techniques: new Map() });
      const merged = tactics.get(key).techniques;
      for (const t of tactic.techniques || []) {
        if (!merged.has(t.id)) merged.set(t.id, { id: t.id, name: t.name, signatures: [] });
        const sigs = merged.get(t.id).signatures;
        for (const s of t.signatures || []) {
          if (!sigs.some((x) => x.description === s.description)) sigs.push(s);
        }
      }
    }
  }
  return [...tactics.values()].map((t) => ({ id: t.id, name: t.name, techniques: [...t.techniques.values()] }));
}

/** The events a Sigma hit matched, one line each: its matched fields as pivots. */
function matchedEvents(hits) {
  const contexts = hits.flatMap((hit) => (Array.isArray(hit.match_context) ? hit.match_context : []));
  if (!contexts.length) return null;
  return el("ul", { class: "technique-events" }, contexts.map((c) => el("li", { class: "technique-event" },
    Object.entries((c && c.values) || {}).map(([k, v]) => el("span", { class: "event-field" },
      el("span", { class: "field" }, String(k)), " ", pivot(null, String(v)))))));
}

/**
 * Techniques grouped by tactic, each with the signatures (Sigma rules, sandbox signatures)
 * behind it and, for a Sigma rule, the events it matched (a Sigma signature is the rule's
 * title, so the report's hits with that title carry them).
 */
export function attackPanel(tables, tactics, sigmaResults) {
  if (!tactics.length) return null;
  const hitsByTitle = new Map();
  for (const hit of Array.isArray(sigmaResults) ? sigmaResults : []) {
    const title = String((hit && hit.rule_title) || "");
    if (!hitsByTitle.has(title)) hitsByTitle.set(title, []);
    hitsByTitle.get(title).push(hit);
  }
  const attribute = tables.attributeByName.get("mitre_attack_techniques");
  const technique = pivotModifier(tables, attribute, true);
  const signature = pivotModifier(tables, tables.attributeByName.get("sigma_analysis_results"), false);
  return el("div", { id: "attack-panel", class: "attack" }, tactics.map((tactic) =>
    el("section", { class: "tactic" },
      el("h4", {}, tactic.id ? `${tactic.id} ` : "", String(tactic.name || "")),
      el("ul", {}, tactic.techniques.map((t) => el("li", {},
        pivot(technique, String(t.id)), " ", String(t.name && t.name !== t.id ? t.name : ""),
        t.signatures.length ? el("ul", { class: "signatures" }, t.signatures.map((s) =>
          el("li", { class: "technique-signature" }, el("span", { class: "muted" }, `${String(s.severity || "").toLowerCase()} `), pivot(signature, String(s.description)),
            matchedEvents(hitsByTitle.get(String(s.description)) || [])))) : null))))));
}

/** What the report builder cut (its `truncated` counts), said, never hidden. */
function truncationNote(tables, truncated) {
  if (!truncated || typeof truncated !== "object") return null;
  const parts = Object.entries(truncated).filter(([, n]) => Number(n) > 0).map(([name, n]) => {
    const attribute = tables.attributeByName.get(name);
    return `${attribute ? attribute.label : name}: ${Number(n).toLocaleString("en-US")} more not kept`;
  });
  return parts.length ? el("p", { class: "note", role: "note" }, "The report was capped when built — ", parts.join("; ")) : null;
}

/** Every shown attribute with a value, section by section; `tactics` is the ATT&CK tree. */
export function attributesPanel(tables, a, tactics) {
  const groups = [];
  const note = truncationNote(tables, a.truncated);
  if (note) groups.push(note);
  for (const sec of tables.sections) {
    const present = tables.attributes.filter((attribute) => attribute.section === sec.id && a[attribute.name] !== undefined);
    let parts;
    if (sec.id === "report") {
      // The report's facts are single values (and the tags): one table of label and value.
      parts = present.length ? [el("table", { class: "facts-table" }, present.map((attribute) => {
        const value = a[attribute.name];
        const modifier = pivotModifier(tables, attribute, false);
        const cell = attribute.kind === "date" ? isoTime(value)
          : (Array.isArray(value) ? value : [value]).map((v) => pivot(modifier, cellText(v)));
        return el("tr", {}, el("th", { scope: "row" }, attribute.label), el("td", {}, cell));
      }))] : [];
    } else if (sec.id === "sigma") {
      parts = [section("Sigma rule hits, most severe first", sigmaPanel(tables, a.sigma_analysis_results))];
    } else if (sec.id === "attack") {
      parts = [section("By tactic", attackPanel(tables, tactics, a.sigma_analysis_results))];
    } else {
      parts = present.map((attribute) => section(attribute.label, attributeContent(tables, attribute, a[attribute.name])));
    }
    const shown = parts.filter(Boolean);
    if (shown.length) groups.push(el("div", { class: "group", "data-section": sec.id }, el("h2", {}, sec.title), shown));
  }
  return groups;
}
