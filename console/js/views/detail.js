// The environment page: status and the phases of a running change, the actions (Open Airflow UI,
// Edit, Pause/Resume, Delete), summary, last update and configuration; the panels in detail-*.js
// add tags, workers and tasks, status events and logs.
import { announce, clear, fmtTime, h, isBusy, statusBadge } from "../dom.js";
import { LOG_MODULES } from "../form.js";
import { errorBox, handleAuth, page, poll, stopPolling } from "../shell.js";
import { capacityPanel } from "./detail-capacity.js";
import { deleteDialog } from "./detail-delete.js";
import { eventsPanel } from "./detail-events.js";
import { logPanel } from "./detail-logs.js";
import { tagsPanel } from "./detail-tags.js";

function dl(rows) {
  return h("dl", { class: "props" }, rows.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function section(id, title, ...children) {
  return h("section", { class: "card", "aria-labelledby": `${id}-title`, id }, h("h2", { id: `${id}-title` }, title), ...children);
}

// A paused environment reports MWAA's PENDING throughout; its StatusReason tells the phases apart
// (README, "Maintenance, pause and resume"): "Pausing: …", then "Paused by Airdock: …", and
// "Resuming: …" once a resume started. Another PENDING (MWAA's own) is none of them.
export function pauseState(env) {
  if (env.Status !== "PENDING") return null;
  const reason = env.StatusReason || "";
  if (reason.startsWith("Paused")) return "paused";
  if (reason.startsWith("Pausing")) return "pausing";
  if (reason.startsWith("Resuming")) return "resuming";
  return null;
}

const RESUME_HINT = {
  pausing: "Resume is possible once the pause has finished.",
  resuming: "Resuming already.",
};

export function viewDetail(client, name) {
  const statusLine = h("div", { class: "status-line", role: "status", "aria-live": "polite", id: "env-status" });
  const progress = h("div", { class: "progress", id: "env-progress" });
  const actions = h("div", { class: "toolbar", id: "env-actions" });
  const actionNote = h("p", { class: "busy-note", role: "status", id: "action-note" });
  const summary = h("div");
  const lastUpdate = h("div");
  const config = h("div");
  // refresh is defined below; the panels call it after a change of their own.
  const tags = tagsPanel(client, () => refresh());
  const capacity = capacityPanel(client, name);
  const events = eventsPanel(client, name);
  const logs = logPanel(client, name);
  const dialog = deleteDialog(client, name);
  page(name,
    h("p", {}, h("a", { href: "#/environments" }, "← All environments")),
    statusLine, progress, actions, actionNote,
    h("div", { class: "columns" },
      h("div", { class: "col" },
        section("summary", "Summary", summary),
        section("last-update", "Last update", lastUpdate),
        section("tags-section", "Tags", tags.element),
        section("config", "Configuration", config)),
      h("div", { class: "col" },
        section("capacity", "Workers and tasks", ...capacity.elements),
        section("events-section", "Recent status events", events.element),
        section("logs-section", "Logs", logs.element))),
    dialog.element);

  const phases = [];
  let current = null;
  let lastStatus = null;

  let actionsKey = null;
  let envJson = null;
  const renderActions = (env) => {
    const pause = pauseState(env);
    const key = `${env.Status}|${env.WebserverUrl || ""}|${pause}`;
    if (key === actionsKey) return;
    actionsKey = key;
    const busy = isBusy(env.Status);
    const btn = (id, text, onClick, { disabled = false, cls = "secondary", title } = {}) =>
      h("button", { type: "button", id, class: cls, disabled, title, on: { click: onClick } }, text);
    const focused = document.activeElement && actions.contains(document.activeElement) ? document.activeElement.id : null;
    clear(actions,
      btn("open-ui", "Open Airflow UI", () => openAirflowUi(name), { disabled: !env.WebserverUrl || env.Status !== "AVAILABLE", cls: "primary" }),
      h("a", { href: `#/environments/${encodeURIComponent(name)}/edit`, class: `button secondary${busy || env.Status === "CREATE_FAILED" ? " disabled" : ""}`, id: "edit", "aria-disabled": busy || env.Status === "CREATE_FAILED" ? "true" : null,
               on: { click: (e) => { if (e.currentTarget.getAttribute("aria-disabled") === "true") e.preventDefault(); } } }, "Edit"),
      env.Status === "PENDING"
        // The API refuses a resume until the pause has finished (stopping takes a while).
        ? btn("resume", "Resume", () => lifecycle("resume"), { disabled: pause !== "paused", title: RESUME_HINT[pause] })
        : btn("pause", "Pause", () => lifecycle("pause"), { disabled: !["AVAILABLE", "UNAVAILABLE"].includes(env.Status) }),
      btn("delete", "Delete", () => dialog.open(), { disabled: env.Status === "DELETING", cls: "danger" }));
    if (focused) actions.querySelector(`#${focused}`)?.focus();
  };

  const lifecycle = async (op) => {
    actionNote.textContent = op === "pause" ? "Pausing…" : "Resuming…";
    try {
      await (op === "pause" ? client.pauseEnvironment(name) : client.resumeEnvironment(name));
      actionNote.textContent = op === "pause" ? "Pause requested." : "Resume requested.";
      refresh();
    } catch (error) {
      if (!handleAuth(error)) actionNote.textContent = error.status === 404 && error.code === "UnknownOperationException"
        ? "This endpoint has no pause/resume extension." : `${error.code}: ${error.message}`;
    }
  };

  const openAirflowUi = async () => {
    // Open the tab within the click (popup blockers), then point it at the SSO link.
    const tab = window.open("about:blank", "_blank");
    actionNote.textContent = "Creating a web login token…";
    try {
      const login = await client.createWebLoginToken(name);
      const scheme = location.protocol === "https:" ? "https" : "http";
      const url = `${scheme}://${login.WebServerHostname}/aws_mwaa/aws-console-sso?login=true#${login.WebToken}`;
      if (tab) {
        tab.opener = null;
        tab.location.replace(url);
      } else {
        window.open(url, "_blank", "noopener");
      }
      actionNote.textContent = `Opened the Airflow UI in a new tab as ${login.AirflowIdentity || "you"}.`;
    } catch (error) {
      tab?.close();
      if (!handleAuth(error)) actionNote.textContent = `Could not open the Airflow UI: ${error.code}: ${error.message}`;
    }
  };

  // The StatusReason phases of a long create/update, as seen while this page was open.
  let finished = null;
  const renderProgress = (env) => {
    const busy = isBusy(env.Status);
    const wasBusy = lastStatus !== null && isBusy(lastStatus);
    if (busy && !wasBusy) { phases.length = 0; current = null; finished = null; }
    if (busy && env.StatusReason && env.StatusReason !== current) {
      if (current) phases.push(current);
      current = env.StatusReason;
    }
    if (!busy && wasBusy) {
      if (current) phases.push(current);
      current = null;
      finished = `${lastStatus} finished: ${env.Status}`;
    }
    const steps = phases.slice(-8).map((p) => h("li", { class: "done" }, h("span", { class: "visually-hidden" }, "Done: "), p));
    if (busy && current) steps.push(h("li", { class: "current", "aria-current": "step" }, current));
    if (!busy && env.StatusReason) steps.push(h("li", { class: "current" }, env.StatusReason));
    if (finished) steps.push(h("li", { class: "finished" }, finished));
    clear(progress,
      busy ? h("progress", { "aria-label": `${env.Status.toLowerCase()} in progress` }) : null,
      steps.length ? h("ol", { class: "phases", "aria-label": busy ? "Progress" : "Last change" }, steps) : null);
  };

  const refresh = async () => {
    let env;
    try {
      env = await client.getEnvironment(name);
    } catch (error) {
      if (handleAuth(error)) return;
      if (error.status === 404) {
        stopPolling();
        page(name, h("p", { class: "status-line", role: "status", id: "env-status" },
          h("strong", {}, `${name} does not exist (any more).`), " ", h("a", { href: "#/environments" }, "Back to the list")));
        announce(`${name} does not exist any more.`);
        return;
      }
      clear(statusLine, errorBox(error));
      lastStatus = null;
      return;
    }
    if (lastStatus !== env.Status) {
      clear(statusLine, "Status: ", statusBadge(env.Status));
      if (lastStatus) announce(`${name} is now ${env.Status}.`);
    }
    renderProgress(env);
    lastStatus = env.Status;
    renderActions(env);
    const json = JSON.stringify(env);
    if (json === envJson) return;
    envJson = json;
    clear(summary, dl([
      ["Status", env.Status], ["ARN", h("code", {}, env.Arn)], ["Airflow version", env.AirflowVersion],
      ["Environment class", env.EnvironmentClass], ["Workers", `${env.MinWorkers} to ${env.MaxWorkers}`],
      ["Schedulers", env.Schedulers], ["Web servers", `${env.MinWebservers} to ${env.MaxWebservers}`],
      ["Web server", env.WebserverUrl ? h("code", {}, env.WebserverUrl) : "not yet"], ["Created", fmtTime(env.CreatedAt)]]));
    const lu = env.LastUpdate;
    clear(lastUpdate, lu ? [dl([
      ["Status", lu.Status], ["Started", fmtTime(lu.CreatedAt)], ["Source", lu.Source],
      ["Worker replacement", lu.WorkerReplacementStrategy]]),
      lu.Error ? h("div", { class: "notice notice-bad", id: "last-update-error" }, h("strong", {}, lu.Error.ErrorCode || "Error"), ": ", lu.Error.ErrorMessage) : null]
      : h("p", { class: "hint" }, "No update yet."));
    tags.render(env);
    const opts = Object.entries(env.AirflowConfigurationOptions || {});
    clear(config, dl([
      ["Execution role", h("code", {}, env.ExecutionRoleArn)], ["Source bucket", h("code", {}, env.SourceBucketArn)],
      ["DAGs folder", env.DagS3Path],
      ["Plugins", env.PluginsS3Path ? `${env.PluginsS3Path}${env.PluginsS3ObjectVersion ? ` (version ${env.PluginsS3ObjectVersion})` : ""}` : null],
      ["Requirements", env.RequirementsS3Path ? `${env.RequirementsS3Path}${env.RequirementsS3ObjectVersion ? ` (version ${env.RequirementsS3ObjectVersion})` : ""}` : null],
      ["Startup script", env.StartupScriptS3Path ? `${env.StartupScriptS3Path}${env.StartupScriptS3ObjectVersion ? ` (version ${env.StartupScriptS3ObjectVersion})` : ""}` : null],
      ["Subnets", (env.NetworkConfiguration?.SubnetIds || []).join(", ")], ["Security groups", (env.NetworkConfiguration?.SecurityGroupIds || []).join(", ")],
      ["Web server access", env.WebserverAccessMode], ["Endpoint management", env.EndpointManagement], ["KMS key", env.KmsKey],
      ["Maintenance window", env.WeeklyMaintenanceWindowStart],
      ["Logging", LOG_MODULES.map(([m, l]) => { const c = env.LoggingConfiguration?.[m]; return c?.Enabled ? `${l} ${c.LogLevel}` : null; }).filter(Boolean).join(", ") || "off"],
      ["Configuration options", opts.length ? h("ul", { class: "plain" }, opts.map(([k, v]) => h("li", {}, h("code", {}, `${k} = ${v}`)))) : "none"]]));
    if (env.Status === "DELETED") stopPolling();
  };

  poll(refresh, 3000);
  poll(capacity.refresh, 5000);
  poll(events.refresh, 5000);
  poll(() => logs.refresh(true), 5000);
}
