// The sample page: a header with what matters first (sandboxes, first/last seen, Sigma hits
// by level, tags, behash, ATT&CK tactics), then one tab per sandbox, the merged summary and,
// with two or more reports, the Compare view. The tab is part of the URL.

import { api, download, sampleReports } from "./api.js";
import { el, clear, show, errorBox, isoTime, levelBadge } from "./dom.js";
import { href, remember } from "./router.js";
import { schema, pivotModifier } from "./schema.js";
import { pivot } from "./pivot.js";
import { attributesPanel, mergeTrees } from "./panels.js";
import { comparePanel } from "./compare.js";

function exportsBar(sha256) {
  const bar = el("p", { id: "exports" }, "Export: ");
  const encoded = encodeURIComponent(sha256);
  for (const [format, label] of [["misp", "MISP event"], ["stix", "STIX 2.1 bundle"]]) {
    const button = el("button", { type: "button", id: `export-${format}` }, label);
    button.addEventListener("click", () => download(`/sandscope/export/${format}/${encoded}`, `${sha256}.${format}.json`)
      .catch((e) => bar.append(errorBox(e))));
    bar.append(button, " ");
  }
  return bar;
}

function sigmaCounts(results) {
  const counts = { critical: 0, high: 0, medium: 0, low: 0 };
  const seen = new Set();
  for (const r of Array.isArray(results) ? results : []) {
    const level = String((r && r.rule_level) || "").toLowerCase();
    const key = String((r && (r.rule_id || r.rule_title)) || "");
    if (level in counts && !seen.has(key)) { seen.add(key); counts[level] += 1; }
  }
  return counts;
}

function header(tables, sha256, reports, tactics) {
  // From the reports themselves, so the header does not wait for the merged summary.
  const all = (name) => reports.flatMap((r) => [].concat((r.attributes || {})[name] || []));
  const dates = reports.map((r) => Number((r.attributes || {}).analysis_date)).filter((d) => d > 0);
  const counts = sigmaCounts(all("sigma_analysis_results"));
  const tags = [...new Set(all("tags").map(String))];
  const tagModifier = pivotModifier(tables, tables.attributeByName.get("tags"), true);
  const behashModifier = pivotModifier(tables, tables.attributeByName.get("behash"), false);
  const behashes = [...new Set(reports.map((r) => (r.attributes || {}).behash).filter(Boolean).map(String))];
  const row = (label, ...value) => el("div", { class: "fact" }, el("dt", {}, label), el("dd", {}, value));
  return el("dl", { class: "sample-header", id: "sample-header" },
    row("Sandboxes", reports.map((r) => el("span", { class: "chip" }, String((r.attributes || {}).sandbox_name || r.id)))),
    row("First seen", dates.length ? isoTime(Math.min(...dates)) : "—"),
    row("Last seen", dates.length ? isoTime(Math.max(...dates)) : "—"),
    row("Sigma", el("span", { id: "sigma-badges" }, Object.entries(counts).map(([level, n]) => {
      const badge = levelBadge(level, `${n} ${level}`);
      if (n === 0) badge.classList.add("zero");
      return badge;
    }))),
    row("Tags", tags.length ? tags.map((t) => pivot(tagModifier, t)) : "—"),
    row("Behash", behashes.length ? behashes.map((b) => pivot(behashModifier, b)) : "—"),
    row("ATT&CK tactics", tactics.length ? tactics.map((t) => el("span", { class: "chip tactic-chip" }, `${t.name}`)) : "—"));
}

function reportActions(entry, panel) {
  const a = entry.attributes;
  const encoded = encodeURIComponent(entry.id);
  const logButton = el("button", { type: "button" }, "Download original log");
  logButton.addEventListener("click", () => download(`/file_behaviours/${encoded}/evtx`, "sysmon-log").catch((e) => panel.prepend(errorBox(e))));
  const htmlButton = el("button", { type: "button" }, "Download HTML report");
  htmlButton.addEventListener("click", () => download(`/file_behaviours/${encoded}/html`, "report.html").catch((e) => panel.prepend(errorBox(e))));
  return [el("p", { class: "muted" }, `report ${entry.id}`, a.analysis_date ? ` — analysed ${isoTime(a.analysis_date)}` : ""),
    el("p", {}, logButton, " ", htmlButton)];
}

/** An ARIA tablist: click or arrow keys select; only the selected tab is in the tab order. */
function tabList(names, selected, onSelect) {
  const tabs = el("div", { class: "tabs", role: "tablist", "aria-label": "reports" });
  const buttons = names.map((name, index) => el("button", { type: "button", role: "tab", id: `tab-${index}`,
    "aria-controls": "panel", "aria-selected": String(index === selected), tabindex: index === selected ? "0" : "-1" }, name));
  const select = (index, focus) => {
    buttons.forEach((b, i) => { b.setAttribute("aria-selected", String(i === index)); b.setAttribute("tabindex", i === index ? "0" : "-1"); });
    if (focus) buttons[index].focus();
    onSelect(index);
  };
  buttons.forEach((button, index) => {
    button.addEventListener("click", () => select(index, false));
    button.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: buttons.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select((moves[event.key] + buttons.length) % buttons.length, true);
    });
  });
  tabs.append(...buttons);
  return tabs;
}

export async function samplePage(sha256, params) {
  show(el("h1", {}, "Sample"), el("p", { class: "muted" }, "Loading…"));
  const encoded = encodeURIComponent(sha256);
  // The merged summary is only needed by its own tab: a report's tab draws without it, and
  // it is asked for only when that tab is opened (it is as large as all reports together).
  let summaryRequest = null;
  let summaryArrived = false;
  const summary = () => {
    if (!summaryRequest) {
      summaryRequest = api(`/files/${encoded}/behaviour_summary`).then((b) => { summaryArrived = true; return b.data || {}; },
        (error) => { summaryRequest = null; throw error; });
    }
    return summaryRequest;
  };
  if (!params.get("tab")) summary().catch(() => {});
  let reports, trees, tables;
  try {
    [reports, trees, tables] = await Promise.all([
      sampleReports(sha256),
      api(`/files/${encoded}/behaviour_mitre_trees`).then((b) => b.data || {}),
      schema(),
    ]);
  } catch (error) {
    show(el("h1", {}, "Sample"), errorBox(error));
    return;
  }
  const allTactics = mergeTrees(Object.values(trees));
  const entries = [{ name: "Summary", summary: true, tactics: allTactics, id: null }].concat(
    reports.map((r) => {
      const a = r.attributes || {};
      return { name: String(a.sandbox_name || r.id), attributes: a, tactics: mergeTrees([trees[a.sandbox_name]]), id: String(r.id) };
    }));
  if (reports.length >= 2) entries.push({ name: "Compare", compare: true });
  const panel = el("div", { class: "panel", role: "tabpanel", id: "panel", tabindex: "0" });
  let shown = -1;
  async function fill(index) {
    shown = index;
    const entry = entries[index];
    panel.setAttribute("aria-labelledby", `tab-${index}`);
    remember({ tab: index === 0 ? "" : entry.name, left: entry.compare ? params.get("left") : "", right: entry.compare ? params.get("right") : "" });
    clear(panel);
    if (entry.compare) { panel.dataset.content = "compare"; panel.append(comparePanel(tables, reports, params)); return; }
    let attributes = entry.attributes;
    if (entry.summary) {
      const request = summary();
      // The merged summary is as large as all reports together and takes a while on a huge
      // sample: until it arrives, the first report (already here) is the first screen.
      const first = entries.find((e) => e.id);
      if (first && !summaryArrived) {
        panel.dataset.content = "preview";
        panel.append(el("p", { class: "note", role: "status", id: "summary-pending" },
          `Showing the ${first.name} report while the merged summary of ${reports.length} report${reports.length === 1 ? "" : "s"} loads…`),
        ...attributesPanel(tables, first.attributes, first.tactics));
      } else {
        panel.append(el("p", { class: "muted" }, "Loading the summary…"));
      }
      try {
        attributes = await request;
      } catch (error) {
        if (shown === index) { clear(panel); panel.append(errorBox(error)); }
        return;
      }
      if (shown !== index) return;
      clear(panel);
    }
    panel.dataset.content = entry.summary ? "summary" : "report";
    if (entry.id) panel.append(...reportActions(entry, panel));
    const content = attributesPanel(tables, attributes, entry.tactics);
    if (!content.length) panel.appendChild(el("p", { class: "muted" }, "Nothing observed."));
    panel.append(...content);
  }
  const wanted = entries.findIndex((e) => e.name === params.get("tab"));
  const selected = wanted < 0 ? 0 : wanted;
  const tabs = tabList(entries.map((e) => e.name), selected, fill);
  show(el("h1", {}, "Sample ", el("code", { id: "sample-sha" }, sha256)),
    header(tables, sha256, reports, allTactics),
    el("p", {}, el("a", { id: "graph-link", href: href("graph", sha256) }, "Pivot graph"),
      ` — ${reports.length} report${reports.length === 1 ? "" : "s"}`),
    exportsBar(sha256), tabs, panel);
  fill(selected);
}
