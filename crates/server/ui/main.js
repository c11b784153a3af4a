// Sandscope web UI entry point: the key form and the page for the current URL. Every value
// shown comes from attacker-written logs, so pages are built with text nodes only (dom.js);
// the Content-Security-Policy forbids inline script and any other origin anyway.

import { apiKey, setApiKey } from "./api.js";
import { current } from "./router.js";
import { searchPage } from "./search.js";
import { samplePage } from "./sample.js";
import { graphPage } from "./graph.js";
import { uploadPage } from "./upload.js";
import { rulesetsPage } from "./rulesets.js";
import { notificationsPage } from "./notifications.js";

function initKeyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  const refreshState = () => { state.textContent = apiKey() ? "key set" : "no key"; };
  refreshState();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    input.value = "";
    refreshState();
    render();
  });
}

function render() {
  const route = current();
  if (route.page === "sample" && route.arg) return samplePage(route.arg, route.params);
  if (route.page === "graph" && route.arg) return graphPage(route.arg, route.params);
  if (route.page === "upload") return uploadPage();
  if (route.page === "rulesets") return rulesetsPage(route.params);
  if (route.page === "notifications") return notificationsPage(route.params);
  return searchPage(route.params);
}

initKeyForm();
window.addEventListener("hashchange", render);
render();
