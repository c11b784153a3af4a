// The Compare view: two of the sample's reports side by side, as `sandscope diff` compares
// them (GET /sandscope/compare/{left}/{right}): per attribute, what only one saw and what both did.

import { api } from "./api.js";
import { el, clear, errorBox } from "./dom.js";
import { pivot } from "./pivot.js";
import { pivotModifier } from "./schema.js";
import { remember } from "./router.js";

function column(title, items, modifier, kind) {
  return el("div", { class: `diff-col diff-${kind}` }, el("h4", {}, `${title} (${items.length})`),
    items.length ? el("ul", { class: "values" }, items.map((v) => el("li", {}, pivot(modifier, String(v))))) : el("p", { class: "muted" }, "—"));
}

function render(tables, diff, out) {
  clear(out);
  const left = diff.left.sandbox_name || diff.left.id;
  const right = diff.right.sandbox_name || diff.right.id;
  let both = 0;
  let onlyLeft = 0;
  let onlyRight = 0;
  for (const a of diff.attributes) { both += a.both.length; onlyLeft += a.only_left.length; onlyRight += a.only_right.length; }
  out.append(el("p", { id: "compare-totals" }, `${both} seen by both, ${onlyLeft} only by ${left}, ${onlyRight} only by ${right}`));
  for (const a of diff.attributes) {
    const attribute = tables.attributeByName.get(a.attribute) || { name: a.attribute, label: a.attribute, modifiers: [] };
    // Strings and process names are values; other attributes' items are composites as the
    // diff shows them ("host -> ip"), so they are copied, not searched.
    const modifier = attribute.kind === "strings" || attribute.kind === "tree" ? pivotModifier(tables, attribute, false) : null;
    out.append(el("section", { class: "diff", "data-attribute": a.attribute }, el("h3", {}, attribute.label),
      el("div", { class: "diff-cols" },
        column(`only ${left}`, a.only_left, modifier, "left"),
        column("both", a.both, modifier, "both"),
        column(`only ${right}`, a.only_right, modifier, "right"))));
  }
}

/** The Compare panel over `reports` (at least two), starting from the URL's left/right. */
export function comparePanel(tables, reports, params) {
  const ids = reports.map((r) => String(r.id));
  const name = (id) => String(((reports.find((r) => String(r.id) === id) || {}).attributes || {}).sandbox_name || id);
  const pick = (label, id, chosen) => {
    const select = el("select", { id }, ids.map((value) => el("option", { value, selected: value === chosen || undefined }, name(value))));
    return [el("label", { for: id }, label), select];
  };
  const leftId = ids.includes(params.get("left")) ? params.get("left") : ids[0];
  const rightId = ids.includes(params.get("right")) ? params.get("right") : ids[1];
  const [leftLabel, left] = pick("Left", "compare-left", leftId);
  const [rightLabel, right] = pick("Right", "compare-right", rightId);
  const out = el("div", { id: "compare-result" });
  async function load() {
    remember({ left: left.value, right: right.value });
    clear(out);
    out.append(el("p", { class: "muted" }, "Comparing…"));
    try {
      const body = await api(`/sandscope/compare/${encodeURIComponent(left.value)}/${encodeURIComponent(right.value)}`);
      render(tables, body.data, out);
    } catch (error) {
      clear(out);
      out.append(errorBox(error));
    }
  }
  left.addEventListener("change", load);
  right.addEventListener("change", load);
  load();
  return el("div", { id: "compare" }, el("p", { class: "compare-pick" }, leftLabel, left, " ", rightLabel, right), out);
}
