// Airdock console: the router. Hash routes (work as plain static files anywhere):
// #/signin, #/environments, #/create, #/environments/{Name}, #/environments/{Name}/edit;
// MWAA Serverless under #/workflows (views/workflows.js).
// Each view is a module of its own under views/; shell.js holds what they share.
import { Client } from "./api.js";
import { clear, h } from "./dom.js";
import { loadSession, signOut, stopPolling } from "./shell.js";
import { viewSignIn } from "./views/signin.js";
import { viewList } from "./views/list.js";
import { viewCreate, viewEdit } from "./views/create-edit.js";
import { viewDetail } from "./views/detail.js";
import { routeWorkflows } from "./views/workflows.js";

const nav = document.getElementById("session-nav");

function renderNav(session) {
  clear(nav);
  if (!session) return;
  nav.append(
    h("a", { href: "#/environments" }, "Environments"),
    h("a", { href: "#/create" }, "Create environment"),
    h("a", { href: "#/workflows" }, "Workflows"),
    h("span", { class: "who", title: `${session.endpoint} · ${session.region}` }, `${session.accessKeyId} · ${session.region}`),
    h("button", { type: "button", class: "secondary small", id: "sign-out", on: { click: signOut } }, "Sign out"));
}

function route() {
  stopPolling();
  const session = loadSession();
  const client = session ? new Client(session) : null;
  renderNav(session);
  const hash = location.hash || "#/environments";
  if (!session || hash === "#/signin") {
    if (session && hash === "#/signin") { location.hash = "#/environments"; return; }
    return viewSignIn(route);
  }
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "workflows") return routeWorkflows(session, parts.slice(1));
  if (parts[0] === "create") return viewCreate(client);
  if (parts[0] === "environments" && parts[1] && parts[2] === "edit") return viewEdit(client, parts[1]);
  if (parts[0] === "environments" && parts[1]) return viewDetail(client, parts[1]);
  return viewList(client);
}

window.addEventListener("hashchange", route);
route();
