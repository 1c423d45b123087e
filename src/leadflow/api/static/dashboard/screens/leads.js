// Leads: the searchable list (#/leads) and one lead's page (#/leads/{id}).
// Built on GET /v1/leads (keyset paging with next_cursor) and GET /v1/leads/{id}.

import { api, ApiError } from "../api.js";
import { empty, field, h, loading, money, problemBox, select, showProblem } from "../ui.js";

const SOURCES = [
  ["", "All sources"],
  ["abandoned_checkout", "Abandoned checkout"],
  ["unfinished_order", "Unfinished order"],
  ["trial", "Trial"],
  ["renewal", "Renewal"],
  ["opt_in", "Opt-in"],
];
const STATUSES = [
  ["", "All statuses"],
  ["open", "Open"],
  ["converted", "Converted"],
  ["unsubscribed", "Unsubscribed"],
  ["expired", "Expired"],
];
const FILTERS = [
  "email",
  "source_type",
  "status",
  "country",
  "language",
  "captured_from",
  "captured_to",
];
const SOURCE_NAMES = Object.fromEntries(SOURCES.slice(1));
const STEP_STATUS = {
  sending: "being sent",
  sent: "sent",
  deferred: "deferred (will be retried)",
  failed: "failed",
  unknown: "probably sent (delivery unknown)",
};
const STOP_REASONS = {
  converted: "the lead bought",
  unsubscribed: "the lead unsubscribed",
  expired: "the lead expired",
  suppressed: "the address is suppressed",
  campaign_archived: "the campaign was archived",
  campaign_ended: "the campaign ended",
  variant_removed: "its variant was removed",
  send_failed: "sending failed",
  template_error: "the template could not be rendered",
  invalid_sender: "the sender address is invalid",
  smtp_rejected: "the mail server rejected it",
  smtp_unavailable: "the mail server was unavailable",
  delivery_unknown: "a step's delivery is unknown",
};

export async function render(view, params, ctx) {
  const id = params.id || params.lead_id;
  if (id) return renderLead(view, id, ctx);
  return renderList(view, params || {}, ctx);
}

// -- shared ---------------------------------------------------------------------------------

/** The account's time zone: lead times and the captured range are days in it. */
async function accountZone() {
  try {
    const settings = await api("GET", "/v1/settings");
    return settings.timezone || undefined;
  } catch {
    return undefined;
  }
}

function when(value, timeZone) {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  try {
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short", timeZone });
  } catch {
    return date.toLocaleString();
  }
}

function timeCell(value, timeZone) {
  return value ? h("time", { datetime: value }, when(value, timeZone)) : "–";
}

function fullName(customer) {
  return [customer.first_name, customer.last_name].filter(Boolean).join(" ");
}

function leadAmount(lead) {
  return lead.amount != null && lead.currency ? money(lead.amount, lead.currency) : "–";
}

function badge(status) {
  return h("span", { class: `badge ${status}`, "data-testid": "lead-status" }, status);
}

// -- the list -------------------------------------------------------------------------------

async function renderList(view, params, ctx) {
  const zone = await accountZone();
  const limit = Number(params.limit) > 0 ? Number(params.limit) : undefined;
  const initial = Object.fromEntries(FILTERS.map((name) => [name, params[name] || ""]));

  const input = (name, attrs = {}) => h("input", { name, value: initial[name], ...attrs });
  const form = h(
    "form",
    { class: "filters", role: "search", "data-testid": "lead-filters", "aria-label": "Filter leads" },
    field({
      label: "Email",
      name: "email",
      input: input("email", { type: "search", placeholder: "jane@example.com", autocomplete: "off" }),
    }),
    field({ label: "Source", name: "source_type", input: select("source_type", SOURCES, initial.source_type) }),
    field({ label: "Status", name: "status", input: select("status", STATUSES, initial.status) }),
    field({
      label: "Country",
      name: "country",
      input: input("country", { placeholder: "DE", size: 4, autocomplete: "off" }),
    }),
    field({
      label: "Language",
      name: "language",
      input: input("language", { placeholder: "de", size: 4, autocomplete: "off" }),
    }),
    field({
      label: "Captured from",
      name: "captured_from",
      input: input("captured_from", { type: "date" }),
    }),
    field({
      label: "Captured through",
      name: "captured_to",
      input: input("captured_to", { type: "date" }),
    }),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", "data-testid": "lead-filter-apply" }, "Search"),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-testid": "lead-filter-clear",
          onclick: () => {
            form.reset();
            form.querySelectorAll("input").forEach((el) => {
              el.value = "";
            });
            form.querySelectorAll("select").forEach((el) => {
              el.value = "";
            });
            search();
          },
        },
        "Clear",
      ),
    ),
  );

  const status = h("p", { class: "muted", "data-testid": "lead-count", "aria-live": "polite" });
  const results = h("div", { "data-testid": "lead-results" });
  view.replaceChildren(
    h(
      "section",
      { class: "screen", "data-testid": "leads-screen" },
      h("h1", {}, "Leads"),
      h(
        "p",
        { class: "muted" },
        "Newest first. Open a lead to see its events, follow-ups and conversion.",
        zone ? ` Dates and times are in the account's time zone, ${zone}.` : "",
      ),
      form,
      status,
      results,
    ),
  );

  let generation = 0;

  function currentFilters() {
    const data = new FormData(form);
    const out = {};
    for (const name of FILTERS) {
      const value = String(data.get(name) || "").trim();
      if (value) out[name] = value;
    }
    return out;
  }

  function keepInUrl(filters) {
    // Reflects the filters in the address (bookmarkable) without the router rendering again.
    const query = new URLSearchParams(filters);
    if (limit) query.set("limit", String(limit));
    const text = query.toString();
    history.replaceState(null, "", `#/leads${text ? `?${text}` : ""}`);
  }

  async function search() {
    const filters = currentFilters();
    const mine = ++generation;
    keepInUrl(filters);
    results.replaceChildren(loading());
    status.textContent = "";
    let page;
    try {
      page = await api("GET", "/v1/leads", { query: { ...filters, limit } });
    } catch (error) {
      if (mine !== generation) return;
      results.replaceChildren();
      if (error instanceof ApiError && error.status === 422) showProblem(form, error.problem);
      else results.replaceChildren(problemBox(error));
      return;
    }
    if (mine !== generation) return;
    form.querySelectorAll(".form-problem").forEach((el) => el.remove());
    form.querySelectorAll(".field-error").forEach((el) => {
      el.hidden = true;
      el.textContent = "";
    });
    if (!page.items.length) {
      results.replaceChildren(Object.keys(filters).length ? noMatch() : noLeads(ctx));
      return;
    }
    const body = h("tbody", {});
    const table = h(
      "table",
      { class: "table", "data-testid": "lead-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Captured", "Email", "Name", "Source", "Status", "Country", "Language", "Value"].map((text) =>
            h("th", { scope: "col" }, text),
          ),
        ),
      ),
      body,
    );
    let shown = 0;
    const more = h("div", { class: "actions" });
    const addPage = (current, { focus = false } = {}) => {
      const added = current.items.map((lead) => leadRow(lead, zone));
      body.append(...added);
      shown += current.items.length;
      status.textContent = `${shown} lead${shown === 1 ? "" : "s"} shown${current.next_cursor ? ", more below" : ""}`;
      more.replaceChildren();
      if (current.next_cursor) {
        const button = h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-testid": "lead-load-more",
            onclick: async () => {
              button.disabled = true;
              button.textContent = "Loading…";
              try {
                const next = await api("GET", "/v1/leads", {
                  query: { ...filters, limit, cursor: current.next_cursor },
                });
                if (mine === generation) addPage(next, { focus: true });
              } catch (error) {
                more.replaceChildren(problemBox(error));
              }
            },
          },
          "Load more",
        );
        more.append(button);
      }
      // The keyboard goes on from the first lead just loaded, not from the top of the page.
      if (focus) (added[0]?.querySelector("a") || more.querySelector("button"))?.focus();
    };
    addPage(page);
    results.replaceChildren(h("div", { class: "table-wrap" }, table), more);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  // Choices in a select or a date apply at once; typed text waits for Enter or Search.
  form.querySelectorAll("select, input[type=date]").forEach((el) => el.addEventListener("change", search));
  await search();
}

function leadRow(lead, zone) {
  const href = `#/leads/${encodeURIComponent(lead.id)}`;
  return h(
    "tr",
    { "data-testid": "lead-row", "data-lead-id": lead.id },
    h("td", {}, timeCell(lead.captured_at, zone)),
    h("td", {}, h("a", { href, "data-testid": "lead-link" }, lead.customer.email)),
    h("td", {}, fullName(lead.customer) || "–"),
    h("td", { "data-testid": "lead-source" }, SOURCE_NAMES[lead.source_type] || lead.source_type),
    h("td", {}, badge(lead.status)),
    h("td", {}, lead.customer.country || "–"),
    h("td", {}, lead.customer.language || "–"),
    h("td", { class: "num" }, leadAmount(lead)),
  );
}

function noMatch() {
  return empty({
    title: "No lead matches these filters",
    text: "Widen the captured range, or clear the filters to see every lead.",
  });
}

function noLeads(ctx) {
  const account = (ctx && ctx.session && ctx.session.account_id) || "ACCOUNT_ID";
  const origin = window.location.origin;
  const curl = [
    "SECRET='whsec_…'   # the account's webhook secret",
    "BODY='{\"type\":\"checkout.abandoned\",\"occurred_at\":\"" +
      new Date().toISOString().slice(0, 19) +
      "Z\",\"reference\":\"test_1\",\"customer\":{\"email\":\"jane@example.com\",\"first_name\":\"Jane\"}}'",
    "ID=msg_$(date +%s); TS=$(date +%s)",
    "KEY=$(printf %s \"${SECRET#whsec_}\" | base64 -d | od -An -tx1 | tr -d ' \\n')",
    "SIG=$(printf '%s.%s.%s' \"$ID\" \"$TS\" \"$BODY\" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY -binary | base64)",
    `curl -sS -X POST ${origin}/v1/webhooks/${account}/events \\`,
    '  -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" \\',
    "  -H 'content-type: application/json' -d \"$BODY\"",
  ].join("\n");
  const box = empty({
    title: "No leads yet: send a test event",
    text: "A lead appears here when your shop posts an event. Send a test one from the machine running leadflow:",
    code: `leadflow events send-test ${account}`,
    action: h(
      "details",
      { class: "empty-more" },
      h("summary", {}, "Or sign and post it yourself with curl and openssl"),
      h("pre", { class: "command", "data-testid": "leads-empty-curl" }, h("code", {}, curl)),
    ),
  });
  box.dataset.testid = "leads-empty";
  return box;
}

// -- one lead -------------------------------------------------------------------------------

async function renderLead(view, id, ctx) {
  view.replaceChildren(loading());
  let lead;
  let zone;
  try {
    [lead, zone] = await Promise.all([
      api("GET", `/v1/leads/${encodeURIComponent(id)}`),
      accountZone(),
    ]);
  } catch (error) {
    view.replaceChildren(
      h(
        "section",
        { class: "screen", "data-testid": "lead-screen" },
        backLink(),
        error instanceof ApiError && error.status === 404
          ? empty({ title: "Lead not found", text: "It may belong to another account. Go back to the list." })
          : problemBox(error),
      ),
    );
    return;
  }
  const campaign = lead.sequence || lead.conversion?.campaign_id ? await campaignOf(lead) : null;
  const customer = lead.customer;
  view.replaceChildren(
    h(
      "section",
      { class: "screen", "data-testid": "lead-screen" },
      backLink(),
      h("h1", { "data-testid": "lead-email" }, customer.email, " ", badge(lead.status)),
      summary(lead, zone),
      conversionBlock(lead, campaign, zone),
      sequenceBlock(lead, campaign, zone),
      eventsBlock(lead, zone),
    ),
  );
}

function backLink() {
  return h("p", {}, h("a", { href: "#/leads", "data-testid": "lead-back" }, "← All leads"));
}

async function campaignOf(lead) {
  const campaignId = lead.sequence?.campaign_id || lead.conversion?.campaign_id;
  if (!campaignId) return null;
  try {
    return await api("GET", `/v1/campaigns/${encodeURIComponent(campaignId)}`);
  } catch {
    return null; // archived or gone: the ids are shown instead
  }
}

function variantName(campaign, variantId) {
  const variant = campaign?.variants?.find((item) => item.id === variantId);
  return variant ? variant.name : variantId;
}

function campaignLink(campaign, campaignId) {
  return h(
    "a",
    { href: `#/campaigns/${encodeURIComponent(campaignId)}`, "data-testid": "lead-campaign" },
    campaign ? campaign.name : campaignId,
  );
}

function summary(lead, zone) {
  const customer = lead.customer;
  const rows = [
    ["Name", fullName(customer) || "–"],
    ["Source", SOURCE_NAMES[lead.source_type] || lead.source_type],
    ["Reference", lead.reference],
    ["Captured", timeCell(lead.captured_at, zone)],
    ["Value", leadAmount(lead)],
    ["Country", customer.country || "–"],
    ["Language", customer.language || "–"],
    ["Customer's time zone", customer.timezone || "–"],
    [
      "Products",
      lead.products.length
        ? lead.products.map((p) => `${p.quantity} × ${p.name}`).join(", ")
        : "–",
    ],
    [
      "Recovery link",
      lead.recovery_url ? h("a", { href: lead.recovery_url, rel: "noopener noreferrer", target: "_blank" }, lead.recovery_url) : "–",
    ],
  ];
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Lead"),
    h(
      "dl",
      { class: "facts", "data-testid": "lead-summary" },
      rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
    ),
  );
}

function conversionBlock(lead, campaign, zone) {
  const conversion = lead.conversion;
  const body = conversion
    ? h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Bought"),
        h("dd", {}, timeCell(conversion.converted_at, zone)),
        h("dt", {}, "Value"),
        h(
          "dd",
          { "data-testid": "conversion-value" },
          conversion.amount != null && conversion.currency ? money(conversion.amount, conversion.currency) : "–",
        ),
        h("dt", {}, "Credited to"),
        h(
          "dd",
          { "data-testid": "conversion-credit" },
          conversion.campaign_id
            ? [
                campaignLink(campaign, conversion.campaign_id),
                `, variant ${variantName(campaign, conversion.variant_id)}`,
                conversion.step ? `, follow-up ${conversion.step}` : "",
              ]
            : "No follow-up: the lead bought without one",
        ),
      )
    : h("p", { class: "muted" }, "Not converted yet. A purchase event for this lead converts it.");
  return h("section", { class: "panel", "data-testid": "lead-conversion" }, h("h2", {}, "Conversion"), body);
}

function sequenceBlock(lead, campaign, zone) {
  const sequence = lead.sequence;
  if (!sequence) {
    return h(
      "section",
      { class: "panel", "data-testid": "lead-sequence" },
      h("h2", {}, "Follow-ups"),
      h(
        "p",
        { class: "muted" },
        "No campaign took this lead, so no follow-up is planned. Add a campaign for its source, or check that lead management is on.",
      ),
    );
  }
  const state =
    sequence.state === "stopped"
      ? `Stopped: ${STOP_REASONS[sequence.stop_reason] || sequence.stop_reason || "stopped"}`
      : sequence.state === "completed"
        ? "Completed: every follow-up went out"
        : sequence.next_step
          ? `Active: follow-up ${sequence.next_step} due ${when(sequence.next_due_at, zone)}`
          : "Active";
  const errors = sequence.followups.some((item) => item.last_error);
  const rows = sequence.followups.map((item) =>
    h(
      "tr",
      { "data-testid": "followup-row", "data-status": item.status },
      h("td", { class: "num" }, String(item.step)),
      h("td", {}, item.subject),
      h("td", {}, STEP_STATUS[item.status] || item.status),
      h("td", {}, timeCell(item.sent_at, zone)),
      errors ? h("td", {}, item.last_error || "") : null,
    ),
  );
  if (sequence.state === "active" && sequence.next_step && !sequence.followups.some((f) => f.step === sequence.next_step)) {
    rows.push(
      h(
        "tr",
        { "data-testid": "followup-row", "data-status": "scheduled" },
        h("td", { class: "num" }, String(sequence.next_step)),
        h("td", { class: "muted" }, "—"),
        h("td", {}, "scheduled"),
        h("td", {}, timeCell(sequence.next_due_at, zone)),
        errors ? h("td", {}, "") : null,
      ),
    );
  }
  return h(
    "section",
    { class: "panel", "data-testid": "lead-sequence" },
    h("h2", {}, "Follow-ups"),
    h(
      "p",
      {},
      "Campaign ",
      campaignLink(campaign, sequence.campaign_id),
      ", variant ",
      h("span", { "data-testid": "lead-variant" }, variantName(campaign, sequence.variant_id)),
      ". ",
      h("span", { "data-testid": "sequence-state" }, state),
    ),
    rows.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "table", "data-testid": "followup-table" },
            h(
              "thead",
              {},
              h("tr", {}, ["Step", "Subject", "Status", "Sent", errors ? "Last error" : null].filter(Boolean).map((t) => h("th", { scope: "col" }, t))),
            ),
            h("tbody", {}, rows),
          ),
        )
      : h("p", { class: "muted" }, "Nothing sent yet."),
  );
}

function eventsBlock(lead, zone) {
  const roles = { capture: "captured the lead", update: "updated the lead", conversion: "converted the lead" };
  return h(
    "section",
    { class: "panel", "data-testid": "lead-events" },
    h("h2", {}, "Events"),
    lead.events.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "table" },
            h(
              "thead",
              {},
              h("tr", {}, ["Happened", "Event", "From", "Effect", "Received"].map((t) => h("th", { scope: "col" }, t))),
            ),
            h(
              "tbody",
              {},
              lead.events.map((event) =>
                h(
                  "tr",
                  { "data-testid": "event-row", "data-type": event.type },
                  h("td", {}, timeCell(event.occurred_at, zone)),
                  h("td", {}, h("code", {}, event.type)),
                  h("td", {}, event.source),
                  h("td", {}, roles[event.role] || event.role),
                  h("td", {}, timeCell(event.received_at, zone)),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No events recorded."),
  );
}
