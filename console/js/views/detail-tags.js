// The detail page's tags: the environment's tags with Remove buttons, and a form to add one
// (TagResource / UntagResource). Re-rendered only when the tags change, so typing is never lost.
import { announce, clear, h } from "../dom.js";
import { handleAuth } from "../shell.js";

// refresh(): reload the environment (the page's own refresh), which calls render() again.
export function tagsPanel(client, refresh) {
  const element = h("div", { id: "tags" });
  let rendered = null;
  const render = (env) => {
    const key = JSON.stringify(env.Tags || {});
    if (key === rendered) return;
    rendered = key;
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
        rendered = null;
        await refresh();
        document.getElementById("tag-key")?.focus();
      } catch (error) {
        if (handleAuth(error)) return;
        err.textContent = error.message;
        err.hidden = false;
      }
    });
    const entries = Object.entries(env.Tags || {});
    clear(element,
      entries.length ? h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        h("tbody", {}, entries.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v),
          h("td", {}, h("button", { type: "button", class: "secondary small", "aria-label": `Remove tag ${k}`, on: { click: async () => {
            try { await client.untagResource(env.Arn, [k]); announce(`Tag ${k} removed.`); rendered = null; await refresh(); document.getElementById("tag-key")?.focus(); }
            catch (error) { if (!handleAuth(error)) { err.textContent = error.message; err.hidden = false; } }
          } } }, "Remove"))))))
        : h("p", { class: "hint" }, "No tags."),
      form);
  };
  return { element, render };
}
