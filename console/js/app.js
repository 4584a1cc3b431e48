// Airdock console: sign-in, environments list, create/edit forms, environment detail.
// Hash routes (works as plain static files anywhere): #/environments, #/create,
// #/environments/{Name}, #/environments/{Name}/edit.
import { ApiError, Client, describeAuthError } from "./api.js";
import { Poller, announce, clear, fmtTime, h, isBusy, statusBadge } from "./dom.js";
import { environmentForm, LOG_MODULES } from "./form.js";
import { legend, lineChart } from "./chart.js";

const SESSION_KEY = "airdock.console.session";
const main = document.getElementById("main");
const nav = document.getElementById("session-nav");
let pollers = [];
let client = null;

// ---------------------------------------------------------------- session (sessionStorage only)

function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return saved && saved.accessKeyId ? saved : null;
  } catch {
    return null;
  }
}

function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  client = null;
  location.hash = "#/signin";
  announce("Signed out.");
}

function renderNav(session) {
  clear(nav);
  if (!session) return;
  nav.append(
    h("a", { href: "#/environments" }, "Environments"),
    h("a", { href: "#/create" }, "Create environment"),
    h("span", { class: "who", title: `${session.endpoint} · ${session.region}` }, `${session.accessKeyId} · ${session.region}`),
    h("button", { type: "button", class: "secondary small", id: "sign-out", on: { click: signOut } }, "Sign out"));
}

// ---------------------------------------------------------------- routing

function stopPolling() {
  for (const p of pollers) p.stop();
  pollers = [];
}

function poll(fn, ms) {
  const p = new Poller(fn, ms).start();
  pollers.push(p);
  return p;
}

function page(title, ...children) {
  document.title = `${title} · Airdock console`;
  const heading = h("h1", { tabindex: "-1", id: "page-title" }, title);
  clear(main, heading, ...children);
  heading.focus({ preventScroll: true });
  return heading;
}

async function route() {
  stopPolling();
  const session = loadSession();
  client = session ? new Client(session) : null;
  renderNav(session);
  const hash = location.hash || "#/environments";
  if (!session || hash === "#/signin") {
    if (session && hash === "#/signin") { location.hash = "#/environments"; return; }
    return viewSignIn();
  }
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "create") return viewCreate();
  if (parts[0] === "environments" && parts[1] && parts[2] === "edit") return viewEdit(parts[1]);
  if (parts[0] === "environments" && parts[1]) return viewDetail(parts[1]);
  return viewList();
}

window.addEventListener("hashchange", route);

// An expired or revoked key sends the user back to sign-in with the reason.
function handleAuth(error) {
  if (error instanceof ApiError && error.status === 403 && /Signature|UnrecognizedClient|MissingAuthentication/.test(error.code)) {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.setItem("airdock.console.reason", describeAuthError(error).text);
    location.hash = "#/signin";
    return true;
  }
  return false;
}

function errorBox(error) {
  return h("div", { class: "notice notice-bad", role: "alert" }, error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
}

// ---------------------------------------------------------------- sign-in

function viewSignIn() {
  const reason = sessionStorage.getItem("airdock.console.reason");
  sessionStorage.removeItem("airdock.console.reason");
  const field = (id, label, attrs, hint) => h("div", { class: "field" },
    h("label", { for: id }, label), h("input", { id, name: id, "aria-describedby": `${hint ? `hint-${id} ` : ""}signin-error`, ...attrs }),
    hint ? h("p", { class: "hint", id: `hint-${id}` }, hint) : null);
  const errorEl = h("p", { class: "notice notice-bad", id: "signin-error", role: "alert", hidden: !reason }, reason || "");
  const submit = h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in");
  const form = h("form", { class: "signin", novalidate: true },
    h("p", {}, "Sign in with an access key pair. The keys stay in this browser tab's session storage and sign every request (AWS Signature Version 4); nothing else is sent."),
    field("accessKeyId", "Access key ID", { type: "text", autocomplete: "username", spellcheck: "false", required: true }),
    field("secretAccessKey", "Secret access key", { type: "password", autocomplete: "current-password", required: true }),
    h("details", {}, h("summary", {}, "Endpoint and region"),
      field("region", "Region", { type: "text", value: "us-east-1", spellcheck: "false" }, "The region the requests are signed for."),
      field("endpoint", "API endpoint", { type: "url", value: location.origin, spellcheck: "false" }, "Where the MWAA API answers: this server, or your deployment's API URL.")),
    errorEl,
    h("div", { class: "actions" }, submit, h("span", { role: "status", id: "signin-busy", class: "busy-note" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const session = { accessKeyId: value("accessKeyId"), secretAccessKey: form.querySelector("#secretAccessKey").value,
                      region: value("region") || "us-east-1", endpoint: value("endpoint") || location.origin };
    const missing = [["accessKeyId", "access key ID"], ["secretAccessKey", "secret access key"]].filter(([id]) => !session[id]);
    if (missing.length) {
      errorEl.textContent = `Enter the ${missing.map(([, l]) => l).join(" and the ")}.`;
      errorEl.hidden = false;
      form.querySelector(`#${missing[0][0]}`).setAttribute("aria-invalid", "true");
      form.querySelector(`#${missing[0][0]}`).focus();
      return;
    }
    submit.disabled = true;
    form.querySelector("#signin-busy").textContent = "Checking the key…";
    try {
      await new Client(session).call("GET", "/environments", { query: [["MaxResults", 1]] });
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
      announce("Signed in.");
      // Back to the page asked for (a deep link), else the list; exactly one route(): by
      // hashchange, or directly when the hash is already there.
      const target = location.hash && location.hash !== "#/signin" ? location.hash : "#/environments";
      if (location.hash === target) route();
      else location.hash = target;
    } catch (error) {
      const { field: bad, text } = describeAuthError(error);
      errorEl.textContent = text;
      errorEl.hidden = false;
      const target = bad ? form.querySelector(`#${bad}`) : null;
      if (target) {
        target.setAttribute("aria-invalid", "true");
        if (bad === "endpoint" || bad === "region") form.querySelector("details").open = true;
        target.focus();
      }
    } finally {
      submit.disabled = false;
      form.querySelector("#signin-busy").textContent = "";
    }
  });
  page("Sign in to Airdock", form);
}

// ---------------------------------------------------------------- environments list

function viewList() {
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
        h("td", { class: "reason" }, env.StatusReason || (env.LastUpdate?.Error ? env.LastUpdate.Error.ErrorMessage : "")),
        h("td", {}, env.AirflowVersion || ""),
        h("td", {}, env.EnvironmentClass || ""),
        h("td", {}, env.MinWorkers !== undefined ? `${env.MinWorkers}–${env.MaxWorkers}` : ""),
        h("td", {}, env.WebserverUrl ? h("code", {}, env.WebserverUrl) : "—"));
    }));
    if (changes.length) live.textContent = changes.join(". ");
  }, 5000);
}

// ---------------------------------------------------------------- create / edit

function viewCreate() {
  const form = environmentForm("create", null, async ({ name, body }) => {
    await client.createEnvironment(name, body);
    announce(`Creating environment ${name}.`);
    location.hash = `#/environments/${encodeURIComponent(name)}`;
  });
  page("Create environment", h("p", { class: "lead" }, "Every field is checked by the API itself; its messages appear next to the field they concern."), form);
}

async function viewEdit(name) {
  page(`Edit ${name}`, h("p", { role: "status" }, "Loading…"));
  let env;
  try {
    env = await client.getEnvironment(name);
  } catch (error) {
    if (!handleAuth(error)) page(`Edit ${name}`, errorBox(error));
    return;
  }
  const form = environmentForm("update", env, async ({ body }) => {
    if (!Object.keys(body).length) {
      const e = new ApiError(400, "NoChanges", "Nothing changed: edit a field first.");
      throw e;
    }
    await client.updateEnvironment(name, body);
    announce(`Updating environment ${name}.`);
    location.hash = `#/environments/${encodeURIComponent(name)}`;
  });
  page(`Edit ${name}`, h("p", { class: "lead" }, `Status ${env.Status}. Only changed fields are sent (UpdateEnvironment).`), form);
}

// ---------------------------------------------------------------- detail

function dl(rows) {
  return h("dl", { class: "props" }, rows.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function section(id, title, ...children) {
  return h("section", { class: "card", "aria-labelledby": `${id}-title`, id }, h("h2", { id: `${id}-title` }, title), ...children);
}

function viewDetail(name) {
  const statusLine = h("div", { class: "status-line", role: "status", "aria-live": "polite", id: "env-status" });
  const progress = h("div", { class: "progress", id: "env-progress" });
  const actions = h("div", { class: "toolbar", id: "env-actions" });
  const actionNote = h("p", { class: "busy-note", role: "status", id: "action-note" });
  const summary = h("div");
  const lastUpdate = h("div");
  const workers = h("div", { id: "workers" });
  const chart = h("div", { class: "chart-wrap", id: "chart" }, h("p", { class: "hint" }, "Loading metrics…"));
  const events = h("div", { id: "events" });
  const config = h("div");
  const tagsBox = h("div", { id: "tags" });
  const logs = logPanel(name);
  const dialog = deleteDialog(name);
  page(name,
    h("p", {}, h("a", { href: "#/environments" }, "← All environments")),
    statusLine, progress, actions, actionNote,
    h("div", { class: "columns" },
      h("div", { class: "col" },
        section("summary", "Summary", summary),
        section("last-update", "Last update", lastUpdate),
        section("tags-section", "Tags", tagsBox),
        section("config", "Configuration", config)),
      h("div", { class: "col" },
        section("capacity", "Workers and tasks", workers, chart),
        section("events-section", "Recent status events", events),
        section("logs-section", "Logs", logs.element))),
    dialog.element);

  const phases = [];
  let current = null;
  let lastStatus = null;
  let tagsRendered = null;

  let actionsKey = null;
  let envJson = null;
  const renderActions = (env) => {
    const key = `${env.Status}|${env.WebserverUrl || ""}`;
    if (key === actionsKey) return;
    actionsKey = key;
    const busy = isBusy(env.Status);
    const btn = (id, text, onClick, { disabled = false, cls = "secondary" } = {}) =>
      h("button", { type: "button", id, class: cls, disabled, on: { click: onClick } }, text);
    const focused = document.activeElement && actions.contains(document.activeElement) ? document.activeElement.id : null;
    clear(actions,
      btn("open-ui", "Open Airflow UI", () => openAirflowUi(name), { disabled: !env.WebserverUrl || env.Status !== "AVAILABLE", cls: "primary" }),
      h("a", { href: `#/environments/${encodeURIComponent(name)}/edit`, class: `button secondary${busy || env.Status === "CREATE_FAILED" ? " disabled" : ""}`, id: "edit", "aria-disabled": busy || env.Status === "CREATE_FAILED" ? "true" : null,
               on: { click: (e) => { if (e.currentTarget.getAttribute("aria-disabled") === "true") e.preventDefault(); } } }, "Edit"),
      env.Status === "PENDING"
        ? btn("resume", "Resume", () => lifecycle("resume"))
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

  const renderTags = (env) => {
    const key = JSON.stringify(env.Tags || {});
    if (key === tagsRendered) return;
    tagsRendered = key;
    const keyInput = h("input", { id: "tag-key", type: "text", autocomplete: "off", "aria-describedby": "tag-error" });
    const valueInput = h("input", { id: "tag-value", type: "text", autocomplete: "off", "aria-describedby": "tag-error" });
    const err = h("p", { class: "error", id: "tag-error", role: "alert", hidden: true });
    const form = h("form", { class: "inline-form", novalidate: true },
      h("div", { class: "field" }, h("label", { for: "tag-key" }, "Key"), keyInput),
      h("div", { class: "field" }, h("label", { for: "tag-value" }, "Value"), valueInput),
      h("button", { type: "submit", class: "secondary small", id: "add-tag" }, "Add tag"), err);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.hidden = true;
      try {
        await client.tagResource(env.Arn, { [keyInput.value.trim()]: valueInput.value });
        announce(`Tag ${keyInput.value.trim()} saved.`);
        tagsRendered = null;
        await refresh();
        document.getElementById("tag-key")?.focus();
      } catch (error) {
        if (handleAuth(error)) return;
        err.textContent = error.message;
        err.hidden = false;
      }
    });
    const entries = Object.entries(env.Tags || {});
    clear(tagsBox,
      entries.length ? h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v),
          h("td", {}, h("button", { type: "button", class: "secondary small", "aria-label": `Remove tag ${k}`, on: { click: async () => {
            try { await client.untagResource(env.Arn, [k]); announce(`Tag ${k} removed.`); tagsRendered = null; await refresh(); document.getElementById("tag-key")?.focus(); }
            catch (error) { if (!handleAuth(error)) { err.textContent = error.message; err.hidden = false; } }
          } } }, "Remove"))))))
        : h("p", { class: "hint" }, "No tags."),
      form);
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
    renderTags(env);
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

  const refreshCapacity = async () => {
    const since = Date.now() / 1000 - 30 * 60;
    const [w, m] = await Promise.allSettled([client.workers(name), client.metrics(name, since)]);
    const metrics = m.status === "fulfilled" ? m.value.Metrics : null;
    const last = (n) => (metrics?.[n]?.length ? metrics[n][metrics[n].length - 1][1] : null);
    const ws = w.status === "fulfilled" ? w.value : null;
    const stat = (label, value) => h("div", { class: "stat" }, h("span", { class: "stat-value" }, value ?? "—"), h("span", { class: "stat-label" }, label));
    clear(workers, h("div", { class: "stats" },
      stat("Workers", ws ? ws.CurrentWorkers : last("WorkerCount")),
      stat("Desired", ws ? ws.DesiredWorkers : null),
      stat("Running tasks", ws?.RunningTasks ?? last("RunningTasks")),
      stat("Queued tasks", ws?.QueuedTasks ?? last("QueuedTasks"))));
    if (!metrics) {
      clear(chart, h("p", { class: "hint" }, m.reason?.status === 404 && m.reason?.code === "UnknownOperationException" ? "This endpoint has no metrics extension." : `Metrics unavailable: ${m.reason?.message || ""}`));
      return;
    }
    const now = Date.now() / 1000;
    const hasData = Object.values(metrics).some((s) => s.length);
    // The last 30 minutes, zoomed to the data when there is less (at least 5 minutes wide).
    const first = Math.min(now, ...Object.values(metrics).filter((s) => s.length).map((s) => s[0][0]));
    const start = Math.max(since, Math.min(first, now - 5 * 60));
    clear(chart, lineChart(metrics, [start, now]), legend(Object.keys(metrics)),
      hasData ? null : h("p", { class: "hint" }, "No points yet: metrics are collected while the environment runs."));
  };

  const refreshEvents = async () => {
    let data;
    try {
      data = await client.events(name, 15);
    } catch (error) {
      clear(events, h("p", { class: "hint" }, `Events unavailable: ${error.message}`));
      return;
    }
    const list = (data.Events || []).slice().reverse();
    clear(events, list.length ? h("ol", { class: "events" }, list.map((e) => {
      const d = e.detail || {};
      return h("li", {}, h("time", { datetime: e.time }, fmtTime(e.time)), " ",
        d.PreviousStatus ? `${d.PreviousStatus} → ` : "", h("strong", {}, d.Status),
        d.Error ? h("span", { class: "event-error" }, ` ${d.Error.ErrorCode || ""}: ${d.Error.ErrorMessage || ""}`) : null);
    })) : h("p", { class: "hint" }, "No status events yet."));
  };

  poll(refresh, 3000);
  poll(refreshCapacity, 5000);
  poll(refreshEvents, 5000);
  poll(() => logs.refresh(true), 5000);
}

function logPanel(name) {
  const select = h("select", { id: "log-module" }, LOG_MODULES.map(([m, l]) => h("option", { value: m.replace(/Logs$/, ""), selected: m === "SchedulerLogs" }, l)));
  const auto = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const info = h("p", { class: "hint", id: "log-info" });
  const pre = h("pre", { class: "log", id: "log-tail", tabindex: "0", "aria-labelledby": "logs-section-title", "aria-describedby": "log-info" });
  const refresh = async (fromPoll = false) => {
    if (fromPoll && !auto.checked) return;
    try {
      const data = await client.logs(name, select.value, 200);
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = data.Events.map((e) => `${e.stream} ${e.level} ${e.message}`).join("\n") || "(no lines yet)";
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      info.textContent = `${data.LogGroup}: ${data.Enabled ? `enabled at ${data.LogLevel}` : "disabled in LoggingConfiguration"}; last ${data.Events.length} lines.`;
    } catch (error) {
      info.textContent = `Logs unavailable: ${error.message}`;
    }
  };
  select.addEventListener("change", () => refresh());
  const element = h("div", {},
    h("div", { class: "inline-form" },
      h("div", { class: "field" }, h("label", { for: "log-module" }, "Module"), select),
      h("label", { class: "check", for: "log-follow" }, auto, " Follow"),
      h("button", { type: "button", class: "secondary small", id: "log-refresh", on: { click: () => refresh() } }, "Refresh")),
    info, pre);
  return { element, refresh };
}

function deleteDialog(name) {
  const input = h("input", { id: "confirm-name", type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": "confirm-hint confirm-error" });
  const error = h("p", { class: "error", id: "confirm-error", role: "alert", hidden: true });
  const confirm = h("button", { type: "submit", class: "danger", id: "confirm-delete" }, "Delete environment");
  const dialog = h("dialog", { id: "delete-dialog", "aria-labelledby": "delete-title", "aria-describedby": "delete-desc" },
    h("form", { method: "dialog", novalidate: true },
      h("h2", { id: "delete-title" }, `Delete ${name}?`),
      h("p", { id: "delete-desc" }, "Airflow stops and the environment's metadata database, logs and settings are removed. DAG files in the bucket stay."),
      h("div", { class: "field" }, h("label", { for: "confirm-name" }, "Type the environment name to confirm"), input,
        h("p", { class: "hint", id: "confirm-hint" }, name)),
      error,
      h("div", { class: "actions" }, confirm, h("button", { type: "button", class: "secondary", id: "cancel-delete", on: { click: () => dialog.close() } }, "Cancel"))));
  let opener = null;
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.value.trim() !== name) {
      error.textContent = `Type ${name} exactly to confirm.`;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    confirm.disabled = true;
    try {
      await client.deleteEnvironment(name);
      dialog.close();
      announce(`Deleting ${name}.`);
      document.getElementById("action-note").textContent = `Deleting ${name}…`;
    } catch (err) {
      if (handleAuth(err)) return;
      error.textContent = `${err.code}: ${err.message}`;
      error.hidden = false;
    } finally {
      confirm.disabled = false;
    }
  });
  dialog.addEventListener("close", () => { input.value = ""; error.hidden = true; input.removeAttribute("aria-invalid"); opener?.focus(); });
  return { element: dialog, open: () => { opener = document.activeElement; dialog.showModal(); input.focus(); } };
}

route();
