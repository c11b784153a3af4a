// Headless Chromium against `sandscope serve` (issues 7 and 19): search for a seed query,
// open the result, see the process tree and the DNS lookups, expand a pivot-graph node, and
// check that a log whose command line carries `<img src=x onerror=alert(1)>` shows that text
// literally and runs nothing. Issue 19: every value is a pivot that round-trips to a search
// finding its sample; search results say where they matched and sort by the API's orders; the
// sample page's header, Sigma and ATT&CK panels, the Compare view of a real CAPE run's two
// reports; a 20,001-process tree drawn lazily; the graph's zoom, filters and exports (the
// CLI's bytes); keyboard use; axe-core finds no serious or critical violation.
// Screenshots go to $ARTEFACTS_DIR (default tests/browser/artefacts).
//
// Environment: SANDSCOPE_BIN (default target/debug/sandscope), CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, createWriteStream, readFileSync, existsSync, cpSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const binary = process.env.SANDSCOPE_BIN || join(root, "target", "debug", "sandscope");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artefacts = resolve(process.env.ARTEFACTS_DIR || join(here, "artefacts"));
const startupTimeoutMs = Number(process.env.SANDSCOPE_STARTUP_TIMEOUT || "600") * 1000;
const API_KEY = "browser-suite-key-5d2f";
// The sample page's panel once its own content is drawn (the Summary tab first shows the first
// report while the merged summary loads).
const DRAWN = "#panel:not([data-content='preview'])";

mkdirSync(artefacts, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "sandscope-browser-"));
const logs = join(work, "logs");
const manifest = JSON.parse(
  execFileSync("python3", [join(root, "tests", "vt", "sysmon_fixtures.py"), logs], { encoding: "utf8" }),
);
// Issue 19's samples: 20,001 processes (the tree is drawn lazily, nothing cut silently) and
// Sigma hits at several levels (tests/browser/fixtures.py).
// Issue 17: logs uploaded while the suite runs (not ingested at start), so Livehunt rulesets made
// in the UI see new reports.
const extra = JSON.parse(execFileSync("python3", [join(here, "fixtures.py"), logs, join(work, "late")], { encoding: "utf8" }));
const lateLog = (name) => {
  const path = Object.keys(extra.late).find((p) => p.endsWith(name));
  return { path, sha256: extra.late[path] };
};
const bigTree = extra.big_tree;
// A real CAPE run (Assemblyline's wrapper: the guest's Sysmon EVTX and CAPE's lite.json), so
// one sample has two sandboxes' reports to compare. Needs ../shared/corpus.
const capeSha = "9393a56f957a93bc2af2aafc73421aaa1c372c7d9decf92a2734d1b4a8253fb2";
const capeRun = resolve(root, "..", "shared", "corpus", "cape", "CybercentreCanada_assemblyline-service-cape",
  "commit-6296081", "tests", "samples", capeSha);
const haveCape = existsSync(capeRun);
// Ingested as its own input: inside the logs folder, the run would take the whole folder in.
const capeCopy = join(work, "cape-run", capeSha);
if (haveCape) cpSync(capeRun, capeCopy, { recursive: true });
const axeSource = readFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");

function freePort() {
  return new Promise((ok, fail) => {
    const server = net.createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `sandscope serve --data <data> …storeArgs` on a free port, once healthy. */
async function startServer(data, storeArgs, logName) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(artefacts, logName);
  const out = createWriteStream(logFile);
  const child = spawn(binary, ["serve", "--data", data, "--listen", `127.0.0.1:${port}`, ...storeArgs,
    "--api-key", API_KEY], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  let exited = null;
  child.on("exit", (code) => { exited = code; });
  const deadline = Date.now() + startupTimeoutMs;
  for (;;) {
    if (exited !== null) throw new Error(`sandscope serve exited with ${exited}; see ${logFile}`);
    try {
      const r = await fetch(`${url}/api/v3/sandscope/health`);
      if (r.ok) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error("sandscope serve did not become healthy in time");
    await sleep(300);
  }
  return { url, child };
}

const results = [];
/** A step that needs data this checkout may not have: reported as SKIPPED with the reason. */
function skip(name, reason) {
  results.push([name, "skipped"]);
  console.log(`SKIP ${name} (${reason})`);
}
async function step(name, body) {
  try {
    await body();
    results.push([name, "ok"]);
    console.log(`ok   ${name}`);
  } catch (error) {
    results.push([name, "FAILED"]);
    console.log(`FAIL ${name}\n     ${String(error && error.stack || error).split("\n").join("\n     ")}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const { url, child } = await startServer(join(work, "data"), ["--ingest", logs, ...(haveCape ? [capeCopy] : [])], "server.log");
const tutanota = manifest.tutanota[0];
const graphExports = {};
let context;
try {
  // A fresh profile directory per run (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(join(work, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await context.newPage();
  const dialogs = [];
  const consoleProblems = [];
  page.on("dialog", async (dialog) => { dialogs.push(dialog.message()); await dialog.dismiss(); });
  // Chromium logs every non-2xx fetch as a console error; the suite provokes a 400 on purpose,
  // so only script errors and policy violations count.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleProblems.push(m.text());
  });
  page.on("pageerror", (e) => consoleProblems.push(String(e)));
  // The UI must work on an air-gapped network: nothing but this server (and blob: downloads).
  const foreignRequests = [];
  context.on("request", (r) => {
    const target = r.url();
    if (!target.startsWith(url) && !target.startsWith("blob:") && !target.startsWith("data:")) foreignRequests.push(target);
  });

  await step("enter the API key", async () => {
    await page.goto(url + "/");
    await page.fill("#api-key", API_KEY);
    await page.click("#key-form button");
    await page.waitForSelector("#key-state:has-text('key set')");
  });

  await step("the query help lists the query crate's own modifiers", async () => {
    const schema = await (await fetch(`${url}/api/v3/sandscope/schema`)).json();
    const names = schema.data.modifiers.map((m) => m.name);
    for (const name of ["behaviour_files", "behaviour_tags", "attack_tactic", "sigma_high", "fs"]) {
      assert(names.includes(name), `${name} in ${names}`);
    }
    await page.click(".help summary");
    await page.waitForSelector("#modifier-help dt");
    const terms = await page.$$eval("#modifier-help dt", (ds) => ds.map((d) => d.textContent));
    assert(terms.length === names.length, `${terms.length} help entries for ${names.length} modifiers`);
    assert(terms.some((t) => t.includes("behaviour_tag:")), `aliases are listed: ${terms}`);
  });

  await step("search a seed query and see every matching sample", async () => {
    await page.fill("#query", manifest.queries.tutanota);
    await page.click("#search-form button");
    await page.waitForSelector(".result");
    const ids = await page.$$eval(".result a.sha", (as) => as.map((a) => a.textContent));
    for (const sha of manifest.tutanota) assert(ids.includes(sha), `${sha} missing from ${ids}`);
    for (const sha of manifest.sihost) assert(!ids.includes(sha), `${sha} should not match`);
    const snippet = await page.textContent(".result .snippet");
    assert(snippet.includes("@tutanota.com"), `snippet shows the match: ${snippet}`);
    await page.screenshot({ path: join(artefacts, "01-search.png"), fullPage: true });
  });

  await step("search the sihost32 phrase query", async () => {
    await page.fill("#query", manifest.queries.sihost);
    await page.click("#search-form button");
    await page.waitForFunction((sha) => [...document.querySelectorAll(".result a.sha")]
      .some((a) => a.textContent === sha), manifest.sihost[0]);
    const ids = await page.$$eval(".result a.sha", (as) => as.map((a) => a.textContent));
    for (const sha of manifest.sihost) assert(ids.includes(sha), `${sha} missing from ${ids}`);
  });

  await step("a query error points at its column", async () => {
    await page.fill("#query", 'behaviour_files:"unterminated');
    await page.click("#search-form button");
    await page.waitForSelector(".error");
    const text = await page.textContent(".error");
    assert(text.includes("BadRequestError"), text);
  });

  await step("open a result: process tree with command lines, DNS with IPs", async () => {
    await page.fill("#query", manifest.queries.tutanota);
    await page.click("#search-form button");
    await page.click(`.result a.sha:text-is("${tutanota}")`);
    await page.waitForSelector(DRAWN + " .process-tree");
    const tree = await page.textContent(".process-tree");
    assert(tree.includes("vssadmin delete shadows"), `tree: ${tree}`);
    assert(tree.includes("invoice_1.exe"), `tree: ${tree}`);
    // The tree is collapsible: closing the root hides its child.
    const child = page.locator(".process-tree li > ul").first();
    assert(await child.isVisible(), "child visible when open");
    await page.click(".process-tree .toggle");
    assert(!(await child.isVisible()), "child hidden when collapsed");
    await page.click(".process-tree .toggle");
    const dns = await page.textContent("section:has(h3:text-is('DNS lookups'))");
    assert(dns.includes("mail.tutanota.com") && dns.includes("81.3.6.162"), `dns: ${dns}`);
    const tabs = await page.$$eval(".tabs button", (bs) => bs.map((b) => b.textContent));
    assert(tabs[0] === "Summary" && tabs.includes("Microsoft Sysinternals"), `tabs: ${tabs}`);
    await page.click(".tabs button:text-is('Microsoft Sysinternals')");
    await page.waitForSelector(DRAWN + " .process-tree");
    // Sections and labels come from the server's attribute table.
    const facts = await page.textContent("#panel [data-section='report']");
    assert(facts.includes("Sandbox") && facts.includes("Microsoft Sysinternals"), `report facts: ${facts}`);
    assert(await page.isVisible("#panel [data-section='processes'] h3:text-is('Processes created')"), "processes created");
    await page.screenshot({ path: join(artefacts, "02-sample.png"), fullPage: true });
  });

  await step("the sample page offers its MISP and STIX exports as downloads", async () => {
    await page.goto(`${url}/#/sample/${tutanota}`);
    await page.waitForSelector("#exports #export-misp");
    const exported = {};
    for (const format of ["misp", "stix"]) {
      const [download] = await Promise.all([page.waitForEvent("download"), page.click(`#export-${format}`)]);
      assert(download.suggestedFilename() === `${tutanota}.${format}.json`, `file name ${download.suggestedFilename()}`);
      exported[format] = JSON.parse(readFileSync(await download.path(), "utf8"));
    }
    const event = exported.misp.Event;
    assert(event && typeof event.uuid === "string" && Array.isArray(event.Object), "a MISP event (feed layout)");
    const files = event.Object.filter((o) => o.name === "file");
    assert(files.some((o) => (o.Attribute || []).some((a) => a.type === "sha256" && a.value === tutanota)),
      "the MISP event's file object carries the sample's SHA-256");
    const bundle = exported.stix;
    assert(bundle.type === "bundle" && String(bundle.id).startsWith("bundle--"), "a STIX bundle");
    const analyses = bundle.objects.filter((o) => o.type === "malware-analysis");
    assert(analyses.length > 0 && analyses.every((o) => o.spec_version === "2.1"),
      `STIX 2.1 objects with a malware-analysis (${analyses.length})`);
    assert(bundle.objects.some((o) => o.type === "file" && o.hashes && o.hashes["SHA-256"] === tutanota),
      "the STIX bundle's file carries the sample's SHA-256");
  });

  await step("pivot graph: expand a sample node", async () => {
    await page.click("#graph-link");
    await page.waitForSelector("#graph g.node");
    const count = async () => page.$$eval("#graph g.node", (gs) => gs.length);
    const before = await count();
    const others = await page.$$eval("#graph g.node[data-kind='sample'][data-expanded='false']",
      (gs) => gs.map((g) => g.getAttribute("data-id")));
    assert(others.length >= 2, `other tutanota samples are one hop away: ${others}`);
    await page.click(`#graph g.node[data-id="${others[0]}"] circle`);
    await page.waitForFunction((n) => document.querySelectorAll("#graph g.node").length > n, before);
    const after = await count();
    assert(after > before, `graph grew from ${before} to ${after}`);
    await page.screenshot({ path: join(artefacts, "03-graph.png"), fullPage: true });
  });

  await step("hostile command line is shown literally and runs nothing", async () => {
    await page.goto(`${url}/#/sample/${manifest.xss}`);
    await page.waitForSelector(DRAWN + " .process-tree");
    const text = await page.textContent("#panel");
    assert(text.includes(manifest.xss_payload), "the payload is visible as text");
    const images = await page.$$eval("img", (is) => is.length);
    assert(images === 0, `no <img> element was created (${images})`);
    await sleep(500);
    assert(dialogs.length === 0, `no dialog opened: ${dialogs}`);
    await page.screenshot({ path: join(artefacts, "04-xss.png"), fullPage: true });
  });

  await step("HTML report of the hostile log runs nothing either", async () => {
    const reportPage = await context.newPage();
    const reportDialogs = [];
    reportPage.on("dialog", async (d) => { reportDialogs.push(d.message()); await d.dismiss(); });
    await reportPage.setExtraHTTPHeaders({ "x-apikey": API_KEY });
    const id = encodeURIComponent(`${manifest.xss}_Microsoft Sysinternals`);
    const response = await reportPage.goto(`${url}/api/v3/file_behaviours/${id}/html`);
    assert(response.status() === 200, `status ${response.status()}`);
    const body = await reportPage.textContent("body");
    assert(body.includes(manifest.xss_payload), "payload shown as text");
    assert((await reportPage.$$eval("img", (is) => is.length)) === 0, "no <img> element");
    await sleep(500);
    assert(reportDialogs.length === 0, `no dialog: ${reportDialogs}`);
    await reportPage.screenshot({ path: join(artefacts, "05-html-report.png"), fullPage: true });
    await reportPage.close();
  });

  await step("upload a log through the form", async () => {
    await page.goto(`${url}/#/upload`);
    await page.setInputFiles("#upload-file", join(logs, "xss.xml"));
    await page.click("#upload-form button");
    await page.waitForSelector("#upload-result a");
    const created = await page.textContent("#upload-result a");
    assert(created.startsWith(`${manifest.xss}_`), `created ${created}`);
    await page.screenshot({ path: join(artefacts, "06-upload.png"), fullPage: true });
  });

  // ---------- issue 19 ----------

  const pivotLink = (sectionLabel, text) =>
    page.locator(`#panel section:has(h3:text-is("${sectionLabel}")) a.pivot`).filter({ hasText: text }).first();

  await step("a command line with quotes and backslashes pivots to a search that finds its sample", async () => {
    await page.goto(`${url}/#/sample/${tutanota}`);
    await page.waitForSelector(DRAWN + " .process-tree");
    // The summary spells the sample's path with its placeholder: "%SAMPLEPATH%\invoice_1.exe" /silent
    const link = pivotLink("Command executions", "invoice_1.exe");
    const shown = await link.textContent();
    assert(shown.includes("\\") && shown.includes("\""), `a value with a backslash and quotes: ${shown}`);
    // The parser's rules: inside "…", \\ is a backslash and \" a quote; inner quotes anchor.
    const escaped = shown.replace(/\\/g, "\\\\").replace(/"/g, "\\\"");
    const expected = `behaviour_command_executions:"\\"${escaped}\\""`;
    assert(await link.getAttribute("data-query") === expected, `query ${await link.getAttribute("data-query")} != ${expected}`);
    await link.click();
    await page.waitForSelector(".result a.sha");
    assert(await page.inputValue("#query") === expected, "the search box holds the pivot query");
    const ids = await page.$$eval(".result a.sha", (as) => as.map((a) => a.textContent));
    assert(ids.includes(tutanota), `the sample is found: ${ids}`);
    for (const sha of manifest.sihost) assert(!ids.includes(sha), `${sha} does not share the command line`);
  });

  await step("a written file's path pivots to every sample that wrote it", async () => {
    await page.goto(`${url}/#/sample/${tutanota}`);
    await page.waitForSelector(DRAWN + " .process-tree");
    const link = pivotLink("Files written", "HOW_TO_DECRYPT");
    const query = await link.getAttribute("data-query");
    assert(query.startsWith("behaviour_files:\"\\\"") && query.includes("\\\\Desktop\\\\"), `escaped path: ${query}`);
    // Focusing the value asks how many samples share it.
    await link.focus();
    // This link's own count (the pointer may rest on another pivot, which then counts too).
    const count = link.locator("xpath=following-sibling::span[contains(concat(' ', @class, ' '), ' count ')]");
    await count.waitFor();
    assert((await count.textContent()).trim() === `${manifest.tutanota.length} samples`, `count: ${await count.textContent()}`);
    await link.click();
    await page.waitForSelector(".result a.sha");
    await page.waitForFunction((n) => document.querySelectorAll(".result a.sha").length >= n, manifest.tutanota.length);
    const ids = await page.$$eval(".result a.sha", (as) => as.map((a) => a.textContent));
    for (const sha of manifest.tutanota) assert(ids.includes(sha), `${sha} wrote the same note: ${ids}`);
    assert(ids.length === manifest.tutanota.length, `only the samples that wrote it: ${ids}`);
  });

  await step("search results say where they matched, with dates, sandboxes and sorting", async () => {
    await page.goto(`${url}/#/search?q=${encodeURIComponent(manifest.queries.tutanota)}`);
    await page.waitForSelector(".result .snippet");
    // Snippet labels come from the attribute table: the tutanota name is in written files.
    await page.waitForFunction(() => [...document.querySelectorAll(".result .snippet .field")]
      .some((f) => f.textContent.includes("Files written")));
    const facts = await page.textContent(".result .facts");
    assert(/first seen \d{4}-\d\d-\d\d/.test(facts) && facts.includes("Microsoft Sysinternals"), `facts: ${facts}`);
    const orders = await page.$$eval("#order option", (os) => os.map((o) => o.value).filter(Boolean));
    const api = await (await fetch(`${url}/api/v3/intelligence/search?query=x`, { headers: { "x-apikey": API_KEY } })).json();
    assert(orders.length === 2 * api.meta.allowed_orders.length, `one option per order and direction: ${orders}`);
    const order = async (value) => {
      await page.selectOption("#order", value);
      await page.waitForFunction((v) => location.hash.includes("order=" + encodeURIComponent(v)) && document.querySelector(".result"), value);
      await page.waitForSelector(".result a.sha");
      return page.$$eval(".result a.sha", (as) => as.map((a) => a.textContent));
    };
    const ascending = await order("first_submission_date+");
    assert(JSON.stringify(ascending) === JSON.stringify(manifest.tutanota), `oldest first: ${ascending}`);
    const descending = await order("first_submission_date-");
    assert(JSON.stringify(descending) === JSON.stringify([...manifest.tutanota].reverse()), `newest first: ${descending}`);
    assert((await page.textContent("#total-hits")).startsWith("3 matching samples"), "exact total");
    await page.screenshot({ path: join(artefacts, "07-search-results.png"), fullPage: true });
  });

  await step("a query error shows a caret under the column the parser named", async () => {
    const bad = "behaviour_files:x AND nosuchmodifier:y";
    await page.goto(`${url}/#/search?q=${encodeURIComponent(bad)}`);
    await page.waitForSelector(".error .query-caret");
    const caret = (await page.textContent(".error .query-caret")).split("\n");
    assert(caret[0] === bad, caret[0]);
    assert(caret[1].indexOf("^") === bad.indexOf("nosuchmodifier"), `caret under the modifier: ${JSON.stringify(caret)}`);
  });

  await step("sample header: sandboxes, dates, Sigma badges by level, behash; Sigma and ATT&CK panels", async () => {
    await page.goto(`${url}/#/sample/${extra.sigma}`);
    await page.waitForSelector(DRAWN + " #sigma-panel");
    const header = await page.textContent("#sample-header");
    const report = (await (await fetch(`${url}/api/v3/files/${extra.sigma}/behaviours`, { headers: { "x-apikey": API_KEY } })).json()).data[0].attributes;
    assert(header.includes("Microsoft Sysinternals") && header.includes(report.behash), `header: ${header}`);
    assert(header.includes(new Date(report.analysis_date * 1000).toISOString().slice(0, 19)), `first seen in header: ${header}`);
    const hits = report.sigma_analysis_results || [];
    assert(new Set(hits.map((h) => h.rule_level)).size >= 2, "the fixture's Sigma hits span levels");
    const badges = await page.$$eval("#sigma-badges .badge", (bs) => bs.map((b) => b.textContent));
    for (const level of ["critical", "high", "medium", "low"]) {
      const n = new Set(hits.filter((h) => h.rule_level === level).map((h) => h.rule_id)).size;
      assert(badges.includes(`${n} ${level}`), `${n} ${level} in ${badges}`);
    }
    const levels = await page.$$eval("#sigma-panel .sigma-hit", (ls) => ls.map((l) => l.dataset.level));
    const rank = (l) => ["critical", "high", "medium", "low", "informational"].indexOf(l);
    assert(levels.length === hits.length, `${levels.length} hits shown of ${hits.length}`);
    assert(levels.every((l, i) => i === 0 || rank(levels[i - 1]) <= rank(l)), `most severe first: ${levels}`);
    await page.click("#sigma-panel .sigma-hit summary");
    const detail = await page.textContent("#sigma-panel .sigma-hit .sigma-detail");
    assert(detail.includes("CommandLine") || detail.includes("Image"), `matched fields: ${detail}`);
    const tactics = await page.$$eval("#attack-panel .tactic h4", (hs) => hs.map((h) => h.textContent));
    assert(tactics.length > 0, "techniques grouped by tactic");
    const technique = page.locator("#attack-panel a.pivot").first();
    assert((await technique.getAttribute("data-query")).startsWith("attack_technique:"), "a technique pivots on attack_technique");
    await page.screenshot({ path: join(artefacts, "08-sample-header.png"), fullPage: false });
  });

  await step("tabs: arrow keys move between them and the tab is in the URL", async () => {
    await page.goto(`${url}/#/sample/${tutanota}`);
    await page.waitForSelector(".tabs button[aria-selected='true']");
    await page.focus(".tabs button[aria-selected='true']");
    await page.keyboard.press("ArrowRight");
    const selected = await page.textContent(".tabs button[aria-selected='true']");
    assert(selected === "Microsoft Sysinternals", `selected ${selected}`);
    assert(await page.evaluate(() => document.activeElement.getAttribute("role")) === "tab", "focus follows");
    const hashParams = () => new URLSearchParams(new URL(page.url()).hash.split("?")[1] || "");
    assert(hashParams().get("tab") === "Microsoft Sysinternals", page.url());
    await page.reload();
    await page.waitForSelector(DRAWN + " .process-tree");
    assert(await page.textContent(".tabs button[aria-selected='true']") === "Microsoft Sysinternals", "deep link reopens the tab");
  });

  if (haveCape) {
    await step("Compare: a real CAPE run's Sysmon and CAPE reports side by side, with their overlap", async () => {
      await page.goto(`${url}/#/sample/${capeSha}`);
      await page.waitForSelector(".tabs button");
      const tabs = await page.$$eval(".tabs button", (bs) => bs.map((b) => b.textContent));
      assert(tabs.includes("Compare") && tabs.length >= 4, `summary, two sandboxes, compare: ${tabs}`);
      await page.click(".tabs button:text-is('Compare')");
      await page.waitForSelector("#compare-totals");
      const left = await page.inputValue("#compare-left");
      const right = await page.inputValue("#compare-right");
      const diff = (await (await fetch(`${url}/api/v3/sandscope/compare/${encodeURIComponent(left)}/${encodeURIComponent(right)}`,
        { headers: { "x-apikey": API_KEY } })).json()).data;
      const both = diff.attributes.reduce((n, a) => n + a.both.length, 0);
      assert(both > 0, "the two reports overlap");
      const totals = await page.textContent("#compare-totals");
      assert(totals.startsWith(`${both} seen by both`), `totals: ${totals}`);
      const shownBoth = await page.$$eval(".diff-both li", (ls) => ls.length);
      assert(shownBoth === both, `${shownBoth} shared items listed of ${both}`);
      assert(new URLSearchParams(new URL(page.url()).hash.split("?")[1]).get("tab") === "Compare", page.url());
      await page.screenshot({ path: join(artefacts, "09-compare.png"), fullPage: true });
    });
    await step("a result's tags are links to the samples with the tag (real CAPE tags)", async () => {
      await page.goto(`${url}/#/search?q=${encodeURIComponent(capeSha)}`);
      await page.waitForSelector(".result .tags a.tag");
      const tag = page.locator(".result .tags a.tag").first();
      const name = await tag.textContent();
      await tag.click();
      await page.waitForFunction((t) => document.querySelector("#query") && document.querySelector("#query").value.includes(t), name);
      await page.waitForSelector(".result a.sha");
      const ids = await page.$$eval(".result a.sha", (as) => as.map((a) => a.textContent));
      assert(ids.includes(capeSha), `the tag ${name} finds the sample: ${ids}`);
    });
  } else {
    skip("Compare: a real CAPE run's two reports", "needs ../shared/corpus (the CAPE runs)");
    skip("a result's tags are links", "needs ../shared/corpus (the CAPE runs)");
  }

  await step("a 20,001-process tree: first screen under a second, says what it has not drawn, offers the rest", async () => {
    await page.goto(`${url}/#/`);
    await page.waitForSelector("#search-form");
    const started = Date.now();
    await page.goto(`${url}/#/sample/${bigTree}?tab=Microsoft%20Sysinternals`);
    await page.waitForSelector(DRAWN + " .process-tree .toggle");
    const elapsed = Date.now() - started;
    const count = await page.textContent("#panel .tree-count");
    const truncatedNote = await page.$$eval("#panel .note", (ns) => ns.map((n) => n.textContent).join(" "));
    const kept = Number(count.replace(/\D/g, ""));
    // Either the whole tree is in the report, or the report says how much the builder cut.
    assert(kept === 20001 || /Process tree: [\d,]+ more not kept/.test(truncatedNote), `count ${count}; note ${truncatedNote}`);
    const fetches = await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((r) => r.name.includes("/api/v3/files/"))
      .map((r) => `${r.name.split("/").pop().split("?")[0]} ${Math.round(r.duration)} ms ${Math.round(r.transferSize / 1024)} KiB`));
    console.log(`     first screen of the ${kept}-process tree in ${elapsed} ms (${fetches.slice(-3).join("; ")})`);
    assert(elapsed < 1000, `first screen in ${elapsed} ms`);
    const drawn = await page.$$eval("#panel .process-tree li", (ls) => ls.length);
    assert(drawn < 2000, `only the first chunks are drawn (${drawn})`);
    const more = page.locator("#panel .process-tree button.more").first();
    const label = await more.textContent();
    const said = /Show ([\d,]+) more \(([\d,]+) of ([\d,]+) child processes shown\)/.exec(label);
    assert(said && Number(said[2].replace(/,/g, "")) < Number(said[3].replace(/,/g, "")), `says what is not drawn: ${label}`);
    await more.click();
    await page.waitForFunction((n) => document.querySelectorAll("#panel .process-tree li").length > n, drawn);
    await page.evaluate(() => document.querySelector("#panel .tree-count").scrollIntoView());
    await page.screenshot({ path: join(artefacts, "10-big-tree.png") });
    const top = await page.evaluate(() => window.scrollY);
    await page.mouse.wheel(0, 1500);
    await page.waitForFunction((y) => window.scrollY > y, top);
  });

  // Issue 17 in the UI: Livehunt rulesets made from the search box and from a Sigma hit,
  // notified by uploads through the UI's own upload page. Before the graph step: its downloads
  // are compared with the CLI's graph of the final data directory.
  const apiJson = async (path, method) => {
    const response = await fetch(`${url}/api/v3${path}`, { method: method || "GET", headers: { "x-apikey": API_KEY } });
    return { status: response.status, body: await response.json().catch(() => null) };
  };
  const notifiedShas = async (rulesetId) => {
    const { body } = await apiJson(`/intelligence/hunting_notification_files?limit=40&filter=${encodeURIComponent(`ruleset_id:${rulesetId}`)}`);
    return (body.data || []).map((f) => f.id);
  };
  const uploadThroughUi = async (log) => {
    await page.goto(`${url}/#/upload`);
    await page.setInputFiles("#upload-file", log.path);
    await page.click("#upload-form button[type='submit']");
    await page.waitForSelector(`#upload-result li a:has-text("${log.sha256}")`, { timeout: 120000 });
  };
  const submitRuleset = async (name) => {
    await page.fill("#ruleset-name", name);
    await page.click("#ruleset-form button[type='submit']");
    await page.waitForSelector("#ruleset-created");
    await page.waitForSelector(`#rulesets-table tr.ruleset:has(th:text-is("${name}"))`);
    return page.getAttribute(`#rulesets-table tr.ruleset:has(th:text-is("${name}"))`, "data-id");
  };
  let queryRuleset = null;
  let sigmaRuleset = null;
  const tutanota7 = lateLog("tutanota-7.xml");
  const sigmaLate = lateLog("sigma-late.xml");

  await step("Livehunt: a query ruleset made from the search box notifies on a matching upload, and only on it", async () => {
    await page.goto(`${url}/#/search?q=${encodeURIComponent(manifest.queries.tutanota)}`);
    await page.waitForSelector("#make-ruleset");
    await page.click("#make-ruleset");
    await page.waitForSelector("#ruleset-form[data-ready='true']");
    assert(await page.inputValue("#ruleset-rules") === manifest.queries.tutanota, "the form holds the search box's query");
    assert(await page.inputValue("#ruleset-language") === "query", "a query ruleset");
    queryRuleset = await submitRuleset("tutanota ransom notes");
    const { body } = await apiJson(`/intelligence/hunting_rulesets/${queryRuleset}`);
    const a = body.data.attributes;
    assert(a.rule_language === "query" && a.rules === manifest.queries.tutanota && a.enabled === true, JSON.stringify(a));
    // Samples stored before the ruleset existed are not notified; the new upload is.
    assert((await notifiedShas(queryRuleset)).length === 0, "nothing notified before the upload");
    await uploadThroughUi(tutanota7);
    assert(JSON.stringify(await notifiedShas(queryRuleset)) === JSON.stringify([tutanota7.sha256]),
      `exactly the upload is notified: ${await notifiedShas(queryRuleset)}`);
    await page.goto(`${url}/#/notifications`);
    const item = `.notification[data-ruleset="${queryRuleset}"]`;
    await page.waitForSelector(item);
    const text = await page.textContent(item);
    assert(text.includes(tutanota7.sha256) && text.includes("tutanota ransom notes"), `notification: ${text}`);
    assert(await page.getAttribute(`${item} a.sha`, "href") === `#/sample/${tutanota7.sha256}`, "links to the sample");
    assert(/notified \d{4}-\d\d-\d\dT/.test(text), `dated: ${text}`);
  });

  await step("Livehunt: a Sigma hit on the sample page becomes a Sigma ruleset holding that rule's YAML", async () => {
    const title = "Shadow Copies Deletion Using Operating Systems Utilities";
    await page.goto(`${url}/#/sample/${extra.sigma}`);
    await page.waitForSelector(DRAWN + " #sigma-panel");
    const hit = page.locator(`#sigma-panel .sigma-hit:has(.rule-title:text-is("${title}"))`).first();
    await hit.locator("summary").click();
    await hit.locator("a.make-sigma-ruleset").click();
    await page.waitForSelector("#ruleset-form[data-ready='true']");
    assert(await page.inputValue("#ruleset-language") === "sigma", "a Sigma ruleset");
    const yaml = await page.inputValue("#ruleset-rules");
    assert(yaml.includes("id: c947b146-0abc-4c87-9c64-b17e9d7274a2") && yaml.includes("detection:") && yaml.includes(title),
      `the rule's own YAML: ${yaml.slice(0, 300)}`);
    sigmaRuleset = await submitRuleset(await page.inputValue("#ruleset-name"));
    const { body } = await apiJson(`/intelligence/hunting_rulesets/${sigmaRuleset}`);
    assert(body.data.attributes.rule_language === "sigma" && body.data.attributes.number_of_rules === 1, JSON.stringify(body.data.attributes));
    assert((await notifiedShas(sigmaRuleset)).length === 0, "nothing notified before the upload");
    await uploadThroughUi(sigmaLate);
    assert(JSON.stringify(await notifiedShas(sigmaRuleset)) === JSON.stringify([sigmaLate.sha256]),
      `the upload doing the same is notified: ${await notifiedShas(sigmaRuleset)}`);
  });

  await step("Livehunt notifications: filter by ruleset, delete one", async () => {
    await page.goto(`${url}/#/notifications`);
    await page.waitForSelector(`.notification[data-ruleset="${sigmaRuleset}"]`);
    await page.waitForSelector(`#notification-ruleset option[value="${queryRuleset}"]`, { state: "attached" });
    await page.screenshot({ path: join(artefacts, "13-notifications.png"), fullPage: true });
    await page.selectOption("#notification-ruleset", queryRuleset);
    await page.waitForFunction((id) => location.hash.includes(`ruleset=${id}`) && document.querySelector("#notification-count")
      && !document.querySelector("#notification-count").textContent.startsWith("Loading"), queryRuleset);
    const rulesets = await page.$$eval(".notification", (ls) => ls.map((l) => l.dataset.ruleset));
    assert(rulesets.length === 1 && rulesets[0] === queryRuleset, `filtered: ${rulesets}`);
    await page.click(".notification .notification-delete");
    assert(await page.textContent(".notification .notification-delete") === "Really delete?", "asks before deleting");
    await page.click(".notification .notification-delete");
    await page.waitForSelector(".notification", { state: "detached" });
    assert((await notifiedShas(queryRuleset)).length === 0, "deleted on the server");
    assert((await notifiedShas(sigmaRuleset)).length === 1, "the other ruleset's notification stays");
  });

  await step("Livehunt: a disabled ruleset does not notify; delete removes it", async () => {
    await page.goto(`${url}/#/rulesets`);
    const row = `#rulesets-table tr.ruleset[data-id="${queryRuleset}"]`;
    await page.waitForSelector(row);
    await page.screenshot({ path: join(artefacts, "14-rulesets.png"), fullPage: true });
    await page.uncheck(`${row} input.ruleset-enabled`);
    await page.waitForFunction(() => !document.querySelector("input.ruleset-enabled:disabled"));
    const { body } = await apiJson(`/intelligence/hunting_rulesets/${queryRuleset}`);
    assert(body.data.attributes.enabled === false, "disabled on the server");
    await uploadThroughUi(lateLog("tutanota-8.xml"));
    assert((await notifiedShas(queryRuleset)).length === 0, "a disabled ruleset never notifies");
    await page.goto(`${url}/#/rulesets`);
    await page.waitForSelector(row);
    assert(!(await page.isChecked(`${row} input.ruleset-enabled`)), "shown disabled");
    await page.click(`${row} .ruleset-delete`);
    await page.click(`${row} .ruleset-delete`);
    await page.waitForSelector(row, { state: "detached" });
    assert((await apiJson(`/intelligence/hunting_rulesets/${queryRuleset}`)).status === 404, "gone from the server");
    // The list is redrawn from the server: the other ruleset is still in it.
    await page.waitForSelector(`#rulesets-table tr.ruleset[data-id="${sigmaRuleset}"]`);
    assert(!(await page.$(row)), "the deleted ruleset is not redrawn");
  });

  await step("ATT&CK panel: each technique lists its Sigma rules and the events they matched", async () => {
    await page.goto(`${url}/#/sample/${extra.sigma}`);
    await page.waitForSelector(DRAWN + " #attack-panel");
    const { body } = await apiJson(`/files/${extra.sigma}/behaviour_summary`);
    const hits = body.data.sigma_analysis_results;
    const shadow = hits.find((h) => h.rule_id === "c947b146-0abc-4c87-9c64-b17e9d7274a2");
    const signature = page.locator(".technique-signature:has(a.pivot:text-is(\"Shadow Copies Deletion Using Operating Systems Utilities\"))").first();
    const events = await signature.locator(".technique-event").allTextContents();
    assert(events.length === shadow.match_context.length, `${events.length} events shown of ${shadow.match_context.length}`);
    assert(events.some((e) => e.includes("vssadmin.exe delete shadows /all /quiet")), `the matched event: ${events}`);
    const withEvents = await page.$$eval("#attack-panel .technique-signature", (ls) => ls.filter((l) => l.querySelector(".technique-event")).length);
    const total = await page.$$eval("#attack-panel .technique-signature", (ls) => ls.length);
    assert(withEvents === total, `every Sigma signature lists its events (${withEvents} of ${total})`);
    await page.screenshot({ path: join(artefacts, "15-attack-events.png"), fullPage: false });
  });

  await step("the Summary tab of the 20,001-process sample does not wait for the merged summary", async () => {
    await page.goto(`${url}/#/`);
    await page.waitForSelector("#search-form");
    const started = Date.now();
    await page.goto(`${url}/#/sample/${bigTree}`);
    await page.waitForSelector("#panel .process-tree .toggle");
    const firstScreen = Date.now() - started;
    // Read the panel's state and its note in one step: the merged summary may replace the
    // preview between two separate reads, and then the note is gone.
    const [preview, note] = await page.$eval("#panel", (p) => [p.dataset.content, p.querySelector("#summary-pending")?.textContent ?? ""]);
    await page.waitForSelector("#panel[data-content='summary'] .process-tree .toggle", { timeout: 60000 });
    const merged = Date.now() - started;
    console.log(`     Summary tab: first screen in ${firstScreen} ms (${preview}), merged summary drawn at ${merged} ms`);
    // The one-second acceptance is the deep-link step above; this tab shares the 2 cores with the
    // merged summary's request, so it gets a looser bound (the figure is printed for the note).
    assert(firstScreen < 3000, `first screen in ${firstScreen} ms`);
    if (preview === "preview") assert(note.includes("Microsoft Sysinternals") && note.includes("merged summary"), `says what it shows: ${note}`);
    assert(!(await page.$("#summary-pending")), "the note goes with the preview");
  });

  await step("graph: zoom, filter by type, legend, drag, and downloads in the CLI's formats", async () => {
    await page.goto(`${url}/#/graph/${tutanota}`);
    await page.waitForSelector("#graph g.node");
    const viewBox = () => page.getAttribute("#graph", "viewBox");
    const before = await viewBox();
    await page.click("#zoom-in");
    const zoomed = await viewBox();
    assert(Number(zoomed.split(" ")[2]) < Number(before.split(" ")[2]), `zoomed in: ${before} -> ${zoomed}`);
    const legend = await page.textContent("#graph-legend");
    const kinds = await page.$$eval("#graph g.node", (gs) => [...new Set(gs.map((g) => g.dataset.kind))]);
    for (const kind of kinds) assert(legend.includes(kind), `${kind} in legend ${legend}`);
    const domains = await page.$$eval("#graph g.node[data-kind='domain']", (gs) => gs.length);
    assert(domains > 0, "domain nodes");
    await page.uncheck("#filter-domain");
    assert(await page.$$eval("#graph g.node[data-kind='domain']", (gs) => gs.length) === 0, "domains hidden");
    assert(page.url().includes("hide=domain"), page.url());
    await page.check("#filter-domain");
    const node = page.locator("#graph g.node[data-kind='domain'] circle").first();
    const cx = Number(await node.getAttribute("cx"));
    const box = await node.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + 80, box.y + 40, { steps: 5 });
    await page.mouse.up();
    const moved = Number(await page.locator(`#graph g.node[data-kind='domain'] circle`).first().getAttribute("cx"));
    assert(Math.abs(moved - cx) > 1, `dragged from ${cx} to ${moved}`);
    // An indicator expands to the samples its search finds: every tutanota run contacted this domain.
    await page.click("#graph g.node[data-id='domain:mail.tutanota.com'] circle");
    await page.waitForSelector("#graph g.node[data-id='domain:mail.tutanota.com'][data-expanded='true']");
    const samples = await page.$$eval("#graph g.node[data-kind='sample']", (gs) => gs.map((g) => g.dataset.id));
    for (const sha of manifest.tutanota) assert(samples.includes("sample:" + sha), `${sha} in ${samples}`);
    assert(await page.textContent("#graph-side").then((t) => t.includes("mail.tutanota.com")), "the side panel names the node");
    for (const format of ["json", "dot", "graphml"]) {
      const [download] = await Promise.all([page.waitForEvent("download"), page.click(`#graph-export-${format}`)]);
      assert(download.suggestedFilename() === `${tutanota}.graph.${format}`, download.suggestedFilename());
      graphExports[format] = readFileSync(await download.path(), "utf8");
    }
    assert(JSON.parse(graphExports.json).nodes.length > 0, "a JSON graph");
    assert(graphExports.dot.startsWith("digraph") || graphExports.dot.includes("graph"), "a DOT graph");
    assert(graphExports.graphml.includes("<graphml"), "a GraphML graph");
    await page.screenshot({ path: join(artefacts, "11-graph-tools.png"), fullPage: true });
  });

  await step("keyboard: a graph node expands with Enter, tree rows move with the arrows", async () => {
    await page.goto(`${url}/#/graph/${tutanota}`);
    await page.waitForSelector("#graph g.node[data-kind='sample'][data-expanded='false']");
    const before = await page.$$eval("#graph g.node", (gs) => gs.length);
    await page.focus("#graph g.node[data-kind='sample'][data-expanded='false']");
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => document.querySelectorAll("#graph g.node").length > n, before);
    assert(page.url().includes("expanded="), `expanded nodes in the URL: ${page.url()}`);
    await page.goto(`${url}/#/sample/${tutanota}`);
    await page.waitForSelector(DRAWN + " .process-tree .toggle");
    await page.focus("#panel .process-tree .toggle");
    const expanded = () => page.getAttribute("#panel .process-tree .toggle", "aria-expanded");
    await page.keyboard.press("ArrowLeft");
    assert(await expanded() === "false", "Left closes");
    assert(!(await page.locator(".process-tree li > ul").first().isVisible()), "children hidden");
    await page.keyboard.press("ArrowRight");
    assert(await expanded() === "true", "Right opens");
  });

  const axeCheck = async (name, path, ready) => {
    await step(`axe-core: no serious or critical violation on the ${name} page`, async () => {
      await page.goto(url + path);
      await page.waitForSelector(ready);
      await page.evaluate(axeSource);
      const found = await page.evaluate(async () => {
        const result = await window.axe.run(document, { resultTypes: ["violations"] });
        return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")})`);
      });
      assert(found.length === 0, found.join("\n"));
    });
  };
  await axeCheck("search", `/#/search?q=${encodeURIComponent(manifest.queries.tutanota)}`, ".result .snippet");
  await axeCheck("sample", `/#/sample/${tutanota}`, DRAWN + " .process-tree");
  await axeCheck("graph", `/#/graph/${tutanota}`, "#graph g.node");
  await axeCheck("rulesets", "/#/rulesets", "#rulesets-table");
  await axeCheck("notifications", "/#/notifications", ".notification");
  await page.emulateMedia({ colorScheme: "dark" });
  await axeCheck("sample (dark theme)", `/#/sample/${extra.sigma}`, DRAWN + " #sigma-panel");
  await page.emulateMedia({ colorScheme: "light" });

  await step("dark theme follows the system setting", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.goto(`${url}/#/sample/${tutanota}`);
    await page.waitForSelector(DRAWN + " .process-tree");
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert(background === "rgb(21, 25, 30)", `dark background: ${background}`);
    await page.screenshot({ path: join(artefacts, "12-sample-dark.png"), fullPage: false });
    await page.emulateMedia({ colorScheme: "light" });
  });

  await step("no request leaves the server's origin", async () => {
    assert(foreignRequests.length === 0, foreignRequests.join("\n"));
  });

  await step("no script errors or CSP violations", async () => {
    assert(consoleProblems.length === 0, consoleProblems.join("\n"));
  });

  // Issue 19's graph at 500 nodes, on the >10,000-sample store below: a sample's graph (the
  // server gives up to 200 nodes) with other samples of it expanded (a shared deep link), until
  // it holds at least 500 nodes. Zoom, a type filter and one more expansion are timed until the
  // next frame is painted; panning's frame times are recorded. Bounds are generous (a shared
  // 2-core machine); the figures are printed.
  async function graphAt500(base) {
    const headers = { "x-apikey": API_KEY };
    const search = await (await fetch(`${base}/api/v3/intelligence/search?query=sandbox_name:microsoft&limit=1`, { headers })).json();
    const rootSha = search.data[0].id;
    const graphOf = async (sha) => (await (await fetch(`${base}/api/v3/sandscope/graph/${sha}`, { headers })).json()).data;
    const ids = new Set();
    const first = await graphOf(rootSha);
    first.nodes.forEach((n) => ids.add(n.id));
    const others = first.nodes.filter((n) => n.kind === "sample" && n.sha256 !== rootSha).map((n) => n.sha256);
    const expanded = [];
    for (const sha of others) {
      if (ids.size >= 520) break;
      (await graphOf(sha)).nodes.forEach((n) => ids.add(n.id));
      expanded.push(sha);
    }
    assert(ids.size >= 500, `the store's graph around ${rootSha} reaches ${ids.size} nodes`);
    let started = Date.now();
    await page.goto(`${base}/#/graph/${rootSha}?expanded=${expanded.join(",")}`);
    await page.waitForFunction((n) => /^(\d+) nodes/.test((document.querySelector("#graph-stats") || {}).textContent || "")
      && Number(/^(\d+) nodes/.exec(document.querySelector("#graph-stats").textContent)[1]) >= n, ids.size, { timeout: 120000 });
    const renderMs = Date.now() - started;
    const drawn = await page.$$eval("#graph g.node", (gs) => gs.length);
    assert(drawn >= 500, `${drawn} nodes drawn`);
    // One interaction, timed from the input to the second animation frame after it.
    const timed = (selector) => page.evaluate(async (sel) => {
      const t = performance.now();
      document.querySelector(sel).click();
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return performance.now() - t;
    }, selector);
    const zoomMs = await timed("#zoom-in");
    const filterMs = await timed("#filter-path");
    assert(await page.$$eval("#graph g.node[data-kind='path']", (gs) => gs.length) === 0, "paths hidden");
    await timed("#filter-path");
    // Panning: frame intervals while the background is dragged.
    await page.evaluate(() => {
      window.__frames = [];
      let last = performance.now();
      const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__frames.length < 400) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    });
    const box = await page.locator("#graph").boundingBox();
    await page.mouse.move(box.x + 5, box.y + 5);
    await page.mouse.down();
    await page.mouse.move(box.x + 200, box.y + 150, { steps: 30 });
    await page.mouse.up();
    const frames = await page.evaluate(() => window.__frames.slice(1));
    const worstFrame = Math.max(...frames);
    const before = await page.$$eval("#graph g.node", (gs) => gs.length);
    started = Date.now();
    await page.focus("#graph g.node[data-kind='sample'][data-expanded='false']");
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => document.querySelectorAll("#graph g.node").length > n, before, { timeout: 60000 });
    const expandMs = Date.now() - started;
    const after = await page.$$eval("#graph g.node", (gs) => gs.length);
    console.log(`     graph of ${drawn} nodes (root + ${expanded.length} expanded samples, a deep link): drawn in ${renderMs} ms; zoom ${zoomMs.toFixed(0)} ms, filter ${filterMs.toFixed(0)} ms, ` +
      `worst frame while panning ${worstFrame.toFixed(0)} ms (${frames.length} frames), expand to ${after} nodes ${expandMs} ms`);
    await page.screenshot({ path: join(artefacts, "17-graph-500.png"), fullPage: false });
    assert(zoomMs < 1000 && filterMs < 1000, `zoom ${zoomMs} ms, filter ${filterMs} ms`);
    assert(worstFrame < 1000, `worst frame ${worstFrame} ms`);
    assert(expandMs < 10000, `expand ${expandMs} ms`);
  }

  // Issue 19's honest total: a store of more than 10,000 samples, made by the store benchmark's
  // synthetic report generator (real seed reports mutated, stored through the store's own
  // ingest), served by a second real server; a query hitting every sample says "10,000+".
  await step("a query hitting more than 10,000 samples says \"10,000+\"; a 500-node graph stays responsive", async () => {
    const bigDir = join(work, "big");
    const reports = 10500;
    const started = Date.now();
    execFileSync(binary, ["bench", "store", "--reports", String(reports), "--dir", bigDir, "--runs", "1",
      "--logs", join(root, "tests", "data", "seed", "ransomware_tutanota_sysmon.xml"),
      "--logs", join(root, "tests", "data", "seed", "coinminer_sihost32_sysmon.xml"),
      "--query", "sandbox_name:microsoft"], { stdio: ["ignore", "ignore", "ignore"] });
    console.log(`     ${reports} synthetic reports stored in ${Date.now() - started} ms`);
    const big = await startServer(join(bigDir, "store"), [], "server-10k.log");
    try {
      await page.goto(`${big.url}/`);
      await page.fill("#api-key", API_KEY);
      await page.click("#key-form button");
      await page.goto(`${big.url}/#/search?q=${encodeURIComponent("sandbox_name:microsoft")}`);
      await page.waitForSelector("#total-hits");
      const meta = (await (await fetch(`${big.url}/api/v3/intelligence/search?query=sandbox_name:microsoft&limit=20`,
        { headers: { "x-apikey": API_KEY } })).json()).meta;
      assert(meta.total_hits_relation === "gte" && meta.total_hits >= 10000 && meta.total_hits <= reports, JSON.stringify(meta));
      const total = await page.textContent("#total-hits");
      assert(total.startsWith("10,000+ matching samples"), `total: ${total} (API: ${meta.total_hits} ${meta.total_hits_relation})`);
      assert(await page.$$eval(".result a.sha", (as) => as.length) === 20, "a full first page");
      await page.screenshot({ path: join(artefacts, "16-search-10000-plus.png"), fullPage: false });
      await graphAt500(big.url);
    } finally {
      const exited = new Promise((ok) => big.child.once("exit", ok));
      big.child.kill("SIGTERM");
      await Promise.race([exited, sleep(30000)]);
      // ~70 MB of reports and their JSON-lines copies: not kept.
      rmSync(bigDir, { recursive: true, force: true });
    }
  });
} finally {
  if (context) await context.close();
  const exited = new Promise((ok) => child.once("exit", ok));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(30000)]);
}

// The graph downloads must be what `sandscope graph` writes; the CLI opens the data directory
// itself, so this runs once the server has stopped.
if (Object.keys(graphExports).length) {
  await step("graph downloads are byte for byte the CLI's `sandscope graph` exports", async () => {
    for (const format of ["json", "dot", "graphml"]) {
      const cli = execFileSync(binary, ["graph", tutanota, "--data", join(work, "data"), "--format", format], { encoding: "utf8" });
      assert(cli === graphExports[format], `${format}: the download differs from the CLI's output`);
    }
  });
} else {
  skip("graph downloads are the CLI's exports", "the graph download step failed");
}

const failed = results.filter(([, r]) => r === "FAILED");
const skipped = results.filter(([, r]) => r === "skipped");
console.log(`${results.length - failed.length - skipped.length} passed, ${failed.length} failed, ${skipped.length} skipped; screenshots in ${artefacts}`);
process.exit(failed.length ? 1 : 0);
