// MWAA Serverless in the console: workflows, their versions, runs with task states, start/stop,
// task logs and the Airflow UI. Every call is the `mwaa-serverless` API (awsJson1_0, POST / with
// X-Amz-Target), SigV4-signed in the browser for the service `airflow-serverless`.
// Hash routes: #/workflows, #/workflows/{WorkflowArn}, #/workflows/{WorkflowArn}/runs/{RunId}.
import { ApiError } from "../api.js";
import { signRequest } from "../sigv4.js";
import { announce, clear, h } from "../dom.js";
import { errorBox, handleAuth, page, poll } from "../shell.js";

const RUN_FINAL = new Set(["SUCCESS", "FAILED", "TIMEOUT", "STOPPED"]);
const BAD = new Set(["FAILED", "TIMEOUT", "STOPPED", "UPSTREAM_FAILED", "DELETING"]);
const GOOD = new Set(["SUCCESS", "READY"]);

export class ServerlessClient {
  constructor({ endpoint, region, accessKeyId, secretAccessKey, sessionToken }) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.region = region;
    this.credentials = { accessKeyId, secretAccessKey, sessionToken };
  }

  async send(method, url, text) {
    const { headers } = await signRequest({ method, url, body: text, region: this.region, service: "airflow-serverless",
                                            ...this.credentials });
    return fetch(url, { method, headers, body: text || undefined, credentials: "omit", cache: "no-store" })
      .catch((err) => { throw new ApiError(0, "NetworkError", `${this.endpoint} did not answer (${err.message}).`); });
  }

  async call(operation, input = {}) {
    const text = JSON.stringify(input);
    const url = `${this.endpoint}/`;
    const { headers } = await signRequest({ method: "POST", url, body: text, region: this.region,
                                            service: "airflow-serverless", ...this.credentials });
    headers["content-type"] = "application/x-amz-json-1.0";
    headers["x-amz-target"] = `AmazonMWAAServerless.${operation}`;
    let response;
    try {
      response = await fetch(url, { method: "POST", headers, body: text, credentials: "omit", cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "NetworkError", `${this.endpoint} did not answer (${err.message}).`);
    }
    return this.parse(response);
  }

  async parse(response) {
    const raw = await response.text();
    let data = {};
    try { data = raw ? JSON.parse(raw) : {}; } catch { data = { message: raw }; }
    if (!response.ok) {
      const code = (data.__type || response.headers.get("x-amzn-errortype") || `HTTP${response.status}`).split("#").pop();
      const fields = (data.FieldList || []).map((f) => `${f.Name}: ${f.Message}`).join("; ");
      throw new ApiError(response.status, code, data.message || data.Message || fields || response.statusText);
    }
    return data;
  }

  async all(operation, input, key) {
    const items = [];
    let token;
    do {
      const page = await this.call(operation, { ...input, ...(token ? { NextToken: token } : {}) });
      items.push(...(page[key] || []));
      token = page.NextToken;
    } while (token);
    return items;
  }

  // Airdock's read-only extension: one attempt's log (the local CloudWatch log stream).
  async taskLog(arn, runId, taskId, attempt) {
    const query = new URLSearchParams({ WorkflowArn: arn, RunId: runId, TaskId: taskId, ...(attempt ? { Attempt: attempt } : {}) });
    const url = `${this.endpoint}/_airdock/serverless/task-logs?${query.toString().replace(/\+/g, "%20")}`;
    return this.parse(await this.send("GET", url, ""));
  }
}

function badge(status) {
  const kind = GOOD.has(status) ? "ok" : BAD.has(status) ? "bad" : status === "NONE" || !status ? "idle" : "busy";
  return h("span", { class: `badge badge-${kind}`, dataset: { status: status || "NONE" } }, status || "NONE");
}

const time = (value) => (value ? new Date(value).toLocaleString() : "—");
const workflowHref = (arn) => `#/workflows/${encodeURIComponent(arn)}`;
const runHref = (arn, runId) => `${workflowHref(arn)}/runs/${encodeURIComponent(runId)}`;

function table(caption, columns, rows) {
  return h("table", { class: "envs" }, h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows));
}

const ctx = { page, poll, handleAuth, errorBox };

export function routeWorkflows(session, parts) {
  const client = new ServerlessClient(session);
  if (parts[0] && parts[1] === "runs" && parts[2]) return viewRun(ctx, client, parts[0], parts[2]);
  if (parts[0]) return viewWorkflow(ctx, client, parts[0]);
  return viewWorkflows(ctx, client);
}

function viewWorkflows(ctx, client) {
  const note = h("p", { class: "hint", role: "status" }, "Loading…");
  const body = h("div");
  ctx.page("Workflows (MWAA Serverless)", note, body);
  ctx.poll(async () => {
    let workflows;
    try {
      workflows = await client.all("ListWorkflows", {}, "Workflows");
    } catch (error) {
      if (ctx.handleAuth(error)) return;
      note.textContent = `Could not list workflows: ${error.message}`;
      return;
    }
    note.textContent = workflows.length ? `${workflows.length} workflow${workflows.length === 1 ? "" : "s"}; refreshed every 5 seconds.`
      : "No workflows yet: create one with the mwaa-serverless API (boto3, the AWS CLI).";
    clear(body, table("Workflows", ["Name", "Status", "Latest version", "Trigger mode", "Modified"], workflows.map((w) =>
      h("tr", { dataset: { workflow: w.Name } },
        h("th", { scope: "row" }, h("a", { href: workflowHref(w.WorkflowArn) }, w.Name)),
        h("td", {}, badge(w.WorkflowStatus)), h("td", {}, h("code", {}, w.WorkflowVersion || "")),
        h("td", {}, w.TriggerMode || "—"), h("td", {}, time(w.ModifiedAt))))));
  }, 5000);
}

function viewWorkflow(ctx, client, arn) {
  const summary = h("div");
  const versions = h("div");
  const runs = h("div");
  const message = h("div", { role: "status" });
  const versionSelect = h("select", { id: "run-version", "aria-label": "Version to run" });
  const start = h("button", { type: "button", class: "primary", id: "start-run", on: { click: async () => {
    start.disabled = true;
    try {
      const input = { WorkflowArn: arn, ...(versionSelect.value ? { WorkflowVersion: versionSelect.value } : {}) };
      const run = await client.call("StartWorkflowRun", input);
      announce(`Run ${run.RunId} started`);
      location.hash = runHref(arn, run.RunId);
    } catch (error) {
      clear(message, ctx.errorBox(error));
    } finally {
      start.disabled = false;
    }
  } } }, "Start run");
  const ui = h("button", { type: "button", class: "secondary", id: "open-airflow-ui", on: { click: async () => {
    try {
      const link = await client.call("CreateAirflowUiUrl", {});
      window.open(link.AuthorizedUrl, "_blank", "noopener");
    } catch (error) {
      clear(message, ctx.errorBox(error));
    }
  } } }, "Open Airflow UI");
  ctx.page(decodeURIComponent(arn).split("/").pop(), h("div", { class: "toolbar" }, versionSelect, start, ui), message,
    h("section", { "aria-labelledby": "wf-config" }, h("h2", { id: "wf-config" }, "Configuration"), summary),
    h("section", { "aria-labelledby": "wf-runs" }, h("h2", { id: "wf-runs" }, "Runs"), runs),
    h("section", { "aria-labelledby": "wf-versions" }, h("h2", { id: "wf-versions" }, "Versions"), versions));
  let versionsShown = "";
  ctx.poll(async () => {
    try {
      const [workflow, all, history] = await Promise.all([
        client.call("GetWorkflow", { WorkflowArn: arn }),
        client.all("ListWorkflowVersions", { WorkflowArn: arn }, "WorkflowVersions"),
        client.call("ListWorkflowRuns", { WorkflowArn: arn, MaxResults: 50 })]);
      clear(summary, h("dl", { class: "facts" }, [
        ["Status", badge(workflow.WorkflowStatus)], ["ARN", h("code", {}, workflow.WorkflowArn)],
        ["Description", workflow.Description || "—"], ["Role", h("code", {}, workflow.RoleArn)],
        ["Definition", h("code", {}, `s3://${workflow.DefinitionS3Location.Bucket}/${workflow.DefinitionS3Location.ObjectKey}`)],
        ["Schedule", workflow.ScheduleConfiguration ? h("code", {}, workflow.ScheduleConfiguration.CronExpression) : "manual only"],
        ["Trigger mode", workflow.TriggerMode || "—"], ["Log group", h("code", {}, workflow.LoggingConfiguration?.LogGroupName || "")],
      ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
      const key = all.map((v) => v.WorkflowVersion).join(",");
      if (key !== versionsShown) {
        versionsShown = key;
        clear(versionSelect, h("option", { value: "" }, "latest version"),
          all.map((v, i) => h("option", { value: v.WorkflowVersion }, `version ${all.length - i} (${v.WorkflowVersion.slice(0, 8)})`)));
      }
      clear(versions, table("Versions", ["Version", "Latest", "Created", "Schedule"], all.map((v, i) => h("tr", {},
        h("td", {}, `${all.length - i} `, h("code", {}, v.WorkflowVersion)), h("td", {}, v.IsLatestVersion ? "yes" : ""),
        h("td", {}, time(v.CreatedAt)), h("td", {}, v.ScheduleConfiguration?.CronExpression || "—")))));
      clear(runs, (history.WorkflowRuns || []).length ? table("Runs", ["Run", "Status", "Type", "Version", "Created", "Ended"],
        history.WorkflowRuns.map((r) => h("tr", { dataset: { run: r.RunId } },
          h("th", { scope: "row" }, h("a", { href: runHref(arn, r.RunId) }, r.RunId)),
          h("td", {}, badge(r.RunDetailSummary?.Status)), h("td", {}, r.RunType), h("td", {}, h("code", {}, (r.WorkflowVersion || "").slice(0, 8))),
          h("td", {}, time(r.RunDetailSummary?.CreatedOn)), h("td", {}, time(r.RunDetailSummary?.EndedAt)))))
        : h("p", { class: "hint" }, "No runs yet."));
    } catch (error) {
      if (ctx.handleAuth(error)) return;
      clear(summary, ctx.errorBox(error));
    }
  }, 3000);
}

function viewRun(ctx, client, arn, runId) {
  const detail = h("div");
  const tasks = h("div");
  const message = h("div", { role: "status" });
  const logTitle = h("h2", { id: "run-log" }, "Task log");
  const logBox = h("pre", { class: "log", id: "task-log", tabindex: "0" }, "Choose a task to see its log.");
  const stop = h("button", { type: "button", class: "danger", id: "stop-run", on: { click: async () => {
    try {
      const answer = await client.call("StopWorkflowRun", { WorkflowArn: arn, RunId: runId });
      announce(`Run ${runId} is ${answer.Status}`);
    } catch (error) {
      clear(message, ctx.errorBox(error));
    }
  } } }, "Stop run");
  const showLog = async (taskId, attempt) => {
    logTitle.textContent = `Task log: ${taskId}, attempt ${attempt}`;
    try {
      const log = await client.taskLog(arn, runId, taskId, attempt);
      logBox.textContent = `${log.LogGroup} ${log.LogStream}\n` +
        (log.Events.map((e) => `${e.timestamp || ""} ${String(e.level || "").toUpperCase()} ${e.message}`).join("\n") || "(empty)");
    } catch (error) {
      logBox.textContent = `Could not read the log: ${error.message}`;
    }
  };
  ctx.page(`Run ${runId}`, h("p", {}, h("a", { href: workflowHref(arn) }, "← workflow")), h("div", { class: "toolbar" }, stop), message,
    detail, h("section", { "aria-labelledby": "run-tasks" }, h("h2", { id: "run-tasks" }, "Task instances"), tasks),
    h("section", { "aria-labelledby": "run-log" }, logTitle, logBox));
  ctx.poll(async () => {
    try {
      const run = await client.call("GetWorkflowRun", { WorkflowArn: arn, RunId: runId });
      const d = run.RunDetail || {};
      stop.disabled = RUN_FINAL.has(d.RunState);
      clear(detail, h("dl", { class: "facts" }, [
        ["State", badge(d.RunState)], ["Type", d.RunType], ["Version", h("code", {}, run.WorkflowVersion)],
        ["Created", time(d.CreatedAt)], ["Started", time(d.StartedOn)], ["Completed", time(d.CompletedOn)],
        ["Duration", d.Duration !== undefined ? `${d.Duration} s` : "—"], ["Error", d.ErrorMessage || "—"],
        ["Override parameters", run.OverrideParameters ? h("code", {}, JSON.stringify(run.OverrideParameters)) : "—"],
      ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
      const summaries = await client.all("ListTaskInstances", { WorkflowArn: arn, RunId: runId }, "TaskInstances");
      const full = await Promise.all(summaries.map((t) => client.call("GetTaskInstance",
        { WorkflowArn: arn, RunId: runId, TaskInstanceId: t.TaskInstanceId })));
      clear(tasks, table("Task instances", ["Task", "Status", "Operator", "Attempt", "Duration", "Error", "XCom", "Log"],
        full.map((t) => h("tr", { dataset: { task: t.TaskId } },
          h("th", { scope: "row" }, t.TaskId), h("td", {}, badge(t.Status)), h("td", {}, t.OperatorName || ""),
          h("td", {}, String(t.AttemptNumber ?? "")), h("td", {}, t.DurationInSeconds !== undefined ? `${t.DurationInSeconds} s` : "—"),
          h("td", { class: "reason" }, t.ErrorMessage || ""),
          h("td", {}, t.Xcom && Object.keys(t.Xcom).length ? h("code", {}, JSON.stringify(t.Xcom)) : ""),
          h("td", {}, t.AttemptNumber ? h("button", { type: "button", class: "secondary small", "aria-label": `Log of ${t.TaskId}`,
            on: { click: () => showLog(t.TaskId, t.AttemptNumber) } }, "Log") : "")))));
    } catch (error) {
      if (ctx.handleAuth(error)) return;
      clear(detail, ctx.errorBox(error));
    }
  }, 3000);
}
