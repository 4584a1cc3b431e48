// Delete, confirmed by typing the environment's name (a modal dialog that returns focus to the
// button that opened it).
import { announce, h } from "../dom.js";
import { handleAuth } from "../shell.js";

export function deleteDialog(client, name) {
  const input = h("input", { id: "confirm-name", type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": "confirm-hint confirm-error" });
  const error = h("p", { class: "error", id: "confirm-error", role: "alert", hidden: true });
  const confirm = h("button", { type: "submit", class: "danger", id: "confirm-delete" }, "Delete environment");
  const dialog = h("dialog", { id: "delete-dialog", "aria-labelledby": "delete-title", "aria-describedby": "delete-desc" },
    h("form", { method: "dialog", novalidate: true },
      h("h2", { id: "delete-title" }, `Delete ${name}?`),
      h("p", { id: "delete-desc" }, "Airflow stops and the environment's metadata database, logs and settings are removed. DAG files in the bucket stay."),
      h("div", { class: "field" }, h("label", { for: "confirm-name" }, "Type the environment name to confirm"), input,
        h("p", { class: "hint", id: "confirm-hint" }, name)),
      error,
      h("div", { class: "actions" }, confirm, h("button", { type: "button", class: "secondary", id: "cancel-delete", on: { click: () => dialog.close() } }, "Cancel"))));
  let opener = null;
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.value.trim() !== name) {
      error.textContent = `Type ${name} exactly to confirm.`;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    confirm.disabled = true;
    try {
      await client.deleteEnvironment(name);
      dialog.close();
      announce(`Deleting ${name}.`);
      document.getElementById("action-note").textContent = `Deleting ${name}…`;
    } catch (err) {
      if (handleAuth(err)) return;
      error.textContent = `${err.code}: ${err.message}`;
      error.hidden = false;
    } finally {
      confirm.disabled = false;
    }
  });
  dialog.addEventListener("close", () => { input.value = ""; error.hidden = true; input.removeAttribute("aria-invalid"); opener?.focus(); });
  return { element: dialog, open: () => { opener = document.activeElement; dialog.showModal(); input.focus(); } };
}
