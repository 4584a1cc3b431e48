// The sign-in page: an access key pair, checked with one signed ListEnvironments call before it
// is kept in the tab's sessionStorage. `route` shows the page asked for once signed in.
import { Client, describeAuthError } from "../api.js";
import { announce, h } from "../dom.js";
import { page, saveSession, takeSignOutReason } from "../shell.js";

export function viewSignIn(route) {
  const reason = takeSignOutReason();
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
      saveSession(session);
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
