// The detail page's workers and tasks: current/desired workers and task counts (the workers
// extension), and a chart of the last 30 minutes of QueuedTasks, RunningTasks and WorkerCount
// (the metrics extension, the local CloudWatch AmazonMWAA namespace).
import { clear, h } from "../dom.js";
import { legend, lineChart } from "../chart.js";

export function capacityPanel(client, name) {
  const workers = h("div", { id: "workers" });
  const chart = h("div", { class: "chart-wrap", id: "chart" }, h("p", { class: "hint" }, "Loading metrics…"));
  const refresh = async () => {
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
  return { elements: [workers, chart], refresh };
}
