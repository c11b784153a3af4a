// Headless Chromium against `sandscope serve` (issue 7 acceptance): search for a seed query,
// open the result, see the process tree and the DNS lookups, expand a pivot-graph node, and
// check that a log whose command line carries `<img src=x onerror=alert(1)>` shows that text
// literally and runs nothing. Screenshots go to $ARTEFACTS_DIR (default tests/browser/artefacts).
//
// Environment: SANDSCOPE_BIN (default target/debug/sandscope), CHROMIUM (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, createWriteStream, readFileSync } from "node:fs";
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

mkdirSync(artefacts, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "sandscope-browser-"));
const logs = join(work, "logs");
const manifest = JSON.parse(
  execFileSync("python3", [join(root, "tests", "vt", "sysmon_fixtures.py"), logs], { encoding: "utf8" }),
);

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

async function startServer() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(artefacts, "server.log");
  const out = createWriteStream(logFile);
  const child = spawn(binary, ["serve", "--data", join(work, "data"), "--listen", `127.0.0.1:${port}`,
    "--ingest", logs, "--api-key", API_KEY], { stdio: ["ignore", "pipe", "pipe"] });
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

const { url, child } = await startServer();
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

  const tutanota = manifest.tutanota[0];
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
    await page.waitForSelector(".process-tree");
    const tree = await page.textContent(".process-tree");
    assert(tree.includes("vssadmin delete shadows"), `tree: ${tree}`);
    assert(tree.includes("invoice_1.exe"), `tree: ${tree}`);
    // The tree is collapsible: closing the root hides its child.
    const child = page.locator(".process-tree details ul").first();
    assert(await child.isVisible(), "child visible when open");
    await page.click(".process-tree details > summary");
    assert(!(await child.isVisible()), "child hidden when collapsed");
    await page.click(".process-tree details > summary");
    const dns = await page.textContent("section:has(h3:text-is('DNS lookups'))");
    assert(dns.includes("mail.tutanota.com") && dns.includes("81.3.6.162"), `dns: ${dns}`);
    const tabs = await page.$$eval(".tabs button", (bs) => bs.map((b) => b.textContent));
    assert(tabs[0] === "Summary" && tabs.includes("Microsoft Sysinternals"), `tabs: ${tabs}`);
    await page.click(".tabs button:text-is('Microsoft Sysinternals')");
    await page.waitForSelector("#panel .process-tree");
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
    await page.waitForSelector(".process-tree");
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

  await step("no script errors or CSP violations", async () => {
    assert(consoleProblems.length === 0, consoleProblems.join("\n"));
  });
} finally {
  if (context) await context.close();
  child.kill("SIGTERM");
}

const failed = results.filter(([, r]) => r !== "ok");
console.log(`${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${artefacts}`);
process.exit(failed.length ? 1 : 0);
