// Settings (#/settings): sending rules, API keys, the webhook secret and platform integrations.
// Built on /v1/settings, /v1/api-keys, /v1/webhook-secret/rotate and /v1/integrations.

import { api, ApiError } from "../api.js";
import { field, h, loading, problemBox, select, showProblem, toast } from "../ui.js";
import { secretBox } from "./notifications.js";

const DELAYS = [
  ["abandoned_checkout", "Abandoned checkout"],
  ["unfinished_order", "Unfinished order"],
  ["trial", "Trial"],
  ["renewal", "Renewal"],
];
const PLATFORMS = {
  stripe: {
    name: "Stripe",
    secret: "Signing secret (whsec_…)",
    where: "Stripe Dashboard → Developers → Webhooks → Add endpoint: paste the URL, then copy its signing secret here.",
  },
  shopify: {
    name: "Shopify",
    secret: "Client secret or webhook key",
    where: "Shopify admin → Settings → Notifications → Webhooks: create webhooks with this URL; the key shown there goes here.",
  },
  woocommerce: {
    name: "WooCommerce",
    secret: "Webhook secret",
    where: "WooCommerce → Settings → Advanced → Webhooks → Add webhook: paste the URL as Delivery URL and the same secret here.",
  },
  paypro: {
    name: "PayPro Global",
    secret: "Secret key (verifies HASH)",
    where: "PayPro Global → Settings → IPN: paste the URL; copy the secret key and the validation key here.",
  },
};

export async function render(view, params, ctx) {
  const accountId = ctx?.session?.account_id || "";
  const sending = h("section", { class: "panel", "data-testid": "settings-sending" }, loading());
  const keys = h("section", { class: "panel", "data-testid": "settings-api-keys" }, loading());
  const secret = h("section", { class: "panel", "data-testid": "settings-webhook-secret" });
  const integrations = h("section", { class: "panel", "data-testid": "settings-integrations" }, loading());
  view.replaceChildren(
    h(
      "section",
      { class: "screen", "data-testid": "settings-screen" },
      h("h1", {}, "Settings"),
      sending,
      keys,
      secret,
      integrations,
    ),
  );
  drawWebhookSecret(secret, accountId);
  await Promise.all([drawSending(sending), drawKeys(keys), drawIntegrations(integrations, accountId)]);
}

// -- durations ------------------------------------------------------------------------------

const DURATION = /^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

/** `P1DT30M` → "1 day 30 minutes"; null when it is not a duration leadflow accepts. */
export function humanDuration(text) {
  const match = DURATION.exec(String(text || "").trim().toUpperCase());
  if (!match) return null;
  const units = ["week", "day", "hour", "minute", "second"];
  const parts = match
    .slice(1)
    .map((value, index) => [Number(value || 0), units[index]])
    .filter(([value]) => value > 0)
    .map(([value, unit]) => `${value} ${unit}${value === 1 ? "" : "s"}`);
  return parts.length ? parts.join(" ") : "no delay";
}

function durationInput(name, value) {
  const input = h("input", { type: "text", name, value, autocomplete: "off", spellcheck: "false", size: 10 });
  const reading = h("span", { class: "duration-human", "data-testid": `duration-human-${name.split(".").pop()}` });
  const update = () => {
    const human = humanDuration(input.value);
    reading.textContent = human ? `= ${human}` : "not a duration: write e.g. PT2H, P1D, P1DT30M";
    reading.classList.toggle("warning", !human);
  };
  input.addEventListener("input", update);
  update();
  return { input, reading };
}

// -- sending rules --------------------------------------------------------------------------

function timeZones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return [];
  }
}

async function drawSending(section) {
  let settings;
  try {
    settings = await api("GET", "/v1/settings");
  } catch (error) {
    section.replaceChildren(problemBox(error));
    return;
  }
  const zones = h("datalist", { id: "settings-timezones" }, timeZones().map((zone) => h("option", { value: zone })));
  const delays = DELAYS.map(([key, label]) => {
    const { input, reading } = durationInput(`min_delays.${key}`, settings.min_delays?.[key] || "");
    return h(
      "div",
      { class: "field" },
      h("label", { for: `delay-${key}` }, label),
      Object.assign(input, { id: `delay-${key}` }),
      " ",
      reading,
      h("p", { class: "field-error", "data-error-for": `min_delays.${key}`, hidden: true, role: "alert" }),
    );
  });
  const hasCap = Object.hasOwn(settings, "min_hours_between_emails");
  const form = h(
    "form",
    { "data-testid": "settings-form", novalidate: true },
    h("h2", {}, "Sending"),
    field({
      label: "Sender name",
      name: "sender_name",
      input: h("input", { type: "text", value: settings.sender_name || "", maxlength: 200 }),
      hint: "Shown as the From name of every follow-up.",
    }),
    field({
      label: "Sender email",
      name: "sender_email",
      input: h("input", { type: "email", value: settings.sender_email || "", autocomplete: "email" }),
    }),
    field({
      label: "Time zone",
      name: "timezone",
      input: h("input", { type: "text", value: settings.timezone, list: "settings-timezones", autocomplete: "off" }),
      hint: "IANA name, e.g. Europe/Berlin: statistics days and date filters use it.",
    }),
    zones,
    field({
      label: "Default currency",
      name: "default_currency",
      input: h("input", { type: "text", value: settings.default_currency, maxlength: 3, size: 4, autocomplete: "off" }),
      hint: "ISO 4217 code, e.g. EUR.",
    }),
    h(
      "fieldset",
      { "data-testid": "settings-min-delays" },
      h("legend", {}, "Minimum delay before the first follow-up"),
      h("p", { class: "hint" }, "ISO 8601 durations: PT30M is 30 minutes, PT2H two hours, P1D one day, PT0S none."),
      delays,
    ),
    field({
      label: "At most one follow-up per address every (hours)",
      name: "min_hours_between_emails",
      input: h("input", {
        type: "number",
        min: 0,
        max: 720,
        step: 1,
        value: hasCap ? String(settings.min_hours_between_emails) : "",
        disabled: !hasCap,
      }),
      hint: hasCap
        ? "Frequency cap across all campaigns; 0 turns it off."
        : "Frequency cap: this server does not offer it yet.",
    }),
    field({
      label: "After a follow-up whose delivery is unknown",
      name: "after_unknown_step",
      input: select(
        "after_unknown_step",
        [
          ["continue", "Continue with the next follow-ups"],
          ["stop", "Stop the sequence"],
        ],
        settings.after_unknown_step,
      ),
      hint: "A worker stopped while handing a follow-up to the mail server: it was probably delivered and is never sent again.",
    }),
    h("div", { class: "actions" }, h("button", { type: "submit", "data-testid": "settings-save" }, "Save settings")),
    h("p", { class: "muted", "data-testid": "settings-updated" }, `Last changed ${new Date(settings.updated_at).toLocaleString()}`),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (name) => String(form.elements.namedItem(name)?.value ?? "").trim();
    const body = {
      sender_name: value("sender_name") || null,
      sender_email: value("sender_email") || null,
      timezone: value("timezone"),
      default_currency: value("default_currency").toUpperCase(),
      after_unknown_step: value("after_unknown_step"),
      min_delays: Object.fromEntries(DELAYS.map(([key]) => [key, value(`min_delays.${key}`).toUpperCase()])),
    };
    if (hasCap) {
      const cap = value("min_hours_between_emails");
      // A number when it is one, the text otherwise: the API says what is wrong with it.
      body.min_hours_between_emails = /^\d+$/.test(cap) ? Number(cap) : cap;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("PUT", "/v1/settings", { body });
      toast("Settings saved");
      await drawSending(section);
      section.querySelector("[data-testid=settings-save]")?.focus();
    } catch (error) {
      if (error instanceof ApiError && error.problem) showProblem(form, error.problem);
      else toast(String(error), "error");
      button.disabled = false;
    }
  });
  section.replaceChildren(form);
}

// -- API keys -------------------------------------------------------------------------------

async function drawKeys(section) {
  let page;
  try {
    page = await api("GET", "/v1/api-keys", { query: { limit: 500 } });
  } catch (error) {
    section.replaceChildren(problemBox(error));
    return;
  }
  const shown = h("div", { "aria-live": "polite", "data-testid": "api-key-created" });
  const rows = page.items.map((key) => {
    const cell = h("td", {});
    const revoke = h(
      "button",
      {
        type: "button",
        class: "danger",
        "data-testid": "api-key-revoke",
        "aria-label": `Revoke API key ${key.name}`,
        onclick: () => {
          const yes = h(
            "button",
            {
              type: "button",
              class: "danger",
              "data-testid": "api-key-revoke-confirm",
              onclick: async () => {
                yes.disabled = true;
                try {
                  await api("DELETE", `/v1/api-keys/${key.id}`);
                  toast(`API key ${key.name} revoked`);
                  await drawKeys(section);
                } catch (error) {
                  cell.replaceChildren(problemBox(error), revoke);
                }
              },
            },
            "Revoke: it stops working at once",
          );
          const no = h("button", { type: "button", class: "secondary", onclick: () => { cell.replaceChildren(revoke); revoke.focus(); } }, "Cancel");
          cell.replaceChildren(yes, " ", no);
          yes.focus();
        },
      },
      "Revoke",
    );
    cell.append(revoke);
    return h(
      "tr",
      { "data-testid": "api-key-row", "data-key-id": key.id },
      h("td", { "data-testid": "api-key-name" }, key.name),
      h("td", {}, h("code", {}, `${key.prefix}…`)),
      h("td", {}, new Date(key.created_at).toLocaleString()),
      h("td", {}, key.last_used_at ? new Date(key.last_used_at).toLocaleString() : "never"),
      cell,
    );
  });
  const name = h("input", { type: "text", maxlength: 100, placeholder: "zapier", autocomplete: "off" });
  const form = h(
    "form",
    { class: "inline-form", "data-testid": "api-key-form", novalidate: true },
    field({ label: "New key's name", name: "name", input: name, hint: "What will use it, so you know which to revoke later." }),
    h("div", { class: "actions" }, h("button", { type: "submit", "data-testid": "api-key-create" }, "Create API key")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("POST", "/v1/api-keys", { body: { name: name.value } });
      await drawKeys(section);
      section
        .querySelector("[data-testid=api-key-created]")
        .replaceChildren(secretBox(created.key, `The API key "${created.name}": send it as Authorization: Bearer … .`));
      section.querySelector("[data-testid=secret-value]")?.focus();
    } catch (error) {
      if (error instanceof ApiError && error.problem) showProblem(form, error.problem);
      else toast(String(error), "error");
    }
  });
  section.replaceChildren(
    h("h2", {}, "API keys"),
    h("p", { class: "muted" }, "Keys for other programs calling the leadflow API. Only a hash is stored: a key is shown once, when created."),
    shown,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "table", "data-testid": "api-key-table" },
        h("thead", {}, h("tr", {}, ["Name", "Starts with", "Created", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows),
      ),
    ),
    form,
  );
}

// -- the webhook secret ---------------------------------------------------------------------

function copyable(text, testid) {
  const code = h("code", { "data-testid": testid }, text);
  return h(
    "span",
    { class: "copyable" },
    code,
    " ",
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        "aria-label": "Copy the URL",
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(text);
            toast("Copied");
          } catch {
            toast("Select the text and press Ctrl+C to copy");
          }
        },
      },
      "Copy",
    ),
  );
}

function drawWebhookSecret(section, accountId) {
  const slot = h("div", { "aria-live": "polite", "data-testid": "webhook-secret-slot" });
  const rotate = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-testid": "webhook-secret-rotate",
      onclick: () => {
        const yes = h(
          "button",
          {
            type: "button",
            "data-testid": "webhook-secret-rotate-confirm",
            onclick: async () => {
              yes.disabled = true;
              try {
                const rotated = await api("POST", "/v1/webhook-secret/rotate");
                const until = rotated.previous_secret_expires_at
                  ? ` The previous secret is still accepted until ${new Date(rotated.previous_secret_expires_at).toLocaleString()}: switch your senders before then.`
                  : "";
                slot.replaceChildren(secretBox(rotated.webhook_secret, `The new webhook secret.${until}`));
                slot.querySelector("[data-testid=secret-value]")?.focus();
              } catch (error) {
                slot.replaceChildren(problemBox(error));
              }
              actions.replaceChildren(rotate);
            },
          },
          "Rotate: the new secret is shown once",
        );
        const no = h("button", { type: "button", class: "secondary", onclick: () => { actions.replaceChildren(rotate); rotate.focus(); } }, "Cancel");
        actions.replaceChildren(yes, " ", no);
        yes.focus();
      },
    },
    "Rotate webhook secret",
  );
  const actions = h("div", { class: "actions" }, rotate);
  section.replaceChildren(
    h("h2", {}, "Webhook secret"),
    h(
      "p",
      { class: "muted" },
      "Your shop signs the events it posts with this secret (Standard Webhooks). It was shown when the account was created; rotate it to get a new one (the old one keeps working for a while).",
    ),
    h("p", {}, "Events URL: ", copyable(`${window.location.origin}/v1/webhooks/${accountId}/events`, "events-url")),
    slot,
    actions,
  );
}

// -- integrations ---------------------------------------------------------------------------

async function drawIntegrations(section, accountId) {
  let page;
  try {
    page = await api("GET", "/v1/integrations");
  } catch (error) {
    section.replaceChildren(problemBox(error));
    return;
  }
  section.replaceChildren(
    h("h2", {}, "Integrations"),
    h("p", { class: "muted" }, "Native webhooks from your shop platform. Paste the URL into the platform, then store its secret here so leadflow can verify each delivery. Secrets are never shown again."),
    h("ul", { class: "cards" }, page.items.map((item) => integrationCard(section, accountId, item))),
  );
}

function integrationCard(section, accountId, item) {
  const platform = PLATFORMS[item.platform] || { name: item.platform, secret: "Secret", where: "" };
  const url = `${window.location.origin}/v1/webhooks/${accountId}/${item.platform}`;
  const inputs = [
    field({
      label: `${platform.name}: ${platform.secret}`,
      name: "secret",
      input: h("input", { type: "password", autocomplete: "off", "data-testid": `integration-secret-${item.platform}` }),
    }),
  ];
  if (item.platform === "paypro") {
    inputs.push(
      field({
        label: "PayPro Global: validation key (verifies SIGNATURE)",
        name: "validation_key",
        input: h("input", { type: "password", autocomplete: "off" }),
      }),
    );
  }
  const form = h(
    "form",
    { class: "inline-form", novalidate: true },
    inputs,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", "data-testid": `integration-save-${item.platform}` }, item.configured ? "Replace secret" : "Save secret"),
      item.configured
        ? h(
            "button",
            {
              type: "button",
              class: "danger",
              "data-testid": `integration-delete-${item.platform}`,
              onclick: async () => {
                try {
                  await api("DELETE", `/v1/integrations/${item.platform}`);
                  toast(`${platform.name} secret removed: its deliveries are refused until a new one is set`);
                  await drawIntegrations(section, accountId);
                } catch (error) {
                  showProblem(form, error.problem || { detail: String(error) });
                }
              },
            },
            "Remove secret",
          )
        : null,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { secret: String(data.get("secret") || "") };
    if (item.platform === "paypro") body.validation_key = String(data.get("validation_key") || "") || null;
    try {
      await api("PUT", `/v1/integrations/${item.platform}`, { body });
      toast(`${platform.name} secret saved`);
      await drawIntegrations(section, accountId);
    } catch (error) {
      if (error instanceof ApiError && error.problem) showProblem(form, error.problem);
      else toast(String(error), "error");
    }
  });
  return h(
    "li",
    { class: "card", "data-testid": "integration", "data-platform": item.platform },
    h(
      "h3",
      {},
      platform.name,
      " ",
      h(
        "span",
        { class: `badge ${item.configured ? "active" : "inactive"}`, "data-testid": "integration-state" },
        item.configured ? "configured" : "not configured",
      ),
    ),
    h("p", {}, "Webhook URL: ", copyable(url, `integration-url-${item.platform}`)),
    platform.where ? h("p", { class: "hint" }, platform.where) : null,
    item.updated_at ? h("p", { class: "muted" }, `Secret set ${new Date(item.updated_at).toLocaleString()}`) : null,
    form,
  );
}
