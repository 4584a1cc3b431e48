// The environment form (CreateEnvironment / UpdateEnvironment) and the mapping of the API's
// ValidationException messages onto the field they name.
import { h } from "./dom.js";

export const VERSIONS = ["3.3.2", "2.11.0"];
export const CLASSES = ["mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"];
export const LEVELS = ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"];
export const LOG_MODULES = [
  ["DagProcessingLogs", "DAG processing"], ["SchedulerLogs", "Scheduler"], ["TaskLogs", "Task"],
  ["WebserverLogs", "Web server"], ["WorkerLogs", "Worker"],
];

// kind: text | int | select | list (comma-separated) ; scope: both | create | update
const GROUPS = [
  { legend: "Environment details", fields: [
    { name: "Name", label: "Name", scope: "create", required: true, hint: "1–80 characters: letters, digits, - and _; starts with a letter." },
    { name: "AirflowVersion", label: "Airflow version", list: VERSIONS, hint: "Leave blank for the newest supported version." },
    { name: "WeeklyMaintenanceWindowStart", label: "Maintenance window start", placeholder: "TUE:03:30", hint: "DAY:HH:MM (UTC), on the hour or half hour." },
  ] },
  { legend: "DAG code in Amazon S3", fields: [
    { name: "SourceBucketArn", label: "S3 bucket ARN", required: true, placeholder: "arn:aws:s3:::my-airflow-bucket" },
    { name: "DagS3Path", label: "DAGs folder", required: true, placeholder: "dags" },
    { name: "PluginsS3Path", label: "Plugins file", placeholder: "plugins.zip" },
    { name: "PluginsS3ObjectVersion", label: "Plugins file version" },
    { name: "RequirementsS3Path", label: "Requirements file", placeholder: "requirements.txt" },
    { name: "RequirementsS3ObjectVersion", label: "Requirements file version" },
    { name: "StartupScriptS3Path", label: "Startup script file", placeholder: "startup.sh" },
    { name: "StartupScriptS3ObjectVersion", label: "Startup script version" },
  ] },
  { legend: "Permissions and encryption", fields: [
    { name: "ExecutionRoleArn", label: "Execution role ARN", required: true, placeholder: "arn:aws:iam::123456789012:role/my-mwaa-role" },
    { name: "KmsKey", label: "KMS key", scope: "create", hint: "Blank: an AWS owned key." },
  ] },
  { legend: "Networking", fields: [
    { name: "SubnetIds", label: "Subnet IDs", kind: "list", scope: "create", required: true, placeholder: "subnet-a, subnet-b", hint: "Exactly two, separated by commas." },
    { name: "SecurityGroupIds", label: "Security group IDs", kind: "list", placeholder: "sg-1", hint: "One to five, separated by commas.", requiredOnCreate: true },
    { name: "WebserverAccessMode", label: "Web server access", kind: "select", options: ["PRIVATE_ONLY", "PUBLIC_ONLY", "PUBLIC_AND_PRIVATE"] },
    { name: "EndpointManagement", label: "Endpoint management", kind: "select", scope: "create", options: ["SERVICE", "CUSTOMER"] },
  ] },
  { legend: "Environment class and capacity", fields: [
    { name: "EnvironmentClass", label: "Environment class", kind: "select", options: CLASSES },
    { name: "MinWorkers", label: "Minimum workers", kind: "int" },
    { name: "MaxWorkers", label: "Maximum workers", kind: "int" },
    { name: "Schedulers", label: "Schedulers", kind: "int" },
    { name: "MinWebservers", label: "Minimum web servers", kind: "int" },
    { name: "MaxWebservers", label: "Maximum web servers", kind: "int" },
  ] },
  { legend: "Update behaviour", scope: "update", fields: [
    { name: "WorkerReplacementStrategy", label: "Worker replacement strategy", kind: "select", scope: "update", options: ["GRACEFUL", "FORCED"], hint: "GRACEFUL lets running tasks finish." },
  ] },
];
const ALL_FIELDS = GROUPS.flatMap((g) => g.fields.map((f) => f.name));
const MEMBERS = [...ALL_FIELDS, "AirflowConfigurationOptions", "LoggingConfiguration", "Tags", "NetworkConfiguration",
                 ...LOG_MODULES.map(([m]) => m)];

const fieldId = (name) => `f-${name}`;
const errorId = (name) => `err-${name}`;

function inScope(item, mode) {
  return !item.scope || item.scope === "both" || item.scope === mode;
}

function fieldControl(field, mode) {
  const id = fieldId(field.name);
  const describedBy = [field.hint ? `hint-${field.name}` : null, errorId(field.name)].filter(Boolean).join(" ");
  const common = { id, name: field.name, "aria-describedby": describedBy };
  if (field.required || (field.requiredOnCreate && mode === "create")) common["aria-required"] = "true";
  let control;
  if (field.kind === "select") {
    control = h("select", common, h("option", { value: "" }, mode === "create" ? "(service default)" : "(unchanged)"),
      field.options.map((o) => h("option", { value: o }, o)));
  } else {
    control = h("input", { ...common, type: "text", autocomplete: "off", spellcheck: "false", placeholder: field.placeholder,
                           inputmode: field.kind === "int" ? "numeric" : undefined, list: field.list ? `${id}-list` : undefined });
  }
  return h("div", { class: `field field-${field.kind || "text"}`, dataset: { field: field.name } },
    h("label", { for: id }, field.label, (field.required || (field.requiredOnCreate && mode === "create")) ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    control,
    field.list ? h("datalist", { id: `${id}-list` }, field.list.map((v) => h("option", { value: v }))) : null,
    field.hint ? h("p", { class: "hint", id: `hint-${field.name}` }, field.hint) : null,
    h("p", { class: "error", id: errorId(field.name), hidden: true }));
}

// Key/value rows for AirflowConfigurationOptions and Tags.
function pairEditor(name, { keyLabel, valueLabel, addLabel, keyPlaceholder, valuePlaceholder }) {
  const rows = h("div", { class: "pairs", id: `${name}-rows` });
  let counter = 0;
  const addRow = (key = "", value = "") => {
    counter += 1;
    const kid = `${name}-key-${counter}`;
    const vid = `${name}-value-${counter}`;
    const row = h("div", { class: "pair", dataset: { pair: name } },
      h("div", { class: "field" }, h("label", { for: kid }, keyLabel), h("input", { id: kid, type: "text", class: "pair-key", value: key, placeholder: keyPlaceholder, autocomplete: "off", spellcheck: "false" })),
      h("div", { class: "field" }, h("label", { for: vid }, valueLabel), h("input", { id: vid, type: "text", class: "pair-value", value, placeholder: valuePlaceholder, autocomplete: "off", spellcheck: "false" })),
      h("button", { type: "button", class: "secondary small", "aria-label": `Remove ${keyLabel.toLowerCase()} row ${counter}`, on: { click: () => {
        const next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        (next ? next.querySelector("input") : addButton).focus();
      } } }, "Remove"));
    rows.append(row);
    return row;
  };
  const addButton = h("button", { type: "button", class: "secondary small", on: { click: () => addRow().querySelector("input").focus() } }, addLabel);
  const read = () => {
    const out = {};
    for (const row of rows.querySelectorAll(".pair")) {
      const k = row.querySelector(".pair-key").value.trim();
      const v = row.querySelector(".pair-value").value;
      if (k || v) out[k] = v;
    }
    return out;
  };
  const element = h("div", { class: "pair-editor", id: fieldId(name), tabindex: "-1", "aria-describedby": errorId(name) }, rows, addButton,
    h("p", { class: "error", id: errorId(name), hidden: true }));
  return { element, addRow, read };
}

function loggingEditor() {
  const rows = LOG_MODULES.map(([member, label]) => {
    const cid = `log-${member}-enabled`;
    const lid = `log-${member}-level`;
    return h("div", { class: "log-row", dataset: { module: member }, id: fieldId(member), tabindex: "-1" },
      h("span", { class: "log-name", id: `log-${member}-name` }, label),
      h("label", { for: cid, class: "check" }, h("input", { id: cid, type: "checkbox", class: "log-enabled", "aria-describedby": errorId(member) }), " Enabled"),
      h("label", { for: lid, class: "visually-hidden" }, `${label} log level`),
      h("select", { id: lid, class: "log-level", "aria-describedby": errorId(member) }, LEVELS.map((l) => h("option", { value: l }, l))),
      h("p", { class: "error", id: errorId(member), hidden: true }));
  });
  return h("div", { class: "logging", id: fieldId("LoggingConfiguration"), tabindex: "-1" }, rows,
    h("p", { class: "error", id: errorId("LoggingConfiguration"), hidden: true }));
}

/** Build the form. mode: "create" | "update"; env: current environment for "update". */
export function environmentForm(mode, env, onSubmit) {
  const options = pairEditor("AirflowConfigurationOptions", { keyLabel: "Option", valueLabel: "Value", addLabel: "Add configuration option", keyPlaceholder: "celery.worker_autoscale", valuePlaceholder: "5,5" });
  const tags = pairEditor("Tags", { keyLabel: "Tag key", valueLabel: "Tag value", addLabel: "Add tag", keyPlaceholder: "team", valuePlaceholder: "data" });
  const summary = h("div", { class: "error-summary", id: "error-summary", tabindex: "-1", hidden: true, role: "alert", "aria-labelledby": "error-summary-title" });
  const submit = h("button", { type: "submit", class: "primary", id: "submit-environment" }, mode === "create" ? "Create environment" : "Save changes");
  const groups = GROUPS.filter((g) => inScope(g, mode)).map((g) =>
    h("fieldset", {}, h("legend", {}, g.legend), h("div", { class: "grid" }, g.fields.filter((f) => inScope(f, mode)).map((f) => fieldControl(f, mode)))));
  const form = h("form", { class: "env-form", novalidate: true, "aria-describedby": "error-summary" },
    summary,
    groups.filter((g) => !g.scope),
    h("fieldset", {}, h("legend", {}, "Airflow configuration options"), h("p", { class: "hint" }, "section.option = value, e.g. core.default_task_retries = 2."), options.element),
    h("fieldset", {}, h("legend", {}, "Monitoring: logs per module"), loggingEditor()),
    groups.filter((g) => g.scope),
    mode === "create" ? h("fieldset", {}, h("legend", {}, "Tags"), tags.element) : null,
    h("div", { class: "actions" }, submit, h("a", { href: mode === "create" ? "#/environments" : `#/environments/${encodeURIComponent(env.Name)}`, class: "button secondary" }, "Cancel"),
      h("span", { class: "busy-note", id: "form-busy", role: "status" })));

  // Prefill.
  const set = (name, value) => { const el = form.querySelector(`#${fieldId(name)}`); if (el && value !== undefined && value !== null) el.value = Array.isArray(value) ? value.join(", ") : String(value); };
  if (mode === "update") {
    for (const f of GROUPS.flatMap((g) => g.fields)) if (f.name !== "WorkerReplacementStrategy") set(f.name, env[f.name]);
    set("SecurityGroupIds", env.NetworkConfiguration?.SecurityGroupIds || []);
    for (const [k, v] of Object.entries(env.AirflowConfigurationOptions || {})) options.addRow(k, v);
    for (const [member] of LOG_MODULES) {
      const cfg = env.LoggingConfiguration?.[member] || {};
      form.querySelector(`#log-${member}-enabled`).checked = Boolean(cfg.Enabled);
      form.querySelector(`#log-${member}-level`).value = cfg.LogLevel || "INFO";
    }
  } else {
    set("DagS3Path", "dags");
    for (const [member] of LOG_MODULES) {
      form.querySelector(`#log-${member}-enabled`).checked = member === "TaskLogs" || member === "SchedulerLogs";
      form.querySelector(`#log-${member}-level`).value = member === "TaskLogs" ? "INFO" : "WARNING";
    }
  }
  if (!options.read || !Object.keys(options.read()).length) options.addRow();
  if (mode === "create") tags.addRow();

  const readValues = () => {
    const v = {};
    for (const f of GROUPS.flatMap((g) => g.fields)) {
      if (!inScope(f, mode)) continue;
      const el = form.querySelector(`#${fieldId(f.name)}`);
      if (!el) continue;
      const raw = el.value.trim();
      if (raw === "") continue;
      if (f.kind === "int") v[f.name] = /^-?\d+$/.test(raw) ? Number(raw) : raw; // the API words the error
      else if (f.kind === "list") v[f.name] = raw.split(/[\s,]+/).filter(Boolean);
      else v[f.name] = raw;
    }
    v.AirflowConfigurationOptions = options.read();
    v.LoggingConfiguration = Object.fromEntries(LOG_MODULES.map(([m]) => [m, {
      Enabled: form.querySelector(`#log-${m}-enabled`).checked, LogLevel: form.querySelector(`#log-${m}-level`).value }]));
    if (mode === "create") v.Tags = tags.read();
    return v;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = readValues();
    const input = mode === "create" ? createInput(values) : updateInput(values, env);
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    form.querySelector("#form-busy").textContent = mode === "create" ? "Creating…" : "Saving…";
    try {
      await onSubmit(input, values);
    } catch (error) {
      showApiError(form, error);
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
      form.querySelector("#form-busy").textContent = "";
    }
  });
  return form;
}

function createInput(v) {
  const input = {};
  for (const [k, value] of Object.entries(v)) {
    if (["Name", "SubnetIds", "SecurityGroupIds", "WorkerReplacementStrategy"].includes(k)) continue;
    input[k] = value;
  }
  if (!Object.keys(input.AirflowConfigurationOptions).length) delete input.AirflowConfigurationOptions;
  if (!Object.keys(input.Tags || {}).length) delete input.Tags;
  const network = {};
  if (v.SubnetIds) network.SubnetIds = v.SubnetIds;
  if (v.SecurityGroupIds) network.SecurityGroupIds = v.SecurityGroupIds;
  input.NetworkConfiguration = network;
  return { name: v.Name || "", body: input };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const sortKeys = (o) => Object.fromEntries(Object.entries(o || {}).sort(([a], [b]) => (a < b ? -1 : 1)));

// Only what changed, as the MWAA console sends it.
function updateInput(v, env) {
  const input = {};
  for (const f of GROUPS.flatMap((g) => g.fields)) {
    if (!inScope(f, "update") || ["SecurityGroupIds", "WorkerReplacementStrategy"].includes(f.name)) continue;
    if (v[f.name] === undefined) continue;
    if (!same(v[f.name], env[f.name])) input[f.name] = v[f.name];
  }
  if (v.SecurityGroupIds && !same(v.SecurityGroupIds, env.NetworkConfiguration?.SecurityGroupIds)) {
    input.NetworkConfiguration = { SecurityGroupIds: v.SecurityGroupIds };
  }
  if (!same(sortKeys(v.AirflowConfigurationOptions), sortKeys(env.AirflowConfigurationOptions))) input.AirflowConfigurationOptions = v.AirflowConfigurationOptions;
  const current = Object.fromEntries(LOG_MODULES.map(([m]) => [m, { Enabled: Boolean(env.LoggingConfiguration?.[m]?.Enabled), LogLevel: env.LoggingConfiguration?.[m]?.LogLevel || "INFO" }]));
  if (!same(v.LoggingConfiguration, current)) input.LoggingConfiguration = v.LoggingConfiguration;
  if (Object.keys(input).length && v.WorkerReplacementStrategy) input.WorkerReplacementStrategy = v.WorkerReplacementStrategy;
  return { name: env.Name, body: input };
}

// ---- errors

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

/** "1 validation error detected: Value 'x' at 'maxWorkers' failed ...; Value ..." → [{member, text}] */
export function parseValidationMessage(message) {
  const found = [];
  const body = message.replace(/^\d+ validation errors? detected:\s*/, "");
  if (body !== message) {
    for (const part of body.split(/;\s*(?=Value[ ']|Value$)/)) {
      const m = part.match(/ at '([^']+)' failed to satisfy constraint: (.*)$/s);
      if (!m) continue;
      const loc = m[1].split(".");
      let member = cap(loc[0]);
      if ((loc[0] === "networkConfiguration" || loc[0] === "loggingConfiguration") && loc[1]) member = cap(loc[1]);
      found.push({ member, text: part.trim() });
    }
    if (found.length) return found;
  }
  // Domain rules name the member: "Invalid MinWorkers: ...", "... given as SourceBucketArn ...".
  let member = null;
  const invalid = message.match(/^Invalid (\w+)/);
  if (invalid && MEMBERS.includes(invalid[1])) member = invalid[1];
  else if (/^Invalid value for tag/.test(message)) member = "Tags";
  else if (/^Environment \S+ already exists/.test(message)) member = "Name";
  else member = MEMBERS.find((m) => new RegExp(`\\b${m}\\b`).test(message)) || null;
  return [{ member, text: message }];
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".error")) { el.hidden = true; el.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field.invalid, .invalid")) el.classList.remove("invalid");
  const summary = form.querySelector("#error-summary");
  summary.hidden = true;
  summary.replaceChildren();
}

const FIELD_ALIAS = { NetworkConfiguration: "SubnetIds" };

export function showApiError(form, error) {
  const summary = form.querySelector("#error-summary");
  const items = error.code === "ValidationException" ? parseValidationMessage(error.message) : [{ member: null, text: `${error.code || "Error"}: ${error.message}` }];
  const list = h("ul");
  for (const { member: rawMember, text } of items) {
    const member = FIELD_ALIAS[rawMember] && !form.querySelector(`#${errorId(rawMember)}`) ? FIELD_ALIAS[rawMember] : rawMember;
    const slot = member ? form.querySelector(`#${errorId(member)}`) : null;
    if (slot) {
      slot.textContent = text;
      slot.hidden = false;
      const target = form.querySelector(`#${fieldId(member)}`);
      if (target) {
        target.setAttribute("aria-invalid", "true");
        (target.closest(".field") || target).classList.add("invalid");
      }
      list.append(h("li", {}, h("a", { href: `#${fieldId(member)}`, on: { click: (e) => { e.preventDefault(); focusField(form, member); } } }, text)));
    } else {
      list.append(h("li", {}, text));
    }
  }
  summary.replaceChildren(h("h2", { id: "error-summary-title" }, error.code === "ValidationException" ? "The API rejected the request" : "The request failed"), list);
  summary.hidden = false;
  summary.focus();
}

function focusField(form, member) {
  const target = form.querySelector(`#${fieldId(member)}`);
  if (!target) return;
  const focusable = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea") || target;
  focusable.focus();
  focusable.scrollIntoView({ block: "center" });
}
