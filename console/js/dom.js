// Tiny DOM helpers: build elements, announce to screen readers, format times.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Polite announcements for assistive technology (status changes, saved, deleted, ...).
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

export function fmtTime(epoch) {
  if (epoch === undefined || epoch === null || epoch === "") return "—";
  const date = typeof epoch === "number" ? new Date(epoch * 1000) : new Date(epoch);
  if (Number.isNaN(date.getTime())) return String(epoch);
  return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function fmtClock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

const TRANSITIONAL = new Set(["CREATING", "UPDATING", "DELETING", "ROLLING_BACK", "CREATING_SNAPSHOT", "MAINTENANCE"]);
const FAILED = new Set(["CREATE_FAILED", "UPDATE_FAILED", "UNAVAILABLE"]);

export function isBusy(status) { return TRANSITIONAL.has(status); }
export function isFailed(status) { return FAILED.has(status); }

export function statusBadge(status) {
  const kind = status === "AVAILABLE" ? "ok" : FAILED.has(status) ? "bad" : TRANSITIONAL.has(status) ? "busy" : "idle";
  return h("span", { class: `badge badge-${kind}`, dataset: { status } },
    TRANSITIONAL.has(status) ? h("span", { class: "spinner", "aria-hidden": "true" }) : null,
    status === "PENDING" ? "PENDING (paused)" : status);
}

// Repeats `fn` every `ms` while the page is visible, one call at a time; stop() ends it.
export class Poller {
  constructor(fn, ms) {
    this.fn = fn;
    this.ms = ms;
    this.stopped = false;
    this.timer = null;
  }
  start(now = true) {
    const tick = async () => {
      if (this.stopped) return;
      if (!document.hidden) {
        try { await this.fn(); } catch (err) { console.warn("poll failed", err); }
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.ms);
    };
    if (now) tick(); else this.timer = setTimeout(tick, this.ms);
    return this;
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
