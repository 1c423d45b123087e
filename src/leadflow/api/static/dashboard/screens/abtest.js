// A/B results: per set of follow-ups (variant) the leads, follow-ups per step, unique checkout
// visitors, conversions, the rate with its 95% interval, the probability of being best and the
// revenue per currency; the test's state in words; "continue this variant" and "decide now".
import { api, ApiError } from "../api.js";
import { intervalBar } from "../charts.js";
import { dateTime, empty, h, percent, toast } from "../ui.js";
import { values } from "./overview.js";

const CRITERIA = {
  conversions: (s) => `the first set to reach ${s.threshold} conversions wins`,
  revenue: (s) => `the first set to reach ${s.threshold} ${s.currency || ""} of revenue wins`,
  unique_visitors: (s) => `the first set to reach ${s.threshold} unique checkout visitors wins`,
  time_range: (s) => `the set with the best conversion rate at ${dateTime(s.ends_at)} wins`,
};

function stateInWords(result, names) {
  const winner = names[result.winner_variant_id];
  if (result.state === "decided") {
    return `Decided${result.decided_at ? ` on ${dateTime(result.decided_at)}` : ""}: set ${winner || "?"} won${result.reason ? ` because ${result.reason}` : ""}.`;
  }
  if (result.state === "inconclusive") {
    return `Ended without a clear winner${result.reason ? `: ${result.reason}` : ""}.`;
  }
  const s = result.settings;
  if (!s) return "Running: new leads are split between the sets. No winning rule is set, so the test only reports.";
  const after = s.continue_variant_id
    ? `then new leads go to set ${names[s.continue_variant_id] || "chosen"}`
    : s.keep_best
      ? "then new leads go only to the winner"
      : "then the sets keep splitting new leads";
  return `Running: ${(CRITERIA[s.criterion] || (() => s.criterion))(s)}; ${after}.`;
}

/** The set most likely to be best now: highest probability of being best, then rate. */
export function leader(variants) {
  return [...variants].sort((a, b) => (b.probability_best ?? -1) - (a.probability_best ?? -1) || (b.conversion_rate ?? -1) - (a.conversion_rate ?? -1))[0];
}

export async function render(view, params, ctx) {
  const [campaign, result] = await Promise.all([
    api("GET", `/v1/campaigns/${encodeURIComponent(params.id)}`),
    api("GET", `/v1/campaigns/${encodeURIComponent(params.id)}/ab-test`),
  ]);
  draw(view, campaign, result, ctx, params);
  return undefined;
}

function draw(view, campaign, result, ctx, params) {
  const names = Object.fromEntries(result.variants.map((v) => [v.variant_id, v.name]));
  const open = result.state === "running";
  const decide = async (variant, button) => {
    if (!window.confirm(`End the test and send new leads only to set ${variant.name}?`)) return;
    button.disabled = true;
    try {
      const decided = await api("POST", `/v1/campaigns/${campaign.id}/ab-test/decide`, { body: { variant_id: variant.variant_id } });
      toast(`Set ${variant.name} continues; the test is decided.`);
      draw(view, campaign, decided, ctx, params);
      view.querySelector("[data-testid='ab-state']").focus();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      toast(error.message, "error");
      button.disabled = false;
    }
  };
  const steps = [...new Set(result.variants.flatMap((v) => Object.keys(v.followups_sent || {})))].sort();
  const maxRate = Math.min(1, Math.max(0.05, ...result.variants.map((v) => (v.conversion_rate_ci95 ? v.conversion_rate_ci95[1] : v.conversion_rate || 0))) * 1.1);
  const rows = result.variants.map((v) => {
    const winner = v.variant_id === result.winner_variant_id;
    const button = h("button", { type: "button", class: "secondary", "data-testid": `continue-${v.name}`, "aria-label": `Continue this variant (set ${v.name})`, disabled: !open }, "Continue this variant");
    button.addEventListener("click", () => decide(v, button));
    const [low, high] = v.conversion_rate_ci95 || [null, null];
    return h(
      "tr",
      { "data-testid": `variant-row-${v.name}` },
      h("th", { scope: "row" }, v.name, winner ? h("span", { class: "badge winner", "data-testid": "winner" }, " winner") : null, h("p", { class: "hint" }, `weight ${v.weight}`)),
      h("td", { class: "num" }, v.leads_assigned),
      h("td", {}, steps.length ? steps.map((s) => h("div", {}, `step ${s}: ${(v.followups_sent || {})[s] || 0}`)) : "none yet"),
      h("td", { class: "num" }, v.unique_visitors),
      h("td", { class: "num" }, `${v.conversions} / ${v.targeted_leads}`),
      h(
        "td",
        {},
        h("div", {}, percent(v.conversion_rate), low !== null ? h("span", { class: "muted" }, ` (${percent(low)}–${percent(high)})`) : null),
        intervalBar({ title: `Conversion rate of set ${v.name}`, value: v.conversion_rate, low, high, max: maxRate }),
      ),
      h("td", { class: "num", "data-testid": "probability-best" }, percent(v.probability_best)),
      h("td", {}, values(v.revenue)),
      h("td", {}, button),
    );
  });
  const best = result.variants.length ? leader(result.variants) : null;
  const decideNow = h("button", { type: "button", "data-testid": "decide-now", disabled: !open || !best }, best ? `Decide now: continue set ${best.name}` : "Decide now");
  decideNow.addEventListener("click", () => best && decide(best, decideNow));
  view.replaceChildren(
    ...[
    h("p", {}, h("a", { href: `#/campaigns/${campaign.id}` }, `← ${campaign.name}`)),
    h("h1", {}, `A/B results: ${campaign.name}`),
    h("section", { class: "panel" },
      h("p", { "data-testid": "ab-state", tabindex: "-1", class: `badge ${result.state === "decided" ? "winner" : ""}` }, result.state),
      h("p", { "data-testid": "ab-state-words" }, stateInWords(result, names)),
      open && best ? h("div", { class: "row" }, decideNow, h("span", { class: "muted" }, "Ends the test now with the set most likely to be best; new leads go only to it.")) : null),
    result.variants.length < 2
      ? empty({ title: "Not an A/B test yet", text: "Add a test follow-up (a second set) in the wizard to compare two sets of follow-ups.", action: h("a", { class: "button", href: `#/campaigns/${campaign.id}/edit?step=2` }, "Add a test follow-up") })
      : null,
    result.variants.length
      ? h("section", { class: "panel", "data-testid": "ab-table" },
          h("table", {},
            h("caption", { class: "muted" }, "Rate = conversions / leads that got a follow-up, with its 95% Wilson interval as a bar; probability of being best from a Beta-Binomial model."),
            h("thead", {}, h("tr", {}, ["Set", "Leads", "Follow-ups", "Unique visitors", "Conversions", "Rate", "Probability best", "Revenue", ""].map((t) => h("th", {}, t)))),
            h("tbody", {}, rows)))
      : null,
    ].filter(Boolean),
  );
}
