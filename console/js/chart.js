// A line chart of a few series as inline SVG (no library): step lines, time axis, y ticks, legend.
import { fmtClock } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const COLORS = { QueuedTasks: "#b45309", RunningTasks: "#1d4ed8", WorkerCount: "#047857" };
const LABELS = { QueuedTasks: "Queued tasks", RunningTasks: "Running tasks", WorkerCount: "Workers" };

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (value <= 4) return 4;
  const pow = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= value) return m * pow;
  return value;
}

/** series: {name: [[epochSeconds, value], ...]}; window: [since, until] in epoch seconds. */
export function lineChart(series, [since, until], { width = 640, height = 220, title = "Tasks and workers" } = {}) {
  const pad = { left: 36, right: 12, top: 12, bottom: 28 };
  const w = width - pad.left - pad.right;
  const hgt = height - pad.top - pad.bottom;
  const names = Object.keys(series);
  const all = names.flatMap((n) => series[n].map((p) => p[1]));
  const yMax = niceMax(Math.max(0, ...all));
  const span = Math.max(1, until - since);
  const x = (t) => pad.left + ((t - since) / span) * w;
  const y = (v) => pad.top + hgt - (v / yMax) * hgt;

  const latest = names.map((n) => {
    const pts = series[n];
    return `${LABELS[n] || n} ${pts.length ? pts[pts.length - 1][1] : "no data"}`;
  }).join(", ");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-labelledby": "chart-title chart-desc", preserveAspectRatio: "xMidYMid meet" });
  svg.append(s("title", { id: "chart-title" }, title), s("desc", { id: "chart-desc" }, `Latest: ${latest}.`));

  for (let i = 0; i <= 4; i += 1) {
    const v = (yMax / 4) * i;
    svg.append(s("line", { x1: pad.left, x2: pad.left + w, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(s("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, Number.isInteger(v) ? v : v.toFixed(1)));
  }
  for (let i = 0; i <= 4; i += 1) {
    const t = since + (span / 4) * i;
    svg.append(s("text", { x: x(t), y: height - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", class: "tick" }, fmtClock(t)));
  }
  svg.append(s("line", { x1: pad.left, x2: pad.left, y1: pad.top, y2: pad.top + hgt, class: "axis" }));
  svg.append(s("line", { x1: pad.left, x2: pad.left + w, y1: pad.top + hgt, y2: pad.top + hgt, class: "axis" }));

  for (const name of names) {
    const pts = series[name].filter((p) => p[0] >= since);
    if (!pts.length) continue;
    let d = `M${x(pts[0][0]).toFixed(1)},${y(pts[0][1]).toFixed(1)}`;
    for (let i = 1; i < pts.length; i += 1) {
      d += ` H${x(pts[i][0]).toFixed(1)} V${y(pts[i][1]).toFixed(1)}`;
    }
    d += ` H${x(Math.min(until, pts[pts.length - 1][0] + 5)).toFixed(1)}`;
    svg.append(s("path", { d, fill: "none", stroke: COLORS[name] || "#444", "stroke-width": name === "WorkerCount" ? 2.5 : 2,
                           "stroke-dasharray": name === "QueuedTasks" ? "6 3" : "none", "data-series": name }));
  }
  return svg;
}

export function legend(names) {
  const ul = document.createElement("ul");
  ul.className = "legend";
  for (const n of names) {
    const li = document.createElement("li");
    const sw = s("svg", { width: 22, height: 10, "aria-hidden": "true" });
    sw.append(s("line", { x1: 0, x2: 22, y1: 5, y2: 5, stroke: COLORS[n] || "#444", "stroke-width": 3, "stroke-dasharray": n === "QueuedTasks" ? "6 3" : "none" }));
    li.append(sw, document.createTextNode(" " + (LABELS[n] || n)));
    ul.append(li);
  }
  return ul;
}
