// The environments list: every environment's status, refreshed every 5 seconds; status changes
// are announced to assistive technology.
import { clear, h, isFailed, statusBadge } from "../dom.js";
import { handleAuth, page, poll } from "../shell.js";

// What the status alone does not say: the reason of a running change or of a failed status. The
// failed last update of an environment that is AVAILABLE (the update was rolled back) is history,
// as in AWS's console: the environment page shows it under "Last update", the list does not.
function statusDetail(env) {
  if (env.StatusReason) return env.StatusReason;
  return isFailed(env.Status) && env.LastUpdate?.Error ? env.LastUpdate.Error.ErrorMessage : "";
}

export function viewList(client) {
  const tbody = h("tbody");
  const table = h("table", { class: "envs", "aria-describedby": "list-note" },
    h("caption", { class: "visually-hidden" }, "Environments"),
    h("thead", {}, h("tr", {}, ["Name", "Status", "Progress", "Airflow", "Class", "Workers", "Web server"].map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const note = h("p", { id: "list-note", class: "hint", role: "status" }, "Loading…");
  const live = h("div", { class: "visually-hidden", "aria-live": "polite", id: "list-live" });
  page("Environments", h("div", { class: "toolbar" }, h("a", { href: "#/create", class: "button primary" }, "Create environment")), note, table, live);
  const known = new Map();
  poll(async () => {
    let envs;
    try {
      const names = await client.listEnvironments();
      envs = await Promise.all(names.map((n) => client.getEnvironment(n).catch((e) => (e.status === 404 ? null : { Name: n, Status: "UNKNOWN", StatusReason: e.message }))));
    } catch (error) {
      if (handleAuth(error)) return;
      note.textContent = `Could not list environments: ${error.message}`;
      return;
    }
    envs = envs.filter(Boolean);
    const text = envs.length ? `${envs.length} environment${envs.length === 1 ? "" : "s"}; statuses refresh every 5 seconds.` : "No environments yet.";
    if (note.textContent !== text) note.textContent = text;
    const changes = [];
    clear(tbody, envs.map((env) => {
      if (known.has(env.Name) && known.get(env.Name) !== env.Status) changes.push(`${env.Name} is now ${env.Status}`);
      known.set(env.Name, env.Status);
      return h("tr", { dataset: { env: env.Name } },
        h("th", { scope: "row" }, h("a", { href: `#/environments/${encodeURIComponent(env.Name)}` }, env.Name)),
        h("td", {}, statusBadge(env.Status)),
        h("td", { class: "reason" }, statusDetail(env)),
        h("td", {}, env.AirflowVersion || ""),
        h("td", {}, env.EnvironmentClass || ""),
        h("td", {}, env.MinWorkers !== undefined ? `${env.MinWorkers}–${env.MaxWorkers}` : ""),
        h("td", {}, env.WebserverUrl ? h("code", {}, env.WebserverUrl) : "—"));
    }));
    if (changes.length) live.textContent = changes.join(". ");
  }, 5000);
}
