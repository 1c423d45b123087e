// First run: the setup link printed by `leadflow serve` on an empty database creates the first
// account, signs in, and shows the API key and webhook secret once.
import { api, ApiError } from "../api.js";
import { clearProblem, field, h, showProblem } from "../ui.js";

export async function render(view, params, ctx) {
  const token = params.token;
  if (token) history.replaceState(null, "", "#/setup");
  if (!token) {
    view.replaceChildren(
      h(
        "section",
        { class: "auth panel", "data-testid": "setup" },
        h("h1", {}, "Set up leadflow"),
        h("p", {}, "Open the setup link that `leadflow serve` printed when it started on an empty database. It is used once and creates your account."),
        h("p", {}, "Already set up? ", h("a", { href: "#/login" }, "Sign in"), "."),
      ),
    );
    return undefined;
  }
  const name = h("input", { type: "text", name: "account_name", required: true, maxlength: 200, autocomplete: "organization", "data-testid": "account-name-input" });
  const submit = h("button", { type: "submit", "data-testid": "create-account" }, "Create account");
  const form = h(
    "form",
    { novalidate: true },
    field({ label: "Shop or company name", name: "account_name", input: name, hint: "Shown in the dashboard and as the default sender name." }),
    submit,
  );
  const section = h(
    "section",
    { class: "auth panel", "data-testid": "setup" },
    h("h1", {}, "Welcome to leadflow"),
    h("p", {}, "Name your account to finish the setup. You will be signed in right away."),
    form,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(form);
    if (!name.value.trim()) {
      showProblem(form, { detail: "Enter a name.", errors: [{ field: "account_name", message: "Required." }] });
      return;
    }
    submit.disabled = true;
    try {
      const created = await api("POST", "/v1/setup", { body: { token, account_name: name.value.trim() } });
      ctx.refreshSession(created);
      section.replaceChildren(...credentials(created, ctx));
      section.querySelector("h1").focus();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const problem = error.status === 401 || error.status === 409
        ? { ...error.problem, detail: `${error.problem.detail || "This setup link cannot be used."} If an account already exists, sign in instead.` }
        : error.problem;
      showProblem(form, problem);
      submit.disabled = false;
    }
  });
  view.replaceChildren(section);
  name.focus();
  return undefined;
}

function secret(label, value, testid) {
  const input = h("input", { type: "text", readonly: true, value, name: testid, class: "secret", "data-testid": testid });
  input.addEventListener("focus", () => input.select());
  return field({ label, name: testid, input });
}

function credentials(created, ctx) {
  return [
    h("h1", { tabindex: "-1" }, `${created.account_name} is ready`),
    h("p", { role: "status" }, "Copy these two secrets now: they are shown only this once."),
    secret("API key (for scripts and the JSON API)", created.api_key, "api-key-once"),
    secret("Webhook secret (signs the events your shop sends)", created.webhook_secret, "webhook-secret-once"),
    h("p", {}, "Next, send a test event so the dashboard has a lead to show:"),
    h("pre", { class: "command" }, h("code", {}, `leadflow events send-test ${created.account_id}`)),
    h("button", { type: "button", "data-testid": "setup-continue", onclick: () => ctx.navigate("#/overview") }, "I have saved them: go to the overview"),
  ];
}
