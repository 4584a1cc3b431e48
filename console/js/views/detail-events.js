// The detail page's recent status events (the local EventBridge `aws.airflow` events), newest first.
import { clear, fmtTime, h } from "../dom.js";

export function eventsPanel(client, name) {
  const element = h("div", { id: "events" });
  const refresh = async () => {
    let data;
    try {
      data = await client.events(name, 15);
    } catch (error) {
      clear(element, h("p", { class: "hint" }, `Events unavailable: ${error.message}`));
      return;
    }
    const list = (data.Events || []).slice().reverse();
    clear(element, list.length ? h("ol", { class: "events" }, list.map((e) => {
      const d = e.detail || {};
      return h("li", {}, h("time", { datetime: e.time }, fmtTime(e.time)), " ",
        d.PreviousStatus ? `${d.PreviousStatus} → ` : "", h("strong", {}, d.Status),
        d.Error ? h("span", { class: "event-error" }, ` ${d.Error.ErrorCode || ""}: ${d.Error.ErrorMessage || ""}`) : null);
    })) : h("p", { class: "hint" }, "No status events yet."));
  };
  return { element, refresh };
}
