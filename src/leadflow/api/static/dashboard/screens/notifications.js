// Instant Lead Notifications (#/notifications): the endpoints leadflow posts signed events to,
// and the log of every delivery. Built on /v1/iln/endpoints and /v1/iln/deliveries.

import { api, ApiError } from "../api.js";
import { empty, field, h, loading, problemBox, select, showProblem, toast } from "../ui.js";

const EVENT_TYPES = [
  ["lead.captured", "A lead was captured"],
  ["lead.converted", "A lead bought"],
  ["lead.unsubscribed", "A lead unsubscribed"],
  ["lead.followups_completed", "Every follow-up went out without a purchase"],
  ["followup.sent", "A follow-up was sent"],
  ["followup.failed", "A follow-up failed"],
  ["campaign.activated", "A campaign was activated"],
  ["campaign.deactivated", "A campaign was deactivated"],
  ["abtest.decided", "An A/B test ended"],
];
const DELIVERY_STATUSES = [
  ["", "Any status"],
  ["pending", "Pending"],
  ["delivered", "Delivered"],
  ["failed", "Failed"],
];
const PAGE = 50;

export async function render(view, params, ctx) {
  const state = { endpoints: [], campaigns: [], pings: {} };
  const secretSlot = h("div", { "data-testid": "secret-slot", "aria-live": "polite" });
  const endpointList = h("div", { "data-testid": "endpoint-list" }, loading());
  const deliveries = h("section", { class: "panel", "data-testid": "delivery-log" });
  const form = h("form", { class: "panel", "data-testid": "endpoint-form", novalidate: true });

  view.replaceChildren(
    h(
      "section",
      { class: "screen", "data-testid": "notifications-screen" },
      h("h1", {}, "Notifications"),
      h(
        "p",
        { class: "muted" },
        "Instant Lead Notifications post a signed JSON message (Standard Webhooks) to your own " +
          "system the moment something happens: a lead captured, a follow-up sent, a purchase.",
      ),
      secretSlot,
      h("section", { class: "panel" }, h("h2", {}, "Endpoints"), endpointList),
      form,
      deliveries,
    ),
  );

  try {
    state.campaigns = await allCampaigns();
  } catch {
    state.campaigns = []; // the form still works without the campaign choice
  }
  buildForm();
  await Promise.all([loadEndpoints(), renderDeliveries(deliveries, state, params)]);

  function showSecret(secret, what) {
    secretSlot.replaceChildren(secretBox(secret, what));
    secretSlot.querySelector("code")?.focus();
  }

  async function loadEndpoints() {
    try {
      const page = await api("GET", "/v1/iln/endpoints", { query: { limit: 500 } });
      state.endpoints = page.items;
    } catch (error) {
      endpointList.replaceChildren(problemBox(error));
      return;
    }
    drawEndpoints();
  }

  /** After a redraw, the keyboard goes back to the button it was on. */
  function refocus(endpointId, testid) {
    endpointList.querySelector(`[data-endpoint-id="${endpointId}"] [data-testid="${testid}"]`)?.focus();
  }

  function drawEndpoints() {
    if (!state.endpoints.length) {
      endpointList.replaceChildren(
        empty({
          title: "No endpoint yet",
          text:
            "Add the URL of your CRM, Zapier hook or own service below; then send it a test ping. " +
            "Every notification is signed with the endpoint's secret.",
        }),
      );
      return;
    }
    endpointList.replaceChildren(
      h(
        "ul",
        { class: "cards" },
        state.endpoints.map((endpoint) => endpointCard(endpoint)),
      ),
    );
    const filter = deliveries.querySelector("select[name=endpoint_id]");
    if (filter) refillEndpointFilter(filter, state.endpoints);
  }

  function endpointCard(endpoint) {
    const last = state.pings[endpoint.id];
    const outcome = h(
      "div",
      { class: "outcome", "data-testid": "ping-outcome", "aria-live": "polite" },
      last ? pingOutcome(last) : null,
    );
    const campaign = state.campaigns.find((item) => item.id === endpoint.campaign_id);
    const card = h(
      "li",
      { class: "card", "data-testid": "endpoint", "data-endpoint-id": endpoint.id },
      h(
        "h3",
        {},
        h("code", { "data-testid": "endpoint-url" }, endpoint.url),
        " ",
        h(
          "span",
          { class: `badge ${endpoint.enabled ? "active" : "inactive"}`, "data-testid": "endpoint-state" },
          endpoint.enabled ? "enabled" : "disabled",
        ),
      ),
      endpoint.description ? h("p", {}, endpoint.description) : null,
      !endpoint.enabled && endpoint.disabled_reason
        ? h("p", { class: "warning" }, `Disabled: ${endpoint.disabled_reason}`)
        : null,
      h(
        "p",
        { class: "muted" },
        endpoint.event_types.length ? `Events: ${endpoint.event_types.join(", ")}` : "Events: all",
        " · ",
        endpoint.campaign_id ? `Campaign: ${campaign ? campaign.name : endpoint.campaign_id}` : "Every campaign",
      ),
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            "data-testid": "endpoint-ping",
            onclick: async (event) => {
              const button = event.currentTarget;
              button.disabled = true;
              outcome.replaceChildren(h("span", { role: "status" }, "Sending a ping…"));
              try {
                state.pings[endpoint.id] = await api("POST", `/v1/iln/endpoints/${endpoint.id}/test`);
                await loadEndpoints(); // shows the outcome; a 410 answer disables the endpoint
                refocus(endpoint.id, "endpoint-ping");
                await renderDeliveries(deliveries, state, {});
              } catch (error) {
                outcome.replaceChildren(problemBox(error));
              } finally {
                button.disabled = false;
              }
            },
          },
          "Send test ping",
        ),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-testid": "endpoint-toggle",
            onclick: async () => {
              try {
                await api("PATCH", `/v1/iln/endpoints/${endpoint.id}`, { body: { enabled: !endpoint.enabled } });
                toast(endpoint.enabled ? "Endpoint disabled" : "Endpoint enabled");
                await loadEndpoints();
                refocus(endpoint.id, "endpoint-toggle");
              } catch (error) {
                outcome.replaceChildren(problemBox(error));
              }
            },
          },
          endpoint.enabled ? "Disable" : "Enable",
        ),
        confirmButton({
          label: "Rotate secret",
          confirm: "Rotate: the new secret is shown once",
          testid: "endpoint-rotate",
          run: async () => {
            try {
              const rotated = await api("POST", `/v1/iln/endpoints/${endpoint.id}/rotate-secret`);
              const until = rotated.previous_secret_expires_at
                ? ` Until ${new Date(rotated.previous_secret_expires_at).toLocaleString()} notifications carry signatures with both secrets.`
                : "";
              showSecret(rotated.secret, `The new signing secret of ${endpoint.url}.${until}`);
            } catch (error) {
              outcome.replaceChildren(problemBox(error));
            }
          },
        }),
        confirmButton({
          label: "Delete",
          confirm: "Delete it and its deliveries",
          testid: "endpoint-delete",
          danger: true,
          run: async () => {
            try {
              await api("DELETE", `/v1/iln/endpoints/${endpoint.id}`);
              toast("Endpoint deleted");
              await loadEndpoints();
              await renderDeliveries(deliveries, state, {});
            } catch (error) {
              outcome.replaceChildren(problemBox(error));
            }
          },
        }),
      ),
      outcome,
    );
    return card;
  }

  function buildForm() {
    const url = h("input", { type: "url", required: true, placeholder: "https://crm.example.com/hooks/leadflow" });
    const description = h("input", { type: "text", maxlength: 500 });
    const types = h(
      "fieldset",
      { class: "checks", "data-testid": "endpoint-event-types" },
      h("legend", {}, "Events (none ticked: every event)"),
      EVENT_TYPES.map(([value, text]) => {
        const box = h("input", { type: "checkbox", name: "event_types", value, id: `iln-type-${value.replace(".", "-")}` });
        return h("div", { class: "check" }, box, h("label", { for: box.id }, h("code", {}, value), " ", text));
      }),
      h("p", { class: "field-error", "data-error-for": "event_types", hidden: true, role: "alert" }),
    );
    const campaign = select("campaign_id", [
      ["", "Every campaign"],
      ...state.campaigns.map((item) => [item.id, item.name]),
    ]);
    form.replaceChildren(
      h("h2", {}, "Add an endpoint"),
      field({ label: "URL", name: "url", input: url, hint: "Where leadflow posts; https in production." }),
      field({ label: "Description", name: "description", input: description }),
      types,
      field({
        label: "Campaign",
        name: "campaign_id",
        input: campaign,
        hint: "Only events about this campaign's leads, or every campaign.",
      }),
      h("div", { class: "actions" }, h("button", { type: "submit", "data-testid": "endpoint-create" }, "Add endpoint")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = {
        url: String(data.get("url") || "").trim(),
        event_types: data.getAll("event_types").map(String),
      };
      const text = String(data.get("description") || "").trim();
      if (text) body.description = text;
      if (data.get("campaign_id")) body.campaign_id = String(data.get("campaign_id"));
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        const created = await api("POST", "/v1/iln/endpoints", { body });
        form.querySelectorAll(".form-problem").forEach((el) => el.remove());
        form.querySelectorAll(".field-error").forEach((el) => {
          el.hidden = true;
          el.textContent = "";
        });
        form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
        form.reset();
        showSecret(created.secret, `The signing secret of ${created.url}: your receiver verifies every notification with it.`);
        await loadEndpoints();
      } catch (error) {
        if (error instanceof ApiError && error.problem) showProblem(form, error.problem);
        else toast(String(error), "error");
      } finally {
        submit.disabled = false;
      }
    });
  }
}

async function allCampaigns() {
  const page = await api("GET", "/v1/campaigns", { query: { limit: 500 } });
  return page.items;
}

function pingOutcome(delivery) {
  const ok = delivery.status === "delivered";
  const code = delivery.last_status_code ? `HTTP ${delivery.last_status_code}` : "no answer";
  return h(
    "p",
    { class: ok ? "ok" : "warning", "data-testid": "ping-result", "data-status": delivery.status },
    ok ? `Ping delivered: the endpoint answered ${code}.` : `Ping failed: ${code}${delivery.last_error ? ` (${delivery.last_error})` : ""}.`,
  );
}

/** A secret leadflow shows only now: copy it, it is never shown again. */
export function secretBox(secret, what) {
  const code = h("code", { "data-testid": "secret-value", tabindex: "0" }, secret);
  const copy = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "data-testid": "secret-copy",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(secret);
          toast("Copied");
        } catch {
          const range = document.createRange();
          range.selectNodeContents(code);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          toast("Selected: press Ctrl+C to copy");
        }
      },
    },
    "Copy",
  );
  const box = h(
    "div",
    { class: "secret-once", role: "alert", "data-testid": "secret-once" },
    h("p", {}, h("strong", {}, "Copy it now: it is not shown again. "), what),
    h("p", {}, code, " ", copy),
    h(
      "button",
      { type: "button", class: "link", "data-testid": "secret-dismiss", onclick: () => box.remove() },
      "I have stored it",
    ),
  );
  return box;
}

/** A button that asks again in place (no modal), so the keyboard stays where it was. */
function confirmButton({ label, confirm, testid, run, danger = false }) {
  const slot = h("span", { class: "confirm" });
  const first = h(
    "button",
    {
      type: "button",
      class: danger ? "danger" : "secondary",
      "data-testid": testid,
      onclick: () => {
        const yes = h(
          "button",
          {
            type: "button",
            class: danger ? "danger" : "",
            "data-testid": `${testid}-confirm`,
            onclick: async () => {
              yes.disabled = true;
              await run();
              slot.replaceChildren(first);
            },
          },
          confirm,
        );
        const no = h(
          "button",
          { type: "button", class: "secondary", onclick: () => { slot.replaceChildren(first); first.focus(); } },
          "Cancel",
        );
        slot.replaceChildren(yes, " ", no);
        yes.focus();
      },
    },
    label,
  );
  slot.append(first);
  return slot;
}

function refillEndpointFilter(selectEl, endpoints) {
  const chosen = selectEl.value;
  selectEl.replaceChildren(
    h("option", { value: "" }, "Any endpoint"),
    ...endpoints.map((endpoint) => h("option", { value: endpoint.id }, endpoint.url)),
  );
  selectEl.value = endpoints.some((e) => e.id === chosen) ? chosen : "";
}

// -- the delivery log -----------------------------------------------------------------------

async function renderDeliveries(section, state, params) {
  const previous = section.querySelector("form");
  const kept = previous ? Object.fromEntries(new FormData(previous)) : {};
  const initial = {
    status: kept.status ?? params.status ?? "",
    endpoint_id: kept.endpoint_id ?? params.endpoint_id ?? "",
    event_type: kept.event_type ?? params.event_type ?? "",
  };
  const endpointSelect = select("endpoint_id", [["", "Any endpoint"], ...state.endpoints.map((e) => [e.id, e.url])], initial.endpoint_id);
  const form = h(
    "form",
    { class: "filters", "data-testid": "delivery-filters", "aria-label": "Filter deliveries" },
    field({ label: "Status", name: "status", input: select("status", DELIVERY_STATUSES, initial.status) }),
    field({ label: "Endpoint", name: "endpoint_id", input: endpointSelect }),
    field({
      label: "Event",
      name: "event_type",
      input: select("event_type", [["", "Any event"], ...EVENT_TYPES.map(([v]) => [v, v]), ["ping", "ping"]], initial.event_type),
    }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary", "data-testid": "delivery-refresh" }, "Refresh")),
  );
  const results = h("div", { "data-testid": "delivery-results" }, loading());
  section.replaceChildren(
    h("h2", {}, "Delivery log"),
    h("p", { class: "muted" }, "Newest first. Failed deliveries are retried with backoff; redeliver sends one again with the same webhook-id."),
    form,
    results,
  );

  const load = async () => {
    const query = Object.fromEntries([...new FormData(form)].filter(([, v]) => v));
    let page;
    try {
      page = await api("GET", "/v1/iln/deliveries", { query: { ...query, limit: PAGE } });
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) showProblem(form, error.problem);
      else results.replaceChildren(problemBox(error));
      return;
    }
    if (!page.items.length) {
      results.replaceChildren(
        empty({
          title: Object.keys(query).length ? "No delivery matches these filters" : "No delivery yet",
          text: Object.keys(query).length
            ? "Choose another status, endpoint or event."
            : "Send a test ping to an endpoint: its delivery shows up here.",
        }),
      );
      return;
    }
    const body = h("tbody", {});
    const more = h("div", { class: "actions" });
    const endpointUrl = (id) => state.endpoints.find((e) => e.id === id)?.url || id;
    const addPage = (current) => {
      body.append(...current.items.map((delivery) => deliveryRow(delivery, endpointUrl, load)));
      more.replaceChildren();
      if (current.next_cursor) {
        more.append(
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              "data-testid": "delivery-load-more",
              onclick: async () => {
                try {
                  addPage(await api("GET", "/v1/iln/deliveries", { query: { ...query, limit: PAGE, cursor: current.next_cursor } }));
                } catch (error) {
                  more.replaceChildren(problemBox(error));
                }
              },
            },
            "Load more",
          ),
        );
      }
    };
    addPage(page);
    results.replaceChildren(
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table", "data-testid": "delivery-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Created", "Event", "Endpoint", "Status", "Attempts", "Last answer", "Next attempt", ""].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          body,
        ),
      ),
      more,
    );
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  form.querySelectorAll("select").forEach((el) => el.addEventListener("change", load));
  await load();
}

function deliveryRow(delivery, endpointUrl, reload) {
  const when = (value) => (value ? new Date(value).toLocaleString() : "–");
  const answer = delivery.last_status_code
    ? `HTTP ${delivery.last_status_code}${delivery.last_error ? `: ${delivery.last_error}` : ""}`
    : delivery.last_error || "–";
  const cell = h("td", {});
  if (delivery.status !== "pending") {
    cell.append(
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "data-testid": "delivery-redeliver",
          "aria-label": `Redeliver ${delivery.event_type} of ${when(delivery.created_at)}`,
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            try {
              await api("POST", `/v1/iln/deliveries/${delivery.id}/redeliver`);
              toast("Queued for delivery again");
              await reload();
            } catch (error) {
              cell.replaceChildren(problemBox(error));
            }
          },
        },
        "Redeliver",
      ),
    );
  }
  return h(
    "tr",
    { "data-testid": "delivery-row", "data-delivery-id": delivery.id, "data-status": delivery.status },
    h("td", {}, when(delivery.created_at)),
    h("td", {}, h("code", {}, delivery.event_type)),
    h("td", {}, endpointUrl(delivery.endpoint_id)),
    h("td", {}, h("span", { class: `badge ${delivery.status}`, "data-testid": "delivery-status" }, delivery.status)),
    h("td", { class: "num", "data-testid": "delivery-attempts" }, String(delivery.attempts)),
    h("td", {}, answer),
    h("td", {}, delivery.status === "pending" ? when(delivery.next_attempt_at) : "–"),
    cell,
  );
}
