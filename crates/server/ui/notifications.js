// Livehunt notifications (issue 17): each sample a ruleset matched, with the ruleset, the
// rule, the date and the snippet that explains the match, a link to the sample and a delete
// button; filtered by ruleset (`#/notifications?ruleset=<id>`, shareable).

import { api, change } from "./api.js";
import { el, clear, show, errorBox, isoTime, shortText } from "./dom.js";
import { href } from "./router.js";
import { confirmButton } from "./rulesets.js";

const PAGE_SIZE = "40";

function notificationItem(item, problems) {
  const sha256 = String(item.id);
  const c = item.context_attributes || {};
  const id = String(c.notification_id || "");
  const li = el("li", { class: "notification result", "data-id": id, "data-ruleset": String(c.ruleset_id || "") });
  const remove = confirmButton("Delete", "Really delete?", { class: "notification-delete", "aria-label": `Delete notification ${id}` }, async () => {
    try {
      await change("DELETE", `/intelligence/hunting_notifications/${encodeURIComponent(id)}`);
      li.remove();
    } catch (error) {
      clear(problems);
      problems.append(errorBox(error));
    }
  });
  const tags = Array.isArray(c.rule_tags) ? c.rule_tags.map(String) : [];
  li.append(
    el("a", { class: "sha", href: href("sample", sha256) }, sha256),
    el("div", { class: "facts" },
      el("span", {}, "ruleset ", el("a", { class: "ruleset-name", href: href("notifications", "", { ruleset: String(c.ruleset_id || "") }) }, String(c.ruleset_name || ""))),
      el("span", {}, "rule ", el("strong", { class: "rule-name" }, String(c.rule_name || ""))),
      c.notification_date ? el("span", {}, "notified ", el("time", {}, isoTime(c.notification_date))) : null,
      tags.length ? el("span", { class: "tags" }, tags.map((t) => el("span", { class: "tag" }, t))) : null,
      remove),
    c.notification_snippet ? el("div", { class: "snippet" }, shortText(String(c.notification_snippet), 400)) : null);
  return li;
}

async function rulesetChoices(select, chosen) {
  try {
    const body = await api("/intelligence/hunting_rulesets", { limit: "40", order: "name+" });
    for (const r of body.data || []) {
      const id = String(r.id);
      select.append(el("option", { value: id, selected: id === chosen || undefined }, String((r.attributes || {}).name || id)));
    }
  } catch (_) { /* the filter keeps "all"; the list below shows any key problem */ }
}

export async function notificationsPage(params) {
  const ruleset = params.get("ruleset") || "";
  const select = el("select", { id: "notification-ruleset", "aria-label": "ruleset" }, el("option", { value: "" }, "all rulesets"));
  select.value = ruleset;
  select.addEventListener("change", () => { location.hash = href("notifications", "", { ruleset: select.value }); });
  const problems = el("div", { id: "notification-problems" });
  const list = el("ul", { class: "results", id: "notifications" });
  const status = el("p", { class: "muted", id: "notification-count", "aria-live": "polite" }, "Loading notifications…");
  const more = el("button", { type: "button", id: "more-notifications", hidden: "" }, "More notifications");
  show(el("h1", {}, "Livehunt notifications"),
    el("p", {}, el("label", { for: "notification-ruleset" }, "Ruleset "), select, " ",
      el("a", { href: href("rulesets") }, "Manage rulesets")),
    problems, status, list, more);
  rulesetChoices(select, ruleset);
  let cursor = "";
  let shown = 0;
  const load = async () => {
    const query = { limit: PAGE_SIZE };
    if (ruleset) query.filter = `ruleset_id:${ruleset}`;
    if (cursor) query.cursor = cursor;
    let body;
    try {
      body = await api("/intelligence/hunting_notification_files", query);
    } catch (error) {
      status.textContent = "";
      problems.append(errorBox(error));
      return;
    }
    const items = body.data || [];
    list.append(...items.map((item) => notificationItem(item, problems)));
    shown += items.length;
    cursor = (body.meta && body.meta.cursor) || "";
    more.hidden = !cursor;
    status.textContent = shown ? `${shown.toLocaleString("en-US")} notification${shown === 1 ? "" : "s"}${cursor ? " so far" : ""}, newest first`
      : "No notifications.";
  };
  more.addEventListener("click", load);
  await load();
}
