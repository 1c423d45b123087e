// Campaigns: the list with status, source and figures, and one campaign's page with its
// follow-ups, figures per variant and step, and the actions (edit, activate, deactivate,
// archive, backfill).
import { api, ApiError } from "../api.js";
import { barChart } from "../charts.js";
import { dateTime, empty, field, h, percent, select, toast } from "../ui.js";
import { rateTick, SOURCE_NAMES, values } from "./overview.js";

const MAX_DAYS = 1900; // GET /v1/stats allows 2,000 daily buckets

function dayOf(date) {
  return date.toISOString().slice(0, 10);
}

function statsFrom(campaigns) {
  const earliest = Math.max(
    Date.now() - MAX_DAYS * 86400000,
    Math.min(Date.now() - 29 * 86400000, ...campaigns.map((c) => Date.parse(c.created_at))),
  );
  return dayOf(new Date(earliest));
}

export function statusOf(campaign) {
  return campaign.archived_at ? "archived" : campaign.status;
}

export async function render(view, params, ctx) {
  if (params.id) return renderOne(view, params, ctx);
  return renderList(view, params, ctx);
}

async function loadAll() {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 20; page++) {
    const answer = await api("GET", "/v1/campaigns", { query: { include_archived: true, limit: 100, cursor } });
    items.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return items;
}

async function renderList(view, params, ctx) {
  const campaigns = await loadAll();
  const stats = campaigns.length ? await api("GET", "/v1/stats", { query: { from: statsFrom(campaigns) } }) : { campaigns: [] };
  const figures = Object.fromEntries(stats.campaigns.map((c) => [c.campaign_id, c]));

  const status = select("status", [["", "Any status except archived"], ["active", "Active"], ["inactive", "Inactive"], ["archived", "Archived"]], params.status || "");
  const source = select("source", [["", "Any source"], ...Object.entries(SOURCE_NAMES).filter(([key]) => key !== "opt_in")], params.source || "");
  const search = h("input", { type: "search", name: "q", value: params.q || "", placeholder: "Part of a name" });
  const filters = h(
    "form",
    { class: "filters", role: "search", "data-testid": "campaign-filters" },
    field({ label: "Status", name: "status", input: status }),
    field({ label: "Source", name: "source", input: source }),
    field({ label: "Name", name: "q", input: search }),
  );
  filters.addEventListener("submit", (event) => event.preventDefault());
  const listBox = h("div", { "data-testid": "campaign-list" });

  function draw() {
    const query = search.value.trim().toLowerCase();
    const shown = campaigns.filter((c) => {
      const st = statusOf(c);
      if (status.value ? st !== status.value : st === "archived") return false;
      if (source.value && c.source !== source.value) return false;
      return !query || c.name.toLowerCase().includes(query);
    });
    if (!campaigns.length) {
      listBox.replaceChildren(
        empty({
          title: "No campaigns yet",
          text: "A campaign decides which leads get follow-ups and what they say. Leads are captured either way; without a campaign none of them hears from you.",
          action: h("a", { class: "button", href: "#/campaigns/new" }, "Create your first campaign"),
        }),
      );
      return;
    }
    if (!shown.length) {
      listBox.replaceChildren(h("p", { class: "muted" }, "No campaign matches these filters."));
      return;
    }
    listBox.replaceChildren(
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, "Campaign"), h("th", {}, "Status"), h("th", {}, "Source"), h("th", { class: "num" }, "Sent"), h("th", { class: "num" }, "Converted"), h("th", { class: "num" }, "Rate"), h("th", {}, "Value"), h("th", {}, "Actions")),
        ),
        h("tbody", {}, shown.map((c) => row(c, figures[c.id], ctx, reload))),
      ),
    );
  }
  async function reload() {
    const fresh = await loadAll();
    campaigns.splice(0, campaigns.length, ...fresh);
    draw();
  }
  [status, source].forEach((el) => el.addEventListener("change", draw));
  search.addEventListener("input", draw);

  view.replaceChildren(
    h("div", { class: "spread" }, h("h1", {}, "Campaigns"), h("a", { class: "button", href: "#/campaigns/new", "data-testid": "new-campaign" }, "Add lead group")),
    h("p", { class: "muted" }, "Figures count follow-ups sent and conversions credited to them since the first campaign was created."),
    h("section", { class: "panel" }, filters, listBox),
  );
  draw();
  return undefined;
}

function row(campaign, fig, ctx, reload) {
  const st = statusOf(campaign);
  return h(
    "tr",
    { "data-testid": `campaign-row-${campaign.id}` },
    h("td", {}, h("a", { href: `#/campaigns/${campaign.id}` }, campaign.name), campaign.variants.length > 1 ? h("span", { class: "badge" }, " A/B") : null),
    h("td", {}, h("span", { class: `badge ${st}`, "data-testid": "campaign-status" }, st)),
    h("td", {}, SOURCE_NAMES[campaign.source] || campaign.source),
    h("td", { class: "num" }, fig ? fig.followups_sent : 0),
    h("td", { class: "num" }, fig ? fig.converted_leads : 0),
    h("td", { class: "num" }, percent(fig && fig.conversion_rate)),
    h("td", {}, values(fig && fig.value)),
    h("td", {}, actions(campaign, ctx, reload)),
  );
}

/** Edit, activate/deactivate, archive, backfill: the buttons a campaign's state allows. */
export function actions(campaign, ctx, reload) {
  const st = statusOf(campaign);
  const label = (verb) => `${verb} ${campaign.name}`;
  const run = (fn) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await fn();
      await reload();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      toast(error.message, "error");
      button.disabled = false;
    }
  };
  const buttons = [];
  if (st !== "archived") {
    buttons.push(h("a", { class: "button secondary", href: `#/campaigns/${campaign.id}/edit`, "aria-label": label("Edit"), "data-testid": "edit" }, "Edit"));
    if (st === "inactive") {
      buttons.push(h("button", { type: "button", "aria-label": label("Activate"), "data-testid": "activate", onclick: run(async () => {
        await api("PATCH", `/v1/campaigns/${campaign.id}`, { body: { status: "active" } });
        toast(`${campaign.name} is active.`);
      }) }, "Activate"));
    } else {
      buttons.push(h("button", { type: "button", class: "secondary", "aria-label": label("Deactivate"), "data-testid": "deactivate", onclick: run(async () => {
        await api("PATCH", `/v1/campaigns/${campaign.id}`, { body: { status: "inactive" } });
        toast(`${campaign.name} is inactive: no further follow-ups from it.`);
      }) }, "Deactivate"));
      buttons.push(h("button", { type: "button", class: "secondary", "aria-label": label("Backfill"), title: "Enroll open leads captured before this campaign ran", "data-testid": "backfill", onclick: run(() => backfill(campaign)) }, "Backfill"));
    }
    buttons.push(h("button", { type: "button", class: "secondary", "aria-label": label("Archive"), "data-testid": "archive", onclick: run(async () => {
      if (!window.confirm(`Archive "${campaign.name}"? Its history stays; its leads get no further follow-ups.`)) throw new ApiError(0, { detail: "Not archived." });
      await api("DELETE", `/v1/campaigns/${campaign.id}`);
      toast(`${campaign.name} is archived.`);
    }) }, "Archive"));
  }
  if (campaign.variants.length > 1) {
    buttons.push(h("a", { class: "button secondary", href: `#/campaigns/${campaign.id}/ab`, "aria-label": label("A/B results of"), "data-testid": "ab-results" }, "A/B results"));
  }
  return h("div", { class: "actions" }, buttons);
}

async function backfill(campaign) {
  const job = await api("POST", `/v1/campaigns/${campaign.id}/backfill`, { body: {} });
  toast(`Backfill queued: open leads captured earlier are being enrolled in ${campaign.name}.`);
  // Follow the job a little while so the merchant sees it move; it keeps running regardless.
  for (let i = 0; i < 30; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = await api("GET", `/v1/campaigns/${campaign.id}/backfills/${job.id}`);
    if (!["queued", "running"].includes(now.status)) {
      toast(`Backfill ${now.status}: ${now.enrolled} of ${now.scanned} leads enrolled${now.reason ? ` (${now.reason})` : ""}.`);
      return;
    }
  }
}

async function renderOne(view, params, ctx) {
  const campaign = await api("GET", `/v1/campaigns/${encodeURIComponent(params.id)}`);
  const from = dayOf(new Date(Math.max(Date.parse(campaign.created_at) - 86400000, Date.now() - MAX_DAYS * 86400000)));
  const [stats, endpoints] = await Promise.all([
    api("GET", `/v1/campaigns/${campaign.id}/stats`, { query: { from } }),
    api("GET", "/v1/iln/endpoints").catch(() => ({ items: [] })),
  ]);
  const reload = () => render(view, params, ctx);
  const hooks = (endpoints.items || []).filter((e) => e.campaign_id === campaign.id);
  const st = statusOf(campaign);
  view.replaceChildren(
    ...[
    h("p", {}, h("a", { href: "#/campaigns" }, "← All campaigns")),
    h("div", { class: "spread" }, h("h1", { "data-testid": "campaign-name" }, campaign.name), actions(campaign, ctx, reload)),
    campaign.warnings.length ? h("div", { class: "advice", role: "note" }, campaign.warnings.join(" ")) : null,
    h(
      "section",
      { class: "panel" },
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge ${st}`, "data-testid": "campaign-status" }, st)),
        h("dt", {}, "Source"), h("dd", {}, SOURCE_NAMES[campaign.source] || campaign.source),
        h("dt", {}, "Description"), h("dd", {}, campaign.description || "–"),
        h("dt", {}, "Products"), h("dd", {}, campaign.products.join(", ") || "All products"),
        h("dt", {}, "Languages"), h("dd", {}, campaign.languages.join(", ") || "All languages"),
        h("dt", {}, "Countries"), h("dd", {}, campaign.countries.join(", ") || "All countries"),
        h("dt", {}, "Runs"), h("dd", {}, `${campaign.starts_at ? dateTime(campaign.starts_at) : "from now"} – ${campaign.ends_at ? dateTime(campaign.ends_at) : "no end"}`),
        h("dt", {}, "Notifications"), h("dd", {}, hooks.length ? hooks.map((e) => e.url).join(", ") : "No campaign-level ILN endpoint"),
      ),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Figures"),
      h(
        "p",
        { "data-testid": "campaign-figures" },
        `${stats.overall.followups_sent} follow-ups sent, ${stats.overall.converted_leads} converted (${percent(stats.overall.conversion_rate)}), value ${values(stats.overall.value)}.`,
      ),
      h(
        "figure",
        {},
        barChart({ title: "Conversion rate per step", unit: "%", format: rateTick, atLeast: 10, width: 900, height: 240, bars: stats.steps.map((s) => ({ label: `Step ${s.step}`, value: (s.conversion_rate || 0) * 100, note: `${s.followups_sent} sent, value ${values(s.value)}` })) }),
        h("figcaption", {}, "Conversion rate per step"),
      ),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Follow-ups"),
      campaign.variants.length
        ? campaign.variants.map((variant) => {
            const vf = stats.variants.find((v) => v.variant_id === variant.id);
            return h(
              "div",
              { class: "variant" },
              h("h3", {}, `${variant.name} (weight ${variant.weight})`, vf ? h("span", { class: "muted" }, ` · ${vf.followups_sent} sent, ${vf.converted_leads} converted, ${values(vf.value)}`) : null),
              h("ol", {}, variant.steps.map((s) => h("li", {}, `after ${s.delay}: `, s.template ? `template ${s.template}` : `“${s.subject}”`))),
            );
          })
        : empty({ title: "No follow-ups yet", text: "Add up to three follow-ups so the leads of this campaign hear from you.", action: h("a", { class: "button", href: `#/campaigns/${campaign.id}/edit?step=2` }, "Add follow-ups") }),
    ),
    ].filter(Boolean),
  );
  return undefined;
}
