// The server's own tables (GET /sandscope/schema): the model's attribute table (labels,
// sections, columns, the modifiers covering each attribute) and the query crate's modifier
// table. The UI keeps no list of its own; fetched once, again only after a failure.

import { api } from "./api.js";

let pending = null;

export function schema() {
  if (!pending) {
    pending = api("/sandscope/schema").then((body) => index(body.data), (error) => {
      pending = null;
      throw error;
    });
  }
  return pending;
}

function index(data) {
  const modifiers = new Map(data.modifiers.map((m) => [m.name, m]));
  const attributes = new Map(data.attributes.map((a) => [a.name, a]));
  return Object.assign({}, data, { modifierByName: modifiers, attributeByName: attributes });
}

/**
 * The modifier a value of `attribute` pivots on: the attribute's most specific text modifier
 * (the table lists them general to specific: the last that is not the catch-all `behaviour`),
 * else its first token modifier, else `behaviour`. `token` asks for the token modifier (ids:
 * techniques, rules, tags).
 */
export function pivotModifier(tables, attribute, token) {
  const specs = (attribute.modifiers || []).map((name) => tables.modifierByName.get(name)).filter(Boolean);
  const tokenSpec = specs.find((m) => m.kind === "token");
  const textSpec = specs.filter((m) => m.kind === "text" && m.name !== "behaviour").pop();
  if (token && tokenSpec) return tokenSpec;
  return textSpec || (attribute.kind === "strings" && tokenSpec) || tables.modifierByName.get("behaviour");
}
