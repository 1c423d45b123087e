// Sign in with an API key, or with a one-time login link (`#/login?token=…`).
import { api, ApiError } from "../api.js";
import { clearProblem, field, h, showProblem } from "../ui.js";

const REASONS = {
  expired: "Your session has expired. Sign in again.",
  required: "Sign in to continue.",
};

function nextHash(params) {
  const next = params.next || "";
  return next && !next.startsWith("/login") && !next.startsWith("/setup") ? `#${next}` : "#/overview";
}

export async function render(view, params, ctx) {
  const token = params.token;
  if (token) {
    // The token must not stay in the address bar or the history once used.
    history.replaceState(null, "", "#/login");
    view.replaceChildren(
      h("section", { class: "auth panel" }, h("h1", {}, "Signing you in…"), h("p", { class: "muted", role: "status" }, "Checking your login link.")),
    );
    try {
      const session = await api("POST", "/v1/session", { body: { login_token: token } });
      ctx.refreshSession(session);
      ctx.navigate(nextHash(params), { replace: true });
      return undefined;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      view.replaceChildren();
      return draw(view, params, ctx, "This login link is invalid, used or expired. Ask for a new one with `leadflow accounts login-link ACCOUNT`, or sign in with an API key.");
    }
  }
  return draw(view, params, ctx, params.signed_out ? "You are signed out." : REASONS[params.reason]);
}

function draw(view, params, ctx, notice) {
  const key = h("input", { type: "password", name: "api_key", autocomplete: "off", required: true, spellcheck: "false", "data-testid": "api-key" });
  const submit = h("button", { type: "submit", "data-testid": "signin" }, "Sign in");
  const form = h(
    "form",
    { class: "auth-form", novalidate: true, "data-testid": "login-form" },
    field({ label: "API key", name: "api_key", input: key, hint: "Starts with lf_. The key stays on this page: the browser keeps only a session cookie." }),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(form);
    const value = key.value.trim();
    if (!value) {
      showProblem(form, { detail: "Enter your API key.", errors: [{ field: "api_key", message: "Required." }] });
      return;
    }
    submit.disabled = true;
    try {
      const session = await api("POST", "/v1/session", { body: { api_key: value } });
      key.value = "";
      ctx.refreshSession(session);
      ctx.navigate(nextHash(params), { replace: true });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const problem = error.status === 401
        ? { detail: "That API key was not accepted.", errors: [{ field: "api_key", message: "Check the key and try again." }] }
        : error.problem;
      showProblem(form, problem);
    } finally {
      submit.disabled = false;
    }
  });
  view.replaceChildren(
    h(
      "section",
      { class: "auth panel", "data-testid": "login" },
      h("h1", {}, "Sign in to leadflow"),
      notice ? h("p", { class: "notice", role: "status", "data-testid": "login-notice" }, notice) : null,
      form,
      h("h2", {}, "No key at hand?"),
      h("p", { class: "muted" }, "Print a one-time login link (valid for 15 minutes) on the server:"),
      h("pre", { class: "command" }, h("code", {}, "leadflow accounts login-link ACCOUNT")),
    ),
  );
  key.focus();
  return undefined;
}
