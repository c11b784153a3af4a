// Sandscope web UI. Every value shown comes from attacker-written logs, so the DOM is built
// with createElement/textContent only: no HTML parsing of data anywhere, no inline handlers
// (the Content-Security-Policy forbids them anyway). Routing is by location.hash.
"use strict";

(function () {
  const KEY_STORAGE = "sandscope-api-key";
  const main = document.getElementById("main");

  // ---------- DOM helpers ----------

  /** el("a", {href: "#/x", class: "c"}, "text", child…): attributes by setAttribute, text by text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(name, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(...children) {
    clear(main);
    for (const child of children) if (child) main.appendChild(child);
  }

  /** Only our own hash routes and API paths become hrefs. */
  function route(path) {
    return "#/" + path;
  }

  // ---------- API ----------

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  }

  class ApiError extends Error {
    constructor(status, code, message, column) {
      super(message);
      this.status = status;
      this.code = code;
      this.column = column;
    }
  }

  async function request(path, options) {
    const opts = options || {};
    const headers = { "x-apikey": apiKey() };
    const response = await fetch("/api/v3" + path, { method: opts.method || "GET", headers, body: opts.body });
    if (!response.ok) {
      let code = "HttpError" + response.status;
      let message = response.statusText;
      let column;
      try {
        const body = await response.json();
        if (body && body.error) {
          code = String(body.error.code);
          message = String(body.error.message);
          column = body.error.column;
        }
      } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, code, message, column);
    }
    return response;
  }

  async function api(path, params) {
    const query = params ? "?" + new URLSearchParams(params).toString() : "";
    const response = await request(path + query);
    return response.json();
  }

  function errorBox(error, queryText) {
    const box = el("div", { class: "error", role: "alert" },
      el("strong", {}, error.code || "Error"), ": ", error.message || String(error));
    if (error.status === 401) {
      box.appendChild(el("div", {}, "Enter an API key at the top right."));
    }
    if (queryText && Number.isInteger(error.column) && error.column > 0) {
      const caret = " ".repeat(Math.min(error.column - 1, queryText.length)) + "^";
      box.appendChild(el("pre", { class: "query-caret" }, queryText + "\n" + caret));
    }
    return box;
  }

  function shortText(text, max) {
    const s = String(text);
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  function sampleLink(sha256) {
    return el("a", { class: "sha", href: route("sample/" + encodeURIComponent(sha256)) }, sha256);
  }

  // ---------- key form ----------

  function initKeyForm() {
    const form = document.getElementById("key-form");
    const input = document.getElementById("api-key");
    const state = document.getElementById("key-state");
    const refreshState = () => { state.textContent = apiKey() ? "key set" : "no key"; };
    refreshState();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, input.value.trim());
      input.value = "";
      refreshState();
      render();
    });
  }

  // ---------- search ----------

  // The attribute table and the query modifiers, as the server's own tables define them
  // (GET /sandscope/schema): fetched once, again only after a failure.
  let schemaRequest = null;
  function schema() {
    if (!schemaRequest) {
      schemaRequest = api("/sandscope/schema").then((body) => body.data, (error) => {
        schemaRequest = null;
        throw error;
      });
    }
    return schemaRequest;
  }

  /** The query help: every modifier the parser accepts, with its other names and an example. */
  function modifierHelp(list, modifiers) {
    clear(list);
    for (const m of modifiers) {
      const names = m.written ? [m.name].concat(m.aliases || []).map((n) => n + ":").join("  ") : m.name;
      list.append(el("dt", {}, names),
        el("dd", {}, String(m.help), " (", String(m.kind), ") — e.g. ", el("code", {}, String(m.example))));
    }
  }

  function highlight(value, query) {
    // Mark the first occurrence of any literal of the query in the value (text nodes only).
    const literals = [];
    const re = /(?:[a-z_]+:)?("((?:[^"\\]|\\.)*)"|[^\s()]+)/gi;
    let m;
    while ((m = re.exec(query)) !== null) {
      let lit = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[1];
      lit = lit.replace(/^"|"$/g, "");
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

  async function searchPage(params) {
    const q = params.get("q") || "";
    const cursor = params.get("cursor") || "";
    const page = Number(params.get("page") || "1");
    const input = el("input", { id: "query", name: "q", type: "search", spellcheck: "false",
      placeholder: "behaviour_files:@tutanota.com", "aria-label": "query" });
    input.value = q;
    const form = el("form", { class: "search-form", id: "search-form" }, input, el("button", { type: "submit" }, "Search"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text) location.hash = "#/search?" + new URLSearchParams({ q: text }).toString();
    });
    const helpList = el("dl", { id: "modifier-help" });
    const help = el("details", { class: "help" }, el("summary", {}, "Search modifiers"),
      el("p", {}, "A bare word searches all behaviour text. A value wrapped in escaped quotes (",
        el("code", {}, "\"\\\"a\\\\b\\\"\""), ") is an exact phrase; * is a wildcard; AND, OR, NOT and ( ) combine terms."),
      helpList);
    schema().then((s) => modifierHelp(helpList, s.modifiers),
      (error) => { clear(helpList); helpList.append(errorBox(error)); });
    const results = el("div", { id: "results" });
    show(el("h1", {}, "Search behaviour"), form, help, results);
    if (!q) return;
    results.appendChild(el("p", { class: "muted" }, "Searching…"));
    let body;
    try {
      const request = { query: q, limit: "20" };
      if (cursor) request.cursor = cursor;
      body = await api("/intelligence/search", request);
    } catch (error) {
      clear(results);
      results.appendChild(errorBox(error, q));
      return;
    }
    clear(results);
    const total = body.meta && body.meta.total_hits;
    const atLeast = body.meta && body.meta.total_hits_relation === "gte" ? "+" : "";
    results.appendChild(el("p", { class: "muted", id: "total-hits" },
      `${total}${atLeast} matching sample${total === 1 && !atLeast ? "" : "s"} — page ${page}`));
    const list = el("ul", { class: "results" });
    for (const item of body.data || []) {
      const attrs = item.attributes || {};
      const snippets = (item.context_attributes && item.context_attributes.snippets) || [];
      list.appendChild(el("li", { class: "result" },
        sampleLink(String(item.id)),
        attrs.sandbox_names ? el("div", { class: "muted" }, [].concat(attrs.sandbox_names).join(", ")) : null,
        snippets.slice(0, 5).map((s) => el("div", { class: "snippet" },
          el("span", { class: "field" }, String(s.field)), highlight(shortText(s.value, 300), q)))));
    }
    results.appendChild(list);
    const pager = el("div", { class: "pager" });
    if (page > 1) {
      const back = el("button", { type: "button", id: "prev-page" }, "Previous page");
      back.addEventListener("click", () => history.back());
      pager.appendChild(back);
    }
    if (body.meta && body.meta.cursor) {
      const next = new URLSearchParams({ q, cursor: body.meta.cursor, page: String(page + 1) });
      pager.appendChild(el("a", { id: "next-page", href: "#/search?" + next.toString() }, "Next page"));
    }
    results.appendChild(pager);
  }

  // ---------- sample ----------

  function section(title, ...content) {
    const items = content.flat().filter(Boolean);
    if (!items.length) return null;
    return el("section", {}, el("h3", {}, title), items);
  }

  function valueList(values) {
    if (!Array.isArray(values) || !values.length) return null;
    return el("ul", { class: "values" }, values.map((v) => el("li", {}, String(v))));
  }

  function table(headers, rows) {
    if (!rows.length) return null;
    return el("table", {},
      el("tr", {}, headers.map((h) => el("th", {}, h))),
      rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, cell === undefined || cell === null ? "" : cell)))));
  }

  function processTree(nodes, depth) {
    if (!Array.isArray(nodes) || !nodes.length || depth > 64) return null;
    return el("ul", { class: depth === 0 ? "tree process-tree" : undefined }, nodes.map((node) => {
      const label = [el("span", { class: "pid" }, "[" + String(node.process_id || "?") + "]"),
        el("span", { class: "cmd" }, String(node.name || ""))];
      const children = processTree(node.children, depth + 1);
      if (!children) return el("li", {}, label);
      return el("li", {}, el("details", { open: "" }, el("summary", {}, label), children));
    }));
  }

  function levelBadge(level) {
    const l = String(level || "").toLowerCase();
    const known = ["critical", "high", "medium", "low"].includes(l);
    return el("span", { class: known ? "level-" + l : undefined }, String(level || ""));
  }

  function mitreTree(tree) {
    if (!tree || !Array.isArray(tree.tactics) || !tree.tactics.length) return null;
    return el("ul", { class: "values" }, tree.tactics.map((tactic) =>
      el("li", {}, `${tactic.id} ${tactic.name}`, el("ul", {}, (tactic.techniques || []).map((t) =>
        el("li", {}, `${t.id} ${t.name}`))))));
  }

  /** One value as text: lists joined, absent as nothing. */
  function cellText(value) {
    if (value === undefined || value === null) return "";
    if (Array.isArray(value)) return value.map(cellText).join(", ");
    return String(value);
  }

  /** One attribute's value, shown as its kind and columns say. */
  function attributeContent(attribute, value) {
    const columns = attribute.columns || [];
    const cell = (record, column) => column.key === "rule_level"
      ? levelBadge(record[column.key]) : cellText(record[column.key]);
    switch (attribute.kind) {
      case "tree": return processTree(value, 0);
      case "strings": return valueList(value);
      case "records": return Array.isArray(value)
        ? table(columns.map((c) => c.label), value.map((r) => columns.map((c) => cell(r || {}, c)))) : null;
      case "counts": return table(columns.map((c) => c.label), [columns.map((c) => cell(value || {}, c))]);
      case "date": return valueList([new Date(Number(value) * 1000).toISOString()]);
      case "text": case "number": return valueList([cellText(value)]);
      default: return null;
    }
  }

  /** Every shown attribute with a value, section by section as the attribute table orders them. */
  function attributesPanel(a, mitre, tables) {
    const groups = [];
    for (const sec of tables.sections) {
      const present = tables.attributes.filter((attribute) => attribute.section === sec.id && a[attribute.name] !== undefined);
      if (sec.id === "report") {
        // The report's facts are single values: one table of label and value.
        const facts = table(["", ""], present.map((attribute) => [attribute.label,
          attribute.kind === "date" ? new Date(Number(a[attribute.name]) * 1000).toISOString() : cellText(a[attribute.name])]));
        if (facts) groups.push(el("div", { class: "group", "data-section": sec.id }, el("h2", {}, sec.title), facts));
        continue;
      }
      const parts = present.map((attribute) => section(attribute.label, attributeContent(attribute, a[attribute.name])));
      if (sec.id === "attack") parts.push(section("ATT&CK tactics", mitreTree(mitre)));
      const shown = parts.filter(Boolean);
      if (shown.length) groups.push(el("div", { class: "group", "data-section": sec.id }, el("h2", {}, sec.title), shown));
    }
    return groups;
  }

  async function download(path, fallbackName) {
    const response = await request(path);
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: fallbackName });
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  // The sample's exports (MISP event, STIX 2.1 bundle), each a download of
  // /sandscope/export/{format}/{sha256}; errors show inside the section.
  function renderExports(sha256) {
    const section = el("p", { id: "exports" }, "Export: ");
    const encoded = encodeURIComponent(sha256);
    for (const [format, label] of [["misp", "MISP event"], ["stix", "STIX 2.1 bundle"]]) {
      const button = el("button", { type: "button", id: `export-${format}` }, label);
      button.addEventListener("click", () => download(`/sandscope/export/${format}/${encoded}`, `${sha256}.${format}.json`)
        .catch((e) => section.append(errorBox(e))));
      section.append(button, " ");
    }
    return section;
  }

  async function samplePage(sha256) {
    show(el("h1", {}, "Sample"), el("p", { class: "muted" }, "Loading…"));
    let reports = [];
    let summary;
    let trees;
    let attributeTable;
    try {
      let cursor = "";
      for (let pages = 0; pages < 10; pages++) {
        const params = { limit: "40" };
        if (cursor) params.cursor = cursor;
        const body = await api(`/files/${encodeURIComponent(sha256)}/behaviours`, params);
        reports = reports.concat(body.data || []);
        cursor = body.meta && body.meta.cursor;
        if (!cursor) break;
      }
      summary = (await api(`/files/${encodeURIComponent(sha256)}/behaviour_summary`)).data || {};
      attributeTable = await schema();
      trees = (await api(`/files/${encodeURIComponent(sha256)}/behaviour_mitre_trees`)).data || {};
    } catch (error) {
      show(el("h1", {}, "Sample"), errorBox(error));
      return;
    }
    const tabs = el("div", { class: "tabs", role: "tablist" });
    const panel = el("div", { class: "panel", role: "tabpanel", id: "panel" });
    const entries = [{ name: "Summary", attributes: summary, mitre: null, id: null }].concat(
      reports.map((r) => ({ name: String((r.attributes || {}).sandbox_name || r.id), attributes: r.attributes || {},
        mitre: trees[(r.attributes || {}).sandbox_name], id: String(r.id) })));
    const buttons = entries.map((entry, index) => {
      const button = el("button", { type: "button", role: "tab", "aria-selected": index === 0 ? "true" : "false" }, entry.name);
      button.addEventListener("click", () => {
        for (const b of buttons) b.setAttribute("aria-selected", "false");
        button.setAttribute("aria-selected", "true");
        fill(entry);
      });
      return button;
    });
    function fill(entry) {
      clear(panel);
      if (entry.id) {
        const a = entry.attributes;
        const meta = el("p", { class: "muted" }, `report ${entry.id}`,
          a.analysis_date ? ` — analysed ${new Date(a.analysis_date * 1000).toISOString()}` : "");
        const actions = el("p", {});
        const encoded = encodeURIComponent(entry.id);
        const logButton = el("button", { type: "button" }, "Download original log");
        logButton.addEventListener("click", () => download(`/file_behaviours/${encoded}/evtx`, "sysmon-log").catch((e) => panel.prepend(errorBox(e))));
        const htmlButton = el("button", { type: "button" }, "Download HTML report");
        htmlButton.addEventListener("click", () => download(`/file_behaviours/${encoded}/html`, "report.html").catch((e) => panel.prepend(errorBox(e))));
        actions.append(logButton, " ", htmlButton);
        panel.append(meta, actions);
      }
      const content = attributesPanel(entry.attributes, entry.mitre, attributeTable);
      if (!content.length) panel.appendChild(el("p", { class: "muted" }, "Nothing observed."));
      for (const part of content) panel.appendChild(part);
    }
    tabs.append(...buttons);
    fill(entries[0]);
    show(el("h1", {}, "Sample ", el("code", { id: "sample-sha" }, sha256)),
      el("p", {}, el("a", { id: "graph-link", href: route("graph/" + encodeURIComponent(sha256)) }, "Pivot graph"),
        ` — ${reports.length} report${reports.length === 1 ? "" : "s"}`),
      renderExports(sha256),
      tabs, panel);
  }

  // ---------- pivot graph ----------

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const child of children) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  async function graphPage(sha256) {
    const nodes = new Map();
    const edges = new Map();
    const canvas = svg("svg", { class: "graph", id: "graph", role: "img", "aria-label": "pivot graph" });
    const stats = el("p", { class: "muted", id: "graph-stats" });
    const side = el("div", { class: "side", id: "graph-side" }, el("p", { class: "muted" },
      "Click a sample node (red) to expand it with its indicators and the samples sharing them."));
    const status = el("div", {});
    show(el("h1", {}, "Pivot graph"), el("p", {}, "Around ", sampleLink(sha256)), status, stats,
      el("div", { class: "graph-wrap" }, canvas, side));

    async function expand(node) {
      if (!node.sha256 || node.expanded) return;
      node.expanded = true;
      let body;
      try {
        body = await api(`/sandscope/graph/${encodeURIComponent(node.sha256)}`);
      } catch (error) {
        node.expanded = false;
        clear(status);
        status.appendChild(errorBox(error));
        return;
      }
      const fresh = (body.data.nodes || []).filter((n) => !nodes.has(String(n.id)));
      fresh.forEach((n, i) => {
        const angle = (2 * Math.PI * i) / Math.max(fresh.length, 1) + node.depth * 0.5;
        const radius = node.depth === 0 ? 260 : 150;
        nodes.set(String(n.id), { id: String(n.id), kind: String(n.kind), label: String(n.label),
          sha256: n.sha256 ? String(n.sha256) : null, expanded: false, depth: node.depth + 1,
          x: node.x + radius * Math.cos(angle), y: node.y + radius * Math.sin(angle) });
      });
      for (const e of body.data.edges || []) {
        const key = [String(e.source), String(e.target)].sort().join("|");
        if (nodes.has(String(e.source)) && nodes.has(String(e.target))) {
          edges.set(key, { source: String(e.source), target: String(e.target), relation: String(e.relation) });
        }
      }
      draw();
    }

    function select(node) {
      clear(side);
      side.append(el("h3", {}, node.kind), el("p", {}, el("code", {}, node.label)));
      if (node.sha256) {
        side.appendChild(el("p", {}, el("a", { href: route("sample/" + encodeURIComponent(node.sha256)) }, "Open sample")));
      } else {
        const q = `behaviour:"${node.label.replace(/\\/g, "\\\\").replace(/"/g, "\\\"")}"`;
        side.appendChild(el("p", {}, el("a", { href: "#/search?" + new URLSearchParams({ q }).toString() }, "Search samples with this")));
      }
      for (const g of canvas.querySelectorAll("g.node")) g.classList.toggle("selected", g.dataset.id === node.id);
    }

    // Fruchterman-Reingold relaxation so new nodes settle without overlapping; the first
    // sample stays pinned at the centre.
    function relax(iterations) {
      const all = [...nodes.values()];
      const ideal = 120;
      for (let it = 0; it < iterations; it++) {
        const temperature = 40 * (1 - it / iterations) + 1;
        const force = all.map(() => [0, 0]);
        for (let i = 0; i < all.length; i++) {
          for (let j = i + 1; j < all.length; j++) {
            let dx = all[i].x - all[j].x;
            let dy = all[i].y - all[j].y;
            let d2 = dx * dx + dy * dy;
            if (d2 < 0.01) { dx = (i - j) * 0.1; dy = 0.1; d2 = dx * dx + dy * dy; }
            const push = (ideal * ideal) / d2;
            force[i][0] += dx * push; force[i][1] += dy * push;
            force[j][0] -= dx * push; force[j][1] -= dy * push;
          }
        }
        const index = new Map(all.map((n, i) => [n.id, i]));
        for (const e of edges.values()) {
          const i = index.get(e.source);
          const j = index.get(e.target);
          const dx = all[i].x - all[j].x;
          const dy = all[i].y - all[j].y;
          const pull = Math.sqrt(dx * dx + dy * dy) / ideal;
          force[i][0] -= dx * pull; force[i][1] -= dy * pull;
          force[j][0] += dx * pull; force[j][1] += dy * pull;
        }
        all.forEach((n, i) => {
          if (n.depth === 0) return;
          const [fx, fy] = force[i];
          const len = Math.sqrt(fx * fx + fy * fy) || 1;
          const step = Math.min(len, temperature);
          n.x += (fx / len) * step;
          n.y += (fy / len) * step;
        });
      }
    }

    function draw() {
      relax(120);
      while (canvas.firstChild) canvas.removeChild(canvas.firstChild);
      const all = [...nodes.values()];
      const xs = all.map((n) => n.x);
      const ys = all.map((n) => n.y);
      const pad = 120;
      const minX = Math.min(...xs) - pad;
      const minY = Math.min(...ys) - pad;
      canvas.setAttribute("viewBox", `${minX} ${minY} ${Math.max(...xs) - minX + pad} ${Math.max(...ys) - minY + pad}`);
      for (const e of edges.values()) {
        const a = nodes.get(e.source);
        const b = nodes.get(e.target);
        canvas.appendChild(svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y }, svg("title", {}, e.relation)));
      }
      for (const n of all) {
        const classes = ["node", "kind-" + n.kind.replace(/[^a-z]/g, "")];
        if (n.expanded) classes.push("expanded");
        const g = svg("g", { class: classes.join(" "), "data-id": n.id, "data-kind": n.kind, "data-expanded": n.expanded ? "true" : "false" },
          svg("circle", { cx: n.x, cy: n.y, r: n.kind === "sample" ? 11 : 8 }),
          svg("text", { x: n.x + 13, y: n.y + 4 }, shortText(n.label, n.kind === "sample" ? 16 : 36)),
          svg("title", {}, `${n.kind}: ${n.label}`));
        g.addEventListener("click", () => { select(n); expand(n); });
        canvas.appendChild(g);
      }
      stats.textContent = `${nodes.size} nodes, ${edges.size} edges`;
    }

    const root = { id: "sample:" + sha256, kind: "sample", label: sha256, sha256, expanded: false, depth: 0, x: 0, y: 0 };
    nodes.set(root.id, root);
    await expand(root);
  }

  // ---------- upload ----------

  function uploadPage() {
    const file = el("input", { id: "upload-file", name: "file", type: "file", required: "" });
    const sha = el("input", { id: "upload-sha256", name: "sha256", type: "text", spellcheck: "false",
      pattern: "[0-9a-fA-F]{64}", placeholder: "optional: the sample's SHA-256" });
    const sandbox = el("input", { id: "upload-sandbox", name: "sandbox", type: "text", maxlength: "64",
      placeholder: "optional: sandbox name for a sandbox report" });
    const result = el("div", { id: "upload-result" });
    const form = el("form", { class: "upload-form", id: "upload-form" },
      el("label", { for: "upload-file" }, "Log or report"), file,
      el("label", { for: "upload-sha256" }, "SHA-256"), sha,
      el("label", { for: "upload-sandbox" }, "Sandbox"), sandbox,
      el("span", {}), el("button", { type: "submit" }, "Upload and ingest"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!file.files.length) return;
      const data = new FormData();
      if (sha.value.trim()) data.append("sha256", sha.value.trim());
      if (sandbox.value.trim()) data.append("sandbox", sandbox.value.trim());
      data.append("file", file.files[0], file.files[0].name);
      clear(result);
      result.appendChild(el("p", { class: "muted" }, "Uploading and ingesting…"));
      try {
        const body = await (await request("/sandscope/ingest", { method: "POST", body: data })).json();
        clear(result);
        result.appendChild(el("h3", {}, "Created reports"));
        result.appendChild(el("ul", {}, (body.data || []).map((d) => {
          const sha256 = String(d.id).split("_")[0];
          return el("li", {}, el("a", { href: route("sample/" + encodeURIComponent(sha256)) }, String(d.id)));
        })));
        const warnings = (body.meta && body.meta.warnings) || [];
        if (warnings.length) result.appendChild(section("Notes", valueList(warnings)));
      } catch (error) {
        clear(result);
        result.appendChild(errorBox(error));
      }
    });
    show(el("h1", {}, "Upload a log"),
      el("p", { class: "muted" }, "Sysmon EVTX, XML or JSON-lines logs (optionally gzip/zip), or a CAPE/Cuckoo report."),
      form, result);
  }

  // ---------- router ----------

  function render() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, query] = hash.split("?", 2);
    const params = new URLSearchParams(query || "");
    const parts = path.split("/");
    if (parts[0] === "sample" && parts[1]) return samplePage(decodeURIComponent(parts[1]));
    if (parts[0] === "graph" && parts[1]) return graphPage(decodeURIComponent(parts[1]));
    if (parts[0] === "upload") return uploadPage();
    return searchPage(params);
  }

  initKeyForm();
  window.addEventListener("hashchange", render);
  render();
})();
