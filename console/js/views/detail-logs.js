// The detail page's log tail: one LoggingConfiguration module at a time, followed while "Follow"
// is checked (the local `airflow-{Name}-{Module}` log groups, a signed read-only extension).
import { h } from "../dom.js";
import { LOG_MODULES } from "../form.js";

export function logPanel(client, name) {
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
