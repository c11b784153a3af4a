// The upload page: one log or sandbox report, ingested by the server; links to what it created.

import { request } from "./api.js";
import { el, clear, show, errorBox } from "./dom.js";
import { href } from "./router.js";

export function uploadPage() {
  const file = el("input", { id: "upload-file", name: "file", type: "file", required: "" });
  const sha = el("input", { id: "upload-sha256", name: "sha256", type: "text", spellcheck: "false",
    pattern: "[0-9a-fA-F]{64}", placeholder: "optional: the sample's SHA-256" });
  const sandbox = el("input", { id: "upload-sandbox", name: "sandbox", type: "text", maxlength: "64",
    placeholder: "optional: sandbox name for a sandbox report" });
  const result = el("div", { id: "upload-result", "aria-live": "polite" });
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
        return el("li", {}, el("a", { href: href("sample", sha256) }, String(d.id)));
      })));
      const warnings = (body.meta && body.meta.warnings) || [];
      if (warnings.length) {
        result.appendChild(el("section", {}, el("h3", {}, "Notes"), el("ul", {}, warnings.map((w) => el("li", {}, String(w))))));
      }
    } catch (error) {
      clear(result);
      result.appendChild(errorBox(error));
    }
  });
  show(el("h1", {}, "Upload a log"),
    el("p", { class: "muted" }, "Sysmon EVTX, XML or JSON-lines logs (optionally gzip/zip), or a CAPE/Cuckoo report."),
    form, result);
}
