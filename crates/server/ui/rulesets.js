// Livehunt rulesets (issue 17): the list (enable/disable, delete, a link to each one's
// notifications) and the form that creates one. The form can arrive filled in: from the
// search box (`#/rulesets?language=query&rules=<query>`) or from a Sigma hit
// (`#/rulesets?language=sigma&sigma_rule=<rule id>`, whose YAML the server hands out).
// Changes need an API key with the ingest role; the server's 403 says so otherwise.

import { api, change } from "./api.js";
import { el, clear, show, errorBox, isoTime } from "./dom.js";
import { href } from "./router.js";

const RULESETS = "/intelligence/hunting_rulesets";
const PAGE_SIZE = "40";

/** Where to make a ruleset from the query in the search box. */
export function queryRulesetHref(query) {
  return href("rulesets", "", { language: "query", rules: query, name: `query: ${query}`.slice(0, 120) });
}

/** Where to make a ruleset from a report's Sigma hit (the rule's YAML is fetched there). */
export function sigmaRulesetHref(ruleId, title) {
  return href("rulesets", "", { language: "sigma", sigma_rule: ruleId, name: `sigma: ${title}`.slice(0, 120) });
}

/** The YAML of a bundled Sigma rule, by id. */
async function sigmaRuleYaml(id) {
  const body = await api(`/sandscope/sigma_rules/${encodeURIComponent(id)}`);
  return String(((body.data || {}).attributes || {}).yaml || "");
}

function createForm(params, onCreated) {
  const name = el("input", { id: "ruleset-name", name: "name", type: "text", required: "", maxlength: "200", spellcheck: "false" });
  name.value = params.get("name") || "";
  const language = el("select", { id: "ruleset-language", name: "rule_language" },
    el("option", { value: "query" }, "Intelligence queries (one per line, # comments)"),
    el("option", { value: "sigma" }, "Sigma rules (YAML documents)"));
  language.value = params.get("language") === "sigma" ? "sigma" : "query";
  const rules = el("textarea", { id: "ruleset-rules", name: "rules", rows: "10", required: "", spellcheck: "false" });
  rules.value = params.get("rules") || "";
  const enabled = el("input", { id: "ruleset-enabled", name: "enabled", type: "checkbox", checked: "" });
  const state = el("div", { id: "ruleset-form-state", "aria-live": "polite" });
  const form = el("form", { class: "ruleset-form", id: "ruleset-form" },
    el("label", { for: "ruleset-name" }, "Name"), name,
    el("label", { for: "ruleset-language" }, "Rule language"), language,
    el("label", { for: "ruleset-rules" }, "Rules"), rules,
    el("label", { for: "ruleset-enabled" }, "Enabled"), el("span", {}, enabled),
    el("span", {}), el("button", { type: "submit" }, "Create ruleset"));
  const sigmaRule = params.get("sigma_rule");
  if (sigmaRule && !rules.value) {
    state.append(el("p", { class: "muted" }, "Loading the Sigma rule…"));
    sigmaRuleYaml(sigmaRule).then((yaml) => {
      clear(state);
      if (!rules.value) rules.value = yaml;
      form.dataset.ready = "true";
    }, (error) => { clear(state); state.append(errorBox(error)); });
  } else {
    form.dataset.ready = "true";
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(state);
    const attributes = { name: name.value.trim(), rules: rules.value, rule_language: language.value, enabled: enabled.checked };
    try {
      const body = await change("POST", RULESETS, { data: { type: "hunting_ruleset", attributes } });
      const created = body && body.data;
      state.append(el("p", { id: "ruleset-created" }, "Created ruleset ", String(created ? created.attributes.name : attributes.name),
        created && created.attributes.number_of_rules !== undefined ? ` (${created.attributes.number_of_rules} rule${created.attributes.number_of_rules === 1 ? "" : "s"})` : ""));
      onCreated();
    } catch (error) {
      state.append(errorBox(error));
    }
  });
  return el("section", { "aria-labelledby": "new-ruleset" }, el("h2", { id: "new-ruleset" }, "New ruleset"),
    el("p", { class: "muted" }, "Every report stored from now on is checked against every enabled ruleset; each match is a notification."),
    form, state);
}

/** A button that acts on the second click only ("Delete" → "Really delete?"). */
export function confirmButton(label, confirmLabel, attrs, action) {
  const button = el("button", Object.assign({ type: "button" }, attrs), label);
  let armed = false;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      setTimeout(() => { armed = false; button.textContent = label; }, 5000);
      return;
    }
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function rulesetRow(ruleset, problems, reload) {
  const a = ruleset.attributes || {};
  const id = String(ruleset.id);
  const path = `${RULESETS}/${encodeURIComponent(id)}`;
  const toggle = el("input", { type: "checkbox", class: "ruleset-enabled", checked: a.enabled ? "" : undefined,
    "aria-label": `Enabled: ${String(a.name)}` });
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    try {
      await change("PATCH", path, { data: { type: "hunting_ruleset", attributes: { enabled: toggle.checked } } });
    } catch (error) {
      toggle.checked = !toggle.checked;
      clear(problems);
      problems.append(errorBox(error));
    } finally {
      toggle.disabled = false;
    }
  });
  const remove = confirmButton("Delete", "Really delete?", { class: "ruleset-delete", "aria-label": `Delete ruleset ${String(a.name)}` }, async () => {
    try {
      await change("DELETE", path);
      reload();
    } catch (error) {
      clear(problems);
      problems.append(errorBox(error));
    }
  });
  const names = Array.isArray(a.rule_names) ? a.rule_names.map(String) : [];
  return el("tr", { class: "ruleset", "data-id": id },
    el("th", { scope: "row" }, String(a.name || "")),
    el("td", {}, String(a.rule_language || "")),
    el("td", { class: "rule-names" }, `${names.length}: `, names.slice(0, 5).join(", "), names.length > 5 ? ` … ${names.length - 5} more` : ""),
    el("td", {}, toggle),
    el("td", {}, a.rate_limited ? `yes (${Number(a.rate_limited_ratio || 0).toFixed(2)})` : "no", a.limit ? ` — limit ${a.limit}/24 h` : ""),
    el("td", {}, isoTime(a.creation_date)),
    el("td", {}, el("a", { href: href("notifications", "", { ruleset: id }) }, "notifications"), " ", remove));
}

async function fillList(target, problems) {
  const reload = () => fillList(target, problems);
  clear(target);
  target.append(el("p", { class: "muted" }, "Loading rulesets…"));
  let rows = [];
  let cursor = "";
  try {
    // Every page (bounded): the list is the analyst's own, rarely long.
    for (let pages = 0; pages < 25; pages++) {
      const params = { limit: PAGE_SIZE, order: "name+" };
      if (cursor) params.cursor = cursor;
      const body = await api(RULESETS, params);
      rows = rows.concat(body.data || []);
      cursor = body.meta && body.meta.cursor;
      if (!cursor) break;
    }
  } catch (error) {
    clear(target);
    target.append(errorBox(error));
    return;
  }
  clear(target);
  if (!rows.length) {
    target.append(el("p", { class: "muted", id: "no-rulesets" }, "No rulesets yet."));
    return;
  }
  target.append(el("table", { id: "rulesets-table" },
    el("caption", { class: "muted" }, `${rows.length} ruleset${rows.length === 1 ? "" : "s"}`, cursor ? " (more not shown)" : ""),
    el("tr", {}, ["Name", "Language", "Rules", "Enabled", "Rate limited", "Created", "Actions"].map((h) => el("th", { scope: "col" }, h))),
    rows.map((r) => rulesetRow(r, problems, reload))));
}

export function rulesetsPage(params) {
  const list = el("div", { id: "rulesets", "aria-live": "polite" });
  const problems = el("div", { id: "ruleset-problems" });
  show(el("h1", {}, "Livehunt rulesets"),
    createForm(params, () => fillList(list, problems)),
    el("section", { "aria-labelledby": "ruleset-list" }, el("h2", { id: "ruleset-list" }, "Rulesets"), problems, list));
  fillList(list, problems);
}
