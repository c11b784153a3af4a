// Deep links: the hash holds the page and its state (#/search?q=…&order=…,
// #/sample/<sha256>?tab=…, #/graph/<sha256>?types=…), so any view can be shared.

/** The current route: page name, its path argument and its parameters. */
export function current() {
  const hash = location.hash.replace(/^#\/?/, "");
  const at = hash.indexOf("?");
  const path = at < 0 ? hash : hash.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
  const [page, arg] = path.split("/", 2);
  return { page: page || "search", arg: arg ? decodeURIComponent(arg) : "", params };
}

/** The href of a page: href("sample", sha, {tab: "Summary"}). */
export function href(page, arg, params) {
  const path = "#/" + page + (arg ? "/" + encodeURIComponent(arg) : "");
  const entries = Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? path + "?" + new URLSearchParams(entries).toString() : path;
}

export function searchHref(query, extra) {
  return href("search", "", Object.assign({ q: query }, extra || {}));
}

/** Record view state (a tab, the graph's filters) in the URL without re-rendering the page. */
export function remember(params) {
  const route = current();
  const merged = Object.fromEntries(route.params.entries());
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") delete merged[k]; else merged[k] = v;
  }
  history.replaceState(null, "", href(route.page, route.arg, merged));
}
