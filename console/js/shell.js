// What every view shares: the session (sessionStorage only), the page frame, polling that stops
// when the route changes, and sending an expired or revoked key back to sign-in.
import { ApiError, describeAuthError } from "./api.js";
import { Poller, announce, clear, h } from "./dom.js";

const SESSION_KEY = "airdock.console.session";
const REASON_KEY = "airdock.console.reason";
const main = document.getElementById("main");
let pollers = [];

// ---------------------------------------------------------------- session

export function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return saved && saved.accessKeyId ? saved : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  location.hash = "#/signin";
  announce("Signed out.");
}

// Why the last session ended (shown once on the sign-in page).
export function takeSignOutReason() {
  const reason = sessionStorage.getItem(REASON_KEY);
  sessionStorage.removeItem(REASON_KEY);
  return reason;
}

// An expired or revoked key sends the user back to sign-in with the reason.
export function handleAuth(error) {
  if (error instanceof ApiError && error.status === 403 && /Signature|UnrecognizedClient|MissingAuthentication/.test(error.code)) {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.setItem(REASON_KEY, describeAuthError(error).text);
    location.hash = "#/signin";
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- page frame

export function page(title, ...children) {
  document.title = `${title} · Airdock console`;
  const heading = h("h1", { tabindex: "-1", id: "page-title" }, title);
  clear(main, heading, ...children);
  heading.focus({ preventScroll: true });
  return heading;
}

export function errorBox(error) {
  return h("div", { class: "notice notice-bad", role: "alert" }, error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
}

// ---------------------------------------------------------------- polling (ends with the route)

export function poll(fn, ms) {
  const p = new Poller(fn, ms).start();
  pollers.push(p);
  return p;
}

export function stopPolling() {
  for (const p of pollers) p.stop();
  pollers = [];
}
