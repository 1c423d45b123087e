// Overview: the lead-management switch, the figures as charts (live from the SSE stream) and
// the lead groups with their live counts.
import { api, ApiError } from "../api.js";
import { barChart, lineChart } from "../charts.js";
import { empty, h, money, percent, toast } from "../ui.js";

// Lead counts change when leads arrive, which the stats stream does not report (it reports
// follow-ups and conversions): the groups are re-read on every stream event and at this pace.
const GROUPS_REFRESH_MS = 4000;
const DAYS = 30;

export const SOURCE_NAMES = {
  all: "All sources",
  abandoned_checkout: "Abandoned checkouts",
  unfinished_order: "Unfinished orders",
  trial: "Trials",
  renewal: "Renewals",
  opt_in: "Opt-ins",
};

/** Percent on an axis: whole numbers from 10 up, one decimal below. */
export function rateTick(value) {
  const n = Number(value);
  return n.toFixed(n >= 10 || n === 0 ? 0 : 1);
}

function fromDay() {
  const day = new Date(Date.now() - (DAYS - 1) * 86400000);
  return day.toISOString().slice(0, 10);
}

/** Value per currency, each on its own: "€12.00 · $5.00", or "none yet". */
export function values(value) {
  const entries = Object.entries(value || {});
  if (!entries.length) return "none yet";
  return entries.map(([currency, amount]) => money(amount, currency)).join(" · ");
}

export async function render(view, params, ctx) {
  const [settings, stats, groups] = await Promise.all([
    api("GET", "/v1/settings"),
    api("GET", "/v1/stats", { query: { from: fromDay() } }),
    api("GET", "/v1/lead-groups"),
  ]);
  const state = { settings, stats, groups: groups.items };

  const switchPanel = h("section", { class: "panel switch-panel", "data-testid": "switch-panel", "aria-labelledby": "switch-heading" });
  const figures = h("div", { class: "figures", "data-testid": "figures" });
  const live = h("span", { class: "live", "data-testid": "live", role: "status" }, "Connecting…");
  const charts = h("div", { class: "charts", "data-testid": "charts" });
  const stepCharts = h("div", { class: "grid", "data-testid": "step-charts" });
  const campaignTable = h("div", { "data-testid": "campaign-figures" });
  const groupsBody = h("div", { "data-testid": "lead-groups" });
  const emptyBox = h("div");

  view.replaceChildren(
    h("h1", {}, "Overview"),
    switchPanel,
    emptyBox,
    h(
      "section",
      { class: "panel", "aria-labelledby": "figures-heading" },
      h("div", { class: "spread" }, h("h2", { id: "figures-heading" }, `Last ${DAYS} days`), live),
      figures,
      charts,
    ),
    h("section", { class: "panel", "aria-labelledby": "steps-heading" }, h("h2", { id: "steps-heading" }, "Per follow-up step"), stepCharts, campaignTable),
    h(
      "section",
      { class: "panel", "aria-labelledby": "groups-heading" },
      h("div", { class: "spread" }, h("h2", { id: "groups-heading" }, "Lead groups"), h("a", { class: "button", href: "#/campaigns/new", "data-testid": "add-lead-group" }, "Add lead group")),
      h("p", { class: "muted" }, "Every lead lands in the group of its source. An inactive group still captures and counts its leads; no follow-up goes to them."),
      groupsBody,
    ),
  );

  drawSwitch(switchPanel, state);
  drawFigures(figures, state.stats.overall);
  drawCharts(charts, stepCharts, campaignTable, state.stats);
  drawGroups(groupsBody, state);
  drawEmpty(emptyBox, state, ctx);

  let refreshing = null;
  async function refreshStats() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        state.stats = await api("GET", "/v1/stats", { query: { from: fromDay() } });
        drawFigures(figures, state.stats.overall);
        drawCharts(charts, stepCharts, campaignTable, state.stats);
        drawEmpty(emptyBox, state, ctx);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }
  async function refreshGroups() {
    if (document.hidden) return;
    try {
      state.groups = (await api("GET", "/v1/lead-groups")).items;
      drawGroups(groupsBody, state);
      drawEmpty(emptyBox, state, ctx);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }

  const stream = new EventSource(`/v1/stats/stream?from=${fromDay()}`);
  let lastPayload = null;
  stream.addEventListener("open", () => {
    live.textContent = "Live";
    live.classList.add("on");
  });
  stream.addEventListener("error", () => {
    live.textContent = stream.readyState === EventSource.CLOSED ? "Not live: reload the page" : "Reconnecting…";
    live.classList.remove("on");
  });
  stream.addEventListener("stats", (event) => {
    live.textContent = "Live";
    live.classList.add("on");
    if (event.data === lastPayload) return;
    const first = lastPayload === null;
    lastPayload = event.data;
    drawFigures(figures, JSON.parse(event.data));
    if (!first) {
      view.dataset.updates = String(Number(view.dataset.updates || 0) + 1);
      refreshStats();
      refreshGroups();
    }
  });
  const timer = setInterval(refreshGroups, GROUPS_REFRESH_MS);
  return () => {
    stream.close();
    clearInterval(timer);
  };
}

function drawSwitch(panel, state) {
  const on = state.settings.lead_management_enabled;
  panel.classList.toggle("off", !on);
  const input = h("input", {
    type: "checkbox",
    role: "switch",
    id: "lead-management-switch",
    name: "lead_management_enabled",
    checked: on,
    "aria-describedby": "switch-explained",
    "data-testid": "lead-management-switch",
  });
  input.addEventListener("change", async () => {
    const wanted = input.checked;
    input.disabled = true;
    try {
      state.settings = await api("PUT", "/v1/settings", { body: { lead_management_enabled: wanted } });
      toast(wanted ? "Lead management is on: follow-ups go out again." : "Lead management is off: no follow-ups go out.");
    } catch (error) {
      toast(`Not changed: ${error.message}`, "error");
    }
    drawSwitch(panel, state);
    panel.querySelector("input").focus();
  });
  panel.replaceChildren(
    h("label", { class: "switch", for: "lead-management-switch" }, input, h("span", { class: "track", "aria-hidden": "true" }), h("span", { class: "sr-only" }, "Lead management")),
    h(
      "div",
      {},
      h("h2", { id: "switch-heading" }, "Lead management is ", h("strong", { "data-testid": "switch-state" }, on ? "on" : "off")),
      h(
        "p",
        { id: "switch-explained" },
        on
          ? "Follow-ups go out as your campaigns schedule them. Turning this off stops every follow-up at once; leads, events and purchases are still recorded, so nothing is lost, and due follow-ups go out when you turn it back on."
          : "No follow-ups go out. Leads, events and purchases are still recorded, so nothing is lost: follow-ups that fell due meanwhile go out when you turn it back on.",
      ),
    ),
  );
}

function figure(label, value, testid) {
  return h("div", { class: "figure", "data-testid": testid }, h("div", { class: "number" }, value), h("div", { class: "label" }, label));
}

function drawFigures(box, overall) {
  const currencies = Object.entries(overall.value || {});
  box.replaceChildren(
    figure("Follow-ups sent", overall.followups_sent.toLocaleString(), "figure-followups"),
    figure("Leads reached", overall.targeted_leads.toLocaleString(), "figure-targeted"),
    figure("Converted leads", overall.converted_leads.toLocaleString(), "figure-converted"),
    figure("Conversion rate", percent(overall.conversion_rate), "figure-rate"),
    ...(currencies.length
      ? currencies.map(([currency, amount]) => figure(`Value in ${currency}`, money(amount, currency), `figure-value-${currency}`))
      : [figure("Value", "none yet", "figure-value")]),
  );
}

function drawCharts(charts, stepCharts, campaignTable, stats) {
  const series = stats.series || [];
  const day = (point) => point.start.slice(0, 10);
  const blocks = [
    h(
      "figure",
      { "data-testid": "chart-activity" },
      lineChart({
        title: "Follow-ups sent and conversions per day",
        unit: "per day",
        series: [
          { name: "Follow-ups sent", points: series.map((p) => ({ x: day(p), y: p.followups_sent })) },
          { name: "Conversions", points: series.map((p) => ({ x: day(p), y: p.converted_leads })) },
        ],
      }),
      h("figcaption", {}, "Follow-ups sent and conversions per day"),
    ),
  ];
  const currencies = [...new Set(series.flatMap((p) => Object.keys(p.value || {})).concat(Object.keys(stats.overall.value || {})))].sort();
  for (const currency of currencies) {
    blocks.push(
      h(
        "figure",
        { "data-testid": `chart-value-${currency}` },
        lineChart({
          title: `Value of conversions per day in ${currency}`,
          unit: currency,
          series: [{ name: `Value (${currency})`, points: series.map((p) => ({ x: day(p), y: Number((p.value || {})[currency] || 0) })) }],
        }),
        h("figcaption", {}, `Value of conversions per day, ${currency} (each currency on its own)`),
      ),
    );
  }
  charts.replaceChildren(...blocks);

  const steps = stats.steps || [];
  stepCharts.replaceChildren(
    h(
      "figure",
      { "data-testid": "chart-steps-sent" },
      barChart({ title: "Follow-ups sent per step", unit: "follow-ups", bars: steps.map((s) => ({ label: `Step ${s.step}`, value: s.followups_sent })) }),
      h("figcaption", {}, "Follow-ups sent per step"),
    ),
    h(
      "figure",
      { "data-testid": "chart-steps-rate" },
      barChart({
        title: "Conversion rate per step",
        unit: "%",
        atLeast: 10,
        format: rateTick,
        bars: steps.map((s) => ({ label: `Step ${s.step}`, value: (s.conversion_rate || 0) * 100, note: `${s.converted_leads} of ${s.targeted_leads}; value ${values(s.value)}` })),
      }),
      h("figcaption", {}, "Conversion rate per step (conversions credited to the step / leads that got it)"),
    ),
  );
  const rows = (stats.campaigns || []).map((c) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/campaigns/${c.campaign_id}` }, c.name || c.campaign_id)),
      h("td", { class: "num" }, c.followups_sent),
      h("td", { class: "num" }, c.converted_leads),
      h("td", { class: "num" }, percent(c.conversion_rate)),
      h("td", {}, values(c.value)),
    ),
  );
  campaignTable.replaceChildren(
    rows.length
      ? h(
          "table",
          {},
          h("caption", { class: "muted" }, "Per campaign"),
          h("thead", {}, h("tr", {}, h("th", {}, "Campaign"), h("th", { class: "num" }, "Sent"), h("th", { class: "num" }, "Converted"), h("th", { class: "num" }, "Rate"), h("th", {}, "Value"))),
          h("tbody", {}, rows),
        )
      : h("p", { class: "muted" }, "No campaign has sent a follow-up in this period."),
  );
}

function drawGroups(box, state) {
  if (!state.groups.length) {
    box.replaceChildren(h("p", { class: "muted" }, "No lead groups."));
    return;
  }
  const rows = state.groups.map((group) => {
    const active = group.status === "active";
    const toggle = h("input", {
      type: "checkbox",
      role: "switch",
      id: `group-${group.key}`,
      checked: active,
      "data-testid": `group-toggle-${group.key}`,
    });
    toggle.addEventListener("change", async () => {
      toggle.disabled = true;
      try {
        const updated = await api("PATCH", `/v1/lead-groups/${encodeURIComponent(group.key)}`, { body: { status: toggle.checked ? "active" : "inactive" } });
        Object.assign(group, updated);
        toast(`${group.name} is now ${updated.status}.`);
      } catch (error) {
        toast(`Not changed: ${error.message}`, "error");
      }
      drawGroups(box, state);
      box.querySelector(`#group-${CSS.escape(group.key)}`).focus();
    });
    return h(
      "tr",
      { "data-testid": `group-${group.key}` },
      h("th", { scope: "row" }, group.name, h("p", { class: "hint" }, group.description)),
      h("td", { class: "num", "data-testid": `group-count-${group.key}` }, group.open_leads.toLocaleString()),
      h("td", {}, h("span", { class: `badge ${group.status}` }, group.status)),
      h(
        "td",
        {},
        h("label", { class: "switch", for: toggle.id }, toggle, h("span", { class: "track", "aria-hidden": "true" }), h("span", { class: "sr-only" }, `${group.name} active`)),
      ),
    );
  });
  box.replaceChildren(
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", {}, "Group"), h("th", { class: "num" }, "Open leads"), h("th", {}, "Status"), h("th", {}, "Active"))),
      h("tbody", {}, rows),
    ),
  );
}

function drawEmpty(box, state, ctx) {
  const noLeads = state.groups.every((g) => g.open_leads === 0) && state.stats.overall.followups_sent === 0;
  const accountId = (ctx.session && ctx.session.account_id) || "ACCOUNT_ID";
  box.replaceChildren(
    noLeads
      ? empty({
          title: "No leads yet",
          text: "Send a test event: it creates a lead in the abandoned-checkout group, and a follow-up once a campaign covers it. On the server, run:",
          code: `leadflow events send-test ${accountId}`,
          action: h("p", {}, "Then ", h("a", { href: "#/campaigns/new" }, "create a campaign"), " to decide which follow-ups your leads get."),
        })
      : "",
  );
}
