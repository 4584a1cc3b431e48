// Create and edit: the environment form (form.js) wired to CreateEnvironment and
// UpdateEnvironment; the API's own validation messages land next to their field.
import { ApiError } from "../api.js";
import { announce, h } from "../dom.js";
import { environmentForm } from "../form.js";
import { errorBox, handleAuth, page } from "../shell.js";

export function viewCreate(client) {
  const form = environmentForm("create", null, async ({ name, body }) => {
    await client.createEnvironment(name, body);
    announce(`Creating environment ${name}.`);
    location.hash = `#/environments/${encodeURIComponent(name)}`;
  });
  page("Create environment", h("p", { class: "lead" }, "Every field is checked by the API itself; its messages appear next to the field they concern."), form);
}

export async function viewEdit(client, name) {
  page(`Edit ${name}`, h("p", { role: "status" }, "Loading…"));
  let env;
  try {
    env = await client.getEnvironment(name);
  } catch (error) {
    if (!handleAuth(error)) page(`Edit ${name}`, errorBox(error));
    return;
  }
  const form = environmentForm("update", env, async ({ body }) => {
    if (!Object.keys(body).length) {
      const e = new ApiError(400, "NoChanges", "Nothing changed: edit a field first.");
      throw e;
    }
    await client.updateEnvironment(name, body);
    announce(`Updating environment ${name}.`);
    location.hash = `#/environments/${encodeURIComponent(name)}`;
  });
  page(`Edit ${name}`, h("p", { class: "lead" }, `Status ${env.Status}. Only changed fields are sent (UpdateEnvironment).`), form);
}
